"""CSV imports of registrations, as pure functions: no Flask, no MongoDB.

``parse_import(raw, fmt, mapping)`` turns the bytes of an uploaded file into
the rows ready to register and the rows refused, each with a reason a
spreadsheet user understands. Three layouts are read: an Eventbrite attendee
export, a Meetup RSVP export, and any other CSV with a column mapping.

Row numbers are the ones a spreadsheet shows: the header is row 1, the first
data row is row 2 (a quoted cell spanning several lines is still one row).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checkin.domain.model import MAX_PARTY, RuleBroken, normalize_tags
from turnout_common.emails import normalize_email

FORMATS = ("eventbrite", "meetup", "generic")
MAX_ROWS = 50_000
MAX_NAME = 100  # as the registration API and the attendee.registered contract allow
MAX_EMAIL = 254
MAX_FILENAME = 200
MAX_HEADERS = 500
MAX_REPORTED_TEXT = 200  # how much of a refused row's email/name a report keeps
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# The Turnout fields a column mapping may name.
MAPPABLE_FIELDS = ("first_name", "last_name", "name", "email", "consent_email", "offers", "seeks", "party")

# Eventbrite "Attendee Status" values that mean "not coming": skipped, with the reason.
EVENTBRITE_SKIP_STATUSES = frozenset(
    {"not attending", "refunded", "cancelled", "canceled", "deleted", "transferred", "declined"}
)
# Meetup "RSVP" values: "yes" imports; these are skipped with the reason; the waitlist ones
# join the event's waitlist, in the file's order.
MEETUP_SKIP_RSVPS = frozenset({"no", "not going"})
MEETUP_WAITLIST_RSVPS = frozenset({"waitlist", "waitlisted", "waiting list"})
# Meetup's member id: "User ID" ("user 281234567"), or the profile URL's ".../members/281234567/".
MEETUP_ID_HEADERS = ("user id", "member id")
MEETUP_PROFILE_HEADERS = ("url of member profile", "member profile", "profile url")
MEETUP_PROFILE_ID = re.compile(r"/members/(\d{1,20})(?:/|$|\?)")
MAX_MEMBER_ID = 40

YES_VALUES = frozenset(
    {"yes", "y", "true", "t", "1", "i agree", "agree", "agreed", "opted in", "opt in", "opt-in", "subscribed", "x"}
)

# Header names (compared after ``header_key``) each field is read from.
EMAIL_HEADERS = ("email", "email address", "e-mail", "e-mail address", "attendee email", "primary email")
FIRST_NAME_HEADERS = ("first name", "firstname", "first", "given name", "forename")
LAST_NAME_HEADERS = ("last name", "lastname", "last", "surname", "family name")
FULL_NAME_HEADERS = ("name", "full name", "attendee name", "contact name")
OFFERS_HEADERS = ("offers", "offer", "can offer", "i can offer")
SEEKS_HEADERS = ("seeks", "seek", "looking for", "i am looking for")
# Eventbrite's order number: the rows of one order share a party (a group that came together).
ORDER_HEADERS = ("order #", "order id", "order no", "order number")
# ...or a question column whose header contains one of these ("What skills can you offer?").
OFFERS_PHRASES = ("can offer", "you offer", "offers")
SEEKS_PHRASES = ("looking for", "seeking", "seeks", "hoping to find")
CONSENT_WORDS = ("consent", "opt in", "opt-in", "optin", "email updates")
# A consent column must be about email ("Photo consent" is not), unless it is just "Consent"/"Opt in".
CONSENT_TOPICS = ("email", "e-mail", "mail", "newsletter", "contact", "update", "follow")
CONSENT_ALONE = frozenset({"consent", "opt in", "opt-in", "optin", "opted in"})

# What identifies an export: its must-have columns and at least one of its telltale columns.
EVENTBRITE_REQUIRED = ("First Name", "Last Name", "Email")
EVENTBRITE_TELLTALES = frozenset({"order #", "order id", "order no", "attendee #", "attendee status", "ticket type"})
MEETUP_REQUIRED = ("Name",)
MEETUP_TELLTALES = frozenset(
    {"user id", "rsvp", "rsvped on", "event host", "guests", "url of member profile", "last attended"}
)


class ImportRejected(RuleBroken):
    """The whole file cannot be imported; ``headers``/``missing`` help the caller fix it."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        *,
        headers: list[str] | None = None,
        missing: list[str] | None = None,
        suggested_mapping: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, field)
        self.headers = headers
        self.missing = missing
        self.suggested_mapping = suggested_mapping

    def details(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.headers is not None:
            extra["headers"] = self.headers
        if self.missing is not None:
            extra["missing"] = self.missing
        if self.suggested_mapping is not None:
            extra["suggested_mapping"] = self.suggested_mapping
        return extra


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One person ready to register."""

    row: int
    first_name: str
    last_name: str
    email: str
    consent_email: bool
    offers: list[str] = field(default_factory=list)
    seeks: list[str] = field(default_factory=list)
    party: str | None = None
    meetup_member_id: str | None = None  # matches the same member on a re-import
    waitlist: bool = False  # joins the event's waitlist (Meetup RSVP "Waitlist")

    @property
    def name_only(self) -> bool:
        """No email: a name-only registration (never sent anything, never merged on the name)."""
        return not self.email

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "row": self.row,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "consent_email": self.consent_email,
            "offers": list(self.offers),
            "seeks": list(self.seeks),
        }
        if self.party is not None:
            doc["party"] = self.party
        if self.meetup_member_id is not None:
            doc["meetup_member_id"] = self.meetup_member_id
        if self.waitlist:
            doc["waitlist"] = True
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ImportRow:
        return cls(
            row=int(doc["row"]),
            first_name=str(doc["first_name"]),
            last_name=str(doc["last_name"]),
            email=str(doc["email"]),
            consent_email=bool(doc["consent_email"]),
            offers=list(doc.get("offers") or []),
            seeks=list(doc.get("seeks") or []),
            party=doc.get("party"),
            meetup_member_id=doc.get("meetup_member_id"),
            waitlist=bool(doc.get("waitlist")),
        )


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that was not imported (failed) or deliberately left out (skipped)."""

    row: int
    reason: str
    email: str = ""
    name: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "reason": self.reason,
            "email": self.email[:MAX_REPORTED_TEXT],
            "name": self.name[:MAX_REPORTED_TEXT],
        }


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A decoded, split CSV: headers and the non-blank data rows with their row numbers."""

    encoding: str
    delimiter: str
    headers: list[str]
    records: list[tuple[int, list[str]]]


@dataclass(slots=True)
class ParsedImport:
    format: str
    encoding: str
    delimiter: str
    headers: list[str]
    mapping: dict[str, str]  # Turnout field -> the header it was read from
    total: int  # non-blank data rows in the file
    rows: list[ImportRow]
    rejected: list[RowProblem]
    skipped: list[RowProblem]

    @property
    def name_only(self) -> int:
        """Rows to register without an email."""
        return sum(1 for row in self.rows if row.name_only)


# -- reading the file -----------------------------------------------------------


def decode(raw: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with.

    UTF-8 (with or without a byte order mark) first; Windows-1252 only when
    the bytes are not UTF-8 (an old Excel "CSV"); UTF-16 only with its BOM
    (Excel's "Unicode text"). Anything with NUL bytes is refused as binary.
    """
    if not raw.strip():
        raise ImportRejected("empty_file", "the file is empty", "file")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise ImportRejected("not_csv", "the file starts like UTF-16 text but is not", "file") from exc
    if raw.startswith(b"PK\x03\x04") or raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRejected(
            "not_csv", "this is a spreadsheet workbook (.xlsx/.xls), not a CSV: save it as CSV (UTF-8) first", "file"
        )
    if b"\x00" in raw:
        raise ImportRejected("not_csv", "the file contains NUL bytes: it is binary, not a CSV text file", "file")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            "not_csv", "the file is neither UTF-8 nor Windows-1252 text: save it as CSV (UTF-8)", "file"
        ) from exc


