"""Volunteer hours that count: the coordinator's review, the volunteer's own page
and off-site hours, and the hour statement with its verification link.

- ``event_hours`` / ``pending_entries``: what a coordinator reviews (an event's
  shifts, flagged ones first; the organization's pending off-site entries).
- ``review``: a bulk of decisions in one transaction, each audited
  (``hours.reviewed``) and moving the person's ``volunteer_hours`` total by
  what it changes (``checkin.domain.hours.counted``).
- ``hours_link_url``: the volunteer's signed page, which checkin puts in
  ``attendee.checked_out`` (``hours_link``) for followup's volunteer-hours email.
- ``volunteer_view`` / ``log_off_site``: the volunteer's page and the off-site
  hours they log there (pending; audited ``hours.logged``).
- ``issue_statement`` / ``verify_statement``: the statement of a period (only
  approved hours) and what its verification link shows: the same statement,
  as decided when it was issued, and whether a decision changed since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from checkin.adapters.ids import new_id
from checkin.domain import hours as rules
from checkin.domain.audit import HOURS_LOGGED, HOURS_REVIEWED, Actor, Subject, person_actor
from checkin.domain.model import RuleBroken
from checkin.service_layer import audit, signed
from checkin.service_layer.badges import local
from checkin.service_layer.context import Context
from checkin.service_layer.ports import Store, Transaction
from turnout_common.clock import utcnow
from turnout_common.types import Doc

HOURS_LINK_SALT = "turnout.hours-link.v1"
STATEMENT_SALT = "turnout.hour-statement.v1"
MAX_TOKEN_LENGTH = 1000
PENDING_SHOWN = 200


# -- signed links -------------------------------------------------------------------------------------------


def _loads(ctx: Context, salt: str, token: str, message: str) -> object:
    # A salt per kind: a volunteer's link never verifies as a statement, nor either as a privacy link.
    try:
        return signed.unsign(ctx, salt, token, MAX_TOKEN_LENGTH)
    except signed.Unreadable as exc:
        raise rules.LinkRefused("invalid", message) from exc


def hours_link_url(ctx: Context, org_id: str, person_id: str, now: datetime | None = None) -> str:
    """The volunteer's own page (their hours, off-site hours, their statement), signed, for an email."""
    link = rules.HoursLink(org_id, person_id, (now or utcnow()) + rules.HOURS_LINK_LIFETIME)
    token = signed.sign(ctx, HOURS_LINK_SALT, rules.hours_link_claims(link))
    return f"{ctx.settings.public_url}/hours/me/{token}"


def read_hours_link(ctx: Context, token: str, now: datetime | None = None) -> rules.HoursLink:
    """The link a token names (``rules.LinkRefused``: forged, malformed or expired)."""
    claims = _loads(ctx, HOURS_LINK_SALT, token, "This link is not valid. Check that you copied all of it.")
    return rules.read_hours_link(claims, now or utcnow())


def statement_token(ctx: Context, claims: rules.StatementClaims) -> str:
    return signed.sign(ctx, STATEMENT_SALT, rules.statement_claims(claims))


def verify_url(ctx: Context, token: str) -> str:
    return f"{ctx.settings.public_url}/hours/verify/{token}"


# -- the coordinator's review -------------------------------------------------------------------------------


