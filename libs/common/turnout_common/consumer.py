"""The Kafka consumer loop every worker uses.

Commit discipline after Sentry's arroyo: offsets are never auto-committed;
the next offset is committed only after the batch's effects (and the ids of
the messages applied, in the same MongoDB transaction) are durable. A message
that is not valid JSON/CloudEvents/contract goes straight to ``<topic>.dlq``; a
message whose handler keeps failing goes there after bounded retries. When
too many messages in a row are dead-lettered the worker stops: that is a bad
deploy, not bad data, and dead-lettering everything would hide it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from pymongo import MongoClient, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from turnout_common.clock import utcnow
from turnout_common.contracts import ContractRegistry, ContractViolation, registry
from turnout_common.envelope import Envelope
from turnout_common.kafka import dlq_topic
from turnout_common.mongo import UnitOfWork, is_transient
from turnout_common.outbox import Sender

log = logging.getLogger(__name__)

PROCESSED = "processed_messages"
DEAD_LETTERS = "dead_letters"
CONSUMER_STATUS = "consumer_status"


class MessageHandler(Protocol):
    """Applies new (never-before-applied) messages inside ``uow``'s transaction."""

    def __call__(self, uow: UnitOfWork, messages: Sequence[Envelope]) -> None: ...


class DeadLetterLimitExceeded(RuntimeError):
    """Too many consecutive messages were dead-lettered: stop and let a human look."""


@dataclass(slots=True)
class Incoming:
    record: Any  # kafka ConsumerRecord
    envelope: Envelope | None = None
    error: str | None = None


