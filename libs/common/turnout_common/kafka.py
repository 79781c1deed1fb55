"""Kafka client settings that hold on both Apache Kafka and the local Tansu broker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError

from turnout_common.config import topic_retention_hours
from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC, PRIVACY_TOPIC

log = logging.getLogger(__name__)

ALL_TOPICS = (CHECKIN_TOPIC, FOLLOWUP_TOPIC, PRIVACY_TOPIC)
HOUR_MS = 3_600_000


def retention_configs(retention_hours: int) -> dict[str, str]:
    """A topic's settings that bound how long a message stays on the broker.

    Kafka deletes whole segments, and a segment is only closed when it rolls:
    rolling daily (or sooner, for a shorter retention) means a message is gone
    at most ``retention + 1 day`` after it was written.
    """
    retention_ms = retention_hours * HOUR_MS
    return {"retention.ms": str(retention_ms), "segment.ms": str(min(retention_ms, 24 * HOUR_MS))}


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def make_producer(bootstrap_servers: str, client_id: str) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas."""
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=10_000,
        delivery_timeout_ms=15_000,
        retry_backoff_ms=100,
        # Reconnect within seconds once the broker is back, not minutes, and
        # give up constructing quickly so the relay can back off and report.
        reconnect_backoff_max_ms=2000,
        bootstrap_timeout_ms=5000,
    )


def make_consumer(
    bootstrap_servers: str,
    group_id: str,
    topics: Iterable[str],
    *,
    client_id: str,
    max_poll_records: int = 500,
    max_poll_interval_ms: int = 120_000,
    fetch_max_wait_ms: int = 500,
) -> KafkaConsumer:
    """A group consumer with manual commits.

    ``session_timeout_ms=6000``: Tansu completes a join after about half the
    session timeout, and kafka-python's 45 s default would stall start-up.
    A heartbeat every 2 s (a third of the session, the most Kafka allows)
    halves what an idle group costs the broker against one per second; a
    rebalance is noticed on the next heartbeat.
    ``max_poll_interval_ms`` covers the worst batch (500 messages, one MongoDB
    transaction, with infrastructure retries) with a wide margin.

    ``fetch_max_wait_ms`` is how long the broker may hold a fetch that finds
    nothing. Apache Kafka answers as soon as a message arrives, so there it
    only sets how often an idle consumer asks. Tansu answers some time after
    a message arrives, the later the longer the wait (with one consumer at
    most 0.25 s with a 0.5 s wait, 0.93 s with 2 s), so locally it also
    bounds the delay before a new message is seen: each service picks what
    its readers can wait (the dashboard less than a second, follow-up emails
    longer), and pays one fetch per partition leader per wait while idle.
    """
    return KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
        max_poll_interval_ms=max_poll_interval_ms,
        max_poll_records=max_poll_records,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )


def ensure_topics(
    bootstrap_servers: str,
    partitions: int,
    topics: Iterable[str] = ALL_TOPICS,
    *,
    replication_factor: int = 1,
    with_dlq: bool = True,
    retention_hours: int | None = None,
) -> list[str]:
    """Create the topics (and their dead-letter topics) if missing; return those created.

    Every topic, new or existing, gets the retention of ``retention_hours``
    (default ``TURNOUT_TOPIC_RETENTION_HOURS``), so a changed setting reaches
    topics created before it.
    """
    configs = retention_configs(retention_hours if retention_hours is not None else topic_retention_hours())
    names: list[str] = []
    for topic in topics:
        names.append(topic)
        if with_dlq:
            names.append(dlq_topic(topic))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="turnout-topics")
    try:
        existing = set(admin.list_topics())
        missing = [name for name in names if name not in existing]
        created: list[str] = []
        for name in missing:
            # Dead-letter topics are low volume; one partition keeps them in order.
            count = 1 if name.endswith(".dlq") else partitions
            try:
                admin.create_topics(
                    [NewTopic(name, num_partitions=count, replication_factor=replication_factor, topic_configs=configs)]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics", extra={"topics": created, "partitions": partitions})
        _set_retention(admin, [name for name in names if name not in created], configs)
        return created
    finally:
        admin.close()


def _set_retention(admin: KafkaAdminClient, names: list[str], configs: dict[str, str]) -> None:
    """Give existing topics the retention (a broker or ACL that refuses is logged, not fatal)."""
    if not names:
        return
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs=configs) for name in names])
    except Exception as exc:  # noqa: BLE001 - the topics work; only their retention is not ours to set
        log.warning("could not set topic retention", extra={"topics": names, "error": repr(exc)})


def ensure_topics_when_up(stop: threading.Event, bootstrap_servers: str, partitions: int) -> None:
    """``ensure_topics``, retried with a growing pause while the broker is not up yet (or until ``stop``)."""
    backoff = 0.5
    while not stop.is_set():
        try:
            ensure_topics(bootstrap_servers, partitions)
            return
        except Exception as exc:  # noqa: BLE001 - broker not up yet: wait for it
            log.warning("creating topics failed, retrying", extra={"error": repr(exc)})
            stop.wait(backoff)
            backoff = min(5.0, backoff * 2)


def topic_partition_counts(bootstrap_servers: str, topics: Iterable[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="turnout-describe")
    try:
        result: dict[str, int] = {}
        for description in admin.describe_topics(list(topics)):
            info: Any = description
            result[info["name"]] = len(info["partitions"])
        return result
    finally:
        admin.close()
