"""What follow-up does with checkin's messages: keep its own facts (contacts
and consent, gatherings, who registered, came, left and for how long), plan
each ended gathering's nudges, and answer for the people checkin asks about
(exports, erasures, corrections, the link a person asked for: see
``followup.service_layer.privacy``), all in the consumer's unit of work.

Planning itself runs in the scheduler (``scheduling.py``), not here, so a
gathering of ten thousand does not become one huge consumer transaction:
``event.ended`` only records a *plan*. A fact that arrives for a gathering
already planned (a late check-in from a kiosk's offline queue) marks the
person *dirty* on the plan, and the scheduler reconsiders their nudges; so
does an undone check-in.

Messages are applied in their partition's order: runs of plain facts are
written together, and a message about one person (an erasure, say) is
applied between the run before it and the run after it. Every message that
names a person is first checked against the tombstones of erased people
(by id, and by address for a registration no newer than the erasure):
those are ignored, and still recorded as applied by the consumer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from followup.domain.contacts import consent_update, contact_from_registration, details_replace
from followup.domain.nudges import PENDING, NudgeKind
from followup.domain.plans import PENDING_PLAN
from followup.domain.privacy import turned_away
from followup.service_layer import confirmations, privacy, retention
from followup.service_layer.repositories import Store, Tx
from turnout_common.clock import parse_rfc3339, utcnow
from turnout_common.emails import normalize_email
from turnout_common.envelope import Envelope
from turnout_common.privacy import email_digest, pseudonym
from turnout_common.revocations import ACCESS_REVOKED
from turnout_common.types import Doc

log = logging.getLogger("followup.consumer")

EVENT_TYPES = ("event.scheduled", "event.updated", "event.cancelled", "event.ended")
FACT_TYPES = ("attendee.registered", "registration.cancelled", "attendee.checked_in", "attendee.checked_out")
# A deactivated user or revoked API token: recorded so the web app refuses it.
ACCESS_TYPES = (ACCESS_REVOKED,)
UNDONE = "attendee.checkin_undone"
POLICY_SET = "retention.policy_set"
# Applied one by one, in order, between runs of plain facts.
ONE_BY_ONE = (UNDONE, POLICY_SET, *privacy.PERSON_TYPES)
HANDLED_TYPES = EVENT_TYPES + FACT_TYPES + ACCESS_TYPES + ONE_BY_ONE
# Nudges an undone check-in takes back while they are unsent.
NEEDS_CHECKIN = frozenset({NudgeKind.THANK_YOU, NudgeKind.FIRST_TIMER_WELCOME, NudgeKind.VOLUNTEER_HOURS})
PENDING_VALUES = frozenset(state.value for state in PENDING)


def _time(value: Any) -> Any:
    return parse_rfc3339(value) if isinstance(value, str) else None


def _event_fields(message: Envelope) -> dict[str, Any]:
    data = message.data
    fields: dict[str, Any] = {
        "org_id": data["org_id"],
        "title": data["title"],
        "kind": data["kind"],
        "starts_at": _time(data["starts_at"]),
        "ends_at": _time(data["ends_at"]),
        "timezone": data["timezone"],
    }
    if message.type in ("event.scheduled", "event.updated"):
        fields.update(status=data["status"], venue=data.get("venue"), description=data.get("description"))
        if message.type == "event.updated":
            # The calendar files' SEQUENCE (turnout_common.calendar.sequence_at) counts from here.
            fields["changed_at"] = privacy.message_time(message)
    elif message.type == "event.cancelled":
        fields.update(status="cancelled", cancelled_at=_time(data["cancelled_at"]))
    else:
        fields.update(status="ended", ended_at=_time(data["ended_at"]), ended_by=data["ended_by"])
    return fields


def _attendance_update(message: Envelope) -> dict[str, Any]:
    data = message.data
    if message.type == "attendee.registered":
        return {
            "$set": {
                "org_id": data["org_id"],
                "registration_id": data["registration_id"],
                "registration_status": data["status"],
                "consent_email": data["consent_email"],
                "offers": data["offers"],
                "seeks": data["seeks"],
                "event_kind": data["event_kind"],
                "registered_at": _time(data["registered_at"]),
            },
            "$setOnInsert": {"checked_in_at": None},
        }
    if message.type == "registration.cancelled":
        return {"$set": {"org_id": data["org_id"], "registration_status": "cancelled"}}
    if message.type == "attendee.checked_in":
        return {
            "$set": {
                "org_id": data["org_id"],
                "registration_id": data["registration_id"],
                "checked_in_at": _time(data["received_at"]),
                "first_time_ever": data["first_time_ever"],
                "event_kind": data["event_kind"],
            }
        }
    checked_out: Doc = {
        "org_id": data["org_id"],
        "hours": data["hours"],
        "checked_out_at": _time(data["received_at"]),
    }
    if data.get("hours_link"):
        # checkin's signed page of the volunteer's hours (their statement): the email links to it.
        checked_out["hours_link"] = data["hours_link"]
    return {"$set": checked_out}


def apply_checkin_messages(tx: Tx, messages: Sequence[Envelope]) -> None:
    """Apply new messages (in partition order) inside the consumer's transaction."""
    tx.store.checkin_facts.record_revocations(messages)
    now = utcnow()
    run: list[Envelope] = []
    for message in messages:
        if message.type in ACCESS_TYPES:
            continue
        if message.type in ONE_BY_ONE:
            _apply_facts(tx, run, now)
            run = []
            _apply_one(tx, message, now)
        else:
            run.append(message)
    _apply_facts(tx, run, now)


