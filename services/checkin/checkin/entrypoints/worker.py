"""``python -m checkin.entrypoints.worker``: ends events at their end time, runs CSV imports and
the retention sweep of old check-in details, consumes the answers to data requests, and relays
checkin's outbox to Kafka (``turnout_common.relay_main``: the relay lease lets one relay send at a
time, wherever it runs)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from turnout_common import logs
from turnout_common.clock import utcnow
from turnout_common.relay_main import relay_loop
from turnout_common.runtime import Loop, exit_with, run_loops
from turnout_common.types import Doc

if TYPE_CHECKING:
    from checkin.bootstrap import WiredContext
    from checkin.config import Settings
    from checkin.service_layer.context import Context

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


def details_retention_loop(ctx: Context, interval: float, clock: Callable[[], datetime] = utcnow) -> Loop:
    """The retention sweep of old events' check-in details: at start, then every ``interval`` seconds
    (``clock`` tells the time: a test moves it)."""
    from checkin.service_layer.retention import sweep_checkin_details

    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                swept = sweep_checkin_details(ctx, clock())
                if swept.events:
                    log.info(
                        "cleared old check-in details",
                        extra={
                            "events": swept.events,
                            "requests": swept.requests,
                            "registrations": swept.registrations,
                        },
                    )
            except Exception:
                log.exception("the check-in details retention sweep failed")
            stop.wait(interval)

    return loop


def inactive_people_loop(ctx: Context, interval: float, clock: Callable[[], datetime] = utcnow) -> Loop:
    """The retention sweep of inactive people (an erasure request for each): at start, then every
    ``interval`` seconds (``clock`` tells the time: a test moves it)."""
    from checkin.service_layer.privacy import sweep_inactive_people

    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                sweep_inactive_people(ctx, clock(), keep_going=lambda: not stop.is_set())
            except Exception:
                log.exception("the inactive people retention sweep failed")
            stop.wait(interval)

    return loop


def privacy_consumer_loop(ctx: WiredContext, settings: Settings) -> Loop:
    """The consumer of ``turnout.privacy``: followup's and analytics' answers to data requests."""
    from checkin.adapters.mongo_privacy import PRIVACY_PROCESSED, in_transaction
    from checkin.service_layer.privacy import PRIVACY_TYPES, apply_privacy_answers
    from turnout_common.config import consumer_group
    from turnout_common.contracts import PRIVACY_TOPIC
    from turnout_common.worker_main import ConsumerSpec, consumer_loop

    spec = ConsumerSpec(
        service="checkin",
        group_id=consumer_group("checkin"),
        topics=(PRIVACY_TOPIC,),
        handler=in_transaction(apply_privacy_answers),
        handled_types=PRIVACY_TYPES,
        processed_collection=PRIVACY_PROCESSED,
        # Answers to data requests wait for the slowest service anyway: 3 s
        # on Tansu is nothing to them, and half the idle fetches of 1.5 s.
        fetch_max_wait_ms=3000,
    )
    return consumer_loop(spec, ctx.client, ctx.db, settings.kafka_bootstrap_servers, settings.topic_partitions)


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
        # an upload still ends it at once. Woken early by the check-ins'
        # writes (SecantusDB wakes every stream for every write), it waits 1 s
        # before asking again: an upload waits at most that long meanwhile.
        pause = IdlePause(
            ctx.db[IMPORTS],
            IMPORT_READY,
            busy_pause=1.0,
            max_sleep=min(30.0, LEASE_SECONDS / 2),
            await_seconds=3.0,
            spurious_gap=1.0,
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

    retention_details = details_retention_loop(ctx, settings.retention_sweep_seconds)
    inactive_people = inactive_people_loop(ctx, settings.retention_sweep_seconds)
    exit_with(
        run_loops(
            "checkin-worker",
            [
                ("end-events", end_events_loop),
                ("imports", imports_loop),
                ("retention-details", retention_details),
                ("inactive-people", inactive_people),
                ("privacy", privacy_consumer_loop(ctx, settings)),
                ("relay", relay_loop(ctx.db, settings.kafka_bootstrap_servers, settings.topic_partitions, "checkin")),
            ],
        )
    )


if __name__ == "__main__":
    main()
