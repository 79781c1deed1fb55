"""Applies messages to the projections, batched into one bulk write per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne

from analytics.adapters.mongo import EVENT_FIGURES
from analytics.domain.projections import EventFigures, figures_change
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork

HANDLED_TYPES = (
    "event.scheduled",
    "event.updated",
    "event.cancelled",
    "event.ended",
    "attendee.registered",
    "registration.cancelled",
    "attendee.checked_in",
    "attendee.checked_out",
)


def merge(changes: Sequence[EventFigures]) -> dict[str, EventFigures]:
    """Fold many changes to the same event into one (the counters commute)."""
    merged: dict[str, EventFigures] = {}
    for change in changes:
        target = merged.setdefault(change.event_id, EventFigures(change.event_id, change.org_id))
        for name, amount in change.inc.items():
            target.add(name, amount)
        target.set.update(change.set)
    return merged


def project(uow: UnitOfWork, messages: Sequence[Envelope]) -> None:
    """The consumer's handler: update event figures for new messages."""
    changes = [c for m in messages if (c := figures_change(m.type, m.data)) is not None]
    ops: list[UpdateOne] = []
    for change in merge(changes).values():
        update: dict[str, Any] = {"$setOnInsert": {"org_id": change.org_id}}
        if change.inc:
            update["$inc"] = change.inc
        if change.set:
            update["$set"] = change.set
        ops.append(UpdateOne({"_id": change.event_id}, update, upsert=True))
    if ops:
        uow.db[EVENT_FIGURES].bulk_write(ops, ordered=False, session=uow.session)
