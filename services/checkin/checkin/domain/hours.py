"""Volunteer hours that count: a coordinator's review of each shift, hours
logged for off-site work, and the hour statement a school or employer can verify.

- A **shift** is a registration with a check-out: the door recorded its hours
  (``checkout.hours``). Its review (``hours_review`` on the registration) is
  pending until a coordinator approves it, adjusts it (other hours, with a
  reason) or rejects it. A check-out the event's end wrote (``closed_by:
  event_end``: the volunteer never checked out) ``needs_review``.
- An **off-site entry** is work the volunteer logged themselves (a day, the
  hours, a note); pending until a coordinator decides it the same way.
- What **counts** toward the person's running total (``counted``): a shift's
  door hours until it is rejected (then none) or adjusted (then the new
  hours); an off-site entry only once approved or adjusted. A decision moves
  the total by ``counted(after) - counted(before)``.
- The **statement** lists only approved and adjusted hours (``statement``),
  in a period, as decided by the moment it was issued: the verification page
  re-reads the same statement and says so if a decision changed since.
- **Links**: the volunteer's own page (``HoursLink``, from the volunteer-hours
  email) and a statement's verification token (``StatementClaims``), both
  signed by the service with salts of their own.

Pure: no storage, no clock, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from checkin.domain.model import RuleBroken
from checkin.domain.privacy import LinkRefused as LinkRefused  # the one refusal of every signed link

Doc = dict[str, Any]

MAX_HOURS = 24.0
MAX_NOTE = 500
MAX_REASON = 300
# A bulk review decides at most this many shifts or entries at once.
MAX_BATCH = 500
# A statement covers at most this many days (a school year and then some).
MAX_PERIOD_DAYS = 3 * 366
# Off-site work may be logged up to this long after it was done.
MAX_LOG_AGE_DAYS = 366

HOURS_LINK_LIFETIME = timedelta(days=180)
STATEMENT_LIFETIME = timedelta(days=2 * 365)


class ReviewState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    ADJUSTED = "adjusted"
    REJECTED = "rejected"


class ReviewAction(StrEnum):
    APPROVE = "approve"
    ADJUST = "adjust"
    REJECT = "reject"


RESULT_OF = {
    ReviewAction.APPROVE: ReviewState.APPROVED,
    ReviewAction.ADJUST: ReviewState.ADJUSTED,
    ReviewAction.REJECT: ReviewState.REJECTED,
}
STATE_LABELS = {
    ReviewState.PENDING: "Pending",
    ReviewState.APPROVED: "Approved",
    ReviewState.ADJUSTED: "Adjusted",
    ReviewState.REJECTED: "Rejected",
}


def check_hours(value: Any, field: str = "hours") -> float:
    """Hours of one shift or entry: a number above 0 and at most 24, kept to two decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleBroken("invalid_field", f"{field}: a number of hours, like 2.5", field)
    hours = round(float(value), 2)
    if not 0 < hours <= MAX_HOURS:
        raise RuleBroken("invalid_field", f"{field}: more than 0 and at most {MAX_HOURS:g} hours", field)
    return hours


