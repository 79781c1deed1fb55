"""The transactional outbox and the relay that moves it to Kafka.

Each outbox document is one message with a state (``pending`` ->
``in_progress`` -> ``published``, or back to ``pending`` with a recorded error
and a send counter), after eShop's integration-event log. The relay marks an
entry published only after the broker acknowledged it with ``acks=all``: a
crash in between republishes it, and consumers drop the duplicate by message id.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database

from turnout_common.clock import utcnow
from turnout_common.contracts import ContractRegistry
from turnout_common.envelope import KAFKA_STRUCTURED_CONTENT_TYPE, Envelope
from turnout_common.wake import IdlePause

log = logging.getLogger(__name__)

OUTBOX = "outbox"
PENDING, IN_PROGRESS, PUBLISHED = "pending", "in_progress", "published"


def ensure_outbox_indexes(db: Database[dict[str, Any]]) -> None:
    db[OUTBOX].create_index([("state", ASCENDING), ("created_at", ASCENDING), ("seq", ASCENDING)])
    db[OUTBOX].create_index([("state", ASCENDING), ("lease_until", ASCENDING)])


def stage_messages(
    db: Database[dict[str, Any]],
    messages: Iterable[Envelope],
    contracts: ContractRegistry,
    *,
    session: ClientSession | None,
) -> None:
    """Insert messages into the outbox (inside the caller's transaction)."""
    now = utcnow()
    docs = []
    for seq, envelope in enumerate(messages):
        route = contracts.route(envelope.type)
        docs.append(
            {
                "_id": envelope.id,
                "type": envelope.type,
                "topic": route.topic,
                "key": str(envelope.data[route.key_field]),
                "payload": envelope.to_json(),
                "state": PENDING,
                "attempts": 0,
                "created_at": now,
                # Keeps the order of several messages written in one transaction.
                "seq": seq,
                "lease_owner": None,
                "lease_until": None,
                "last_error": None,
            }
        )
    if docs:
        db[OUTBOX].insert_many(docs, ordered=True, session=session)


class Sender(Protocol):
    """What the relay needs of a Kafka producer (kafka-python's KafkaProducer fits)."""

    def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


class OutboxRelay:
    """Publishes outbox entries in creation order, in batches.

    Several relays may run: each claims a batch with a short lease, so two
    relays rarely send the same entry, and when one dies its lease expires
    and another picks the entries up.
    """

    def __init__(
        self,
        db: Database[dict[str, Any]],
        producer_factory: Callable[[], Sender],
        *,
        batch_size: int = 500,
        lease_seconds: float = 10.0,
        linger: float = 0.02,
        max_backoff: float = 5.0,
        send_timeout: float = 15.0,
    ) -> None:
        self.db = db
        self.collection = db[OUTBOX]
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        # While messages keep coming, poll every ``linger`` seconds (a batch
        # gathers the messages of that span); once idle, sleep on a change
        # stream of the outbox until the next insert. Expired leases of a dead
        # relay are looked for at least every half lease.
        self.pause = IdlePause(self.collection, busy_pause=linger, max_sleep=lease_seconds / 2, await_seconds=2.0)
        self.max_backoff = max_backoff
        self.send_timeout = send_timeout
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._producer: Sender | None = None
        self.published_total = 0
        self._last_recovery = 0.0
        self.last_error: str | None = None

    def backlog(self) -> int:
        return self.collection.count_documents({"state": {"$in": [PENDING, IN_PROGRESS]}})

    def _claim(self) -> list[dict[str, Any]]:
        now = utcnow()
        # Two index-backed queries, not one $or (which MongoDB engines may
        # answer with a collection scan): pending entries every time, entries
        # whose relay died (expired lease) only every few seconds.
        # Not .hint() on the (state, created_at, seq) index instead of the
        # sort: SecantusDB then walks the *whole* index, published entries
        # included (every idle poll grows with the published history), whereas
        # the sort only materializes the few pending ones.
        candidates = list(
            self.collection.find({"state": PENDING})
            .sort([("state", ASCENDING), ("created_at", ASCENDING), ("seq", ASCENDING)])
            .limit(self.batch_size)
        )
        recover = time.monotonic() - self._last_recovery > self.lease.total_seconds() / 2
        if recover:
            self._last_recovery = time.monotonic()
            candidates += list(
                self.collection.find({"state": IN_PROGRESS, "lease_until": {"$lt": now}}).limit(self.batch_size)
            )
        if not candidates:
            return []
        ids = [doc["_id"] for doc in candidates]
        lease = {"$set": {"state": IN_PROGRESS, "lease_owner": self.owner, "lease_until": now + self.lease}}
        # Two _id-bounded updates, not one "$or": SecantusDB plans "_id $in + $or"
        # as a scan of the whole outbox, published entries included (every
        # claim growing with every message ever published).
        pending_ids = [doc["_id"] for doc in candidates if doc["state"] == PENDING]
        expired_ids = [doc["_id"] for doc in candidates if doc["state"] == IN_PROGRESS]
        modified = 0
        if pending_ids:
            modified += self.collection.update_many(
                {"_id": {"$in": pending_ids}, "state": PENDING}, lease
            ).modified_count
        if expired_ids:
            modified += self.collection.update_many(
                {"_id": {"$in": expired_ids}, "state": IN_PROGRESS, "lease_until": {"$lt": now}}, lease
            ).modified_count
        if modified == len(ids):
            claimed = candidates  # the usual case: no other relay took any of them
        else:
            claimed = list(self.collection.find({"_id": {"$in": ids}, "lease_owner": self.owner, "state": IN_PROGRESS}))
        claimed.sort(key=lambda doc: (doc["created_at"], doc["seq"]))
        return claimed

    def _producer_or_new(self) -> Sender:
        if self._producer is None:
            self._producer = self.producer_factory()
        return self._producer

    def _discard_producer(self) -> None:
        # After a failed send (including a producer-id error from an idempotent
        # producer) the producer is recreated: its sequence state is suspect.
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                log.debug("closing producer failed", exc_info=True)
            self._producer = None

    def publish_batch(self) -> int:
        """Publish one claimed batch; return how many entries the broker acknowledged."""
        # Connect before claiming, so entries are not leased while the
        # broker is unreachable.
        try:
            producer = self._producer_or_new()
        except Exception as exc:  # e.g. NoBrokersAvailable: back off
            self.last_error = repr(exc)
            raise RelayError(f"cannot connect to Kafka: {exc!r}") from exc
        entries = self._claim()
        if not entries:
            return 0
        try:
            futures = [
                producer.send(
                    entry["topic"],
                    value=bytes(entry["payload"]),
                    key=entry["key"].encode(),
                    headers=[("content-type", KAFKA_STRUCTURED_CONTENT_TYPE.encode())],
                )
                for entry in entries
            ]
            producer.flush(timeout=self.send_timeout)
        except Exception as exc:
            self.last_error = repr(exc)
            self._release(entries, [], repr(exc))
            self._discard_producer()
            raise RelayError(str(exc)) from exc
        acked: list[str] = []
        failed: list[tuple[str, str]] = []
        for entry, future in zip(entries, futures, strict=True):
            if future.is_done and future.succeeded():
                acked.append(entry["_id"])
            else:
                error = future.exception if future.is_done else "not acknowledged in time"
                failed.append((entry["_id"], repr(error)))
        self._release(entries, acked, failed[0][1] if failed else None)
        self.published_total += len(acked)
        if failed:
            self._discard_producer()
            raise RelayError(f"{len(failed)} of {len(entries)} sends failed: {failed[0][1]}")
        return len(acked)

    def _release(
        self,
        entries: list[dict[str, Any]],
        acked: list[str],
        error: str | None,
    ) -> None:
        now = utcnow()
        if acked:
            self.collection.update_many(
                {"_id": {"$in": acked}},
                {
                    "$set": {"state": PUBLISHED, "published_at": now, "lease_owner": None},
                    "$inc": {"attempts": 1},
                },
            )
        acked_ids = set(acked)
        not_acked = [entry["_id"] for entry in entries if entry["_id"] not in acked_ids]
        if not_acked:
            self.collection.update_many(
                {"_id": {"$in": not_acked}, "lease_owner": self.owner},
                {
                    "$set": {
                        "state": PENDING,
                        "lease_owner": None,
                        "lease_until": None,
                        "last_error": (error or "")[:1000],
                        "last_attempt_at": now,
                    },
                    "$inc": {"attempts": 1},
                },
            )

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set, backing off while the broker is unreachable."""
        backoff = 0.0
        while not stop.is_set():
            try:
                sent = self.publish_batch()
                backoff = 0.0
            except RelayError as exc:
                backoff = min(self.max_backoff, max(0.2, backoff * 2))
                log.warning("relay send failed, retrying", extra={"error": str(exc), "backoff_s": backoff})
                self.pause.wake()
                stop.wait(backoff)
                continue
            except Exception:
                backoff = min(self.max_backoff, max(0.2, backoff * 2))
                log.exception("relay loop error", extra={"backoff_s": backoff})
                self.pause.wake()
                stop.wait(backoff)
                continue
            if sent < self.batch_size:
                self.pause.pause(stop, found_work=sent > 0)
        self.pause.close()
        self._discard_producer()


class RelayError(RuntimeError):
    """Publishing a batch failed; its entries went back to pending."""


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout``; used by launchers and tests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
