"""The audit trail's entries: who did what to whom, in one shape.

An entry is ``{_id, org_id, at, actor: {kind, id, label, role?}, action,
subject: {kind, id}, event_id?, registration_id?, person_id?, details: {...}}``.
``person_id`` is set whenever the entry concerns a person (the subject, the
actor, or the person behind a registration), so erasing that person finds
every entry naming them and rewrites the id to the pseudonym
(``pseudonymized``); labels and details never carry a person's name or email.

Entries written before this shape (undone check-ins with ``actor.name``,
``reason`` and ``before``; window overrides as ``checkin_window_override``
with ``actor_id`` and ``detail``) are read through ``normalized``.

Pure: no storage, no clock, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from turnout_common.auth import Principal

Doc = dict[str, Any]

# Every action the trail records (the API's action filter accepts these).
PERSONAL_DATA_VIEWED = "personal_data.viewed"
PERSONAL_DATA_EXPORTED = "personal_data.exported"
PERSON_CORRECTED = "person.corrected"
PERSON_ERASURE_REQUESTED = "person.erasure_requested"
CHECKIN_OVERRIDE = "checkin.override"
CHECKIN_UNDONE = "checkin.undone"
USER_CREATED = "user.created"
USER_ROLE_CHANGED = "user.role_changed"
USER_DEACTIVATED = "user.deactivated"
KIOSK_PAIRED = "kiosk.paired"
KIOSK_REVOKED = "kiosk.revoked"
RETENTION_CHANGED = "retention.changed"
HOURS_REVIEWED = "hours.reviewed"
HOURS_LOGGED = "hours.logged"

ACTIONS: tuple[str, ...] = (
    PERSONAL_DATA_VIEWED,
    PERSONAL_DATA_EXPORTED,
    PERSON_CORRECTED,
    PERSON_ERASURE_REQUESTED,
    CHECKIN_OVERRIDE,
    CHECKIN_UNDONE,
    USER_CREATED,
    USER_ROLE_CHANGED,
    USER_DEACTIVATED,
    KIOSK_PAIRED,
    KIOSK_REVOKED,
    RETENTION_CHANGED,
    HOURS_REVIEWED,
    HOURS_LOGGED,
)

ACTION_LABELS: dict[str, str] = {
    PERSONAL_DATA_VIEWED: "Personal data viewed",
    PERSONAL_DATA_EXPORTED: "Personal data exported",
    PERSON_CORRECTED: "Person corrected",
    PERSON_ERASURE_REQUESTED: "Erasure requested",
    CHECKIN_OVERRIDE: "Check-in window overridden",
    CHECKIN_UNDONE: "Check-in undone",
    USER_CREATED: "User added",
    USER_ROLE_CHANGED: "Role changed",
    USER_DEACTIVATED: "User deactivated",
    KIOSK_PAIRED: "Kiosk paired",
    KIOSK_REVOKED: "Kiosk revoked",
    RETENTION_CHANGED: "Retention changed",
    HOURS_REVIEWED: "Volunteer hours reviewed",
    HOURS_LOGGED: "Off-site hours logged",
}

# The names older entries were stored under, by the action they are now.
LEGACY_ACTIONS: dict[str, tuple[str, ...]] = {CHECKIN_OVERRIDE: ("checkin_window_override",)}

# Who can act: a signed-in user, an API token, a paired kiosk, the person
# themselves (a signed link), or the service on its own (the retention schedule).
ACTOR_KINDS = ("user", "api", "kiosk", "person", "system")


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    id: str
    label: str
    role: str | None = None

    def as_doc(self) -> Doc:
        doc: Doc = {"kind": self.kind, "id": self.id, "label": self.label}
        if self.role is not None:
            doc["role"] = self.role
        return doc


@dataclass(frozen=True, slots=True)
class Subject:
    """What the action was done to: ("person", id), ("registration", id), ("user", id),
    ("kiosk", id), ("organization", id), ("data_request", id), ("hour_entry", id)."""

    kind: str
    id: str

    def as_doc(self) -> Doc:
        return {"kind": self.kind, "id": self.id}


def actor_of(principal: Principal) -> Actor:
    """The caller as the trail names them: a user by name, an API token by its name, a kiosk by its name."""
    role = principal.role if principal.kind in ("user", "api") else None
    return Actor(kind=principal.kind, id=principal.subject_id, label=principal.name, role=role)


def person_actor(person_id: str) -> Actor:
    """The person themselves, through a signed link (labelled without their name: an erasure keeps no name)."""
    return Actor(kind="person", id=person_id, label="the person (signed link)")


RETENTION_SCHEDULE = Actor(kind="system", id="retention", label="retention schedule")


def entry(
    entry_id: str,
    org_id: str,
    at: datetime,
    actor: Actor,
    action: str,
    subject: Subject,
    *,
    event_id: str | None = None,
    registration_id: str | None = None,
    person_id: str | None = None,
    details: Doc | None = None,
) -> Doc:
    """One audit entry (the document stored)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if actor.kind not in ACTOR_KINDS:
        raise ValueError(f"unknown actor kind {actor.kind!r}")
    if person_id is None:
        if subject.kind == "person":
            person_id = subject.id
        elif actor.kind == "person":
            person_id = actor.id
    doc: Doc = {
        "_id": entry_id,
        "org_id": org_id,
        "at": at,
        "actor": actor.as_doc(),
        "action": action,
        "subject": subject.as_doc(),
        "details": dict(details or {}),
    }
    for name, value in (("event_id", event_id), ("registration_id", registration_id), ("person_id", person_id)):
        if value is not None:
            doc[name] = value
    return doc


