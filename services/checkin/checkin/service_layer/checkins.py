"""Recording a check-in at the door: idempotent by the kiosk's client key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.errors import DuplicateKeyError

from checkin.adapters.mongo import AUDIT_LOG, CHECKIN_REQUESTS, EVENTS, KIOSKS, PEOPLE, REGISTRATIONS
from checkin.bootstrap import Context
from checkin.domain.model import RuleBroken, check_door_open, display_name, volunteer_hours
from checkin.service_layer.messages import checked_in_message, checked_out_message
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
    """Check a registration in; a replay of the same client key returns the first answer.

    The common case (a first scan) costs one event lookup (cached for a few
    seconds) and a transaction of four writes: registration, person, outbox
    and the client key. Replays and repeat scans take a slower path.
    """
    request_id = f"{command.org_id}:{command.client_key}"
    event = ctx.events.get(command.org_id, command.event_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    try:
        return ctx.uow().run(lambda uow: _check_in(uow, command, request_id, event))
    except DuplicateKeyError:
        # The client key was used before (a replay, or a concurrent double
        # tap that won the race): answer exactly as the first time.
        previous = ctx.db[CHECKIN_REQUESTS].find_one({"_id": request_id})
        if previous is None:
            raise
        return _replayed(previous, command.event_id)


def _replayed(previous: Doc, event_id: str) -> CheckinAnswer:
    if previous["event_id"] != event_id:
        raise RuleBroken("client_key_reused", "this client_key was already used for another event", "client_key")
    return CheckinAnswer(previous["status"], {**previous["body"], "replayed": True})


# How old a kiosk's queued scan may be and still be judged by its own time.
MAX_OFFLINE_AGE = timedelta(hours=24)


def door_time(scanned_at: datetime | None, received_at: datetime) -> datetime:
    """The moment the door window is judged at: when the kiosk scanned (a queue
    synced after closing time still counts), never later than now and never
    more than a day back (a wrong kiosk clock must not reopen old events)."""
    if scanned_at is None or scanned_at > received_at or received_at - scanned_at > MAX_OFFLINE_AGE:
        return received_at
    return scanned_at


def _registration_query(command: CheckinCommand) -> Doc:
    if command.badge_code is not None:
        return {"badge_code": command.badge_code}
    return {"_id": command.registration_id}


def _check_in(uow: UnitOfWork, command: CheckinCommand, request_id: str, event: Doc) -> CheckinAnswer:
    now = command.recorded_at or utcnow()
    try:
        check_door_open(
            event["status"],
            event["checkin_opens_at"],
            event["checkin_closes_at"],
            door_time(command.scanned_at, now),
            command.override,
        )
    except RuleBroken as refusal:
        # Someone already in is still told so; only a new check-in is refused.
        return _not_checked_in(uow, command, request_id, now, refusal)
    checkin = {
        "method": command.method,
        "kiosk_id": command.kiosk_id,
        "scanned_at": command.scanned_at or now,
        "received_at": now,
        "override": command.override,
        "actor_id": command.actor_id,
    }
    # The first scan of a valid badge: one read fetches the registration by its
    # unique key (badge code or id) together with the person's visit count (a
    # $lookup by _id), then one conditional update by _id writes the check-in
    # (and lifts a waitlisted registration). Five statements and the commit,
    # where update + find on both the registration and the person took seven:
    # on the local engine each statement in a transaction costs ~0.5-1 ms of
    # database CPU whatever it does, and findAndModify is dearer still.
    # The match names only the unique key, so the engine can only use that
    # key's index; the other conditions are checked on the document here.
    # The update names _id alone (a second condition costs the engine a pass
    # of its general planner, ~0.5 ms): a concurrent scan of the same badge
    # cannot check in twice, because the registration was read in this
    # transaction's snapshot and a write to it since then is a WriteConflict
    # (TransientTransactionError), so with_transaction runs this again and the
    # read then sees the check-in.
    registration, person = _registration_with_person(uow, command)
    if registration is None or registration.get("checkin") is not None:
        return _explain_not_checked_in(uow, command, request_id, now, registration)
    if (
        registration["org_id"] != command.org_id
        or registration["event_id"] != command.event_id
        or registration["status"] not in ("registered", "waitlisted")
    ):
        raise _refusal(registration, command)
    changes: Doc = {"checkin": checkin}
    if registration["status"] == "waitlisted":
        # Someone on the waitlist who came anyway is in: the door decides.
        changes["status"] = "registered"
    result = uow.db[REGISTRATIONS].update_one({"_id": registration["_id"]}, {"$set": changes}, session=uow.session)
    if result.modified_count != 1:
        return _not_checked_in(uow, command, request_id, now)
    updated = {**registration, **changes}
    uow.db[PEOPLE].update_one(
        {"_id": updated["person_id"]},
        {"$inc": {"visits": 1}, "$set": {"last_seen_at": now}, "$min": {"first_seen_at": now}},
        session=uow.session,
    )
    # The count this update made: the one read in this transaction, plus one.
    visit_number = int(person.get("visits") or 0) + 1 if person is not None else 1
    first_time = visit_number == 1
    uow.publish(
        checked_in_message(
            updated, event, first_time_ever=first_time, visit_number=visit_number, override=command.override
        )
    )
    first_name = updated["first_name"]
    answer = CheckinAnswer(
        201,
        {
            "status": "checked_in",
            "registration_id": updated["_id"],
            "name": display_name(first_name, updated["last_name"]),
            "first_name": first_name,
            "checked_in_at": to_rfc3339(now),
            "kiosk_id": command.kiosk_id,
            "visit_number": visit_number,
            "first_time_ever": first_time,
            "message": f"Welcome, {first_name}! "
            + ("First time here" if first_time else f"Welcome back, visit number {visit_number}"),
        },
    )
    _remember(uow, request_id, command, answer, now)
    if command.override:
        uow.db[AUDIT_LOG].insert_one(
            {
                "org_id": command.org_id,
                "event_id": command.event_id,
                "action": "checkin_window_override",
                "registration_id": updated["_id"],
                "actor_id": command.actor_id,
                "at": now,
                "detail": {
                    "opens_at": event["checkin_opens_at"],
                    "closes_at": event["checkin_closes_at"],
                    "within_window": event["checkin_opens_at"] <= now <= event["checkin_closes_at"],
                },
            },
            session=uow.session,
        )
    return answer


def _registration_with_person(uow: UnitOfWork, command: CheckinCommand) -> tuple[Doc | None, Doc | None]:
    """The registration (by badge code or id) and its person's visit count, in one round trip."""
    pipeline: list[Doc] = [
        {"$match": _registration_query(command)},
        {"$limit": 1},
        {
            "$lookup": {
                "from": PEOPLE,
                "localField": "person_id",
                "foreignField": "_id",
                "as": "_person",
                "pipeline": [{"$project": {"visits": 1}}],
            }
        },
    ]
    for doc in uow.db[REGISTRATIONS].aggregate(pipeline, session=uow.session):
        people = doc.pop("_person", None) or []
        return doc, (people[0] if people else None)
    return None, None


