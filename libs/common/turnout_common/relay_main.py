"""The body of every service's ``relay`` entry point."""

from __future__ import annotations

import logging
import threading

from turnout_common import logs, mongo
from turnout_common.kafka import ensure_topics, make_producer
from turnout_common.outbox import OutboxRelay, ensure_outbox_indexes
from turnout_common.runtime import exit_with, run_loops

log = logging.getLogger(__name__)


def relay_main(
    service: str,
    mongodb_uri: str,
    database: str,
    bootstrap_servers: str,
    partitions: int,
    log_level: str,
) -> None:
    logs.configure_logging(service, log_level)
    client = mongo.connect(mongodb_uri, f"turnout-{service}-relay")
    db = client[database]
    ensure_outbox_indexes(db)

    def topics_then_relay(stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                ensure_topics(bootstrap_servers, partitions)
                break
            except Exception as exc:  # noqa: BLE001 - broker not up yet: wait for it
                log.warning("creating topics failed, retrying", extra={"error": repr(exc)})
                stop.wait(backoff)
                backoff = min(5.0, backoff * 2)
        relay = OutboxRelay(db, lambda: make_producer(bootstrap_servers, f"turnout-{service}-relay"))
        relay.run(stop)

    exit_with(run_loops(f"{service}-relay", [("relay", topics_then_relay)]))
