"""Recurring events: a series of occurrences created in one step, each a real event of its own
(own id, check-in, ``event.scheduled``); edited or cancelled one at a time or "this and following"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from checkin.adapters.ids import new_id
from checkin.domain.model import EventStatus, RuleBroken
from checkin.domain.series import SCOPES, Recurrence, local_date, moved_to, occurrence_times
from checkin.service_layer import events
from checkin.service_layer.context import Context
from checkin.service_layer.ports import Transaction
from turnout_common.clock import utcnow
from turnout_common.types import Doc


def schedule_series(ctx: Context, org_id: str, recurrence: Recurrence, **fields: Any) -> list[Doc]:
    """Every occurrence of a new series, stored and announced in one transaction (all or none)."""
    times = occurrence_times(fields["starts_at"], fields["ends_at"], fields["timezone"], recurrence)
    series_id = new_id()
    occurrences = []
    for number, (starts_at, ends_at) in enumerate(times, start=1):
        event = events.new_event(org_id, **{**fields, "starts_at": starts_at, "ends_at": ends_at})
        event.update(series_id=series_id, occurrence=number, recurrence=recurrence.as_doc())
        occurrences.append(event)

    def work(tx: Transaction) -> list[Doc]:
        for event in occurrences:
            tx.store.events.add(event)
            tx.publish(events.snapshot_message("event.scheduled", event))
        return occurrences

    return ctx.uow().run(work)


def occurrences(ctx: Context, org_id: str, series_id: str) -> list[Doc]:
    found = ctx.store.events.in_series(org_id, series_id)
    if not found:
        raise RuleBroken("series_not_found", "no such series in your organization")
    return found


def sizes(ctx: Context, org_id: str, series_ids: list[str]) -> dict[str, int]:
    """How many occurrences each series has (for "3 of 8"); a page lists a handful of series."""
    return {series_id: len(ctx.store.events.in_series(org_id, series_id)) for series_id in series_ids}


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise RuleBroken("invalid_field", "scope: this or following", "scope")


def _following(tx: Transaction, event: Doc, now: datetime) -> list[Doc]:
    """The chosen occurrence and the later ones still to come (past/ended/cancelled ones are left)."""
    later = tx.store.events.in_series(event["org_id"], event["series_id"])
    return [
        doc
        for doc in later
        if doc["occurrence"] > event["occurrence"]
        and doc["status"] == EventStatus.SCHEDULED.value
        and doc["ends_at"] > now
    ]


def update_occurrences(ctx: Context, org_id: str, event_id: str, changes: dict[str, Any], scope: str) -> list[Doc]:
    """Edit one occurrence, or it and the following ones (new times keep their local wall-clock
    time on each occurrence's own date). Returns the edited events, the chosen one first."""
    _check_scope(scope)
    events.check_changes(changes)
    now = utcnow()

    def work(tx: Transaction) -> list[Doc]:
        event = tx.store.events.get_scoped(event_id, org_id)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        if scope == "this" or not event.get("series_id"):
            return [events.apply_changes(tx, event, changes)]
        zone = str(changes.get("timezone", event["timezone"]))
        template_day = local_date(event["starts_at"], event["timezone"])
        edited = [events.apply_changes(tx, event, changes)]
        for later in _following(tx, event, now):
            own = dict(changes)
            day = local_date(later["starts_at"], later["timezone"])
            if "starts_at" in changes:
                own["starts_at"] = moved_to(changes["starts_at"], zone, template_day, day)
            if "ends_at" in changes:
                own["ends_at"] = moved_to(changes["ends_at"], zone, template_day, day)
            if "timezone" in changes and "starts_at" not in changes:  # same wall-clock times, new zone
                own["starts_at"] = _rezone(later["starts_at"], later["timezone"], zone)
                own["ends_at"] = _rezone(later["ends_at"], later["timezone"], zone)
            edited.append(events.apply_changes(tx, later, own))
        return edited

    result = ctx.uow().run(work)
    for doc in result:
        ctx.events.forget(org_id, doc["_id"])
    return result


def _rezone(moment: datetime, old_zone: str, new_zone: str) -> datetime:
    local = moment.astimezone(ZoneInfo(old_zone)).replace(tzinfo=ZoneInfo(new_zone))
    return local.astimezone(UTC)


def cancel_occurrences(ctx: Context, org_id: str, event_id: str, reason: str | None, scope: str) -> list[Doc]:
    """Cancel one occurrence (``event.cancelled`` for it only) or it and the following ones."""
    _check_scope(scope)
    if scope == "this":
        return [events.cancel_event(ctx, org_id, event_id, reason)]
    now = utcnow()

    def work(tx: Transaction) -> list[Doc]:
        event = tx.store.events.get_scoped(event_id, org_id)
        if event is None:
            raise RuleBroken("event_not_found", "no such event in your organization")
        chosen = [event] + (_following(tx, event, now) if event.get("series_id") else [])
        cancelled = []
        for doc in chosen:
            if doc["status"] == EventStatus.CANCELLED.value:
                continue
            if doc["status"] != EventStatus.SCHEDULED.value:
                raise RuleBroken("event_closed", f"this event is {doc['status']}; it cannot be cancelled")
            doc.update(status=EventStatus.CANCELLED.value, cancelled_at=now, cancel_reason=reason)
            tx.store.events.set_cancelled(doc["_id"], doc["status"], now, reason)
            tx.publish(events.snapshot_message("event.cancelled", doc))
            cancelled.append(doc)
        return cancelled

    result = ctx.uow().run(work)
    for doc in result:
        ctx.events.forget(org_id, doc["_id"])
    return result