def sniff_delimiter(text: str) -> str:
    """``,``, ``;`` or tab: whichever occurs most outside quotes in the header line."""
    counts = {",": 0, ";": 0, "\t": 0}
    quoted = False
    for char in text[:65536]:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "\r\n":
            break
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def header_key(header: str) -> str:
    """How headers are compared: case-folded, ``_`` as a space, single-spaced."""
    return " ".join(header.replace("\ufeff", "").replace("_", " ").casefold().split())


def read_table(raw: bytes, max_rows: int = MAX_ROWS) -> CsvTable:
    """Decode and split a CSV file; blank rows are dropped but keep their numbers."""
    text, encoding = decode(raw)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    headers: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for number, cells in enumerate(reader, start=1):
            if not any(cell.strip() for cell in cells):
                continue
            if headers is None:  # the first non-blank row is the header
                headers = [cell.strip().replace("\ufeff", "") for cell in cells]
                if len(headers) > MAX_HEADERS:
                    raise ImportRejected(
                        "not_csv", f"the header row has {len(headers)} columns (at most {MAX_HEADERS})"
                    )
                continue
            if len(records) >= max_rows:
                raise ImportRejected(
                    "too_many_rows", f"the file has more than {max_rows:,} data rows; split it into smaller files"
                )
            records.append((number, cells))
    except csv.Error as exc:
        raise ImportRejected("malformed_csv", f"row {number + 1} is not valid CSV: {exc}", "file") from exc
    if headers is None or not any(headers):
        raise ImportRejected("empty_file", "the file has no header row", "file")
    if not records:
        raise ImportRejected("no_rows", "the file has a header row but no data rows", "file", headers=headers)
    return CsvTable(encoding=encoding, delimiter=delimiter, headers=headers, records=records)


