"""Events (the gatherings): schedule, end, and the automatic end at end time."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from checkin.adapters.mongo import EVENTS, REGISTRATIONS
from checkin.bootstrap import Context
from checkin.domain.model import EventStatus, RuleBroken, check_timezone, plan_schedule
from checkin.service_layer.checkins import close_forgotten_checkouts
from checkin.service_layer.messages import event_message
from turnout_common.clock import utcnow
from turnout_common.mongo import UnitOfWork, find_in_org

Doc = dict[str, Any]


def schedule_event(
    ctx: Context,
    org_id: str,
    *,
    title: str,
    kind: str,
    starts_at: datetime,
    ends_at: datetime,
    timezone: str,
    venue: str | None = None,
    capacity: int | None = None,
    description: str | None = None,
    checkin_opens_minutes_before: int = 60,
    checkin_closes_minutes_after: int = 60,
) -> Doc:
    check_timezone(timezone)
    plan = plan_schedule(starts_at, ends_at, checkin_opens_minutes_before, checkin_closes_minutes_after)
    event = {
        "_id": str(ObjectId()),
        "org_id": org_id,
        "title": title.strip(),
        "kind": kind,
        "starts_at": plan.starts_at,
        "ends_at": plan.ends_at,
        "timezone": timezone,
        "venue": venue,
        "capacity": capacity,
        "description": description,
        "checkin_opens_at": plan.checkin_opens_at,
        "checkin_closes_at": plan.checkin_closes_at,
        "status": EventStatus.SCHEDULED.value,
        "registered_count": 0,
        "public_token": secrets.token_urlsafe(12),
        "created_at": utcnow(),
    }

    def work(uow: UnitOfWork) -> Doc:
        uow.db[EVENTS].insert_one(event, session=uow.session)
        uow.publish(event_message("event.scheduled", event))
        return event

    return ctx.uow().run(work)


def attendance_counts(ctx: Context, event_ids: list[str]) -> dict[str, dict[str, int]]:
    """Registered, waitlisted and checked-in counts for several events in one query."""
    counts: dict[str, dict[str, int]] = {
        event_id: {"registered": 0, "waitlisted": 0, "checked_in": 0} for event_id in event_ids
    }
    rows = ctx.db[REGISTRATIONS].aggregate(
        [
            {"$match": {"event_id": {"$in": event_ids}}},
            {
                "$group": {
                    "_id": "$event_id",
                    "registered": {"$sum": {"$cond": [{"$eq": ["$status", "registered"]}, 1, 0]}},
                    "waitlisted": {"$sum": {"$cond": [{"$eq": ["$status", "waitlisted"]}, 1, 0]}},
                    "checked_in": {"$sum": {"$cond": [{"$gt": ["$checkin", None]}, 1, 0]}},
                }
            },
        ]
    )
    for row in rows:
        counts[row["_id"]] = {name: int(row[name]) for name in ("registered", "waitlisted", "checked_in")}
    return counts


def get_event(ctx: Context, org_id: str, event_id: str) -> Doc:
    event = find_in_org(ctx.db[EVENTS], event_id, org_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    return event


def end_event(ctx: Context, org_id: str, event_id: str, ended_by: str, now: datetime | None = None) -> Doc:
    """Mark an event ended and publish ``event.ended`` exactly once."""

    def work(uow: UnitOfWork) -> Doc:
        moment = now or utcnow()
        event = uow.db[EVENTS].find_one_and_update(
            {"_id": event_id, "org_id": org_id, "status": EventStatus.SCHEDULED.value},
            {"$set": {"status": EventStatus.ENDED.value, "ended_at": moment, "ended_by": ended_by}},
            return_document=ReturnDocument.AFTER,
            session=uow.session,
        )
        if event is None:
            existing = uow.db[EVENTS].find_one({"_id": event_id, "org_id": org_id}, session=uow.session)
            if existing is None:
                raise RuleBroken("event_not_found", "no such event in your organization")
            if existing["status"] == EventStatus.ENDED.value:
                return existing  # ended before: nothing new to publish
            raise RuleBroken("event_cancelled", "a cancelled event cannot be ended")
        uow.publish(event_message("event.ended", event))
        close_forgotten_checkouts(uow, event, moment)
        return event

    ended = ctx.uow().run(work)
    ctx.events.forget(org_id, event_id)
    return ended


def end_due_events(ctx: Context, now: datetime | None = None, limit: int = 100) -> int:
    """End every scheduled event whose end time has passed; return how many."""
    moment = now or utcnow()
    due = (
        ctx.db[EVENTS]
        .find({"status": EventStatus.SCHEDULED.value, "ends_at": {"$lte": moment}}, {"org_id": 1})
        .limit(limit)
    )
    ended = 0
    for event in due:
        end_event(ctx, event["org_id"], event["_id"], "schedule", now=moment)
        ended += 1
    return ended


EDITABLE = ("title", "venue", "capacity", "description", "starts_at", "ends_at", "timezone", "kind")


def update_event(ctx: Context, org_id: str, event_id: str, changes: dict[str, Any]) -> Doc:
    """Edit a scheduled event and publish ``event.updated``."""
    unknown = set(changes) - set(EDITABLE) - {"checkin_opens_minutes_before", "checkin_closes_minutes_after"}
    if unknown:
        raise RuleBroken("invalid_field", f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])

    def work(uow: UnitOfWork) -> Doc:
        event = uow.db[EVENTS].find_one({"_id": event_id, "org_id": org_id}, session=uow.session)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        if event["status"] != EventStatus.SCHEDULED.value:
            raise RuleBroken("event_closed", f"this event is {event['status']}; it can no longer be edited")
        updated = {**event, **{k: v for k, v in changes.items() if k in EDITABLE}}
        if "title" in changes:
            updated["title"] = str(changes["title"]).strip()
        check_timezone(updated["timezone"])
        before = event["starts_at"] - event["checkin_opens_at"]
        after = event["checkin_closes_at"] - event["ends_at"]
        plan = plan_schedule(
            updated["starts_at"],
            updated["ends_at"],
            int(changes.get("checkin_opens_minutes_before", before.total_seconds() // 60)),
            int(changes.get("checkin_closes_minutes_after", after.total_seconds() // 60)),
        )
        updated["checkin_opens_at"] = plan.checkin_opens_at
        updated["checkin_closes_at"] = plan.checkin_closes_at
        updated["updated_at"] = utcnow()
        uow.db[EVENTS].replace_one({"_id": event_id}, updated, session=uow.session)
        uow.publish(event_message("event.updated", updated))
        return updated

    result = ctx.uow().run(work)
    ctx.events.forget(org_id, event_id)
    return result


def cancel_event(ctx: Context, org_id: str, event_id: str, reason: str | None) -> Doc:
    """Cancel a scheduled event (publishes ``event.cancelled`` once; check-in closes)."""

    def work(uow: UnitOfWork) -> Doc:
        event = uow.db[EVENTS].find_one({"_id": event_id, "org_id": org_id}, session=uow.session)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        if event["status"] == EventStatus.CANCELLED.value:
            return event
        if event["status"] != EventStatus.SCHEDULED.value:
            raise RuleBroken("event_closed", f"this event is {event['status']}; it cannot be cancelled")
        event.update(status=EventStatus.CANCELLED.value, cancelled_at=utcnow(), cancel_reason=reason)
        uow.db[EVENTS].update_one(
            {"_id": event_id},
            {"$set": {"status": event["status"], "cancelled_at": event["cancelled_at"], "cancel_reason": reason}},
            session=uow.session,
        )
        uow.publish(event_message("event.cancelled", event))
        return event

    result = ctx.uow().run(work)
    ctx.events.forget(org_id, event_id)
    return result
