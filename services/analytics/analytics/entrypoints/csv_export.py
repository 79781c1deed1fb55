"""CSV exports of the dashboard's tables, safe to open in a spreadsheet.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return would be read as a formula by Excel, LibreOffice or Google Sheets
(CSV/formula injection: a person named ``=HYPERLINK(...)``), so it gets a
leading apostrophe. Real numbers are written as numbers: they carry no formula,
and a negative minute offset must stay a number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def escape_cell(value: Any) -> Any:
    """The cell as written: formula-looking text gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """``columns`` are (key in the row, heading)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([escape_cell(heading) for _, heading in columns])
    for row in rows:
        writer.writerow([escape_cell(row.get(key)) for key, _ in columns])
    return out.getvalue()


def csv_response(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str]], filename: str) -> Response:
    safe = _SAFE_NAME.sub("-", filename).strip("-") or "export"
    # A byte-order mark so Excel reads the file as UTF-8 (names with accents).
    body = "\ufeff" + to_csv(rows, columns)
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}.csv"', "Cache-Control": "no-store"},
    )
