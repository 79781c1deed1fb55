"""The CSV import parser (pure functions, no servers)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from checkin.domain.imports import (
    MAX_ROWS,
    ImportRejected,
    decode,
    detect_format,
    is_consent_header,
    is_yes,
    parse_import,
    preview,
    problems_csv,
    read_table,
    safe_filename,
    sniff_delimiter,
    split_name,
    spreadsheet_safe,
    suggest_mapping,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imports"

EVENTBRITE_HEADER = (
    "Order #,Order Date,First Name,Last Name,Email,Quantity,Price Tier,Ticket Type,Attendee #,"
    "Group,Order Type,Currency,Total Paid,Fees Paid,Eventbrite Fees,Eventbrite Payment Processing,Attendee Status"
)


def eventbrite_line(first: str, last: str, email: str, status: str = "Attending", n: int = 1) -> str:
    return (
        f"{4400 + n},2026-04-02 09:14:21-05:00,{first},{last},{email},1,,General Admission,{5500 + n},"
        f",Free Order,USD,0.00,0.00,0.00,0.00,{status}"
    )


def rejected(parsed: object) -> dict[int, str]:
    return {problem.row: problem.reason for problem in parsed.rejected}  # type: ignore[attr-defined]


def skipped(parsed: object) -> dict[int, str]:
    return {problem.row: problem.reason for problem in parsed.skipped}  # type: ignore[attr-defined]


# -- Eventbrite --------------------------------------------------------------------


def test_eventbrite_export_sample() -> None:
    parsed = parse_import((FIXTURES / "eventbrite_attendees.csv").read_bytes())
    assert parsed.format == "eventbrite"
    assert parsed.total == 10
    assert parsed.mapping == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",
        "party": "Order #",
        "consent_email": "Would you like to receive email updates from the organizer?",
        "offers": "What skills can you offer?",
        "seeks": "What are you looking for?",
    }
    by_row = {row.row: row for row in parsed.rows}
    assert sorted(by_row) == [2, 3, 4, 11]
    maya = by_row[2]
    assert (maya.first_name, maya.last_name, maya.email) == ("Maya", "Okafor", "maya.okafor@example.org")
    assert maya.consent_email is True
    assert maya.offers == ["forklift certified", "spanish"]
    assert maya.seeks == ["food safety training"]
    assert by_row[3].consent_email is False  # "No"
    assert by_row[4].consent_email is False  # blank: never assumed
    assert by_row[4].first_name == "José" and by_row[4].offers == ["carpentry", "first aid"]
    assert by_row[11].consent_email is True  # "I agree"
    assert by_row[11].offers == ["grant writing mentoring"]  # a line break inside a cell is a space
    assert skipped(parsed) == {
        5: "skipped: attendee status is 'Refunded'",
        9: "skipped: attendee status is 'Not Attending'",
    }
    assert rejected(parsed) == {6: "missing name", 7: "bad email", 8: "duplicate of row 3", 10: "bad email"}


def test_eventbrite_photo_consent_is_not_email_consent() -> None:
    raw = (EVENTBRITE_HEADER + ",Photo consent\n" + eventbrite_line("Ada", "L", "ada@example.org") + ",Yes\n").encode()
    parsed = parse_import(raw)
    assert "consent_email" not in parsed.mapping
    assert parsed.rows[0].consent_email is False


@pytest.mark.parametrize("status", ["Attending", "Checked In", "checked out", ""])
def test_eventbrite_statuses_that_import(status: str) -> None:
    raw = (EVENTBRITE_HEADER + "\n" + eventbrite_line("Ada", "L", "ada@example.org", status)).encode()
    assert len(parse_import(raw).rows) == 1


@pytest.mark.parametrize("status", ["Not Attending", "Refunded", "Cancelled", "canceled", "Deleted", "Transferred"])
def test_eventbrite_statuses_that_are_skipped(status: str) -> None:
    raw = (EVENTBRITE_HEADER + "\n" + eventbrite_line("Ada", "L", "ada@example.org", status)).encode()
    parsed = parse_import(raw)
    assert parsed.rows == [] and parsed.rejected == []
    assert skipped(parsed) == {2: f"skipped: attendee status is {status!r}"}


def test_eventbrite_with_bom_semicolons_and_crlf() -> None:
    text = (
        EVENTBRITE_HEADER.replace(",", ";") + "\r\n" + eventbrite_line("Zoë", "Ng", "zoe@example.org").replace(",", ";")
    )
    parsed = parse_import(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert parsed.format == "eventbrite" and parsed.delimiter == ";" and parsed.encoding == "utf-8"
    assert parsed.headers[0] == "Order #"  # the BOM is not part of the first header
    assert parsed.rows[0].first_name == "Zoë"


def test_eventbrite_chosen_explicitly_lists_missing_columns() -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_import(b"Order #,First Name,E-mail\n1,Ada,ada@example.org\n", "eventbrite")
    assert caught.value.code == "missing_columns"
    assert caught.value.missing == ["Last Name", "Email"]
    assert caught.value.headers == ["Order #", "First Name", "E-mail"]
    assert "Last Name, Email" in caught.value.message


# -- Meetup -----------------------------------------------------------------------------


def test_meetup_rsvp_sample() -> None:
    parsed = parse_import((FIXTURES / "meetup_rsvps.csv").read_bytes())
    assert parsed.format == "meetup"
    assert parsed.mapping == {
        "name": "Name",
        "email": "What's your email address?",
        "member_id": "User ID",
        "profile_url": "URL of Member Profile",
    }
    names = {row.row: (row.first_name, row.last_name, row.email, row.waitlist) for row in parsed.rows}
    assert names == {
        2: ("Maya", "Okafor", "maya.okafor@example.org", False),
        3: ("Cher", "", "cher@example.org", False),
        4: ("Mary Ann van", "Dyke", "maryann@example.org", False),
        6: ("Sam", "Ortiz", "sam@example.org", True),  # RSVP "Waitlist": the event's waitlist
        7: ("Pat", "Doe", "", False),  # no email: name-only
    }
    assert [row.meetup_member_id for row in parsed.rows] == [f"28123456{n}" for n in (7, 8, 9)] + [
        "281234571",
        "281234572",
    ]
    assert all(row.consent_email is False for row in parsed.rows)
    assert skipped(parsed) == {5: "skipped: RSVP is 'No'"}
    assert rejected(parsed) == {}


def test_meetup_without_an_email_column_imports_name_only_rows() -> None:
    raw = b"Name,User ID,RSVP,Guests\nMaya Okafor,user 1,Yes,0\nLuis Romero,user 2,Yes,0\n"
    parsed = parse_import(raw)
    assert parsed.format == "meetup" and rejected(parsed) == {}
    assert [(row.first_name, row.email, row.name_only) for row in parsed.rows] == [
        ("Maya", "", True),
        ("Luis", "", True),
    ]
    assert parsed.name_only == 2


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("Maya Okafor", ("Maya", "Okafor")),
        ("  Cher ", ("Cher", "")),
        ("Mary  Ann\tvan Dyke", ("Mary Ann van", "Dyke")),
        ("", ("", "")),
    ],
)
def test_split_name_takes_the_last_word_as_last_name(full: str, expected: tuple[str, str]) -> None:
    assert split_name(full) == expected


# -- generic ------------------------------------------------------------------------


def test_generic_needs_a_mapping_and_says_which_headers_exist() -> None:
    raw = b"Given,Family,Contact e-mail\nAda,Lovelace,ada@example.org\n"
    with pytest.raises(ImportRejected) as caught:
        parse_import(raw)
    assert caught.value.code == "mapping_required"
    assert caught.value.headers == ["Given", "Family", "Contact e-mail"]
    assert "Given, Family, Contact e-mail" in caught.value.message
    assert caught.value.suggested_mapping == {"email": "Contact e-mail"}


def test_generic_mapping_must_name_email_and_a_name() -> None:
    raw = b"Given,Family,Contact e-mail\nAda,Lovelace,ada@example.org\n"
    with pytest.raises(ImportRejected) as caught:
        parse_import(raw, "generic", {"email": "Contact e-mail"})
    assert caught.value.code == "mapping_incomplete"
    with pytest.raises(ImportRejected) as unknown_column:
        parse_import(raw, "generic", {"email": "Email", "first_name": "Given"})
    assert unknown_column.value.code == "missing_columns" and unknown_column.value.missing == ["Email"]
    with pytest.raises(ImportRejected) as unknown_field:
        parse_import(raw, "generic", {"email": "Contact e-mail", "phone": "Given"})
    assert unknown_field.value.code == "invalid_mapping"


def test_generic_semicolon_cp1252_with_mapping() -> None:
    mapping = {
        "first_name": "Prénom",
        "last_name": "nom",  # header matching ignores case
        "email": "Courriel",
        "consent_email": "Inscription newsletter (opt-in)",
        "offers": "Compétences",
        "seeks": "Besoins",
    }
    parsed = parse_import((FIXTURES / "generic_semicolon_cp1252.csv").read_bytes(), "auto", mapping)
    assert parsed.format == "generic" and parsed.encoding == "cp1252" and parsed.delimiter == ";"
    assert parsed.mapping["last_name"] == "Nom"
    rows = {row.row: row for row in parsed.rows}
    assert (rows[2].first_name, rows[2].last_name) == ("Zoë", "Müller")
    assert rows[2].consent_email is False  # "oui" is not an explicit yes the parser knows
    assert rows[2].offers == ["cuisine", "logistique"] and rows[2].seeks == ["transport"]
    assert rows[3].consent_email is True and rows[3].offers == []
    assert (rows[4].first_name, rows[4].last_name) == ("Inès", "")


def test_generic_single_name_column_and_tabs() -> None:
    raw = b"Full name\tE-mail\tOffers\nGrace Brewster Hopper\tgrace@example.org\tCOBOL;#Navy;cobol\n"
    parsed = parse_import(raw, "generic", {"name": "Full name", "email": "E-mail", "offers": "Offers"})
    assert parsed.delimiter == "\t"
    row = parsed.rows[0]
    assert (row.first_name, row.last_name, row.offers) == ("Grace Brewster", "Hopper", ["cobol", "navy"])


def test_generic_validation_reasons_and_row_numbers() -> None:
    raw = (
        "first,last,email\n"
        "Ada,Lovelace,ada@example.org\n"
        ",,\n"  # a blank row keeps its number
        ",Nameless,nameless@example.org\n"
        "Bob,,not-an-email\n"
        "Carl,,carl@example\n"
        "Dora,,\n"
        "Ada,Again,ADA@example.org\n"
        f"{'L' * 101},,long@example.org\n"
        f"Eve,,{'e' * 250}@example.org\n"
        '"Multi\nLine",Person,multi@example.org\n'
        "Fay,,fay@example.org\n"
    ).encode()
    parsed = parse_import(raw, "generic", {"first_name": "first", "last_name": "last", "email": "email"})
    assert parsed.total == 10  # the blank row is not counted
    assert rejected(parsed) == {
        4: "missing name",
        5: "bad email",
        6: "bad email",
        8: "duplicate of row 2",
        9: "name too long (over 100 characters)",
        10: "bad email",
    }
    assert [(row.row, row.first_name) for row in parsed.rows] == [
        (2, "Ada"),
        (7, "Dora"),  # no email: name-only
        (11, "Multi Line"),
        (12, "Fay"),
    ]


def test_suggested_mapping_for_common_headers() -> None:
    headers = ["First_Name", "Surname", "Email Address", "Email consent", "Skills I can offer", "Looking for"]
    assert suggest_mapping(headers) == {
        "first_name": "First_Name",
        "last_name": "Surname",
        "email": "Email Address",
        "consent_email": "Email consent",
        "offers": "Skills I can offer",
        "seeks": "Looking for",
    }


def test_mapping_overrides_a_detected_format() -> None:
    raw = (EVENTBRITE_HEADER + ",Newsletter\n" + eventbrite_line("Ada", "L", "ada@example.org") + ",yes\n").encode()
    parsed = parse_import(raw, "eventbrite", {"consent_email": "Newsletter"})
    assert parsed.format == "eventbrite" and parsed.rows[0].consent_email is True


# -- consent ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "Yes", "Y", "TRUE", "1", "I agree", "I agree.", "Yes, keep me posted", "x"])
def test_explicit_yes_is_consent(value: str) -> None:
    assert is_yes(value)


@pytest.mark.parametrize("value", ["", "no", "No thanks", "0", "false", "maybe", "oui", "n/a", "yesterday"])
def test_anything_else_is_no_consent(value: str) -> None:
    assert not is_yes(value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Consent", True),
        ("Email consent", True),
        ("Opt in to email updates", True),
        ("Would you like to receive email updates?", True),
        ("Newsletter opt-in", True),
        ("Photo consent", False),
        ("Email", False),
        ("Liability waiver", False),
    ],
)
def test_consent_headers(header: str, expected: bool) -> None:
    assert is_consent_header(header) is expected


# -- the file itself ----------------------------------------------------------------------


def test_decode_prefers_utf8_and_falls_back_to_cp1252() -> None:
    assert decode("Zoë".encode()) == ("Zoë", "utf-8")
    assert decode(b"\xef\xbb\xbfZo\xc3\xab") == ("Zoë", "utf-8")
    assert decode(b"Zo\xeb \x93quoted\x94") == ("Zoë “quoted”", "cp1252")
    assert decode("a,b\n".encode("utf-16")) == ("a,b\n", "utf-16")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty_file"),
        (b" \r\n\r\n", "empty_file"),
        (b"PK\x03\x04\x14\x00\x06\x00", "not_csv"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "not_csv"),
        (b"name,email\nA\x00B,a@example.org\n", "not_csv"),
        (b"\x81\x8d\x8f\x90\x9d", "not_csv"),  # neither UTF-8 nor cp1252
        (b"First Name,Last Name,Email\n", "no_rows"),
    ],
)
def test_files_that_cannot_be_imported(raw: bytes, code: str) -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_import(raw)
    assert caught.value.code == code


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_import(b"a\n1\n", "xlsx")
    assert caught.value.code == "unknown_format"


def test_row_cap() -> None:
    raw = ("email,first\n" + "a@example.org,A\n" * 11).encode()
    with pytest.raises(ImportRejected) as caught:
        read_table(raw, max_rows=10)
    assert caught.value.code == "too_many_rows"
    assert len(read_table(raw, max_rows=11).records) == 11
    assert MAX_ROWS == 50_000


def test_oversized_field_is_a_clear_error() -> None:
    raw = b'first,email\n"' + b"x" * 200_000 + b'",a@example.org\n'
    with pytest.raises(ImportRejected) as caught:
        parse_import(raw, "generic", {"first_name": "first", "email": "email"})
    assert caught.value.code == "malformed_csv"
    assert "row 2" in caught.value.message


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [("a,b,c\n1;2", ","), ("a;b;c\n", ";"), ("a\tb\tc\n", "\t"), ('"x;y",b\n', ","), ("single\n", ",")],
)
def test_sniff_delimiter(text: str, delimiter: str) -> None:
    assert sniff_delimiter(text) == delimiter


def test_short_and_long_rows_are_tolerated() -> None:
    raw = b"First Name,Last Name,Email\nAda,Lovelace\nBob,Stone,bob@example.org,extra,cells\n"
    parsed = parse_import(raw, "generic", {"first_name": "First Name", "last_name": "Last Name", "email": "Email"})
    assert rejected(parsed) == {}
    assert [row.email for row in parsed.rows] == ["", "bob@example.org"]  # Ada is name-only


def test_detect_format() -> None:
    assert detect_format(EVENTBRITE_HEADER.split(",")) == "eventbrite"
    assert detect_format(["Name", "User ID", "RSVP"]) == "meetup"
    assert detect_format(["First Name", "Last Name", "Email"]) == "generic"
    assert detect_format(["Name", "Email"]) == "generic"


# -- preview and report -------------------------------------------------------------------


def test_preview_shows_headers_first_rows_and_a_suggestion() -> None:
    raw = ("first,last,email\n" + "".join(f"P{i},L{i},p{i}@example.org\n" for i in range(8))).encode()
    shown = preview(raw)
    assert shown["format"] == "generic" and shown["total_rows"] == 8
    assert shown["headers"] == ["first", "last", "email"]
    assert [row["row"] for row in shown["rows"]] == [2, 3, 4, 5, 6]
    assert shown["rows"][0]["cells"] == {"first": "P0", "last": "L0", "email": "p0@example.org"}
    assert shown["suggested_mapping"] == {"first_name": "first", "last_name": "last", "email": "email"}


@pytest.mark.parametrize(
    ("value", "safe"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx")],
)
def test_spreadsheet_formulas_are_escaped(value: str, safe: str) -> None:
    assert spreadsheet_safe(value) == safe
    assert spreadsheet_safe("ada@example.org") == "ada@example.org"


def test_problems_csv() -> None:
    text = problems_csv([{"row": 10, "reason": "bad email", "email": "@evil", "name": "=HYPERLINK(1) Evil"}])
    assert list(csv.reader(io.StringIO(text))) == [
        ["row", "reason", "email", "name"],
        ["10", "bad email", "'@evil", "'=HYPERLINK(1) Evil"],
    ]


def test_safe_filename() -> None:
    assert safe_filename("C:\\Users\\ada\\attendees.csv") == "attendees.csv"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("a\x00b\nc.csv") == "a b c.csv"
    assert safe_filename(None) == "upload.csv"