def actions_matching(action: str) -> list[str]:
    """What an action filter matches in storage: the action and the names it had before."""
    return [action, *LEGACY_ACTIONS.get(action, ())]


def _legacy_actor(doc: Doc) -> Doc:
    actor = doc.get("actor")
    if isinstance(actor, dict):
        found: Doc = {
            "kind": actor.get("kind") or "user",
            "id": actor.get("id") or "",
            "label": actor.get("label") or actor.get("name") or "",
        }
        if actor.get("role"):
            found["role"] = actor["role"]
        return found
    actor_id = str(doc.get("actor_id") or "")
    return {"kind": "api" if actor_id.startswith("api:") else "user", "id": actor_id, "label": ""}


def normalized(doc: Doc) -> Doc:
    """An entry in today's shape, whatever shape it was stored in."""
    if "subject" in doc and "details" in doc and isinstance(doc.get("actor"), dict) and "label" in doc["actor"]:
        return doc
    action = str(doc.get("action") or "")
    for current, older in LEGACY_ACTIONS.items():
        if action in older:
            action = current
    details: Doc = dict(doc.get("details") or doc.get("detail") or {})
    if "reason" in doc:
        details["reason"] = doc["reason"]
    if "before" in doc:
        details["before"] = doc["before"]
    registration_id = doc.get("registration_id")
    subject = (
        {"kind": "registration", "id": registration_id}
        if registration_id
        else {"kind": "organization", "id": doc.get("org_id")}
    )
    upgraded: Doc = {
        "_id": doc.get("_id"),
        "org_id": doc.get("org_id"),
        "at": doc.get("at"),
        "actor": _legacy_actor(doc),
        "action": action,
        "subject": subject,
        "details": details,
    }
    for name in ("event_id", "registration_id", "person_id"):
        if doc.get(name) is not None:
            upgraded[name] = doc[name]
    return upgraded


def pseudonymized(doc: Doc, person_id: str, stand_in: str) -> Doc:
    """The entry with every value equal to the person's id replaced by their pseudonym (nested too)."""

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return stand_in if value == person_id else value
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    swapped: Doc = swap(doc)
    return swapped


def summary(doc: Doc) -> str:
    """One line a person reads in the trail: "Role changed: organizer → viewer"."""
    entry_doc = normalized(doc)
    action = str(entry_doc["action"])
    details: Doc = entry_doc.get("details") or {}
    label = ACTION_LABELS.get(action, action)
    if action == USER_ROLE_CHANGED and details.get("from") and details.get("to"):
        return f"{label}: {details['from']} → {details['to']}"
    if action == CHECKIN_UNDONE and details.get("reason"):
        return f"{label}: {details['reason']}"
    if action == HOURS_REVIEWED and details.get("decision"):
        hours = f" ({details['hours']:g} h)" if isinstance(details.get("hours"), int | float) else ""
        reason = f": {details['reason']}" if details.get("reason") else ""
        return f"{label}: {details['decision']}{hours}{reason}"
    if action == RETENTION_CHANGED and isinstance(details.get("changed"), dict) and details["changed"]:
        parts = [
            f"{kind} {change.get('from')}→{change.get('to')} months" for kind, change in details["changed"].items()
        ]
        return f"{label}: {', '.join(parts)}"
    return label
