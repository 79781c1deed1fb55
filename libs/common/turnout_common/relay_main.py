"""The relay of a service's outbox, as a loop of its worker (``relay_loop``) or as
a process of its own (``relay_main(Settings.from_env())``).

Every service's worker runs its relay as one of its loops: a process of its
own costs the local stack ~35 MB of memory and its idle ticking, and the relay
lease already decides which of several relays sends (one at a time, the
others stand by), wherever they run. ``python -m <service>.entrypoints.relay``
still starts a relay alone, e.g. to stand by beside the workers.
"""

from __future__ import annotations

import threading
from typing import Any

from turnout_common import logs, mongo
from turnout_common.config import ServiceSettings
from turnout_common.kafka import ensure_topics_when_up, make_producer
from turnout_common.outbox import OutboxRelay, ensure_outbox_indexes
from turnout_common.runtime import Loop, exit_with, run_loops


def relay_loop(db: Any, bootstrap_servers: str, partitions: int, service: str, **relay_options: Any) -> Loop:
    """A loop (for ``run_loops``) that creates the topics, then moves ``db``'s outbox to Kafka
    until stopped (``relay_options``: ``OutboxRelay``'s, e.g. ``lease_seconds``)."""

    def loop(stop: threading.Event) -> None:
        ensure_topics_when_up(stop, bootstrap_servers, partitions)
        relay = OutboxRelay(db, lambda: make_producer(bootstrap_servers, f"turnout-{service}-relay"), **relay_options)
        relay.run(stop)

    return loop


def relay_main(settings: ServiceSettings) -> None:
    """Move the service's outbox to Kafka until stopped (creating the topics first)."""
    service = settings.service
    logs.configure_logging(service, settings.log_level)
    client = mongo.connect(settings.mongodb_uri, f"turnout-{service}-relay")
    db = client[settings.database]
    ensure_outbox_indexes(db)
    loop = relay_loop(db, settings.kafka_bootstrap_servers, settings.topic_partitions, service)
    exit_with(run_loops(f"{service}-relay", [("relay", loop)]))
