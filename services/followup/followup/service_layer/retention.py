"""Retention: each organization's policy (the newest ``retention.policy_set``)
and the sweep that enforces follow-up's part of it (see
``followup.domain.retention``).

The sweep works through *finished send batches* (every message belongs to
one), oldest first, per organization: a batch whose due time is past a
period's cut-off has its messages' bodies stripped, their journal entries
deleted, or their link tracking removed, and is marked swept for that
period. Only what is older than the cut-off is touched: a batch holding a
newer attempt (a retry, a resend) is looked at again by a later sweep. A
resent message reopens its batch, which clears the marks. The statuses,
counts and figures do not change.

Runs in the worker's ``retention`` loop: once at start and every
``FOLLOWUP_RETENTION_SWEEP_SECONDS``, on the service's clock (a test moves
it). Several workers share it through the scans' claim.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from followup.domain.delivery import ACCEPTED, SENDING, journal_id
from followup.domain.retention import BODIES, JOURNAL, TRACKING, Cutoffs, periods_of, replaces
from followup.service_layer.context import Services
from followup.service_layer.repositories import Store
from turnout_common.clock import parse_rfc3339
from turnout_common.envelope import Envelope
from turnout_common.privacy import RetentionPeriods
from turnout_common.types import Doc

log = logging.getLogger("followup.retention")

SCAN = "retention"
BATCHES_AT_ONCE = 200


def store_policy(store: Store, message: Envelope) -> bool:
    """Keep the organization's policy unless a newer one is stored; whether it was kept."""
    data = message.data
    set_at = parse_rfc3339(data["set_at"])
    if not replaces(store.retention.get(data["org_id"]), set_at):
        return False
    periods = RetentionPeriods.from_dict(data["periods"])
    store.retention.put(
        data["org_id"],
        {"org_id": data["org_id"], "periods": periods.as_dict(), "set_at": set_at, "set_by": data.get("set_by")},
    )
    return True


def policy_of(store: Store, org_id: str) -> RetentionPeriods:
    return periods_of(store.retention.get(org_id))


@dataclass
class SweepReport:
    bodies_removed: int = 0
    journal_entries_deleted: int = 0
    messages_untracked: int = 0
    batches: dict[str, int] = field(default_factory=dict)  # sweep -> batches finished

    @property
    def changed(self) -> int:
        return self.bodies_removed + self.journal_entries_deleted + self.messages_untracked


def _attempts(nudges: list[Doc]) -> list[tuple[str, int]]:
    return [(n["_id"], a) for n in nudges for a in range(1, int(n.get("attempts") or 0) + 1)]


def sweep(svc: Services, now: datetime | None = None, force: bool = False) -> SweepReport | None:
    """Enforce every organization's periods once (None: another worker swept recently)."""
    now = now or svc.now()
    interval = timedelta(seconds=svc.settings.retention_sweep_seconds)
    store = svc.store
    if not force and not store.scans.claim(SCAN, now, now + interval):
        return None
    report = SweepReport()
    policies = {doc["_id"]: periods_of(doc) for doc in store.retention.all()}
    for org_id in sorted(set(store.batches.org_ids()) | set(policies)):
        cutoffs = Cutoffs.of(policies.get(org_id) or periods_of(None), now)
        _sweep_org(store, org_id, cutoffs, now, report)
    if report.changed:
        log.info(
            "retention sweep",
            extra={
                "bodies_removed": report.bodies_removed,
                "journal_entries_deleted": report.journal_entries_deleted,
                "messages_untracked": report.messages_untracked,
            },
        )
    return report


def _sweep_org(store: Store, org_id: str, cutoffs: Cutoffs, now: datetime, report: SweepReport) -> None:
    for stage, before in (
        (BODIES, cutoffs.message_bodies),
        (JOURNAL, cutoffs.delivery_journal),
        (TRACKING, cutoffs.tracking_events),
    ):
        while True:
            batches = store.batches.to_sweep(org_id, stage, before, BATCHES_AT_ONCE)
            finished = 0
            for batch in batches:
                nudges = store.nudges.of_batch(batch["_id"])
                if _sweep_batch(store, stage, nudges, before, now, report):
                    store.batches.swept(batch["_id"], stage, now)
                    finished += 1
            report.batches[stage] = report.batches.get(stage, 0) + finished
            # Batches holding something newer stay unmarked: look at them next sweep.
            if len(batches) < BATCHES_AT_ONCE or finished == 0:
                break


def _sweep_batch(
    store: Store, stage: str, nudges: list[Doc], before: datetime, now: datetime, report: SweepReport
) -> bool:
    """Sweep one batch's messages; whether everything of theirs is past the cut-off now."""
    if stage == BODIES:
        stripped, newer = store.rendered.strip([f"{fid}:{a}" for fid, a in _attempts(nudges)], now, before)
        report.bodies_removed += stripped
        return newer == 0
    if stage == JOURNAL:
        ids = [journal_id(fid, a, step) for fid, a in _attempts(nudges) for step in (SENDING, ACCEPTED)]
        deleted, newer = store.journal.delete(ids, before)
        report.journal_entries_deleted += deleted
        return newer == 0
    report.messages_untracked += store.nudges.strip_tracking([n["_id"] for n in nudges], before, now)
    return all(n.get("sent_at") is None or n["sent_at"] < before for n in nudges)


def run_retention(svc: Services, stop: threading.Event) -> None:
    """The worker's retention loop: sweep at start, then every ``retention_sweep_seconds``."""
    interval = max(1.0, float(svc.settings.retention_sweep_seconds))
    while not stop.is_set():
        wait = interval
        try:
            sweep(svc)
            next_at = svc.store.scans.next_at(SCAN)
            if next_at is not None:
                wait = min(interval, (next_at - svc.now()).total_seconds())
        except svc.storage_errors as exc:
            log.warning("retention sweep failed; retrying later", extra={"error": repr(exc)})
            wait = min(interval, 30.0)
        except Exception:
            log.exception("retention sweep failed")
        stop.wait(max(1.0, wait))