def _refusal(registration: Doc, command: CheckinCommand) -> RuleBroken:
    """Why a badge that exists is refused here, in words a person at the door understands."""
    if registration["org_id"] != command.org_id:
        return RuleBroken("unknown_badge", "we don't recognise this badge; please see the front desk")
    if registration["event_id"] != command.event_id:
        return RuleBroken("wrong_event", "this badge is for a different event; please see the front desk")
    return RuleBroken("registration_cancelled", "this registration was cancelled; please see the front desk")


def _not_checked_in(
    uow: UnitOfWork, command: CheckinCommand, request_id: str, now: datetime, refusal: RuleBroken | None = None
) -> CheckinAnswer:
    """Why no check-in was written: already in, or a badge we must refuse."""
    registration = uow.db[REGISTRATIONS].find_one(_registration_query(command), session=uow.session)
    return _explain_not_checked_in(uow, command, request_id, now, registration, refusal)


def _explain_not_checked_in(
    uow: UnitOfWork,
    command: CheckinCommand,
    request_id: str,
    now: datetime,
    registration: Doc | None,
    refusal: RuleBroken | None = None,
) -> CheckinAnswer:
    if registration is None:
        raise RuleBroken("unknown_badge", "we don't recognise this badge; please see the front desk")
    if (
        registration["org_id"] != command.org_id
        or registration["event_id"] != command.event_id
        or registration["status"] == "cancelled"
    ):
        raise _refusal(registration, command)
    existing = registration["checkin"]
    if existing is None:
        # Valid and not yet in: the door refused it, or a concurrent scan raced us.
        raise refusal or RuleBroken("conflict", "checked in concurrently; please scan again")
    name = display_name(registration["first_name"], registration["last_name"])
    event = uow.db[EVENTS].find_one({"_id": registration["event_id"]}, {"timezone": 1}, session=uow.session) or {}
    at = existing["received_at"].astimezone(ZoneInfo(event.get("timezone", "UTC")))
    where = ""
    if existing.get("kiosk_id"):
        kiosk = uow.db[KIOSKS].find_one({"_id": existing["kiosk_id"]}, {"name": 1}, session=uow.session)
        where = f" at {kiosk['name']}" if kiosk else ""
    answer = CheckinAnswer(
        200,
        {
            "status": "already_checked_in",
            "registration_id": registration["_id"],
            "name": name,
            "checked_in_at": to_rfc3339(existing["received_at"]),
            "kiosk_id": existing.get("kiosk_id"),
            "message": f"{name} already checked in at {at:%H:%M}{where}",
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


@dataclass(frozen=True, slots=True)
class CheckoutCommand:
    org_id: str
    event_id: str
    client_key: str
    badge_code: str | None = None
    registration_id: str | None = None
    kiosk_id: str | None = None
    method: str = "qr"
    scanned_at: datetime | None = None
    closed_by: str = "attendee"
    actor_id: str | None = None


def record_checkout(ctx: Context, command: CheckoutCommand) -> CheckinAnswer:
    """Check someone out (volunteer hours); idempotent by client key like check-ins."""
    request_id = f"{command.org_id}:{command.client_key}"
    event = ctx.events.get(command.org_id, command.event_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    try:
        return ctx.uow().run(lambda uow: _check_out(uow, command, request_id, event))
    except DuplicateKeyError:
        previous = ctx.db[CHECKIN_REQUESTS].find_one({"_id": request_id})
        if previous is None:
            raise
        return _replayed(previous, command.event_id)


def _check_out(uow: UnitOfWork, command: CheckoutCommand, request_id: str, event: Doc) -> CheckinAnswer:
    now = utcnow()
    query = {"badge_code": command.badge_code} if command.badge_code is not None else {"_id": command.registration_id}
    registration = uow.db[REGISTRATIONS].find_one(query, session=uow.session)
    if registration is None or registration["org_id"] != command.org_id:
        raise RuleBroken("unknown_badge", "we don't recognise this badge; please see the front desk")
    if registration["event_id"] != command.event_id:
        raise RuleBroken("wrong_event", "this badge is for a different event; please see the front desk")
    name = display_name(registration["first_name"], registration["last_name"])
    if not registration.get("checkin"):
        raise RuleBroken("not_checked_in", f"{name} has not checked in yet")
    fake = CheckinCommand(command.org_id, command.event_id, command.client_key, command.method)
    if registration.get("checkout"):
        out = registration["checkout"]
        answer = CheckinAnswer(
            200,
            {
                "status": "already_checked_out",
                "registration_id": registration["_id"],
                "name": name,
                "hours": out["hours"],
                "message": f"{name} already checked out at {out['received_at']:%H:%M} UTC",
            },
        )
        _remember(uow, request_id, fake, answer, now)
        return answer
    scanned = command.scanned_at or now
    hours = volunteer_hours(registration["checkin"]["scanned_at"], scanned)
    checkout = {
        "method": command.method,
        "kiosk_id": command.kiosk_id,
        "scanned_at": scanned,
        "received_at": now,
        "hours": hours,
        "closed_by": command.closed_by,
        "actor_id": command.actor_id,
    }
    result = uow.db[REGISTRATIONS].update_one(
        {"_id": registration["_id"], "checkout": {"$in": [None]}}, {"$set": {"checkout": checkout}}, session=uow.session
    )
    if result.modified_count != 1:
        raise RuleBroken("conflict", "checked out concurrently; please scan again")
    uow.db[PEOPLE].update_one(
        {"_id": registration["person_id"]}, {"$inc": {"volunteer_hours": hours}}, session=uow.session
    )
    person = uow.db[PEOPLE].find_one({"_id": registration["person_id"]}, {"volunteer_hours": 1}, session=uow.session)
    total = round(float(person.get("volunteer_hours", hours)) if person else hours, 2)
    registration["checkout"] = checkout
    uow.publish(checked_out_message(registration, event))
    answer = CheckinAnswer(
        200,
        {
            "status": "checked_out",
            "registration_id": registration["_id"],
            "name": name,
            "hours": hours,
            "total_hours": total,
            "message": f"Thank you, {registration['first_name']}! {hours:g} hours today, {total:g} in all",
        },
    )
    _remember(uow, request_id, fake, answer, now)
    return answer


def close_forgotten_checkouts(uow: UnitOfWork, event: Doc, ended_at: datetime) -> int:
    """At a volunteer event's end, check out everyone still in, at the end time (rule recorded)."""
    if event["kind"] != "volunteer_shift":
        return 0
    # The event's registrations by its index, filtered here: with the
    # "$ne"/"$in" conditions in the filter SecantusDB scanned every
    # registration of every event (24 ms at 20,000, against 13 ms for the
    # event's own 500; the scan grows with every event ever held).
    # In _id order (ObjectIds, so creation order), as the scan returned them.
    still_in = sorted(
        (
            registration
            for registration in uow.db[REGISTRATIONS].find({"event_id": event["_id"]}, session=uow.session)
            if registration.get("checkin") is not None and registration.get("checkout") is None
        ),
        key=lambda registration: str(registration["_id"]),
    )
    for registration in still_in:
        closing = min(ended_at, event["ends_at"])
        hours = volunteer_hours(registration["checkin"]["scanned_at"], closing)
        checkout = {
            "method": "auto",
            "kiosk_id": None,
            "scanned_at": closing,
            "received_at": ended_at,
            "hours": hours,
            "closed_by": "event_end",
            "rule": "not checked out: closed at the event's end time",
            "actor_id": None,
        }
        uow.db[REGISTRATIONS].update_one(
            {"_id": registration["_id"]}, {"$set": {"checkout": checkout}}, session=uow.session
        )
        uow.db[PEOPLE].update_one(
            {"_id": registration["person_id"]}, {"$inc": {"volunteer_hours": hours}}, session=uow.session
        )
        registration["checkout"] = checkout
        uow.publish(checked_out_message(registration, event))
    return len(still_in)
