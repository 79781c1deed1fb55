"""The consumer part of every service's ``worker`` entry point."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from turnout_common.consumer import ConsumerWorker, MessageHandler
from turnout_common.kafka import ensure_topics_when_up, make_consumer, make_producer
from turnout_common.runtime import Loop


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    service: str
    group_id: str
    topics: Sequence[str]
    handler: MessageHandler
    handled_types: Iterable[str] | None
    processed_collection: str = "processed_messages"
    store_envelope: bool = False
    dead_letter_limit: int = 100
    # How long an idle fetch waits (see make_consumer): the worst delay on Tansu.
    fetch_max_wait_ms: int = 1500
    # The same while messages keep coming (ConsumerWorker._adapt_fetch_wait);
    # None: ``fetch_max_wait_ms`` throughout.
    busy_fetch_max_wait_ms: int | None = None
    # Under load, how long a poll waits for more records to apply in the same
    # transaction (ConsumerWorker._poll): the delay a reader may see, for fewer
    # statements per message.
    linger_ms: int = 100


def consumer_loop(
    spec: ConsumerSpec,
    client: MongoClient[dict[str, Any]],
    db: Database[dict[str, Any]],
    bootstrap_servers: str,
    partitions: int,
) -> Loop:
    """A loop (for ``run_loops``) that creates topics, then consumes until stopped."""

    def loop(stop: threading.Event) -> None:
        ensure_topics_when_up(stop, bootstrap_servers, partitions)
        worker = ConsumerWorker(
            group_id=spec.group_id,
            consumer_factory=lambda: make_consumer(
                bootstrap_servers,
                spec.group_id,
                spec.topics,
                client_id=f"turnout-{spec.service}-worker",
                fetch_max_wait_ms=spec.fetch_max_wait_ms,
            ),
            dlq_producer_factory=lambda: make_producer(bootstrap_servers, f"turnout-{spec.service}-dlq"),
            client=client,
            db=db,
            handler=spec.handler,
            handled_types=spec.handled_types,
            processed_collection=spec.processed_collection,
            store_envelope=spec.store_envelope,
            dead_letter_limit=spec.dead_letter_limit,
            linger_ms=spec.linger_ms,
            fetch_wait_ms=(
                (spec.fetch_max_wait_ms, spec.busy_fetch_max_wait_ms)
                if spec.busy_fetch_max_wait_ms is not None
                else None
            ),
        )
        worker.run(stop)

    return loop
