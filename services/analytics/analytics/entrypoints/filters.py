"""Query-string filters shared by the API and the pages, validated into 4xx errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import request

from analytics.domain.events import KINDS
from analytics.domain.reports import DateRange
from turnout_common.web import ApiError

MAX_ID = 64


@dataclass(frozen=True, slots=True)
class Filters:
    date_range: DateRange
    kind: str | None

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        out = {}
        if self.date_range.start:
            out["from"] = self.date_range.start.isoformat()
        if self.date_range.end:
            out["to"] = self.date_range.end.isoformat()
        if self.kind:
            out["kind"] = self.kind
        return out


def _date(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if len(raw) != 10:
        raise ApiError(400, "invalid_date", f"{name} must be a date like 2026-03-31", field=name)
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_date", f"{name} must be a date like 2026-03-31", field=name) from exc


def filters() -> Filters:
    start, end = _date("from"), _date("to")
    if start and end and start > end:
        raise ApiError(400, "invalid_range", "from must not be after to", field="from")
    kind = request.args.get("kind", "").strip() or None
    if kind is not None and kind not in KINDS:
        raise ApiError(400, "invalid_kind", f"kind must be one of: {', '.join(KINDS)}", field="kind")
    return Filters(DateRange(start, end), kind)


def integer(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "invalid_number", f"{name} must be a whole number", field=name)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise ApiError(400, "invalid_number", f"{name} must be between {minimum} and {maximum}", field=name)
    return value


def wants_csv() -> bool:
    fmt = request.args.get("format", "json").strip().lower() or "json"
    if fmt not in ("json", "csv"):
        raise ApiError(400, "invalid_format", "format must be json or csv", field="format")
    return fmt == "csv"


def check_id(value: str, what: str) -> str:
    """Path ids: anything longer than an id can be is simply not found."""
    if not value or len(value) > MAX_ID:
        raise ApiError(404, f"{what}_not_found", f"no such {what} in your organization")
    return value
