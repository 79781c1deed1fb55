"""Prometheus metrics: request latency per process (multiprocess-safe under
gunicorn), and figures read from MongoDB at scrape time (outbox backlog,
consumer lag, dead letters) so every process of a service reports the same."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pymongo.database import Database

from turnout_common.clock import utcnow


@lru_cache(maxsize=1)
def request_latency() -> Histogram:
    return Histogram(
        "turnout_http_request_duration_seconds",
        "Time to answer an HTTP request",
        ["service", "method", "route", "status"],
        buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    )


class MongoFiguresCollector(Collector):
    """Outbox backlog, consumer lag and dead letters of one service's database."""

    def __init__(self, service: str, db: Database[dict[str, Any]]) -> None:
        self.service = service
        self.db = db

    def collect(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "turnout_outbox_backlog", "Outbox messages not yet acknowledged by Kafka", labels=["service"]
        )
        lag = GaugeMetricFamily(
            "turnout_consumer_lag",
            "Messages not yet applied (highwater - committed), per partition",
            labels=["service", "group", "topic", "partition"],
        )
        dead = GaugeMetricFamily(
            "turnout_dead_letters", "Messages this service sent to a dead-letter topic", labels=["service", "topic"]
        )
        try:
            backlog.add_metric(
                [self.service], self.db["outbox"].count_documents({"state": {"$in": ["pending", "in_progress"]}})
            )
            fresh = utcnow() - timedelta(minutes=2)
            for doc in self.db["consumer_status"].find({"updated_at": {"$gte": fresh}}):
                lag.add_metric([self.service, doc["group"], doc["topic"], str(doc["partition"])], doc["lag"])
            for row in self.db["dead_letters"].aggregate([{"$group": {"_id": "$topic", "n": {"$sum": 1}}}]):
                dead.add_metric([self.service, row["_id"]], row["n"])
        except Exception:  # noqa: BLE001 - a scrape must not fail because MongoDB is down
            pass
        yield backlog
        yield lag
        yield dead


def render(extra: Collector | None) -> tuple[bytes, str]:
    """The scrape body: this service's processes plus the MongoDB figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    if extra is not None:
        figures = CollectorRegistry()
        figures.register(extra)
        body += generate_latest(figures)
    return body, CONTENT_TYPE_LATEST
