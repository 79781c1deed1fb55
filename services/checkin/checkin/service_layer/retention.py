"""The retention policy (owners set it; every service enforces its part) and
checkin's own sweep of old check-in details.

- ``schedule_of``: each kind's period (defaults marked), what it covers, which
  services enforce it and the cut-off it means today.
- ``set_policy``: one transaction writes the organization's
  ``retention_periods``, the ``retention.changed`` audit entry and
  ``retention.policy_set`` (followup and analytics keep the latest).
- ``sweep_checkin_details``: for events that ended longer ago than their
  organization's ``checkin_details`` period, delete their per-scan request
  records and clear the kiosk/staff fields of their check-ins and check-outs
  and walk-ins' answers. The registrations, their status and check-in times
  stay, so attendance counts do not change. Each step is idempotent and an
  event is marked swept last, so a sweep cut short is finished by the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from checkin.domain.audit import RETENTION_CHANGED, Actor, Subject
from checkin.domain.model import RuleBroken
from checkin.domain.retention import ScheduleRow, changes, cutoff, read_periods, schedule, stored_periods
from checkin.service_layer import audit
from checkin.service_layer.context import Context
from checkin.service_layer.messages import SOURCE
from checkin.service_layer.ports import Transaction
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.privacy import RetentionPeriods
from turnout_common.types import Doc

# Events swept per round (each round: one delete, three updates, one mark).
SWEEP_BATCH = 50


@dataclass(frozen=True, slots=True)
class Policy:
    periods: RetentionPeriods
    chosen: bool  # an owner set it (False: the defaults)
    set_at: datetime | None
    set_by: str | None
    rows: list[ScheduleRow]


def periods_of(ctx: Context, org_id: str) -> RetentionPeriods:
    """The organization's periods (the defaults until an owner sets others)."""
    return stored_periods(ctx.store.retention.policy_of(org_id))


def schedule_of(ctx: Context, org_id: str, now: datetime | None = None) -> Policy:
    org = ctx.store.organizations.get(org_id)
    if org is None:
        raise RuleBroken("organization_not_found", "no such organization")
    stored = org.get("retention_periods")
    periods = stored_periods(stored)
    return Policy(
        periods=periods,
        chosen=isinstance(stored, dict),
        set_at=org.get("retention_set_at"),
        set_by=org.get("retention_set_by"),
        rows=schedule(periods, now or utcnow()),
    )


def policy_set_message(org_id: str, periods: RetentionPeriods, set_at: datetime, set_by: str | None) -> Envelope:
    data: Doc = {"org_id": org_id, "periods": periods.as_dict(), "set_at": to_rfc3339(set_at)}
    if set_by:
        data["set_by"] = set_by
    return new_envelope("retention.policy_set", source=SOURCE, subject=org_id, data=data)


def set_policy(ctx: Context, org_id: str, actor: Actor, values: dict[str, object]) -> tuple[RetentionPeriods, Doc]:
    """Store the periods an owner chose (kinds not given keep their current period).

    Raises ``PolicyInvalid`` naming the bad kind. Returns the periods now in
    force and the audit entry.
    """

    def work(tx: Transaction) -> tuple[RetentionPeriods, Doc]:
        now = utcnow()
        before = stored_periods(tx.store.retention.policy_of(org_id))
        after = read_periods(dict(values), before)
        if not tx.store.retention.set_policy(org_id, after.as_dict(), now, actor.id):
            raise RuleBroken("organization_not_found", "no such organization")
        entry = audit.record(
            tx.store,
            org_id,
            actor,
            RETENTION_CHANGED,
            Subject("organization", org_id),
            at=now,
            details={"periods": after.as_dict(), "changed": changes(before, after)},
        )
        tx.publish(policy_set_message(org_id, after, now, actor.id))
        return after, entry

    return ctx.uow().run(work)


# -- the sweep ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepResult:
    events: int = 0
    requests: int = 0
    registrations: int = 0

    def __add__(self, other: SweepResult) -> SweepResult:
        return SweepResult(
            self.events + other.events, self.requests + other.requests, self.registrations + other.registrations
        )


def sweep_checkin_details(ctx: Context, now: datetime | None = None, batch: int = SWEEP_BATCH) -> SweepResult:
    """Clear old events' check-in details in every organization, by its own period; return what was done."""
    moment = now or utcnow()
    total = SweepResult()
    for org_id, stored in ctx.store.retention.policies():
        total += sweep_organization(ctx, org_id, cutoff(moment, stored_periods(stored).checkin_details), moment, batch)
    return total


def sweep_organization(ctx: Context, org_id: str, before: datetime, now: datetime, batch: int) -> SweepResult:
    """Clear the check-in details of the organization's events that ended before ``before``."""
    retention = ctx.store.retention
    total = SweepResult()
    while True:
        event_ids = retention.events_to_sweep(org_id, before, batch)
        if not event_ids:
            return total
        requests = retention.forget_checkin_requests(org_id, event_ids)
        registrations = retention.strip_checkin_details(event_ids)
        retention.mark_details_swept(event_ids, now)
        total += SweepResult(len(event_ids), requests, registrations)
        if len(event_ids) < batch:
            return total
