"""The body of every service's ``relay`` entry point: ``relay_main(Settings.from_env())``."""

from __future__ import annotations

import threading

from turnout_common import logs, mongo
from turnout_common.config import ServiceSettings
from turnout_common.kafka import ensure_topics_when_up, make_producer
from turnout_common.outbox import OutboxRelay, ensure_outbox_indexes
from turnout_common.runtime import exit_with, run_loops


def relay_main(settings: ServiceSettings) -> None:
    """Move the service's outbox to Kafka until stopped (creating the topics first)."""
    service, bootstrap_servers = settings.service, settings.kafka_bootstrap_servers
    logs.configure_logging(service, settings.log_level)
    client = mongo.connect(settings.mongodb_uri, f"turnout-{service}-relay")
    db = client[settings.database]
    ensure_outbox_indexes(db)

    def topics_then_relay(stop: threading.Event) -> None:
        ensure_topics_when_up(stop, bootstrap_servers, settings.topic_partitions)
        relay = OutboxRelay(db, lambda: make_producer(bootstrap_servers, f"turnout-{service}-relay"))
        relay.run(stop)

    exit_with(run_loops(f"{service}-relay", [("relay", topics_then_relay)]))
