"""Registration confirmations and the calendar updates of a gathering that
moved or was cancelled, queued by the consumer in its unit of work.

- ``attendee.registered`` (registered, not waitlisted; from the registration
  page or the API; with an address; the gathering still ahead; confirmations
  not switched off): one ``registration_confirmation`` per registration (key
  ``event|person|registration_confirmation|registration``), carrying the
  gathering's calendar file (``METHOD:REQUEST``). A waitlisted person gets it
  when a place opens (checkin announces the promotion as a registration).
- ``event.updated`` that changes what a calendar shows (title, start, end,
  zone, place): one ``event_changed`` per person whose confirmation went out
  (same UID, the higher ``SEQUENCE`` of the edit; key with that sequence, so a
  replay sends nothing new and each edit its own). A confirmation still
  waiting needs none: it is rendered at send time, from the gathering as it is
  then.
- ``event.cancelled``: one ``event_cancelled`` (``METHOD:CANCEL``) per person
  whose confirmation went out; the ones still waiting are skipped.

All go through the same send batches, journal and state machine as every
nudge, so each is sent once; the sender decides them again at send time
(``followup.domain.audience.decide_calendar``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from followup.domain.audience import WENT_OUT, calendar_changed, confirms_registration
from followup.domain.nudges import PENDING, NudgeKind, followup_id, nudge_key
from followup.domain.settings import FollowupSettings, WinBackRule
from followup.service_layer.repositories import Store
from turnout_common.calendar import next_sequence
from turnout_common.envelope import Envelope
from turnout_common.types import Doc

log = logging.getLogger("followup.consumer")

CHUNK = 200  # nudges per send batch
PENDING_VALUES = frozenset(state.value for state in PENDING)


@dataclass(frozen=True, slots=True)
class CalendarNews:
    """What a run of checkin's messages asks of calendars."""

    confirmations: list[Doc]  # attendee.registered data to confirm
    changes: list[tuple[str, str, NudgeKind, int]]  # (org, event, event_changed | event_cancelled, sequence)


def _changed_at(message: Envelope, fields: Doc) -> datetime | None:
    if message.type == "event.cancelled":
        cancelled: datetime | None = fields.get("cancelled_at")
        return cancelled
    return fields.get("changed_at")


def read_news(store: Store, messages: Sequence[Envelope], fields_of: dict[str, Doc], now: datetime) -> CalendarNews:
    """Before the run is written: the registrations to confirm and the gatherings whose
    calendar entry changed (compared with what was known before each message).

    ``fields_of`` maps a gathering message's id to the fields it sets on the gathering;
    each edit's and cancellation's fields get the gathering's new ``calendar_sequence``."""
    wanted = {
        m.data["event_id"]
        for m in messages
        if m.type in ("event.updated", "event.cancelled")
        or (m.type == "attendee.registered" and m.data.get("status") == "registered")
    }
    if not wanted:
        return CalendarNews([], [])
    known: dict[str, Doc | None] = {doc["_id"]: doc for doc in store.events.by_ids(sorted(wanted))}
    confirmations: list[Doc] = []
    changes: list[tuple[str, str, NudgeKind, int]] = []
    for message in messages:
        data = message.data
        event_id = data["event_id"]
        if message.id in fields_of:
            fields = fields_of[message.id]
            before = known.get(event_id)
            if message.type in ("event.updated", "event.cancelled"):
                # Every edit raises the gathering's SEQUENCE (kept on it, written with it).
                previous = (before or {}).get("calendar_sequence")
                fields["calendar_sequence"] = next_sequence(previous, _changed_at(message, fields))
            sequence = int(fields.get("calendar_sequence") or 0)
            if message.type == "event.updated" and calendar_changed(before, fields):
                changes.append((data["org_id"], event_id, NudgeKind.EVENT_CHANGED, sequence))
            elif message.type == "event.cancelled" and before is not None and before.get("status") != "cancelled":
                changes.append((data["org_id"], event_id, NudgeKind.EVENT_CANCELLED, sequence))
            known[event_id] = {**(before or {}), **fields}
        elif message.type == "attendee.registered":
            event = known.get(event_id) or {}
            if confirms_registration(
                source=str(data.get("source") or ""),
                status=str(data.get("status") or ""),
                email=data.get("email") or None,
                event_status=event.get("status"),
                starts_at=event.get("starts_at"),
                now=now,
            ):
                confirmations.append(data)
    return CalendarNews(confirmations, changes)