# -- formats and mappings --------------------------------------------------------


def _index(headers: list[str]) -> dict[str, str]:
    """header_key -> the header as written (the first of duplicates wins)."""
    found: dict[str, str] = {}
    for header in headers:
        key = header_key(header)
        if key:
            found.setdefault(key, header)
    return found


def _first_of(index: Mapping[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        if name in index:
            return index[name]
    return None


def is_consent_header(header: str) -> bool:
    """A column recording consent to email: "Email consent", "Opt in to email updates", "Consent"."""
    key = header_key(header)
    if key in CONSENT_ALONE:
        return True
    return any(word in key for word in CONSENT_WORDS) and any(topic in key for topic in CONSENT_TOPICS)


def _column_like(
    headers: list[str], index: Mapping[str, str], exact: Iterable[str], phrases: Iterable[str]
) -> str | None:
    found = _first_of(index, exact)
    if found is not None:
        return found
    return next((header for header in headers if any(phrase in header_key(header) for phrase in phrases)), None)


def _offers_column(headers: list[str], index: Mapping[str, str]) -> str | None:
    return _column_like(headers, index, OFFERS_HEADERS, OFFERS_PHRASES)


def _seeks_column(headers: list[str], index: Mapping[str, str]) -> str | None:
    return _column_like(headers, index, SEEKS_HEADERS, SEEKS_PHRASES)


def _consent_column(headers: list[str]) -> str | None:
    return next((header for header in headers if is_consent_header(header)), None)


def _email_column(headers: list[str], index: Mapping[str, str]) -> str | None:
    exact = _first_of(index, EMAIL_HEADERS)
    if exact is not None:
        return exact
    # e.g. a Meetup question "What's your email?"; a consent question mentioning email is not one.
    return next(
        (
            header
            for header in headers
            if ("email" in header_key(header) or "e-mail" in header_key(header)) and not is_consent_header(header)
        ),
        None,
    )


def detect_format(headers: list[str]) -> str:
    keys = set(_index(headers))
    if {header_key(name) for name in EVENTBRITE_REQUIRED} <= keys and keys & EVENTBRITE_TELLTALES:
        return "eventbrite"
    if {header_key(name) for name in MEETUP_REQUIRED} <= keys and keys & MEETUP_TELLTALES:
        return "meetup"
    return "generic"


def suggest_mapping(headers: list[str]) -> dict[str, str]:
    """A best guess at the column mapping of a generic CSV, for the caller to confirm."""
    index = _index(headers)
    guess: dict[str, str | None] = {
        "first_name": _first_of(index, FIRST_NAME_HEADERS),
        "last_name": _first_of(index, LAST_NAME_HEADERS),
        "name": _first_of(index, FULL_NAME_HEADERS),
        "email": _email_column(headers, index),
        "consent_email": _consent_column(headers),
        "offers": _offers_column(headers, index),
        "seeks": _seeks_column(headers, index),
    }
    return {name: header for name, header in guess.items() if header is not None}


def _format_mapping(fmt: str, headers: list[str]) -> tuple[dict[str, str], str | None]:
    """The mapping an export layout implies, and its status column (if any)."""
    index = _index(headers)
    required = EVENTBRITE_REQUIRED if fmt == "eventbrite" else MEETUP_REQUIRED
    missing = [name for name in required if header_key(name) not in index]
    if missing:
        raise ImportRejected(
            "missing_columns",
            f"a {fmt.capitalize()} export needs the column(s) {', '.join(missing)}; "
            f"this file has: {', '.join(headers)}",
            "file",
            headers=headers,
            missing=missing,
        )
    mapping: dict[str, str] = {}
    if fmt == "eventbrite":
        mapping = {"first_name": index["first name"], "last_name": index["last name"], "email": index["email"]}
        order = _first_of(index, ORDER_HEADERS)
        if order is not None:
            mapping["party"] = order
        status = index.get("attendee status")
    else:
        mapping = {"name": index["name"]}
        email = _email_column(headers, index)
        if email is not None:
            mapping["email"] = email
        member_id = _first_of(index, MEETUP_ID_HEADERS)
        if member_id is not None:
            mapping["member_id"] = member_id
        profile = _first_of(index, MEETUP_PROFILE_HEADERS)
        if profile is not None:
            mapping["profile_url"] = profile
        status = index.get("rsvp")
    consent = _consent_column(headers)
    if consent is not None:
        mapping["consent_email"] = consent
    for name, column in (("offers", _offers_column(headers, index)), ("seeks", _seeks_column(headers, index))):
        if column is not None:
            mapping[name] = column
    return mapping, status


def _resolve_columns(headers: list[str], mapping: Mapping[str, Any]) -> dict[str, str | None]:
    """The caller's mapping checked against the file: field -> header, or None to leave a field unread."""
    index = _index(headers)
    exact = set(headers)
    resolved: dict[str, str | None] = {}
    for name, column in mapping.items():
        if name not in MAPPABLE_FIELDS:
            raise ImportRejected(
                "invalid_mapping",
                f"mapping: unknown field {str(name)[:40]!r}; map any of {', '.join(MAPPABLE_FIELDS)}",
                "mapping",
                headers=headers,
            )
        if column is None or column == "":
            resolved[name] = None
            continue
        if not isinstance(column, str):
            raise ImportRejected("invalid_mapping", f"mapping.{name} must be a column name", "mapping")
        header = column if column in exact else index.get(header_key(column))
        if header is None:
            raise ImportRejected(
                "missing_columns",
                f"mapping.{name}: the file has no column {column[:100]!r}; its columns are: {', '.join(headers)}",
                "mapping",
                headers=headers,
                missing=[column[:100]],
            )
        resolved[name] = header
    return resolved


def _generic_mapping(headers: list[str], mapping: Mapping[str, Any] | None) -> dict[str, str]:
    suggestion = suggest_mapping(headers)
    if not mapping:
        raise ImportRejected(
            "mapping_required",
            "this is not an Eventbrite or Meetup export: send a column mapping "
            '(e.g. {"first_name": "...", "last_name": "...", "email": "..."}); '
            f"the file's columns are: {', '.join(headers)}",
            "mapping",
            headers=headers,
            suggested_mapping=suggestion,
        )
    resolved = {name: header for name, header in _resolve_columns(headers, mapping).items() if header is not None}
    if not ({"first_name", "name"} & set(resolved)):
        raise ImportRejected(
            "mapping_incomplete",
            "mapping: map either first_name (with last_name) or name (and email, unless the people are name-only); "
            f"the file's columns are: {', '.join(headers)}",
            "mapping",
            headers=headers,
            suggested_mapping=suggestion,
        )
    return resolved


# -- cells ----------------------------------------------------------------------


def clean_text(value: str) -> str:
    """Control characters dropped, whitespace (also line breaks) collapsed to single spaces."""
    if any(unicodedata.category(char) == "Cc" for char in value):
        value = "".join(" " if unicodedata.category(char) == "Cc" else char for char in value)
    return " ".join(value.split())


def split_name(full_name: str) -> tuple[str, str]:
    """ "Mary Ann Okafor" -> ("Mary Ann", "Okafor"): the last word is the last name."""
    words = clean_text(full_name).split(" ")
    if len(words) < 2:
        return (words[0] if words else ""), ""
    return " ".join(words[:-1]), words[-1]


def split_tags(value: str) -> list[str]:
    """A cell of tags separated by ``;`` or ``,``, normalized like the API's tags."""
    return normalize_tags(re.split(r"[;,]", value)) if value.strip() else []


def is_yes(value: str) -> bool:
    """Consent is never assumed: only an explicit yes/true/1/y/"I agree" counts."""
    key = " ".join(value.casefold().split()).strip(" .!")
    return key in YES_VALUES or key.startswith(("yes ", "yes,", "i agree"))


def meetup_member_id(user_id: str, profile_url: str) -> str | None:
    """Meetup's member id: the digits of "User ID" ("user 281234567"), else those of the
    profile URL (".../members/281234567/"); None when the row has neither."""
    digits = re.search(r"\d{1,20}", user_id)
    if digits is not None:
        return digits.group(0)
    found = MEETUP_PROFILE_ID.search(profile_url.strip())
    if found is not None:
        return found.group(1)
    cleaned = clean_text(user_id)
    return cleaned[:MAX_MEMBER_ID] if cleaned else None


def valid_email(email: str) -> bool:
    return (
        len(email) <= MAX_EMAIL
        and EMAIL_PATTERN.fullmatch(email) is not None
        and not any(unicodedata.category(char) == "Cc" for char in email)
    )


# -- parsing --------------------------------------------------------------------


def parse_import(raw: bytes, fmt: str = "auto", mapping: Mapping[str, Any] | None = None) -> ParsedImport:
    """Read a whole upload into rows to register and rows refused (with reasons).

    ``fmt`` is "auto", "eventbrite", "meetup" or "generic"; a mapping with
    "auto" means generic. Raises ``ImportRejected`` for a file that cannot be
    imported at all.
    """
    if fmt not in ("auto", *FORMATS):
        raise ImportRejected(
            "unknown_format", f"format must be one of auto, {', '.join(FORMATS)} (got {fmt[:40]!r})", "format"
        )
    table = read_table(raw)
    headers = table.headers
    if fmt == "auto":
        fmt = "generic" if mapping else detect_format(headers)
    status_column: str | None = None
    if fmt == "generic":
        columns = _generic_mapping(headers, mapping)
    else:
        columns, status_column = _format_mapping(fmt, headers)
        if mapping:  # explicit choices override what the layout implies ("" leaves a field unread)
            for name, header in _resolve_columns(headers, mapping).items():
                if header is None:
                    columns.pop(name, None)
                else:
                    columns[name] = header

    positions = {header: index for index, header in reversed(list(enumerate(headers)))}
    where = {name: positions[header] for name, header in columns.items()}
    status_at = positions[status_column] if status_column is not None else None

    rows: list[ImportRow] = []
    rejected: list[RowProblem] = []
    skipped: list[RowProblem] = []
    seen: dict[str, int] = {}
    seen_members: dict[str, int] = {}
    for number, cells in table.records:

        def cell(name: str, cells: list[str] = cells) -> str:
            at = where.get(name)
            return cells[at] if at is not None and at < len(cells) else ""

        first_name, last_name = clean_text(cell("first_name")), clean_text(cell("last_name"))
        if not first_name and "name" in where:
            first_name, last_name = split_name(cell("name"))
        email = cell("email").strip()
        shown_name = f"{first_name} {last_name}".strip()

        waitlist = False
        if status_at is not None:
            status = clean_text(cells[status_at]) if status_at < len(cells) else ""
            skip_set = EVENTBRITE_SKIP_STATUSES if fmt == "eventbrite" else MEETUP_SKIP_RSVPS
            if status.casefold() in skip_set:
                label = "attendee status" if fmt == "eventbrite" else "RSVP"
                skipped.append(RowProblem(number, f"skipped: {label} is {status!r}", email, shown_name))
                continue
            waitlist = fmt == "meetup" and status.casefold() in MEETUP_WAITLIST_RSVPS
        member = meetup_member_id(cell("member_id"), cell("profile_url")) if fmt == "meetup" else None

        reason = None
        if not first_name:
            reason = "missing name"
        elif email and not valid_email(email):
            reason = "bad email"
        elif len(first_name) > MAX_NAME or len(last_name) > MAX_NAME:
            reason = f"name too long (over {MAX_NAME} characters)"
        elif len(clean_text(cell("party"))) > MAX_PARTY:
            reason = f"party too long (over {MAX_PARTY} characters)"
        else:
            key = normalize_email(email) if email else None
            if key is not None and key in seen:
                reason = f"duplicate of row {seen[key]}"
            elif member is not None and member in seen_members:
                reason = f"duplicate of row {seen_members[member]}"
            else:
                if key is not None:
                    seen[key] = number
                if member is not None:
                    seen_members[member] = number
        if reason is not None:
            rejected.append(RowProblem(number, reason, email, shown_name))
            continue
        rows.append(
            ImportRow(
                row=number,
                first_name=first_name,
                last_name=last_name,
                email=email,
                # Consent to email means nothing without an address: asked again when one is given.
                consent_email=bool(email) and is_yes(cell("consent_email")),
                offers=split_tags(cell("offers")),
                seeks=split_tags(cell("seeks")),
                party=clean_text(cell("party")) or None,
                meetup_member_id=member,
                waitlist=waitlist,
            )
        )
    return ParsedImport(
        format=fmt,
        encoding=table.encoding,
        delimiter=table.delimiter,
        headers=headers,
        mapping=columns,
        total=len(table.records),
        rows=rows,
        rejected=rejected,
        skipped=skipped,
    )


def preview(raw: bytes, sample: int = 5) -> dict[str, Any]:
    """The column mapping step: detected format, headers, first rows, a suggested mapping."""
    table = read_table(raw)
    fmt = detect_format(table.headers)
    columns: dict[str, str] = {}
    if fmt != "generic":
        columns, _ = _format_mapping(fmt, table.headers)
    rows = [
        {
            "row": number,
            "cells": dict(zip(table.headers, cells + [""] * (len(table.headers) - len(cells)), strict=False)),
        }
        for number, cells in table.records[:sample]
    ]
    return {
        "format": fmt,
        "encoding": table.encoding,
        "delimiter": table.delimiter,
        "headers": table.headers,
        "total_rows": len(table.records),
        "rows": rows,
        "mapping": columns or None,
        "suggested_mapping": suggest_mapping(table.headers),
        "mappable_fields": list(MAPPABLE_FIELDS),
    }


# -- the failed-rows report -----------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def problems_csv(problems: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "reason", "email", "name"])
    for problem in problems:
        writer.writerow(
            [
                str(problem.get("row", "")),
                spreadsheet_safe(str(problem.get("reason", ""))),
                spreadsheet_safe(str(problem.get("email", ""))),
                spreadsheet_safe(str(problem.get("name", ""))),
            ]
        )
    return out.getvalue()


def safe_filename(name: str | None) -> str:
    """The upload's base name without path or control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = clean_text(base)[:MAX_FILENAME]
    return base or "upload.csv"
