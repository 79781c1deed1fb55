"""``python -m checkin.entrypoints.worker``: ends events at their end time and runs CSV imports."""

from __future__ import annotations

import logging
import threading

from turnout_common import logs
from turnout_common.runtime import exit_with, run_loops

log = logging.getLogger("checkin.worker")


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

    from checkin.service_layer.imports import process_pending_imports

    def imports_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                handled = process_pending_imports(ctx, stop=stop)
                if handled:
                    log.info("imported rows", extra={"rows": handled})
            except Exception:
                log.exception("processing imports failed")
            stop.wait(1.0)

    exit_with(run_loops("checkin-worker", [("end-events", end_events_loop), ("imports", imports_loop)]))


if __name__ == "__main__":
    main()
