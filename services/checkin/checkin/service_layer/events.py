"""Events (the gatherings): schedule, end, and the automatic end at end time."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from checkin.adapters.ids import new_id
from checkin.domain.model import EventStatus, RuleBroken, check_timezone, plan_schedule
from checkin.service_layer.checkins import close_forgotten_checkouts, hours_link_for
from checkin.service_layer.context import Context
from checkin.service_layer.messages import event_message
from checkin.service_layer.ports import EventsOverview, Transaction
from turnout_common.clock import utcnow
from turnout_common.envelope import Envelope
from turnout_common.types import Doc


def snapshot_message(event_type: str, event: Doc) -> Envelope:
    """The event's message with what events carry beyond the common snapshot:
    ``name_labels`` (scheduled/updated) and, for an occurrence of a series,
    ``series_id`` and ``occurrence`` (scheduled/updated/cancelled)."""
    message = event_message(event_type, event)
    if event_type in ("event.scheduled", "event.updated"):
        message.data["name_labels"] = bool(event.get("name_labels", False))
    if event.get("series_id"):
        message.data["series_id"] = event["series_id"]
        message.data["occurrence"] = event.get("occurrence")
    return message


def new_event(
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
    name_labels: bool = False,
) -> Doc:
    """A new scheduled event's document (checked, not stored)."""
    check_timezone(timezone)
    plan = plan_schedule(starts_at, ends_at, checkin_opens_minutes_before, checkin_closes_minutes_after)
    return {
        "_id": new_id(),
        "org_id": org_id,
        "title": title.strip(),
        "kind": kind,
        "starts_at": plan.starts_at,
        "ends_at": plan.ends_at,
        "timezone": timezone,
        "venue": venue,
        "capacity": capacity,
        "description": description,
        "name_labels": bool(name_labels),
        "checkin_opens_at": plan.checkin_opens_at,
        "checkin_closes_at": plan.checkin_closes_at,
        "status": EventStatus.SCHEDULED.value,
        "registered_count": 0,
        "public_token": secrets.token_urlsafe(12),
        "created_at": utcnow(),
    }


def schedule_event(ctx: Context, org_id: str, **fields: Any) -> Doc:
    """Schedule one event (the fields of ``new_event``) and publish ``event.scheduled``."""
    event = new_event(org_id, **fields)

    def work(tx: Transaction) -> Doc:
        tx.store.events.add(event)
        tx.publish(snapshot_message("event.scheduled", event))
        return event

    return ctx.uow().run(work)


def attendance_counts(ctx: Context, event_ids: list[str]) -> dict[str, dict[str, int]]:
    """Registered, waitlisted and checked-in counts for several events in one query."""
    return ctx.store.registrations.attendance_counts(event_ids)


