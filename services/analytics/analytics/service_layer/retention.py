"""The retention sweep: details of archived messages older than an
organization's periods are stripped (``analytics.domain.privacy.DETAIL_FIELDS``).

- ``checkin_details``: what a check-in, a check-out, an undo and a
  registration say beyond what the figures read (a staff override, the visit
  number, the check-out's device, who closed it, the undo's reason, the
  offers and seeks a registrant typed);
- ``tracking_events``: the clicked address and any user agent of opens and
  clicks.

The projections hold none of these (a check-out's device is not even read),
so the sweep changes only the archive, and a rebuild from it gives the same
figures. A message's age is the time it was applied (``applied_at``, the
archive's one index; a message is applied after it happened, so this keeps a
detail a little longer, never shorter).

Each sweep reads only what crossed a cut-off since the last one: for each
kind, the organizations with a policy of their own and the rest (scope
``*``, the defaults) each keep how far they were swept (a watermark); a sweep
reads ``[watermark, cut-off)`` and moves the watermark to the cut-off. An
organization whose policy is new starts where the defaults got to; a
shortened period reads back to its new cut-off, a lengthened one waits until
its cut-off passes the watermark (what was stripped stays stripped).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from analytics.domain.privacy import RETENTION_KINDS, ArchiveChange, detail_fields
from analytics.service_layer.ports import RetentionStorage
from turnout_common.clock import utcnow
from turnout_common.privacy import DEFAULT_RETENTION, months_ago

log = logging.getLogger(__name__)

DEFAULTS_SCOPE = "*"
# Where the first sweep starts: before any archive.
FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class SweepReport:
    stripped: int = 0  # archived messages changed
    read: int = 0  # archived messages looked at
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    finished: bool = True


def sweep(
    storage: RetentionStorage,
    now: datetime,
    *,
    batch_size: int = 500,
    keep_going: Callable[[], bool] = lambda: True,
) -> SweepReport:
    """Strip what the retention periods (as of ``now``) say is too old; return what was done.

    ``keep_going`` is asked between reads (a stopping worker; the watchdog
    hears from the loop): when it says no, the sweep ends early and the next
    one starts over from the watermarks, which only move after a whole window.
    """
    policies = storage.policies()
    marks = storage.watermarks()
    scopes = [(DEFAULTS_SCOPE, DEFAULT_RETENTION), *sorted(policies.items())]
    windows: dict[tuple[datetime, datetime], list[tuple[str, str]]] = {}
    for kind in RETENTION_KINDS:
        defaults_mark = marks.get((DEFAULTS_SCOPE, kind), FLOOR)
        for scope, periods in scopes:
            cutoff = months_ago(now, int(getattr(periods, kind)))
            start = marks.get((scope, kind), defaults_mark)
            if cutoff > start:
                # Scopes with the same window (the usual case) share one read.
                windows.setdefault((start, cutoff), []).append((scope, kind))
    report = SweepReport(windows=sorted(windows))
    for (lower, upper), members in sorted(windows.items()):
        for docs in storage.archived_between(lower, upper, batch_size):
            if not keep_going():
                report.finished = False
                return report
            changes = []
            for doc in docs:
                envelope = doc.get("envelope") or {}
                data = envelope.get("data") or {}
                org_id = data.get("org_id")
                scope = org_id if isinstance(org_id, str) and org_id in policies else DEFAULTS_SCOPE
                kinds = [kind for member, kind in members if member == scope]
                fields = detail_fields(str(envelope.get("type", "")), data, kinds) if kinds else {}
                if fields:
                    changes.append(ArchiveChange(doc["_id"], fields))
            report.read += len(docs)
            if changes:
                report.stripped += storage.change_archived(changes)
        for scope, kind in members:
            storage.set_watermark(scope, kind, upper)
    return report


def retention_loop(
    storage: RetentionStorage, every: float, clock: Callable[[], datetime] = utcnow
) -> Callable[[threading.Event], None]:
    """A worker loop: a sweep at start and every ``every`` seconds, on ``clock``
    (a test moves it). A failed sweep is logged and tried again next time."""

    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                report = sweep(storage, clock(), keep_going=lambda: not stop.is_set())
                if report.stripped:
                    log.info("retention sweep", extra={"stripped": report.stripped, "read": report.read})
            except Exception:
                log.exception("retention sweep failed")
            stop.wait(every)

    return loop