def welcome(store: Store, messages: Sequence[Envelope]) -> list[Envelope]:
    """The messages that concern no erased person (the others are ignored)."""
    named = [m for m in messages if m.data.get("person_id")]
    if not named:
        return list(messages)
    erased_ids = store.erased.among(pseudonym(m.data["org_id"], m.data["person_id"]) for m in named)
    digests = {m.id: _address_digest(m) for m in named}
    by_email = store.erased.by_address(d for d in digests.values() if d)
    kept = [
        m
        for m in messages
        if not turned_away(
            person_id=m.data.get("person_id"),
            org_id=m.data["org_id"],
            email_digest=digests.get(m.id),
            message_time=privacy.message_time(m),
            erased_ids=erased_ids,
            by_email=by_email,
        )
    ]
    if len(kept) < len(messages):
        log.info("messages about erased people ignored", extra={"count": len(messages) - len(kept)})
    return kept


def _address_digest(message: Envelope) -> str | None:
    email = message.data.get("email")
    if message.type not in ("attendee.registered", "person.updated", "person.data_link_requested") or not email:
        return None
    return email_digest(message.data["org_id"], normalize_email(str(email)))


def _apply_one(tx: Tx, message: Envelope, now: datetime) -> None:
    store = tx.store
    if message.type == "person.export_requested":
        privacy.export_person(tx, message, now)  # an erased person's export is simply empty
    elif message.type == "person.erasure_requested":
        privacy.erase_person(tx, message, now)  # answered even when erased (or unknown) already
    elif message.type == POLICY_SET:
        retention.store_policy(store, message)
    elif not welcome(store, [message]):
        if message.type == "person.data_link_requested":
            log.info("data link not sent: the person was erased", extra={"org_id": message.data["org_id"]})
    elif message.type == "person.updated":
        privacy.correct_person(tx, message)
    elif message.type == "person.data_link_requested":
        privacy.schedule_data_link(tx, message, now)
    elif message.type == UNDONE:
        _undo_checkin(store, message, now)


def _undo_checkin(store: Store, message: Envelope, now: datetime) -> None:
    """The person counts as not attended again (unless checked in again since); what only
    a check-in called for is taken back while unsent, and the scheduler reconsiders them."""
    data = message.data
    event_id, person_id = data["event_id"], data["person_id"]
    if not store.attendance.undo_checkin(event_id, person_id, parse_rfc3339(data["undone_at"])):
        return
    unsent = [
        doc["_id"]
        for doc in store.nudges.of_people_at(event_id, [person_id])
        if doc["kind"] in NEEDS_CHECKIN and doc["state"] in PENDING_VALUES
    ]
    if unsent:
        store.nudges.skip_pending(unsent, "checkin_undone", now)
    if store.checkin_facts.planned([event_id]):
        store.checkin_facts.apply([], [], [], [], {event_id: {person_id}})


def _contact_changes(store: Store, messages: Sequence[Envelope]) -> tuple[list[tuple[str, Doc, Doc]], list[Doc]]:
    """Contacts' upserts for the registrations among ``messages`` (a registration older than
    the contact's details leaves name and address alone), and the consent history they write."""
    registrations = [m for m in messages if m.type == "attendee.registered"]
    if not registrations:
        return [], []
    current = {doc["_id"]: dict(doc) for doc in store.contacts.by_ids(m.data["person_id"] for m in registrations)}
    contacts: list[tuple[str, Doc, Doc]] = []
    history: list[Doc] = []
    for message in registrations:
        data = message.data
        person_id = data["person_id"]
        known = current.get(person_id)
        at = privacy.message_time(message)
        fields: Doc = {"org_id": data["org_id"], **consent_update(data)}
        if details_replace((known or {}).get("details_at"), at):
            fields.update(contact_from_registration(data))
            if at is not None:
                fields["details_at"] = at
        entry = privacy.registration_consent(message, known)
        if entry is not None:
            history.append(entry)
        contacts.append((person_id, fields, {"unsubscribed": False}))
        current[person_id] = {**(known or {}), **fields}
    return contacts, history


def _apply_facts(tx: Tx, messages: Sequence[Envelope], now: datetime) -> None:
    """A run of gathering facts, written together."""
    if not messages:
        return
    store = tx.store
    messages = welcome(store, messages)
    facts = store.checkin_facts
    contacts, history = _contact_changes(store, messages)
    attendance: list[tuple[str, str, Doc]] = []
    events: list[tuple[str, Doc]] = []
    plans: list[tuple[str, Doc]] = []
    touched_events = {m.data["event_id"] for m in messages if m.type in FACT_TYPES}
    planned_before = facts.planned(touched_events) if touched_events else set()
    ended_here: set[str] = set()
    dirty: dict[str, set[str]] = defaultdict(set)
    gathering_fields = {m.id: _event_fields(m) for m in messages if m.type in EVENT_TYPES}
    calendar_news = confirmations.read_news(store, messages, gathering_fields, now)
    for message in messages:
        data = message.data
        event_id = data["event_id"]
        if message.type in EVENT_TYPES:
            events.append((event_id, gathering_fields[message.id]))
            if message.type == "event.ended":
                ended_here.add(event_id)
                plans.append(
                    (
                        event_id,
                        {
                            "org_id": data["org_id"],
                            "state": PENDING_PLAN,
                            "ended_at": _time(data["ended_at"]),
                            "due_at": None,
                            "dirty": [],
                            "has_dirty": False,
                            "created_at": now,
                            "lease_owner": None,
                            "lease_until": None,
                        },
                    )
                )
            continue
        attendance.append((event_id, data["person_id"], _attendance_update(message)))
        # A fact about a gathering whose nudges were (or are being) planned
        # already: the scheduler must look at this person again.
        if event_id in planned_before or event_id in ended_here:
            dirty[event_id].add(data["person_id"])
    facts.apply(events, contacts, attendance, plans, dirty)
    if history:
        store.consent.add(history)
    confirmations.queue_news(store, calendar_news, now)
