"""The messages checkin publishes, built from stored documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from turnout_common.clock import to_rfc3339, to_rfc3339_or_none
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.types import Doc

SOURCE = "/turnout/checkin"

_t = to_rfc3339_or_none


def event_message(event_type: str, event: Doc) -> Envelope:
    """event.scheduled / event.updated / event.cancelled / event.ended."""
    data: dict[str, Any] = {
        "org_id": event["org_id"],
        "event_id": event["_id"],
        "title": event["title"],
        "kind": event["kind"],
        "starts_at": _t(event["starts_at"]),
        "ends_at": _t(event["ends_at"]),
        "timezone": event["timezone"],
    }
    if event_type in ("event.scheduled", "event.updated"):
        data.update(
            venue=event.get("venue"),
            capacity=event.get("capacity"),
            checkin_opens_at=_t(event["checkin_opens_at"]),
            checkin_closes_at=_t(event["checkin_closes_at"]),
            status=event["status"],
            description=event.get("description"),
        )
    elif event_type == "event.cancelled":
        data.update(cancelled_at=_t(event["cancelled_at"]), reason=event.get("cancel_reason"))
    elif event_type == "event.ended":
        data.update(
            capacity=event.get("capacity"),
            ended_at=_t(event["ended_at"]),
            ended_by=event["ended_by"],
        )
    return new_envelope(event_type, source=SOURCE, subject=event["_id"], data=data)


def registered_message(registration: Doc, person: Doc, event: Doc) -> Envelope:
    return new_envelope(
        "attendee.registered",
        source=SOURCE,
        subject=event["_id"],
        data={
            "org_id": event["org_id"],
            "event_id": event["_id"],
            "registration_id": registration["_id"],
            "person_id": person["_id"],
            "first_name": person["first_name"],
            "last_name": person["last_name"],
            "email": person.get("email"),  # None: a name-only person (followup sends them nothing)
            "consent_email": registration["consent_email"],
            "offers": registration["offers"],
            "seeks": registration["seeks"],
            "source": registration["source"],
            "status": registration["status"],
            "registered_at": _t(registration["registered_at"]),
            "event_kind": event["kind"],
        },
    )


def checked_in_message(
    registration: Doc, event: Doc, *, first_time_ever: bool, visit_number: int, override: bool
) -> Envelope:
    checkin = registration["checkin"]
    return new_envelope(
        "attendee.checked_in",
        source=SOURCE,
        subject=event["_id"],
        data={
            "org_id": event["org_id"],
            "event_id": event["_id"],
            "registration_id": registration["_id"],
            "person_id": registration["person_id"],
            "kiosk_id": checkin.get("kiosk_id"),
            "method": checkin["method"],
            "scanned_at": _t(checkin["scanned_at"]),
            "received_at": _t(checkin["received_at"]),
            "first_time_ever": first_time_ever,
            "event_kind": event["kind"],
            "event_starts_at": _t(event["starts_at"]),
            "override": override,
            "visit_number": visit_number,
        },
    )


def checked_out_message(registration: Doc, event: Doc, hours_link: str | None = None) -> Envelope:
    """attendee.checked_out; ``hours_link``: the volunteer's signed hours page, for followup's email."""
    checkin = registration["checkin"]
    checkout = registration["checkout"]
    data: Doc = {
        "org_id": event["org_id"],
        "event_id": event["_id"],
        "registration_id": registration["_id"],
        "person_id": registration["person_id"],
        "kiosk_id": checkout.get("kiosk_id"),
        "method": checkout["method"],
        "scanned_at": _t(checkout["scanned_at"]),
        "received_at": _t(checkout["received_at"]),
        "checked_in_at": _t(checkin["scanned_at"]),
        "hours": checkout["hours"],
        "closed_by": checkout["closed_by"],
        "event_kind": event["kind"],
    }
    if hours_link is not None:
        data["hours_link"] = hours_link
    return new_envelope("attendee.checked_out", source=SOURCE, subject=event["_id"], data=data)


def access_revoked_message(
    org_id: str,
    subject_id: str,
    subject_kind: str,
    reason: str,
    revoked_at: datetime,
    expires_at: datetime | None = None,
) -> Envelope:
    """access.revoked: a deactivated user, a revoked API token or a signed-out
    session; the services that accept checkin's tokens record it and refuse that
    subject from then on (until ``expires_at``, when its tokens expire anyway)."""
    data: Doc = {
        "org_id": org_id,
        "subject_id": subject_id,
        "subject_kind": subject_kind,
        "reason": reason,
        "revoked_at": to_rfc3339(revoked_at),
    }
    if expires_at is not None:
        data["expires_at"] = to_rfc3339(expires_at)
    return new_envelope("access.revoked", source=SOURCE, subject=subject_id, data=data)


def welcomed_message(welcome: Doc) -> Envelope:
    """attendee.welcomed: a greeter marked a first-timer welcomed (the greeter by id and kind only)."""
    return new_envelope(
        "attendee.welcomed",
        source=SOURCE,
        subject=welcome["event_id"],
        data={
            "org_id": welcome["org_id"],
            "event_id": welcome["event_id"],
            "registration_id": welcome["registration_id"],
            "person_id": welcome["person_id"],
            "greeter_id": welcome["greeter_id"],
            "greeter_kind": welcome["greeter_kind"],
            "welcomed_at": _t(welcome["welcomed_at"]),
        },
    )