def _confirmations_on(store: Store, org_id: str, event_id: str) -> bool:
    docs = store.settings.of(org_id, event_id)
    settings = FollowupSettings.from_docs(
        docs.get(f"org:{org_id}"),
        docs.get(f"event:{event_id}"),
        fallback_name="",
        introductions_per_person=0,
        win_back=WinBackRule(),
    )
    return settings.enabled(NudgeKind.REGISTRATION_CONFIRMATION)


def _nudge(org_id: str, event_id: str, person_id: str, kind: NudgeKind, key: str, now: datetime, **extra: Any) -> Doc:
    return {
        "_id": followup_id(key),
        "key": key,
        "org_id": org_id,
        "event_id": event_id,
        "anchor_event_id": None,
        "person_id": person_id,
        "kind": kind.value,
        "introduction_id": None,
        "batch_id": None,
        "state": "scheduled",
        "send_at": now,
        "created_at": now,
        "attempts": 0,
        "claim": None,
        "message_id": None,  # made from the id and the mail domain when rendered
        **extra,
    }


def _queue(store: Store, nudges: list[Doc], now: datetime) -> int:
    """Insert the nudges not queued already, in send batches of ``CHUNK``, due now."""
    if not nudges:
        return 0
    existing = store.nudges.existing_keys([n["key"] for n in nudges])
    fresh = [n for n in nudges if n["key"] not in existing]
    for start in range(0, len(fresh), CHUNK):
        chunk = fresh[start : start + CHUNK]
        batch_id = f"calendar-{chunk[0]['_id']}"
        for nudge in chunk:
            nudge["batch_id"] = batch_id
        store.nudges.add(chunk)
        store.batches.add(
            {
                "_id": batch_id,
                "org_id": chunk[0]["org_id"],
                "event_id": chunk[0]["event_id"],
                "state": "ready",
                "due_at": now,
                "size": len(chunk),
                "created_at": now,
                "lease_owner": None,
                "lease_until": None,
            }
        )
    return len(fresh)


def queue_news(store: Store, news: CalendarNews, now: datetime) -> int:
    """After the run is written: queue the confirmations and the calendar updates; how many."""
    queued = 0
    switches: dict[tuple[str, str], bool] = {}
    confirmations: list[Doc] = []
    for data in news.confirmations:
        org_id, event_id = data["org_id"], data["event_id"]
        if (org_id, event_id) not in switches:
            switches[(org_id, event_id)] = _confirmations_on(store, org_id, event_id)
        if not switches[(org_id, event_id)]:
            continue
        kind = NudgeKind.REGISTRATION_CONFIRMATION
        key = nudge_key(event_id, data["person_id"], kind, data["registration_id"])
        confirmations.append(
            _nudge(org_id, event_id, data["person_id"], kind, key, now, registration_id=data["registration_id"])
        )
    queued += _queue(store, confirmations, now)
    for org_id, event_id, kind, sequence in news.changes:
        queued += _queue(store, _updates(store, org_id, event_id, kind, sequence, now), now)
    return queued


def _updates(store: Store, org_id: str, event_id: str, kind: NudgeKind, sequence: int, now: datetime) -> list[Doc]:
    """One update per person whose confirmation went out (once per person, whatever
    the number of registrations); a confirmation still waiting is skipped on a
    cancellation (it is rendered from the gathering as it is at send time otherwise)."""
    people = [row["person_id"] for row in store.attendance.of_event(event_id)]
    if not people:
        return []
    sent_to: set[str] = set()
    waiting: list[str] = []
    superseded: list[str] = []
    for doc in store.nudges.of_people_at(event_id, people):
        if doc["kind"] == NudgeKind.EVENT_CHANGED and doc["state"] in PENDING_VALUES:
            superseded.append(doc["_id"])  # the newer one says it all
        if doc["kind"] != NudgeKind.REGISTRATION_CONFIRMATION:
            continue
        if doc["state"] in WENT_OUT:
            sent_to.add(doc["person_id"])
        elif doc["state"] in PENDING_VALUES and kind == NudgeKind.EVENT_CANCELLED:
            waiting.append(doc["_id"])
    if waiting:
        store.nudges.skip_pending(waiting, "event_cancelled", now)
    if superseded:
        store.nudges.skip_pending(superseded, "superseded", now)
    # An erased person's nudges name their pseudonym and their contact is gone: none for them.
    reachable = {doc["_id"] for doc in store.contacts.by_ids(sorted(sent_to))}
    discriminator = str(sequence) if kind == NudgeKind.EVENT_CHANGED else None
    return [
        _nudge(
            org_id,
            event_id,
            person_id,
            kind,
            nudge_key(event_id, person_id, kind, discriminator),
            now,
            calendar_sequence=sequence,
        )
        for person_id in sorted(reachable)
    ]