class ConsumerWorker:
    """Polls a consumer group and applies messages idempotently, batch by batch."""

    def __init__(
        self,
        *,
        group_id: str,
        consumer_factory: Callable[[], KafkaConsumer],
        dlq_producer_factory: Callable[[], Sender],
        client: MongoClient[dict[str, Any]],
        db: Database[dict[str, Any]],
        handler: MessageHandler,
        handled_types: Iterable[str] | None = None,
        processed_collection: str = PROCESSED,
        store_envelope: bool = False,
        max_retries: int = 3,
        dead_letter_limit: int = 100,
        contracts: ContractRegistry | None = None,
        status_interval: float = 2.0,
        status_keepalive: float = 60.0,
        poll_timeout_ms: int = 1000,
        linger_ms: int = 25,
        batch_target: int = 200,
        fetch_wait_ms: tuple[int, int] | None = None,
        busy_for: float = 2.0,
    ) -> None:
        self.group_id = group_id
        self.consumer_factory = consumer_factory
        self.dlq_producer_factory = dlq_producer_factory
        self.client = client
        self.db = db
        self.handler = handler
        self.handled_types = set(handled_types) if handled_types is not None else None
        self.processed = db[processed_collection]
        self.store_envelope = store_envelope
        self.max_retries = max_retries
        self.dead_letter_limit = dead_letter_limit
        self.contracts = contracts or registry()
        self.status_interval = status_interval
        self.status_keepalive = status_keepalive
        self.poll_timeout_ms = poll_timeout_ms
        self.linger_ms = linger_ms
        self.batch_target = batch_target
        # (idle, busy): how long the broker may hold a fetch that finds nothing,
        # while quiet and while messages keep coming (see ``_adapt_fetch_wait``);
        # None: the consumer's own setting throughout.
        self.fetch_wait_ms = fetch_wait_ms
        self.busy_for = busy_for
        self._records_at = -1e9  # monotonic time of the last poll that brought records
        self._fetch_wait_set: int | None = None
        self._status_written: dict[TopicPartition, tuple[int, int, float]] = {}
        self.consecutive_dead_letters = 0
        self.applied_total = 0
        self.dead_lettered_total = 0
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._dlq_producer: Sender | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._last_status = 0.0

    # -- parsing -------------------------------------------------------------
    def _parse(self, record: Any) -> Incoming:
        if record.value is None:
            return Incoming(record, error="empty record value (tombstone)")
        try:
            envelope = self.contracts.parse(record.value)
        except ContractViolation as exc:
            return Incoming(record, error=str(exc))
        return Incoming(record, envelope=envelope)

    # -- applying ------------------------------------------------------------
    def _apply(self, envelopes: Sequence[Envelope]) -> int:
        """Apply in one transaction; return how many were new."""

        def work(uow: UnitOfWork) -> int:
            session = uow.session
            ids = [e.id for e in envelopes]
            seen = {doc["_id"] for doc in self.processed.find({"_id": {"$in": ids}}, {"_id": 1}, session=session)}
            fresh: list[Envelope] = []
            for envelope in envelopes:
                if envelope.id not in seen:
                    seen.add(envelope.id)
                    fresh.append(envelope)
            relevant = [e for e in fresh if self.handled_types is None or e.type in self.handled_types]
            if relevant:
                self.handler(uow, relevant)
            if fresh:
                now = utcnow()
                docs = []
                for envelope in fresh:
                    doc: dict[str, Any] = {"_id": envelope.id, "type": envelope.type, "applied_at": now}
                    if self.store_envelope:
                        doc["envelope"] = envelope.to_dict()
                        doc["subject"] = envelope.subject
                        doc["time"] = envelope.time
                    docs.append(doc)
                self.processed.insert_many(docs, ordered=False, session=session)
            return len(fresh)

        return UnitOfWork(self.client, self.db, self.contracts).run(work)

    def _apply_with_retries(self, items: list[Incoming], stop: threading.Event) -> None:
        envelopes = [item.envelope for item in items if item.envelope is not None]
        if not envelopes:
            return
        try:
            self._apply_until_done(envelopes, stop)
            self.consecutive_dead_letters = 0
            return
        except (PyMongoError, BulkWriteError) as exc:
            if is_transient(exc):
                raise
            log.warning("batch failed, retrying message by message", extra={"error": repr(exc)})
        except Exception as exc:  # noqa: BLE001 - a handler bug: isolate the message that causes it
            log.warning("batch failed, retrying message by message", extra={"error": repr(exc)})
        for item in items:
            if item.envelope is None:
                continue
            last_error = ""
            for attempt in range(1, self.max_retries + 1):
                try:
                    self._apply_until_done([item.envelope], stop)
                    self.consecutive_dead_letters = 0
                    last_error = ""
                    break
                except PyMongoError as exc:
                    if is_transient(exc):
                        raise
                    last_error = repr(exc)
                except Exception as exc:  # noqa: BLE001 - recorded and dead-lettered below
                    last_error = repr(exc)
                time.sleep(min(1.0, 0.05 * 2**attempt))
            if last_error:
                self._dead_letter(item, f"handler failed {self.max_retries} times: {last_error}", stop)

    def _apply_until_done(self, envelopes: Sequence[Envelope], stop: threading.Event) -> None:
        """Apply, waiting out database outages (those are not the message's fault)."""
        backoff = 0.2
        while True:
            try:
                self.applied_total += self._apply(envelopes)
                return
            except PyMongoError as exc:
                if not is_transient(exc) or stop.is_set():
                    raise
                log.warning("database unavailable, retrying", extra={"error": repr(exc)})
                stop.wait(backoff)
                backoff = min(5.0, backoff * 2)

    # -- dead letters --------------------------------------------------------
    def _dead_letter(self, item: Incoming, error: str, stop: threading.Event) -> None:
        if self.consecutive_dead_letters >= self.dead_letter_limit:
            raise DeadLetterLimitExceeded(
                f"{self.consecutive_dead_letters} consecutive messages dead-lettered; "
                f"stopping before {item.record.topic}/{item.record.partition}@{item.record.offset}"
            )
        record = item.record
        headers = [
            *(record.headers or []),
            ("dlq.original_topic", record.topic.encode()),
            ("dlq.original_partition", str(record.partition).encode()),
            ("dlq.original_offset", str(record.offset).encode()),
            ("dlq.error", error[:2000].encode()),
            ("dlq.consumer_group", self.group_id.encode()),
        ]
        backoff = 0.2
        while True:
            try:
                if self._dlq_producer is None:
                    self._dlq_producer = self.dlq_producer_factory()
                future = self._dlq_producer.send(
                    dlq_topic(record.topic),
                    value=record.value or b"",
                    key=record.key or b"",
                    headers=headers,
                )
                self._dlq_producer.flush(timeout=15)
                future.get(timeout=1)
                break
            except Exception as exc:  # noqa: BLE001 - broker trouble: retry, never drop
                log.warning("dead-letter send failed, retrying", extra={"error": repr(exc)})
                if self._dlq_producer is not None:
                    with contextlib.suppress(Exception):
                        self._dlq_producer.close(timeout=1)
                    self._dlq_producer = None
                # Never drop it, even when stopping: the offset is not
                # committed until it is sent (stop.wait also tells the
                # watchdog this loop is alive while the broker is away).
                if stop.is_set():
                    time.sleep(backoff)
                else:
                    stop.wait(backoff)
                backoff = min(5.0, backoff * 2)
        self.db[DEAD_LETTERS].update_one(
            {"_id": f"{record.topic}:{record.partition}:{record.offset}"},
            {
                "$setOnInsert": {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "group": self.group_id,
                    "error": error[:2000],
                    "value": (record.value or b"")[:65536],
                    "dead_lettered_at": utcnow(),
                }
            },
            upsert=True,
        )
        self.consecutive_dead_letters += 1
        self.dead_lettered_total += 1
        log.error(
            "message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error": error[:500],
            },
        )

    # -- the loop ------------------------------------------------------------
    def process(self, batch: dict[TopicPartition, list[Any]], stop: threading.Event) -> dict[TopicPartition, int]:
        """Apply one poll's records; return the next offsets to commit."""
        items = [self._parse(record) for records in batch.values() for record in records]
        # Runs of valid messages are applied together; an invalid one is
        # dead-lettered in its place, so the effects stay in partition order.
        run: list[Incoming] = []
        for item in items:
            if item.envelope is not None:
                run.append(item)
                continue
            self._apply_with_retries(run, stop)
            run = []
            self._dead_letter(item, item.error or "invalid", stop)
        self._apply_with_retries(run, stop)
        return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}

    def _commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})
        self._committed.update(offsets)

    def _report_status(self, consumer: KafkaConsumer, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < self.status_interval:
            return
        self._last_status = now
        stamp = utcnow()
        try:
            ops: list[UpdateOne] = []
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                committed = self._committed.get(tp)
                if committed is None:
                    committed = consumer.committed(tp) or 0
                    self._committed[tp] = committed
                # Written when it changed (and now and then, so readers see it
                # is fresh): an idle worker does not write every few seconds.
                written = self._status_written.get(tp)
                unchanged = written is not None and written[:2] == (highwater, committed)
                if unchanged and not force and written is not None and now - written[2] < self.status_keepalive:
                    continue
                self._status_written[tp] = (highwater, committed, now)
                ops.append(
                    UpdateOne(
                        {"_id": f"{self.group_id}:{tp.topic}:{tp.partition}"},
                        {
                            "$set": {
                                "group": self.group_id,
                                "topic": tp.topic,
                                "partition": tp.partition,
                                # Tansu's end offsets are wrong; the fetch highwater is not.
                                "lag": max(0, highwater - committed),
                                "highwater": highwater,
                                "committed": committed,
                                "worker": self.worker_id,
                                "updated_at": stamp,
                            }
                        },
                        upsert=True,
                    )
                )
            if ops:
                self.db[CONSUMER_STATUS].bulk_write(ops, ordered=False)
        except Exception:  # status is best effort; never stop consuming for it
            log.debug("status report failed", exc_info=True)

    def run(self, stop: threading.Event) -> None:
        consumer = self.consumer_factory()
        log.info("consumer started", extra={"group": self.group_id})
        busy = False
        try:
            while not stop.is_set():
                batch = self._poll(consumer, busy)
                busy = bool(batch)
                if batch:
                    offsets = self.process(batch, stop)
                    self._commit(consumer, offsets)
                self._report_status(consumer)
            self._report_status(consumer, force=True)
        finally:
            consumer.close(autocommit=False)
            if self._dlq_producer is not None:
                self._dlq_producer.close(timeout=5)
            log.info(
                "consumer stopped",
                extra={"group": self.group_id, "applied": self.applied_total},
            )

    def _adapt_fetch_wait(self, consumer: KafkaConsumer) -> None:
        """Short fetch waits while messages keep coming, long ones once quiet.

        A fetch that finds nothing is held by the broker up to its wait (Tansu
        answers it some time after a message arrives, the later the longer the
        wait; Apache Kafka at once). A long hold keeps an idle consumer from asking the broker
        many times a second; while messages keep coming (one came within
        ``busy_for`` seconds) a short one bounds how long a caught-up
        consumer waits for the next. The wait is read by kafka-python's
        fetcher for each fetch it builds (``Fetcher.config``); a client
        without that attribute keeps its own setting.
        """
        if self.fetch_wait_ms is None:
            return
        idle_ms, busy_ms = self.fetch_wait_ms
        wanted = busy_ms if time.monotonic() - self._records_at < self.busy_for else idle_ms
        if wanted == self._fetch_wait_set:
            return
        config = getattr(getattr(consumer, "_fetcher", None), "config", None)
        if isinstance(config, dict) and "fetch_max_wait_ms" in config:
            config["fetch_max_wait_ms"] = wanted
        self._fetch_wait_set = wanted

    def _poll(self, consumer: KafkaConsumer, busy: bool) -> dict[TopicPartition, list[Any]]:
        """One poll; while messages keep coming, linger briefly so one batch (one transaction) takes more.

        Each batch costs a transaction, an idempotency read and a write per
        collection it touches, whatever its size: under load, waiting
        ``linger_ms`` for the next records costs the dashboard a few
        milliseconds and saves the database most of its statements. The first
        message after a quiet spell is applied at once.
        """
        self._adapt_fetch_wait(consumer)
        batch: dict[TopicPartition, list[Any]] = consumer.poll(timeout_ms=self.poll_timeout_ms)
        if batch:
            self._records_at = time.monotonic()
        if not batch or not busy or self.linger_ms <= 0:
            return batch
        deadline = time.monotonic() + self.linger_ms / 1000
        count = sum(len(records) for records in batch.values())
        while count < self.batch_target and (left := deadline - time.monotonic()) > 0:
            more: dict[TopicPartition, list[Any]] = consumer.poll(
                timeout_ms=max(1, int(left * 1000)), max_records=self.batch_target - count
            )
            if not more:
                break
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch
