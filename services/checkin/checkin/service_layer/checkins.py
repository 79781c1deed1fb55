"""Recording a check-in at the door: idempotent by the kiosk's client key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from checkin.adapters.mongo import CHECKIN_REQUESTS, EVENTS, PEOPLE, REGISTRATIONS
from checkin.bootstrap import Context
from checkin.domain.model import RuleBroken, check_door_open, display_name
from checkin.service_layer.messages import checked_in_message
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.mongo import UnitOfWork

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CheckinCommand:
    org_id: str
    event_id: str
    client_key: str
    method: str
    badge_code: str | None = None
    registration_id: str | None = None
    kiosk_id: str | None = None
    scanned_at: datetime | None = None
    override: bool = False
    actor_id: str | None = None
    # Only for importing past attendance (demo data, history imports): when
    # the door took the check-in. Live check-ins always use the server clock.
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CheckinAnswer:
    status: int
    body: dict[str, Any]


def record_checkin(ctx: Context, command: CheckinCommand) -> CheckinAnswer:
    """Check a registration in; a replay of the same client key returns the first answer."""
    request_id = f"{command.org_id}:{command.client_key}"
    previous = ctx.db[CHECKIN_REQUESTS].find_one({"_id": request_id})
    if previous is not None:
        return _replayed(previous, command)
    try:
        return ctx.uow().run(lambda uow: _check_in(uow, command, request_id))
    except DuplicateKeyError:
        # A concurrent retry with the same key won the race: answer as it did.
        previous = ctx.db[CHECKIN_REQUESTS].find_one({"_id": request_id})
        if previous is None:
            raise
        return _replayed(previous, command)


def _replayed(previous: Doc, command: CheckinCommand) -> CheckinAnswer:
    if previous["event_id"] != command.event_id:
        raise RuleBroken("client_key_reused", "this client_key was already used for another event", "client_key")
    return CheckinAnswer(previous["status"], {**previous["body"], "replayed": True})


def _find_registration(uow: UnitOfWork, command: CheckinCommand) -> Doc | None:
    if command.badge_code is not None:
        query: Doc = {"badge_code": command.badge_code}
    else:
        query = {"_id": command.registration_id}
    return uow.db[REGISTRATIONS].find_one(query, session=uow.session)


def _check_in(uow: UnitOfWork, command: CheckinCommand, request_id: str) -> CheckinAnswer:
    now = command.recorded_at or utcnow()
    event = uow.db[EVENTS].find_one({"_id": command.event_id, "org_id": command.org_id}, session=uow.session)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    registration = _find_registration(uow, command)
    if registration is None or registration["org_id"] != command.org_id:
        raise RuleBroken("unknown_badge", "we don't recognise this badge; please see the front desk")
    if registration["event_id"] != command.event_id:
        raise RuleBroken("wrong_event", "this badge is for a different event; please see the front desk")
    if registration["status"] == "cancelled":
        raise RuleBroken("registration_cancelled", "this registration was cancelled; please see the front desk")
    name = display_name(registration["first_name"], registration["last_name"])
    if registration.get("checkin"):
        existing = registration["checkin"]
        answer = CheckinAnswer(
            200,
            {
                "status": "already_checked_in",
                "registration_id": registration["_id"],
                "name": name,
                "checked_in_at": to_rfc3339(existing["received_at"]),
                "kiosk_id": existing.get("kiosk_id"),
                "message": f"{name} already checked in at {existing['received_at']:%H:%M} UTC",
            },
        )
        _remember(uow, request_id, command, answer, now)
        return answer
    check_door_open(event["status"], event["checkin_opens_at"], event["checkin_closes_at"], now, command.override)
    checkin = {
        "method": command.method,
        "kiosk_id": command.kiosk_id,
        "scanned_at": command.scanned_at or now,
        "received_at": now,
        "override": command.override,
        "actor_id": command.actor_id,
    }
    updated = uow.db[REGISTRATIONS].find_one_and_update(
        {"_id": registration["_id"], "checkin": None},
        {"$set": {"checkin": checkin, "status": "registered"}},
        return_document=ReturnDocument.AFTER,
        session=uow.session,
    )
    if updated is None:  # checked in between our read and write; the retry will see it
        raise RuleBroken("conflict", "checked in concurrently; retry")
    person = uow.db[PEOPLE].find_one_and_update(
        {"_id": registration["person_id"]},
        {"$inc": {"visits": 1}, "$set": {"last_seen_at": now}, "$min": {"first_seen_at": now}},
        return_document=ReturnDocument.AFTER,
        session=uow.session,
    )
    visit_number = int(person["visits"]) if person else 1
    uow.db[EVENTS].update_one({"_id": event["_id"]}, {"$inc": {"checked_in_count": 1}}, session=uow.session)
    uow.publish(
        checked_in_message(
            updated, event, first_time_ever=visit_number == 1, visit_number=visit_number, override=command.override
        )
    )
    answer = CheckinAnswer(
        201,
        {
            "status": "checked_in",
            "registration_id": registration["_id"],
            "name": name,
            "first_name": registration["first_name"],
            "checked_in_at": to_rfc3339(now),
            "kiosk_id": command.kiosk_id,
            "visit_number": visit_number,
            "first_time_ever": visit_number == 1,
            "message": f"Welcome, {registration['first_name']}! "
            + ("First time here" if visit_number == 1 else f"Welcome back, visit number {visit_number}"),
        },
    )
    _remember(uow, request_id, command, answer, now)
    return answer


def _remember(uow: UnitOfWork, request_id: str, command: CheckinCommand, answer: CheckinAnswer, now: datetime) -> None:
    uow.db[CHECKIN_REQUESTS].insert_one(
        {
            "_id": request_id,
            "event_id": command.event_id,
            "status": answer.status,
            "body": answer.body,
            "created_at": now,
        },
        session=uow.session,
    )