def _text(value: Any, field: str, limit: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RuleBroken("invalid_field", f"{field}: must be text", field)
    text = " ".join(value.split())
    if required and not text:
        raise RuleBroken("invalid_field", f"{field}: required", field)
    if len(text) > limit:
        raise RuleBroken("invalid_field", f"{field}: at most {limit} characters", field)
    if any(not ch.isprintable() for ch in text):
        raise RuleBroken("invalid_field", f"{field}: contains characters that cannot be shown", field)
    return text


# -- shifts and their review ------------------------------------------------------------------------------


def state_of(doc: Doc) -> ReviewState:
    """A shift's (registration's) or an off-site entry's review state."""
    review = doc.get("hours_review") if "checkout" in doc else doc.get("review")
    if not isinstance(review, dict):
        return ReviewState.PENDING
    try:
        return ReviewState(str(review.get("state")))
    except ValueError:
        return ReviewState.PENDING


def review_of(doc: Doc) -> Doc | None:
    review = doc.get("hours_review") if "checkout" in doc else doc.get("review")
    return review if isinstance(review, dict) else None


def recorded_hours(doc: Doc) -> float:
    """The hours as first recorded: the door's for a shift, the volunteer's for an entry."""
    if "checkout" in doc:
        return float((doc.get("checkout") or {}).get("hours") or 0.0)
    return float(doc.get("hours") or 0.0)


def needs_review(registration: Doc) -> bool:
    """Closed at the event's end (the volunteer never checked out) and not decided yet."""
    checkout = registration.get("checkout") or {}
    return checkout.get("closed_by") == "event_end" and state_of(registration) == ReviewState.PENDING


def counted(doc: Doc) -> float:
    """What a shift or entry adds to the person's running total now."""
    state = state_of(doc)
    if state == ReviewState.REJECTED:
        return 0.0
    if state == ReviewState.ADJUSTED:
        return float((review_of(doc) or {}).get("hours") or 0.0)
    if "checkout" not in doc and state == ReviewState.PENDING:
        return 0.0  # an off-site entry counts once someone approved it
    return recorded_hours(doc)


def approved_hours(doc: Doc) -> float | None:
    """The hours a statement shows for it, or None when it is not approved."""
    state = state_of(doc)
    if state == ReviewState.APPROVED:
        return recorded_hours(doc)
    if state == ReviewState.ADJUSTED:
        return float((review_of(doc) or {}).get("hours") or 0.0)
    return None


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One decision asked for: a shift (``registration_id``) or an off-site entry (``entry_id``)."""

    action: ReviewAction
    registration_id: str | None = None
    entry_id: str | None = None
    hours: float | None = None
    reason: str = ""


def review_item(raw: Any, index: int) -> ReviewItem:
    """Check one item of a bulk review; ``field`` names it as ``items[i].name``."""
    where = f"items[{index}]"
    if not isinstance(raw, dict):
        raise RuleBroken("invalid_field", f"{where}: an object", where)
    registration_id, entry_id = raw.get("registration_id"), raw.get("entry_id")
    if (registration_id is None) == (entry_id is None):
        raise RuleBroken("invalid_field", f"{where}: give either registration_id or entry_id", where)
    for name, value in (("registration_id", registration_id), ("entry_id", entry_id)):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 64):
            raise RuleBroken("invalid_field", f"{where}.{name}: an id", f"{where}.{name}")
    try:
        action = ReviewAction(str(raw.get("action")))
    except ValueError as exc:
        raise RuleBroken("invalid_field", f"{where}.action: approve, adjust or reject", f"{where}.action") from exc
    reason = _text(raw.get("reason"), f"{where}.reason", MAX_REASON, required=action == ReviewAction.ADJUST)
    hours = None
    if action == ReviewAction.ADJUST:
        if raw.get("hours") is None:
            raise RuleBroken("invalid_field", f"{where}.hours: the adjusted hours are required", f"{where}.hours")
        hours = check_hours(raw.get("hours"), f"{where}.hours")
    elif raw.get("hours") is not None:
        raise RuleBroken("invalid_field", f"{where}.hours: only an adjustment takes hours", f"{where}.hours")
    return ReviewItem(action, registration_id, entry_id, hours, reason)


def review_items(raw: Any) -> list[ReviewItem]:
    """Every item of a bulk review, checked; one shift or entry at most once."""
    if not isinstance(raw, list) or not raw:
        raise RuleBroken("invalid_field", "items: a list of at least one decision", "items")
    if len(raw) > MAX_BATCH:
        raise RuleBroken("invalid_field", f"items: at most {MAX_BATCH} at once", "items")
    items = [review_item(item, index) for index, item in enumerate(raw)]
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        key = ("registration", item.registration_id) if item.registration_id else ("entry", item.entry_id or "")
        if key in seen:
            raise RuleBroken("invalid_field", f"items[{index}]: decided twice in one review", f"items[{index}]")
        seen.add(key)
    return items


@dataclass(frozen=True, slots=True)
class Decision:
    """What a review writes: the review document, and how far the person's total moves."""

    review: Doc
    delta: float
    before: ReviewState


def decide(doc: Doc, item: ReviewItem, reviewer: Doc, at: datetime) -> Decision:
    """Decide a shift (a registration) or an off-site entry; a shift must have a check-out.

    ``reviewer`` is the audit actor's document (kind, id, label, role): the
    statement names the approver by its label.
    """
    is_shift = item.registration_id is not None
    if is_shift and not doc.get("checkout"):
        raise RuleBroken("not_checked_out", "this registration has no check-out yet, so no hours to review")
    review: Doc = {
        "state": RESULT_OF[item.action].value,
        "at": at,
        "by": dict(reviewer),
        "recorded_hours": recorded_hours(doc),
    }
    if item.action == ReviewAction.ADJUST:
        review["hours"] = item.hours
    if item.reason:
        review["reason"] = item.reason
    decided = {**doc, ("hours_review" if is_shift else "review"): review}
    return Decision(review, round(counted(decided) - counted(doc), 2), state_of(doc))


def shift_row(registration: Doc, event: Doc | None = None) -> Doc:
    """A shift as the coordinator's table and the API show it."""
    checkin = registration.get("checkin") or {}
    checkout = registration.get("checkout") or {}
    review = review_of(registration) or {}
    row: Doc = {
        "registration_id": registration["_id"],
        "person_id": registration["person_id"],
        "name": " ".join(part for part in (registration.get("first_name"), registration.get("last_name")) if part),
        "checked_in_at": checkin.get("scanned_at"),
        "checked_out_at": checkout.get("scanned_at"),
        "recorded_hours": recorded_hours(registration) if checkout else None,
        "closed_by": checkout.get("closed_by"),
        "needs_review": needs_review(registration),
        "state": state_of(registration).value if checkout else None,
        "hours": approved_hours(registration),
        "counted_hours": counted(registration) if checkout else None,
        "reason": review.get("reason"),
        "reviewed_by": (review.get("by") or {}).get("label"),
        "reviewed_at": review.get("at"),
    }
    if event is not None:
        row["event_id"] = event["_id"]
        row["event_title"] = event.get("title")
    return row


def shift_order(row: Doc) -> tuple[int, str, str]:
    """Flagged shifts first, then pending, then decided; by name within each."""
    rank = 0 if row["needs_review"] else 1 if row["state"] == ReviewState.PENDING else 2
    if row["state"] is None:
        rank = 3  # still checked in: nothing to review yet
    return (rank, str(row["name"]).casefold(), str(row["registration_id"]))


# -- off-site entries ---------------------------------------------------------------------------------------


def new_entry(entry_id: str, org_id: str, person_id: str, raw: Doc, today: date, now: datetime) -> Doc:
    """An off-site entry the volunteer logged: a day (not in the future, at most a year back),
    hours (above 0, at most 24) and a note saying what the work was; pending approval."""
    day = parse_day(raw.get("date"), "date")
    if day > today:
        raise RuleBroken("invalid_field", "date: not in the future", "date")
    if (today - day).days > MAX_LOG_AGE_DAYS:
        raise RuleBroken("invalid_field", "date: at most a year ago", "date")
    hours = check_hours(_number(raw.get("hours"), "hours"))
    note = _text(raw.get("note"), "note", MAX_NOTE, required=True)
    return {
        "_id": entry_id,
        "org_id": org_id,
        "person_id": person_id,
        "date": day.isoformat(),
        "hours": hours,
        "note": note,
        "logged_at": now,
        "review": None,
    }


def _number(value: Any, field: str) -> Any:
    """A form's text as a number ("2,5" too); a JSON number passes through."""
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", "."))
        except ValueError as exc:
            raise RuleBroken("invalid_field", f"{field}: a number of hours, like 2.5", field) from exc
    return value


def parse_day(value: Any, field: str) -> date:
    if not isinstance(value, str) or len(value.strip()) != 10:
        raise RuleBroken("invalid_field", f"{field}: a day as YYYY-MM-DD", field)
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise RuleBroken("invalid_field", f"{field}: a day as YYYY-MM-DD", field) from exc


def entry_row(entry: Doc) -> Doc:
    review = review_of(entry) or {}
    return {
        "entry_id": entry["_id"],
        "person_id": entry["person_id"],
        "date": entry["date"],
        "recorded_hours": recorded_hours(entry),
        "note": entry.get("note") or "",
        "logged_at": entry.get("logged_at"),
        "state": state_of(entry).value,
        "hours": approved_hours(entry),
        "reason": review.get("reason"),
        "reviewed_by": (review.get("by") or {}).get("label"),
        "reviewed_at": review.get("at"),
    }


# -- the statement ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    first: date
    last: date

    @property
    def label(self) -> str:
        return f"{self.first:%-d %b %Y} – {self.last:%-d %b %Y}"


def period(first: Any, last: Any, today: date) -> Period:
    """The statement's days, both included: the first not after the last, at most ~3 years long;
    either left out: the last twelve months up to today."""
    last_day = parse_day(last, "to") if last else today
    first_day = parse_day(first, "from") if first else last_day - timedelta(days=364)
    if first_day > last_day:
        raise RuleBroken("invalid_period", "from must not be after to", "from")
    if (last_day - first_day).days > MAX_PERIOD_DAYS:
        raise RuleBroken("invalid_period", "a statement covers at most three years", "from")
    return Period(first_day, last_day)


@dataclass(frozen=True, slots=True)
class StatementLine:
    day: date
    what: str  # the event's title, or the off-site entry's note
    hours: float
    approver: str
    off_site: bool

    @property
    def shown(self) -> str:
        """The activity as the statement prints it."""
        return f"Off-site: {self.what}" if self.off_site else self.what


@dataclass(frozen=True, slots=True)
class Statement:
    organization: str
    person: str
    period: Period
    lines: tuple[StatementLine, ...]
    issued_at: datetime

    @property
    def total(self) -> float:
        return round(sum(line.hours for line in self.lines), 2)


def _decided_by(doc: Doc, as_of: datetime) -> bool:
    at = (review_of(doc) or {}).get("at")
    if not isinstance(at, datetime):
        return False
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return at <= as_of


def statement(
    organization: str,
    person: str,
    shifts: list[tuple[Doc, Doc]],
    entries: list[Doc],
    wanted: Period,
    as_of: datetime,
    local_day: Any,
) -> Statement:
    """The approved hours of the period as decided by ``as_of``: ``shifts`` are (registration,
    event) pairs, ``entries`` the person's off-site entries; ``local_day(registration, event)``
    says on which day a shift was (the event's own time zone). Oldest first."""
    lines: list[StatementLine] = []
    for registration, event in shifts:
        hours = approved_hours(registration)
        if hours is None or not _decided_by(registration, as_of):
            continue
        day = local_day(registration, event)
        if wanted.first <= day <= wanted.last:
            approver = str(((review_of(registration) or {}).get("by") or {}).get("label") or "")
            lines.append(StatementLine(day, str(event.get("title") or ""), hours, approver, False))
    for entry in entries:
        hours = approved_hours(entry)
        if hours is None or not _decided_by(entry, as_of):
            continue
        day = date.fromisoformat(entry["date"])
        if wanted.first <= day <= wanted.last:
            approver = str(((review_of(entry) or {}).get("by") or {}).get("label") or "")
            lines.append(StatementLine(day, str(entry.get("note") or ""), hours, approver, True))
    lines.sort(key=lambda line: (line.day, line.what))
    return Statement(organization, person, wanted, tuple(lines), as_of)


STATEMENT_COLUMNS = ("date", "where", "activity", "hours", "approved_by")


def statement_rows(found: Statement) -> list[list[str]]:
    """The statement as CSV rows (header, one row per shift, the total); cells not yet escaped."""
    rows = [list(STATEMENT_COLUMNS)]
    rows += [
        [line.day.isoformat(), "off-site" if line.off_site else "event", line.what, f"{line.hours:g}", line.approver]
        for line in found.lines
    ]
    rows.append(["", "", "Total", f"{found.total:g}", ""])
    return rows


# -- signed links -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoursLink:
    """The volunteer's own page: their hours, logging off-site work, their statement."""

    org_id: str
    person_id: str
    expires_at: datetime


def hours_link_claims(link: HoursLink) -> Doc:
    return {"o": link.org_id, "p": link.person_id, "x": int(link.expires_at.timestamp())}


def _id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _expiry(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**40


def read_hours_link(claims: Any, now: datetime) -> HoursLink:
    if not isinstance(claims, dict) or not _id(claims.get("o")) or not _id(claims.get("p")):
        raise LinkRefused("invalid", "This link is not valid. Check that you copied all of it.")
    if not _expiry(claims.get("x")):
        raise LinkRefused("invalid", "This link is not valid. Check that you copied all of it.")
    expires_at = datetime.fromtimestamp(claims["x"], tz=UTC)
    if now >= expires_at:
        raise LinkRefused("expired", "This link has expired. The next volunteer-hours email brings a new one.")
    return HoursLink(claims["o"], claims["p"], expires_at)


@dataclass(frozen=True, slots=True)
class StatementClaims:
    """What a statement's verification token signs: whose hours, which days, as of when,
    and the total it showed (so a later change of a decision is told, never hidden)."""

    org_id: str
    person_id: str
    period: Period
    issued_at: datetime
    total: float

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + STATEMENT_LIFETIME


def statement_claims(found: StatementClaims) -> Doc:
    return {
        "o": found.org_id,
        "p": found.person_id,
        "f": found.period.first.isoformat(),
        "t": found.period.last.isoformat(),
        "i": int(found.issued_at.timestamp()),
        "h": found.total,
    }


def read_statement_claims(claims: Any, now: datetime) -> StatementClaims:
    refused = LinkRefused("invalid", "This verification link is not valid. Check that you copied all of it.")
    if not isinstance(claims, dict) or not _id(claims.get("o")) or not _id(claims.get("p")):
        raise refused
    if not _expiry(claims.get("i")) or isinstance(claims.get("h"), bool):
        raise refused
    if not isinstance(claims.get("h"), int | float):
        raise refused
    try:
        wanted = Period(parse_day(claims.get("f"), "from"), parse_day(claims.get("t"), "to"))
    except RuleBroken as exc:
        raise refused from exc
    found = StatementClaims(
        claims["o"], claims["p"], wanted, datetime.fromtimestamp(claims["i"], tz=UTC), float(claims["h"])
    )
    if now >= found.expires_at:
        raise LinkRefused("expired", "This statement's verification link has expired. Ask the volunteer for a new one.")
    return found
