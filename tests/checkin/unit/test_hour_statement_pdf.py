"""The hour statement's PDF: its text says who, where, when, each approved shift and
the total, in the standard font (names outside Latin-1 kept readable)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pypdfium2 as pdfium

from checkin.adapters.statement_pdf import pdf_text, statement_pdf
from checkin.domain.hours import Period, Statement, StatementLine

URL = "https://checkin.example.org/hours/verify/eyJvIjoiMSJ9.c2lnbmF0dXJl"


def test_the_pdf_names_the_organization_person_period_shifts_approver_total_and_link() -> None:
    lines = (
        StatementLine(date(2026, 3, 7), "Saturday pantry sort", 3.25, "Maria Gonzalez", False),
        StatementLine(date(2026, 3, 20), "Delivered flyers", 2.0, "Maria Gonzalez", True),
    )
    found = Statement(
        "Eastside Pantry",
        "José Ramírez",
        Period(date(2026, 1, 1), date(2026, 6, 30)),
        lines,
        datetime(2026, 7, 2, tzinfo=UTC),
    )
    document = pdfium.PdfDocument(statement_pdf(found, URL))
    text = document[0].get_textpage().get_text_range()
    for expected in (
        "EASTSIDE PANTRY",
        "José Ramírez",
        "1 Jan 2026 - 30 Jun 2026",
        "7 Mar 2026",
        "Saturday pantry sort",
        "Off-site: Delivered flyers",
        "Maria Gonzalez",
        "Total approved hours",
        "5.25",
        "checkin.example.org/hours/verify/",
    ):
        assert expected in text, expected


def test_the_pdf_says_so_when_the_period_has_no_approved_hours() -> None:
    found = Statement("Org", "Ada", Period(date(2026, 1, 1), date(2026, 1, 31)), (), datetime(2026, 2, 1, tzinfo=UTC))
    text = pdfium.PdfDocument(statement_pdf(found, URL))[0].get_textpage().get_text_range()
    assert "No approved volunteer hours in this period." in text


def test_text_outside_the_standard_font_stays_readable() -> None:
    assert pdf_text("Zoë – “Łukasz” 李") == 'Zoë - "Lukasz" ?'