def _event(store: Store, org_id: str, event_id: str) -> Doc:
    event = store.events.get_in_org(event_id, org_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    return event


def event_hours(ctx: Context, org_id: str, event_id: str) -> tuple[Doc, list[Doc]]:
    """The event and its shifts (everyone checked in): flagged first, then pending, then decided."""
    event = _event(ctx.store, org_id, event_id)
    registrations = [r for r in ctx.store.registrations.of_event(event_id) if r.get("checkin")]
    rows = [rules.shift_row(registration) for registration in registrations]
    return event, sorted(rows, key=rules.shift_order)


def pending_entries(ctx: Context, org_id: str, limit: int = PENDING_SHOWN) -> list[Doc]:
    """The organization's off-site entries waiting for a decision, oldest first, with the person's name."""
    entries = ctx.store.hour_entries.pending_of_org(org_id, limit)
    rows = []
    for entry in entries:
        person = ctx.store.person_data.person(org_id, entry["person_id"]) or {}
        name = " ".join(part for part in (person.get("first_name"), person.get("last_name")) if part)
        rows.append({**rules.entry_row(entry), "name": name or "(unknown)"})
    return rows


def _with_field(broken: RuleBroken, field: str) -> RuleBroken:
    return RuleBroken(broken.code, f"{field}: {broken.message}", broken.field or field)


def review(ctx: Context, org_id: str, actor: Actor, raw_items: object, *, event_id: str | None = None) -> list[Doc]:
    """Decide shifts and off-site entries in one transaction: all of them, or (a 4xx naming the
    item) none. ``event_id``: the shifts must be of that event. Returns the decided rows."""
    items = rules.review_items(raw_items)
    if event_id is not None:
        _event(ctx.store, org_id, event_id)

    def work(tx: Transaction) -> list[Doc]:
        now = utcnow()
        return [_decide(tx, org_id, actor, item, index, event_id, now) for index, item in enumerate(items)]

    return ctx.uow().run(work)


def _decide(
    tx: Transaction, org_id: str, actor: Actor, item: rules.ReviewItem, index: int, event_id: str | None, now: datetime
) -> Doc:
    store = tx.store
    where = f"items[{index}]"
    if item.registration_id is not None:
        doc = store.registrations.get_in_org(item.registration_id, org_id)
        if doc is None or (event_id is not None and doc["event_id"] != event_id):
            raise RuleBroken(
                "registration_not_found", f"{where}: no such registration at this event", f"{where}.registration_id"
            )
    else:
        doc = store.hour_entries.get_in_org(item.entry_id or "", org_id)
        if doc is None:
            raise RuleBroken("entry_not_found", f"{where}: no such off-site entry", f"{where}.entry_id")
    try:
        decision = rules.decide(doc, item, actor.as_doc(), now)
    except RuleBroken as broken:
        raise _with_field(broken, where) from broken
    if item.registration_id is not None:
        store.registrations.set_fields(doc["_id"], {"hours_review": decision.review})
        decided = {**doc, "hours_review": decision.review}
        subject, row = Subject("registration", doc["_id"]), rules.shift_row(decided)
    else:
        store.hour_entries.set_review(doc["_id"], decision.review)
        decided = {**doc, "review": decision.review}
        subject, row = Subject("hour_entry", doc["_id"]), rules.entry_row(decided)
    if decision.delta:
        store.people.add_hours(doc["person_id"], decision.delta)
    details: Doc = {
        "decision": decision.review["state"],
        "before": decision.before.value,
        "kind": "shift" if item.registration_id is not None else "off_site",
        "recorded_hours": decision.review["recorded_hours"],
        "hours": rules.approved_hours(decided),
    }
    if item.reason:
        details["reason"] = item.reason
    audit.record(
        store,
        org_id,
        actor,
        HOURS_REVIEWED,
        subject,
        at=now,
        event_id=doc.get("event_id"),
        registration_id=doc["_id"] if item.registration_id is not None else None,
        person_id=doc["person_id"],
        details=details,
    )
    return row


# -- the volunteer's page -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VolunteerView:
    link: rules.HoursLink
    organization: str
    first_name: str
    shifts: list[Doc]  # newest first, with event_title
    entries: list[Doc]  # newest day first
    approved_total: float
    pending_total: float


def _person(store: Store, org_id: str, person_id: str) -> Doc:
    person = store.person_data.person(org_id, person_id)
    if person is None:
        raise RuleBroken("person_not_found", "This link no longer works: there is no record of these hours left.")
    return person


def _shifts(store: Store, org_id: str, person_id: str) -> list[tuple[Doc, Doc]]:
    registrations = [r for r in store.person_data.registrations(org_id, person_id) if r.get("checkout")]
    events = store.person_data.events(org_id, [r["event_id"] for r in registrations])
    return [(r, events[r["event_id"]]) for r in registrations if r["event_id"] in events]


def _shift_day(registration: Doc, event: Doc) -> date:
    return local(registration["checkin"]["scanned_at"], str(event.get("timezone") or "UTC")).date()


def volunteer_view(ctx: Context, token: str, now: datetime | None = None) -> VolunteerView:
    link = read_hours_link(ctx, token, now)
    store = ctx.store
    person = _person(store, link.org_id, link.person_id)
    shifts = []
    for registration, event in _shifts(store, link.org_id, link.person_id):
        row = rules.shift_row(registration, event)
        shifts.append({**row, "day": _shift_day(registration, event)})
    shifts.sort(key=lambda row: (row["day"], row["registration_id"]), reverse=True)
    entries = [rules.entry_row(entry) for entry in store.hour_entries.of_person(link.org_id, link.person_id)]
    approved = sum(row["hours"] or 0.0 for row in [*shifts, *entries])
    pending = sum(row["recorded_hours"] or 0.0 for row in [*shifts, *entries] if row["state"] == "pending")
    return VolunteerView(
        link=link,
        organization=store.organizations.name_of(link.org_id) or "the organization",
        first_name=str(person.get("first_name") or "there"),
        shifts=shifts,
        entries=entries,
        approved_total=round(approved, 2),
        pending_total=round(pending, 2),
    )


def log_off_site(ctx: Context, token: str, raw: Doc, now: datetime | None = None) -> Doc:
    """The volunteer logs off-site work (a day, hours, a note): stored pending, audited."""
    link = read_hours_link(ctx, token, now)

    def work(tx: Transaction) -> Doc:
        moment = now or utcnow()
        _person(tx.store, link.org_id, link.person_id)
        entry = rules.new_entry(new_id(), link.org_id, link.person_id, raw, moment.date(), moment)
        tx.store.hour_entries.add(entry)
        audit.record(
            tx.store,
            link.org_id,
            person_actor(link.person_id),
            HOURS_LOGGED,
            Subject("hour_entry", entry["_id"]),
            at=moment,
            details={"date": entry["date"], "hours": entry["hours"]},
        )
        return entry

    return ctx.uow().run(work)


# -- the statement ------------------------------------------------------------------------------------------


def _statement(store: Store, org_id: str, person_id: str, wanted: rules.Period, as_of: datetime) -> rules.Statement:
    person = _person(store, org_id, person_id)
    name = " ".join(part for part in (person.get("first_name"), person.get("last_name")) if part)
    return rules.statement(
        store.organizations.name_of(org_id) or "",
        name,
        _shifts(store, org_id, person_id),
        store.hour_entries.of_person(org_id, person_id),
        wanted,
        as_of,
        _shift_day,
    )


@dataclass(frozen=True, slots=True)
class IssuedStatement:
    statement: rules.Statement
    verify_url: str


def issue_statement(
    ctx: Context, token: str, first: str | None, last: str | None, now: datetime | None = None
) -> IssuedStatement:
    """The volunteer's statement of a period (default: the last twelve months), with its verification link."""
    link = read_hours_link(ctx, token, now)
    moment = now or utcnow()
    wanted = rules.period(first, last, moment.date())
    # Whole seconds, rounded up: the token keeps seconds, and a decision made a
    # moment before must still be on the statement when it is verified.
    as_of = datetime.fromtimestamp(int(moment.timestamp()) + 1, tz=UTC)
    found = _statement(ctx.store, link.org_id, link.person_id, wanted, as_of)
    claims = rules.StatementClaims(link.org_id, link.person_id, wanted, as_of, found.total)
    return IssuedStatement(found, verify_url(ctx, statement_token(ctx, claims)))


@dataclass(frozen=True, slots=True)
class VerifiedStatement:
    statement: rules.Statement
    verify_url: str
    changed: bool  # a decision in the period changed since it was issued
    issued_total: float


def verify_statement(ctx: Context, token: str, now: datetime | None = None) -> VerifiedStatement:
    """What a verification link shows: the statement as issued (``rules.LinkRefused``: forged or expired;
    ``RuleBroken`` ``person_not_found``: the person's records are gone)."""
    raw = _loads(ctx, STATEMENT_SALT, token, "This verification link is not valid. Check that you copied all of it.")
    claims = rules.read_statement_claims(raw, now or utcnow())
    found = _statement(ctx.store, claims.org_id, claims.person_id, claims.period, claims.issued_at)
    return VerifiedStatement(found, verify_url(ctx, token), abs(found.total - claims.total) > 0.001, claims.total)


def statement_rows(found: rules.Statement) -> Sequence[Sequence[str]]:
    return rules.statement_rows(found)
