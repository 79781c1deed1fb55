"""``python -m followup.entrypoints.worker``: the consumer of ``turnout.checkin``
(contacts, attendance, plans, people's data requests), the scheduler (who gets
what, when), the senders (exactly-once delivery), the retention sweep and the
relay of follow-up's outbox (``turnout_common.relay_main``; its lease lets one
relay send at a time, wherever it runs), as threads of one process.

``FOLLOWUP_WORKER_LOOPS`` picks a subset (e.g. senders on their own
machines); ``FOLLOWUP_SENDER_THREADS`` sets how many senders run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING

from followup.config import Settings
from turnout_common import logs
from turnout_common.contracts import CHECKIN_TOPIC
from turnout_common.relay_main import relay_loop
from turnout_common.runtime import Loop, exit_with, run_loops
from turnout_common.worker_main import ConsumerSpec, consumer_loop

if TYPE_CHECKING:
    from followup.service_layer.probe import SendProbe

log = logging.getLogger("followup.worker")


def main(settings: Settings | None = None, probe: SendProbe | None = None) -> None:
    """Run the worker's loops until SIGTERM; ``probe`` watches the senders (the fault tests)."""
    from followup.adapters.repositories import in_transaction
    from followup.bootstrap import build_services
    from followup.service_layer.handlers import HANDLED_TYPES, apply_checkin_messages
    from followup.service_layer.retention import run_retention
    from followup.service_layer.scheduling import run_scheduler
    from followup.service_layer.sending import Sender

    settings = settings if settings is not None else Settings.from_env()
    logs.configure_logging("followup", settings.log_level)
    svc = build_services(settings, "turnout-followup-worker", with_transport=True)
    loops: list[tuple[str, Loop]] = []
    if "consumer" in settings.worker_loops:
        spec = ConsumerSpec(
            service="followup",
            group_id=settings.consumer_group,
            topics=(CHECKIN_TOPIC,),
            handler=in_transaction(apply_checkin_messages),
            handled_types=HANDLED_TYPES,
            # Follow-ups go out hours later: a check-in may reach follow-up
            # 3 s late on Tansu, for half the idle fetches of 1.5 s.
            fetch_max_wait_ms=3000,
        )
        loops.append(
            (
                "consumer",
                consumer_loop(spec, *svc.mongo, settings.kafka_bootstrap_servers, settings.topic_partitions),
            )
        )
    if "scheduler" in settings.worker_loops:
        owner = f"{socket.gethostname()}:{os.getpid()}:scheduler"

        def scheduler(stop: threading.Event) -> None:
            run_scheduler(svc, owner, stop)

        loops.append(("scheduler", scheduler))
    if "sender" in settings.worker_loops:
        for index in range(settings.sender_threads):
            sender = Sender(svc, f"sender-{index}", probe)
            loops.append((f"sender-{index}", sender.run))
    if "retention" in settings.worker_loops:

        def retention(stop: threading.Event) -> None:
            run_retention(svc, stop)

        loops.append(("retention", retention))
    if "relay" in settings.worker_loops:
        db = svc.mongo[1]
        loops.append(
            (
                "relay",
                relay_loop(db, settings.kafka_bootstrap_servers, settings.topic_partitions, "followup", wake_gap=1.0),
            )
        )
    exit_with(run_loops("followup-worker", loops))


if __name__ == "__main__":
    main()
