"""The hour statement as a PDF (fpdf2): the organization, the person, the period,
each approved shift (date, activity, hours, approver), the total, and the
verification link with its QR code (segno's modules drawn as squares, so the
code stays sharp at any zoom).

The PDF uses the standard Helvetica font, which covers Latin-1: a character
outside it (a name in another script) is written without its accent where it
has one, else as "?"; the verification page shows the text as typed.
"""

from __future__ import annotations

import unicodedata

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from checkin.domain.hours import Statement

INK = (32, 33, 36)
MUTED = (95, 99, 104)
RULE = (218, 220, 224)
HEADING_FILL = (241, 243, 244)


# Latin letters that have no decomposition to a Latin-1 base.
_NO_DECOMPOSITION = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Œ": "OE", "œ": "oe", "ı": "i", "Ħ": "H", "ħ": "h"}
)


def pdf_text(text: str) -> str:
    """``text`` in the PDF's Latin-1 font: dashes and quotes as their plain forms, accents dropped
    from letters outside Latin-1, anything else left as "?"."""
    plain = text.replace("–", "-").replace("—", "-").replace("‘", "'").replace("’", "'")
    plain = plain.replace("“", '"').replace("”", '"').replace("…", "...")
    plain = plain.translate(_NO_DECOMPOSITION)
    out = []
    for ch in plain:
        if ord(ch) < 256 and ch.isprintable():
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


def _hours(value: float) -> str:
    return f"{value:g}"


def statement_pdf(found: Statement, verify_url: str) -> bytes:
    """The statement as PDF bytes (A4, as many pages as the shifts need)."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title(pdf_text(f"Volunteer hour statement - {found.person}"))
    pdf.set_author(pdf_text(found.organization))
    pdf.set_creator("Turnout")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    pdf.set_text_color(*MUTED)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(width, 6, pdf_text(found.organization.upper()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*INK)
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(width, 11, "Volunteer hour statement", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    pdf.set_font("Helvetica", "", 11)
    for label, value in (
        ("Volunteer", found.person),
        ("Organization", found.organization),
        ("Period", found.period.label),
        ("Issued", f"{found.issued_at:%-d %B %Y}"),
    ):
        pdf.set_text_color(*MUTED)
        pdf.cell(32, 6.5, label)
        pdf.set_text_color(*INK)
        pdf.multi_cell(width - 32, 6.5, pdf_text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    if found.lines:
        pdf.set_draw_color(*RULE)
        pdf.set_font("Helvetica", "", 10)
        with pdf.table(
            col_widths=(26, 86, 18, 44),
            text_align=("LEFT", "LEFT", "RIGHT", "LEFT"),
            headings_style=_headings(),
            line_height=6,
            borders_layout="HORIZONTAL_LINES",
            padding=1.5,
        ) as table:
            table.row(["Date", "Activity", "Hours", "Approved by"])
            for line in found.lines:
                table.row([f"{line.day:%-d %b %Y}", pdf_text(line.shown), _hours(line.hours), pdf_text(line.approver)])
        pdf.ln(2)
    else:
        pdf.set_text_color(*MUTED)
        pdf.multi_cell(width, 6, "No approved volunteer hours in this period.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)

    pdf.set_text_color(*INK)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(width - 44 - 18, 9, "Total approved hours", align="R")
    pdf.cell(18, 9, _hours(found.total), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)

    _verification(pdf, verify_url, width)
    return bytes(pdf.output())


def _headings() -> FontFace:
    return FontFace(emphasis="BOLD", fill_color=HEADING_FILL, color=INK)


QR_SIZE = 34.0  # mm


def _verification(pdf: FPDF, verify_url: str, width: float) -> None:
    """The verification block: the QR code on the left, the explanation and the link beside it."""
    if pdf.get_y() + QR_SIZE + 6 > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y()
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, top, pdf.l_margin + width, top)
    top += 5
    _qr(pdf, verify_url, pdf.l_margin, top, QR_SIZE)
    text_x = pdf.l_margin + QR_SIZE + 6
    pdf.set_xy(text_x, top)
    pdf.set_font("Helvetica", "B", 11)
    pdf.set_text_color(*INK)
    pdf.cell(width - QR_SIZE - 6, 6, "Check this statement", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9.5)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(
        width - QR_SIZE - 6,
        5,
        "A school, employer or funder can confirm these hours: scan the code or open the link below. "
        "It shows this statement as the organization keeps it, and says so if anything changed since.",
        new_x=XPos.LEFT,
        new_y=YPos.NEXT,
    )
    pdf.set_xy(text_x, pdf.get_y() + 1.5)
    pdf.set_font("Courier", "", 7.5)
    pdf.set_text_color(26, 115, 232)
    pdf.multi_cell(width - QR_SIZE - 6, 3.6, verify_url, link=verify_url, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + QR_SIZE) + 2)


def _qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    code = segno.make(data, error="m", micro=False)
    rows = [list(row) for row in code.matrix_iter(scale=1, border=2)]
    module = size / len(rows)
    pdf.set_fill_color(*INK)
    for row_index, row in enumerate(rows):
        # One rectangle per run of dark modules in a row.
        col, count = 0, len(row)
        while col < count:
            if not row[col]:
                col += 1
                continue
            start = col
            while col < count and row[col]:
                col += 1
            pdf.rect(x + start * module, y + row_index * module, (col - start) * module, module, style="F")
