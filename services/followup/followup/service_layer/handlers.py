"""What follow-up does with checkin's messages: keep its own facts (contacts
and consent, gatherings, who registered, came, left and for how long) and
plan each ended gathering's nudges.

Planning itself runs in the scheduler (``scheduling.py``), not here, so a
gathering of ten thousand does not become one huge consumer transaction:
``event.ended`` only records a *plan*. A fact that arrives for a gathering
already planned (a late check-in from a kiosk's offline queue) marks the
person *dirty* on the plan, and the scheduler reconsiders their nudges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from followup.domain.contacts import consent_update, contact_from_registration
from followup.domain.plans import PENDING_PLAN
from followup.service_layer.repositories import Tx
from turnout_common.clock import parse_rfc3339, utcnow
from turnout_common.envelope import Envelope
from turnout_common.revocations import ACCESS_REVOKED
from turnout_common.types import Doc

EVENT_TYPES = ("event.scheduled", "event.updated", "event.cancelled", "event.ended")
FACT_TYPES = ("attendee.registered", "registration.cancelled", "attendee.checked_in", "attendee.checked_out")
# A deactivated user or revoked API token: recorded so the web app refuses it.
ACCESS_TYPES = (ACCESS_REVOKED,)
HANDLED_TYPES = EVENT_TYPES + FACT_TYPES + ACCESS_TYPES


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
    return {
        "$set": {
            "org_id": data["org_id"],
            "hours": data["hours"],
            "checked_out_at": _time(data["received_at"]),
        }
    }


def apply_checkin_messages(tx: Tx, messages: Sequence[Envelope]) -> None:
    """Apply new messages (in partition order) inside the consumer's transaction."""
    facts = tx.store.checkin_facts
    facts.record_revocations(messages)
    messages = [m for m in messages if m.type not in ACCESS_TYPES]
    contacts: list[tuple[str, Doc, Doc]] = []
    attendance: list[tuple[str, str, Doc]] = []
    events: list[tuple[str, Doc]] = []
    plans: list[tuple[str, Doc]] = []
    touched_events = {m.data["event_id"] for m in messages if m.type in FACT_TYPES}
    planned_before = facts.planned(touched_events) if touched_events else set()
    ended_here: set[str] = set()
    dirty: dict[str, set[str]] = defaultdict(set)
    now = utcnow()
    for message in messages:
        data = message.data
        event_id = data["event_id"]
        if message.type in EVENT_TYPES:
            events.append((event_id, _event_fields(message)))
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
        if message.type == "attendee.registered":
            contacts.append(
                (
                    data["person_id"],
                    {**contact_from_registration(data), **consent_update(data)},
                    {"unsubscribed": False},
                )
            )
        attendance.append((event_id, data["person_id"], _attendance_update(message)))
        # A fact about a gathering whose nudges were (or are being) planned
        # already: the scheduler must look at this person again.
        if event_id in planned_before or event_id in ended_here:
            dirty[event_id].add(data["person_id"])
    facts.apply(events, contacts, attendance, plans, dirty)
