"""Registrations: a person (deduplicated by email within the organization) for an event."""

from __future__ import annotations

from datetime import datetime

from checkin.adapters.ids import new_id
from checkin.domain.kiosks import mask_email
from checkin.domain.model import (
    EventStatus,
    RuleBroken,
    fold_name,
    new_badge_code,
    normalize_party,
    normalize_tags,
    registration_status,
)
from checkin.service_layer.context import Context
from checkin.service_layer.messages import SOURCE, registered_message
from checkin.service_layer.ports import Transaction
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.emails import normalize_email
from turnout_common.envelope import new_envelope
from turnout_common.types import Doc


def name_only_key(person_id: str, meetup_member_id: str | None) -> str:
    """The ``email_norm`` of a person known by name only.

    The unique ``(org_id, email_norm)`` index stays whole (a partial one would
    hide name-only people from the scans that page an organization's people by
    that index: the retention sweep, the people search). The key starts with
    ``~`` and has no ``@``, so no address ever equals it: a Meetup member is
    one person per organization, anyone else is their own person, never merged
    with another on the name alone.
    """
    return f"~meetup:{meetup_member_id}" if meetup_member_id else f"~{person_id}"


def new_person_doc(
    org_id: str,
    email: str | None,
    first_name: str,
    last_name: str,
    now: datetime,
    *,
    meetup_member_id: str | None = None,
) -> Doc:
    """A person as first seen (deduplicated by ``email_norm`` within the organization).

    Without an email the person is *name-only*: ``email`` is None, they get
    no follow-up of any kind until an address is given (at the kiosk, or by a
    correction on their page).
    """
    first_name, last_name = first_name.strip(), last_name.strip()
    address = (email or "").strip()
    person_id = new_id()
    person: Doc = {
        "_id": person_id,
        "org_id": org_id,
        "email_norm": normalize_email(address) if address else name_only_key(person_id, meetup_member_id),
        "email": address or None,
        "first_name": first_name,
        "last_name": last_name,
        "name_folded": fold_name(f"{first_name} {last_name}"),
        "visits": 0,
        "created_at": now,
    }
    if meetup_member_id:
        person["meetup_member_id"] = meetup_member_id
    return person


def new_registration_doc(
    event: Doc,
    person: Doc,
    *,
    status: str,
    consent_email: bool,
    offers: list[str] | None,
    seeks: list[str] | None,
    source: str,
    now: datetime,
    party: str | None = None,
) -> Doc:
    """One registration: the only place its fields are decided (API, walk-in, import).

    A name-only person's registration has no ``email_hint`` and no consent
    (consent to email means nothing without an address).
    """
    email = person.get("email")
    doc: Doc = {
        "_id": new_id(),
        "org_id": event["org_id"],
        "event_id": event["_id"],
        "person_id": person["_id"],
        "first_name": person["first_name"],
        "last_name": person["last_name"],
        "name_folded": person["name_folded"],
        "email_hint": mask_email(email) if email else None,
        "status": status,
        "badge_code": new_badge_code(),
        "consent_email": bool(consent_email) and bool(email),
        "offers": normalize_tags(offers or []),
        "seeks": normalize_tags(seeks or []),
        "source": source,
        "registered_at": now,
        "checkin": None,
        "checkout": None,
    }
    party = normalize_party(party)
    if party is not None:
        # A group/order key: registrations of one event with the same party came together.
        doc["party"] = party
    return doc


def register(
    ctx: Context,
    org_id: str,
    event_id: str,
    *,
    first_name: str,
    last_name: str,
    email: str,
    consent_email: bool,
    offers: list[str] | None = None,
    seeks: list[str] | None = None,
    source: str = "api",
    party: str | None = None,
) -> tuple[Doc, bool]:
    """Register a person; return (registration, created). Registering twice is not an error."""
    email_norm = normalize_email(email)
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name:
        raise RuleBroken("missing_field", "first_name is required", "first_name")
    party = normalize_party(party)

    def work(tx: Transaction) -> tuple[Doc, bool]:
        now = utcnow()
        store = tx.store
        event = store.events.get_in_org(event_id, org_id)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        if event["status"] != EventStatus.SCHEDULED.value:
            raise RuleBroken("event_closed", f"this event is {event['status']}; registration is closed")
        person = store.people.upsert(org_id, email_norm, new_person_doc(org_id, email, first_name, last_name, now))
        existing = store.registrations.of_person(event_id, person["_id"])
        if existing is not None and existing["status"] != "cancelled":
            return existing, False
        status = registration_status(event.get("capacity"), event.get("registered_count", 0))
        registration = new_registration_doc(
            event,
            person,
            status=status,
            consent_email=consent_email,
            offers=offers,
            seeks=seeks,
            source=source,
            now=now,
            party=party,
        )
        if existing is not None:
            store.registrations.remove(existing["_id"])
        store.registrations.add(registration)
        # Only capped events keep a counter (a hot spot every registration of
        # the event writes); counts of uncapped events are computed on read.
        if status == "registered" and event.get("capacity") is not None:
            store.events.add_to_registered_count(event_id, 1)
        tx.publish(registered_message(registration, person, event))
        return registration, True

    return ctx.uow().run(work)


def list_registrations(ctx: Context, org_id: str, event_id: str, limit: int, skip: int) -> list[Doc]:
    return ctx.store.registrations.page_of_event(org_id, event_id, skip, limit)


def cancel_registration(ctx: Context, org_id: str, registration_id: str, reason: str | None) -> tuple[Doc, Doc | None]:
    """Cancel a registration; the first person on the waitlist takes the freed place.

    Returns (cancelled registration, promoted registration or None).
    """

    def work(tx: Transaction) -> tuple[Doc, Doc | None]:
        now = utcnow()
        store = tx.store
        registration = store.registrations.get_in_org(registration_id, org_id)
        if registration is None:
            raise RuleBroken("registration_not_found", "no such registration in your organization")
        if registration["status"] == "cancelled":
            return registration, None
        if registration.get("checkin"):
            raise RuleBroken("already_checked_in", "this person already checked in; undo the check-in first")
        was_registered = registration["status"] == "registered"
        store.registrations.set_fields(
            registration_id, {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason}
        )
        registration.update(status="cancelled", cancelled_at=now)
        tx.publish(
            new_envelope(
                "registration.cancelled",
                source=SOURCE,
                subject=registration["event_id"],
                data={
                    "org_id": org_id,
                    "event_id": registration["event_id"],
                    "registration_id": registration_id,
                    "person_id": registration["person_id"],
                    "cancelled_at": to_rfc3339(now),
                    "reason": reason,
                },
            )
        )
        promoted = None
        event = store.events.get(registration["event_id"])
        if was_registered and event is not None and event.get("capacity") is not None:
            store.events.add_to_registered_count(event["_id"], -1)
            promoted = store.registrations.first_waitlisted(event["_id"])
            if promoted is not None:
                store.registrations.set_fields(promoted["_id"], {"status": "registered"})
                store.events.add_to_registered_count(event["_id"], 1)
                promoted["status"] = "registered"
                person = store.people.get(promoted["person_id"])
                if person is not None:
                    tx.publish(registered_message(promoted, person, event))
        return registration, promoted

    return ctx.uow().run(work)


def get_registration(ctx: Context, org_id: str, registration_id: str) -> Doc | None:
    """A registration of the organization (None for another organization's)."""
    return ctx.store.registrations.get_in_org(registration_id, org_id)
