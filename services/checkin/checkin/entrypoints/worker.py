"""``python -m checkin.entrypoints.worker``: ends events at their end time and runs CSV imports."""

from __future__ import annotations

import logging
import threading

from turnout_common import logs
from turnout_common.runtime import exit_with, run_loops
from turnout_common.types import Doc

log = logging.getLogger("checkin.worker")

# What makes an import job runnable: an upload (insert), or a worker handing
# one back on shutdown (``lease_until`` cleared, nothing else changed).
IMPORT_READY: list[Doc] = [
    {
        "$match": {
            "$or": [
                {"operationType": "insert"},
                {"operationType": "update", "updateDescription.updatedFields": {"lease_until": None}},
            ]
        }
    },
    {"$project": {"_id": 1}},
]


def main() -> None:
    from checkin.bootstrap import build_context
    from checkin.config import Settings
    from checkin.service_layer.events import end_due_events

    settings = Settings.from_env()
    logs.configure_logging("checkin", settings.log_level)
    ctx = build_context(settings, "turnout-checkin-worker")

    def end_events_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ended = end_due_events(ctx)
                if ended:
                    log.info("ended events at their end time", extra={"count": ended})
            except Exception:
                log.exception("ending due events failed")
            stop.wait(settings.end_check_interval)

    from checkin.adapters.mongo import IMPORTS
    from checkin.service_layer.imports import LEASE_SECONDS, process_pending_imports
    from turnout_common.wake import IdlePause

    def imports_loop(stop: threading.Event) -> None:
        # Idle, sleep until an import is uploaded (an insert) or handed back
        # (its lease cleared), or for a safety poll: a job whose worker died is
        # taken over once its lease has expired, so poll at half the lease.
        # Each wait on the stream (a getMore) lasts 3 s: cheaper than 1 s, and
        # an upload still ends it at once.
        pause = IdlePause(
            ctx.db[IMPORTS], IMPORT_READY, busy_pause=1.0, max_sleep=min(30.0, LEASE_SECONDS / 2), await_seconds=3.0
        )
        try:
            while not stop.is_set():
                try:
                    handled = process_pending_imports(ctx, stop=stop)
                    if handled:
                        log.info("imported rows", extra={"rows": handled})
                except Exception:
                    log.exception("processing imports failed")
                    pause.wake()
                    stop.wait(1.0)
                    continue
                pause.pause(stop, handled > 0)
        finally:
            pause.close()

    exit_with(run_loops("checkin-worker", [("end-events", end_events_loop), ("imports", imports_loop)]))


if __name__ == "__main__":
    main()