def get_event(ctx: Context, org_id: str, event_id: str) -> Doc:
    event = ctx.store.events.get_in_org(event_id, org_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    return event


def end_event(ctx: Context, org_id: str, event_id: str, ended_by: str, now: datetime | None = None) -> Doc:
    """Mark an event ended and publish ``event.ended`` exactly once."""

    def work(tx: Transaction) -> Doc:
        moment = now or utcnow()
        event = tx.store.events.end_if_scheduled(event_id, org_id, moment, ended_by)
        if event is None:
            existing = tx.store.events.get_scoped(event_id, org_id)
            if existing is None:
                raise RuleBroken("event_not_found", "no such event in your organization")
            if existing["status"] == EventStatus.ENDED.value:
                return existing  # ended before: nothing new to publish
            raise RuleBroken("event_cancelled", "a cancelled event cannot be ended")
        tx.publish(event_message("event.ended", event))
        close_forgotten_checkouts(tx, event, moment, hours_link_for(ctx))
        return event

    ended = ctx.uow().run(work)
    ctx.events.forget(org_id, event_id)
    return ended


def end_due_events(ctx: Context, now: datetime | None = None, limit: int = 100) -> int:
    """End every scheduled event whose end time has passed; return how many."""
    moment = now or utcnow()
    due = ctx.store.events.due_to_end(moment, limit)
    ended = 0
    for event in due:
        end_event(ctx, event["org_id"], event["_id"], "schedule", now=moment)
        ended += 1
    return ended


EDITABLE = (
    "title",
    "venue",
    "capacity",
    "description",
    "starts_at",
    "ends_at",
    "timezone",
    "kind",
    "name_labels",
)


def check_changes(changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(EDITABLE) - {"checkin_opens_minutes_before", "checkin_closes_minutes_after"}
    if unknown:
        raise RuleBroken("invalid_field", f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])


def apply_changes(tx: Transaction, event: Doc, changes: dict[str, Any]) -> Doc:
    """Edit one scheduled event inside ``tx``: store it and publish ``event.updated``."""
    if event["status"] != EventStatus.SCHEDULED.value:
        raise RuleBroken("event_closed", f"this event is {event['status']}; it can no longer be edited")
    updated = {**event, **{k: v for k, v in changes.items() if k in EDITABLE}}
    if "title" in changes:
        updated["title"] = str(changes["title"]).strip()
    if "name_labels" in changes:
        updated["name_labels"] = bool(changes["name_labels"])
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
    tx.store.events.replace(updated)
    tx.publish(snapshot_message("event.updated", updated))
    return updated


def update_event(ctx: Context, org_id: str, event_id: str, changes: dict[str, Any]) -> Doc:
    """Edit a scheduled event and publish ``event.updated``."""

    check_changes(changes)

    def work(tx: Transaction) -> Doc:
        event = tx.store.events.get_scoped(event_id, org_id)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        return apply_changes(tx, event, changes)

    result = ctx.uow().run(work)
    ctx.events.forget(org_id, event_id)
    return result


def cancel_event(ctx: Context, org_id: str, event_id: str, reason: str | None) -> Doc:
    """Cancel a scheduled event (publishes ``event.cancelled`` once; check-in closes)."""

    def work(tx: Transaction) -> Doc:
        event = tx.store.events.get_scoped(event_id, org_id)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        if event["status"] == EventStatus.CANCELLED.value:
            return event
        if event["status"] != EventStatus.SCHEDULED.value:
            raise RuleBroken("event_closed", f"this event is {event['status']}; it cannot be cancelled")
        event.update(status=EventStatus.CANCELLED.value, cancelled_at=utcnow(), cancel_reason=reason)
        tx.store.events.set_cancelled(event_id, event["status"], event["cancelled_at"], reason)
        tx.publish(snapshot_message("event.cancelled", event))
        return event

    result = ctx.uow().run(work)
    ctx.events.forget(org_id, event_id)
    return result


def list_events(ctx: Context, org_id: str, skip: int, limit: int) -> list[Doc]:
    """A page of the organization's events, newest first."""
    return ctx.store.events.page_of_org(org_id, skip, limit)


def overview(ctx: Context, org_id: str, past_skip: int, past_limit: int) -> EventsOverview:
    """Happening now, upcoming and (a page of) past events: each event in exactly one group."""
    return ctx.store.events.overview(org_id, utcnow(), past_skip, past_limit)


def default_timezone(ctx: Context, org_id: str) -> str:
    """The zone of the organization's latest event ("" if it has none)."""
    return ctx.store.events.latest_timezone(org_id) or ""


def public_token(ctx: Context, event: Doc) -> str:
    """The event's unguessable public registration link token (made on first use)."""
    token = event.get("public_token")
    if token:
        return str(token)
    token = secrets.token_urlsafe(12)
    stored = ctx.store.events.ensure_public_token(event["_id"], token)
    return stored or token


def event_by_public_token(ctx: Context, token: str) -> Doc | None:
    return ctx.store.events.by_public_token(token)
