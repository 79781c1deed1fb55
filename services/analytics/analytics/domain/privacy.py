"""What analytics keeps of a person, and what goes: when they are erased, and
when their details outlive the organization's retention periods.

Pure rules over message data (the ``data`` of an archived CloudEvent):

- ``people_named``: who a message is about (``person_id``) or mentions
  (``other_person_id``, an introduction).
- ``masked_fields``: what changes in a message when a person is erased: their
  id becomes the pseudonym, and, in a message *about* them, every personal
  field goes (names, email addresses, what they wrote, links and tracking
  details). What the figures read (times, kinds, statuses, ratings' events,
  follow-up ids) stays, so a rebuild from the masked archive counts the person
  exactly as before, under the pseudonym.
- ``secret_fields``: what is never kept at all (the signed link of a data
  request: a key to the person's data).
- ``detail_fields``: what a retention period strips from an old message
  (check-in details: kiosk answers and devices no figure reads; tracking
  details: the clicked address, user agents).
- ``export_part`` / ``chunks``: a person's part of a data export, as JSON text
  cut into pieces that fit a message.

Field changes are returned as ``{field: new value}`` (``REMOVED``: drop the
field), so the archive is updated field by field: an erasure and a retention
sweep touching the same message never undo each other's work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from turnout_common.clock import to_rfc3339
from turnout_common.privacy import ERASED_NAME, is_pseudonym, pseudonym

# The fields that name a person (by id).
PERSON_ID_FIELDS = ("person_id", "other_person_id")


class _Removed:
    def __repr__(self) -> str:
        return "REMOVED"


REMOVED: Final = _Removed()

# A message about an erased person keeps none of these (the value it gets instead).
PERSONAL_FIELDS: dict[str, Any] = {
    "first_name": ERASED_NAME,
    "last_name": "",
    "email": None,
    "previous_email": None,
    "offers": [],  # what they offer and seek: their own words (introductions)
    "seeks": [],
    "comment": None,  # feedback they wrote
    "reason": "",  # a cancellation's, an undo's or a bounce's words about them
    "error": "",  # a transport's error names the address
    "url": "",  # the link they clicked (it may carry a token)
    "link": "",  # a signed link to their data
    "user_agent": REMOVED,
    "ip": REMOVED,
}

# Never kept, whoever it is about: a signed link is a key to someone's data.
SECRET_FIELDS: dict[str, Any] = {"link": ""}

# Retention kinds analytics enforces, and what each strips from which messages.
CHECKIN_DETAILS = "checkin_details"
TRACKING_EVENTS = "tracking_events"
RETENTION_KINDS = (CHECKIN_DETAILS, TRACKING_EVENTS)
DETAIL_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    CHECKIN_DETAILS: {
        # The kiosk, the method, the scan time and the first-time flag of a
        # check-in feed the figures (lanes, methods, arrivals, first-timers) and stay.
        "attendee.checked_in": {"override": REMOVED, "visit_number": REMOVED},
        "attendee.checked_out": {"kiosk_id": None, "closed_by": REMOVED, "checked_in_at": REMOVED},
        # What a walk-in (or any registrant) answered about themselves.
        "attendee.registered": {"offers": [], "seeks": []},
        "attendee.checkin_undone": {"reason": ""},
    },
    TRACKING_EVENTS: {
        "followup.opened": {"user_agent": REMOVED, "ip": REMOVED},
        "followup.clicked": {"url": "", "user_agent": REMOVED, "ip": REMOVED},
    },
}


@dataclass(frozen=True, slots=True)
class ArchiveChange:
    """Fields to change in one archived message: ``data`` field -> new value
    (``REMOVED``: drop it), and its new subject (None: unchanged)."""

    message_id: str
    data: dict[str, Any]
    subject: str | None = None


def retention_kind(message_type: str) -> str | None:
    """Which retention period applies to a message's details (None: none)."""
    for kind, types in DETAIL_FIELDS.items():
        if message_type in types:
            return kind
    return None


def people_named(data: Mapping[str, Any]) -> list[str]:
    """The ids of the people a message names (pseudonyms left out: they are erased already)."""
    named = []
    for name in PERSON_ID_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value and not is_pseudonym(value):
            named.append(value)
    return named


def pseudonyms_named(data: Mapping[str, Any]) -> dict[str, str]:
    """Person id -> pseudonym for everyone a message names."""
    org_id = str(data.get("org_id", ""))
    return {person_id: pseudonym(org_id, person_id) for person_id in people_named(data)}


def _changes(data: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """``wanted`` limited to the fields ``data`` has with another value."""
    return {name: value for name, value in wanted.items() if name in data and data[name] != value}


def masked_fields(data: Mapping[str, Any], person_id: str, alias: str) -> dict[str, Any]:
    """What changes in a message when ``person_id`` is erased (their pseudonym: ``alias``).

    Their id becomes the pseudonym wherever it appears; a message *about* them
    (``person_id``) also loses every personal field. A message about someone
    else that mentions them (an introduction) keeps its own person's fields.
    """
    changes = {name: alias for name in PERSON_ID_FIELDS if data.get(name) == person_id}
    if data.get("person_id") == person_id:
        changes.update(_changes(data, PERSONAL_FIELDS))
    return changes


def secret_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    return _changes(data, SECRET_FIELDS)


def detail_fields(message_type: str, data: Mapping[str, Any], kinds: Iterable[str]) -> dict[str, Any]:
    """What the retention periods ``kinds`` (those passed for this message) strip from it."""
    changes: dict[str, Any] = {}
    for kind in kinds:
        changes.update(_changes(data, DETAIL_FIELDS.get(kind, {}).get(message_type, {})))
    return changes


def applied(data: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``changes`` made (``REMOVED`` fields dropped)."""
    out = {name: value for name, value in data.items() if changes.get(name, None) is not REMOVED}
    out.update({name: value for name, value in changes.items() if value is not REMOVED})
    return out


# -- export ----------------------------------------------------------------------------------------

# A data-export chunk: at most this many characters (the contract allows 262,144).
CHUNK_CHARS = 200_000


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_rfc3339(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(inner) for inner in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def export_part(
    *,
    org_id: str,
    person_id: str,
    request_id: str,
    exported_at: datetime,
    person: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    registrations: Iterable[Mapping[str, Any]],
    contributions: Mapping[str, Any],
    messages: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Everything analytics holds about a person, as one JSON-ready object.

    ``person``: their facts (visits, follow-ups, name); ``summary``: the
    derived figures the dashboard lists; ``registrations``: each
    registration's facts; ``contributions``: what they add to the
    organization's figures (cohort, funnel and loyalty cells); ``messages``:
    every archived message that names them, as it was received. A person
    analytics never heard of gets the same object with empty parts.
    """
    part: dict[str, Any] = _jsonable(
        {
            "service": "analytics",
            "org_id": org_id,
            "person_id": person_id,
            "request_id": request_id,
            "exported_at": exported_at,
            "person": dict(person) if person is not None else None,
            "summary": dict(summary) if summary is not None else None,
            "registrations": [dict(doc) for doc in registrations],
            "contributions": dict(contributions),
            "messages": [dict(doc) for doc in messages],
        }
    )
    return part


def json_text(part: Mapping[str, Any]) -> str:
    return json.dumps(part, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """``text`` cut into pieces of at most ``size`` characters (one piece at least)."""
    if size < 1:
        raise ValueError("a chunk holds at least one character")
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]
