"""Registrations: a person (deduplicated by email within the organization) for an event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId

from checkin.adapters.mongo import EVENTS, PEOPLE, REGISTRATIONS
from checkin.bootstrap import Context
from checkin.domain.kiosks import mask_email
from checkin.domain.model import (
    EventStatus,
    RuleBroken,
    fold_name,
    new_badge_code,
    normalize_email,
    normalize_tags,
    registration_status,
)
from checkin.service_layer.messages import SOURCE, registered_message
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.envelope import new_envelope
from turnout_common.mongo import UnitOfWork, find_in_org

Doc = dict[str, Any]


def new_person_doc(org_id: str, email: str, first_name: str, last_name: str, now: datetime) -> Doc:
    """A person as first seen (deduplicated by ``email_norm`` within the organization)."""
    first_name, last_name = first_name.strip(), last_name.strip()
    return {
        "_id": str(ObjectId()),
        "org_id": org_id,
        "email_norm": normalize_email(email),
        "email": email.strip(),
        "first_name": first_name,
        "last_name": last_name,
        "name_folded": fold_name(f"{first_name} {last_name}"),
        "visits": 0,
        "created_at": now,
    }


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
) -> Doc:
    """One registration: the only place its fields are decided (API, walk-in, import)."""
    return {
        "_id": str(ObjectId()),
        "org_id": event["org_id"],
        "event_id": event["_id"],
        "person_id": person["_id"],
        "first_name": person["first_name"],
        "last_name": person["last_name"],
        "name_folded": person["name_folded"],
        "email_hint": mask_email(person["email"]),
        "status": status,
        "badge_code": new_badge_code(),
        "consent_email": bool(consent_email),
        "offers": normalize_tags(offers or []),
        "seeks": normalize_tags(seeks or []),
        "source": source,
        "registered_at": now,
        "checkin": None,
        "checkout": None,
    }


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
) -> tuple[Doc, bool]:
    """Register a person; return (registration, created). Registering twice is not an error."""
    email_norm = normalize_email(email)
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name:
        raise RuleBroken("missing_field", "first_name is required", "first_name")

    def work(uow: UnitOfWork) -> tuple[Doc, bool]:
        now = utcnow()
        event = find_in_org(uow.db[EVENTS], event_id, org_id, session=uow.session)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        if event["status"] != EventStatus.SCHEDULED.value:
            raise RuleBroken("event_closed", f"this event is {event['status']}; registration is closed")
        uow.db[PEOPLE].update_one(
            {"org_id": org_id, "email_norm": email_norm},
            {"$setOnInsert": new_person_doc(org_id, email, first_name, last_name, now)},
            upsert=True,
            session=uow.session,
        )
        person = uow.db[PEOPLE].find_one({"org_id": org_id, "email_norm": email_norm}, session=uow.session)
        assert person is not None  # just upserted in this transaction
        existing = uow.db[REGISTRATIONS].find_one(
            {"event_id": event_id, "person_id": person["_id"]}, session=uow.session
        )
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
        )
        if existing is not None:
            uow.db[REGISTRATIONS].delete_one({"_id": existing["_id"]}, session=uow.session)
        uow.db[REGISTRATIONS].insert_one(registration, session=uow.session)
        # Only capped events keep a counter (a hot spot every registration of
        # the event writes); counts of uncapped events are computed on read.
        if status == "registered" and event.get("capacity") is not None:
            uow.db[EVENTS].update_one({"_id": event_id}, {"$inc": {"registered_count": 1}}, session=uow.session)
        uow.publish(registered_message(registration, person, event))
        return registration, True

    return ctx.uow().run(work)


def list_registrations(ctx: Context, org_id: str, event_id: str, limit: int, skip: int) -> list[Doc]:
    return list(
        ctx.db[REGISTRATIONS].find({"event_id": event_id, "org_id": org_id}).sort("_id", 1).skip(skip).limit(limit)
    )


def cancel_registration(ctx: Context, org_id: str, registration_id: str, reason: str | None) -> tuple[Doc, Doc | None]:
    """Cancel a registration; the first person on the waitlist takes the freed place.

    Returns (cancelled registration, promoted registration or None).
    """

    def work(uow: UnitOfWork) -> tuple[Doc, Doc | None]:
        now = utcnow()
        registration = uow.db[REGISTRATIONS].find_one({"_id": registration_id, "org_id": org_id}, session=uow.session)
        if registration is None:
            raise RuleBroken("registration_not_found", "no such registration in your organization")
        if registration["status"] == "cancelled":
            return registration, None
        if registration.get("checkin"):
            raise RuleBroken("already_checked_in", "this person already checked in; undo the check-in first")
        was_registered = registration["status"] == "registered"
        uow.db[REGISTRATIONS].update_one(
            {"_id": registration_id},
            {"$set": {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason}},
            session=uow.session,
        )
        registration.update(status="cancelled", cancelled_at=now)
        uow.publish(
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
        event = uow.db[EVENTS].find_one({"_id": registration["event_id"]}, session=uow.session)
        if was_registered and event is not None and event.get("capacity") is not None:
            uow.db[EVENTS].update_one({"_id": event["_id"]}, {"$inc": {"registered_count": -1}}, session=uow.session)
            promoted = uow.db[REGISTRATIONS].find_one(
                {"event_id": event["_id"], "status": "waitlisted"}, sort=[("registered_at", 1)], session=uow.session
            )
            if promoted is not None:
                uow.db[REGISTRATIONS].update_one(
                    {"_id": promoted["_id"]}, {"$set": {"status": "registered"}}, session=uow.session
                )
                uow.db[EVENTS].update_one({"_id": event["_id"]}, {"$inc": {"registered_count": 1}}, session=uow.session)
                promoted["status"] = "registered"
                person = uow.db[PEOPLE].find_one({"_id": promoted["person_id"]}, session=uow.session)
                if person is not None:
                    uow.publish(registered_message(promoted, person, event))
        return registration, promoted

    return ctx.uow().run(work)
