"""The transactional outbox and the relay that moves it to Kafka.

Each outbox document is one message, written in the same transaction as the
change it announces, after eShop's integration-event log. The relay sends the
oldest pending entries to Kafka and removes them only after the broker
acknowledged them with ``acks=all``: a crash in between sends them again, and
consumers drop the duplicate by message id. A send that fails leaves its
entries pending with the error and a send counter.

One relay per service sends at a time: it holds the service's relay lease (a
document renewed every few seconds while it sends, left to lapse while it is
idle), and a relay started beside it waits until that lease expires, e.g.
because its holder died or fell asleep. Were two to send at
once (a holder paused past its lease), Kafka would see some messages twice,
which consumers drop. So nothing is claimed or released per message: on
SecantusDB each per-document state change of the outbox costs about as much
as the insert did, and a published entry kept forever costs every claim.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from turnout_common.clock import utcnow
from turnout_common.contracts import ContractRegistry
from turnout_common.envelope import KAFKA_STRUCTURED_CONTENT_TYPE, Envelope
from turnout_common.indexes import drop_unused_indexes
from turnout_common.wake import IdlePause

log = logging.getLogger(__name__)

OUTBOX = "outbox"
RELAY_LEASES = "relay_leases"
# Entries are only ever pending: published ones are removed. ``in_progress``
# and ``published`` are what relays before the relay lease left behind.
PENDING, IN_PROGRESS, PUBLISHED = "pending", "in_progress", "published"


# Indexes of earlier designs that the outbox no longer has: (state, lease_until)
# served per-entry leases; (state, created_at, seq) served the claim of pending
# entries among published ones, but published entries are removed, so every
# entry is pending and the claim reads them all anyway. Each cost every message
# an index write at its insert and another at its delete.
UNUSED_OUTBOX_INDEXES = ("state_1_lease_until_1", "state_1_created_at_1_seq_1")


def ensure_outbox_indexes(db: Database[dict[str, Any]]) -> None:
    """The outbox is read by ``_id`` and whole (the pending entries are all it holds): no index beyond ``_id``."""
    drop_unused_indexes(db, OUTBOX, UNUSED_OUTBOX_INDEXES)


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
    """Publishes outbox entries in creation order, in batches, while it holds the relay lease."""

    def __init__(
        self,
        db: Database[dict[str, Any]],
        producer_factory: Callable[[], Sender],
        *,
        batch_size: int = 500,
        lease_seconds: float = 10.0,
        linger: float = 0.1,
        max_backoff: float = 5.0,
        send_timeout: float = 15.0,
        idle_poll: float = 30.0,
        wake_gap: float = 0.25,
    ) -> None:
        self.db = db
        self.collection = db[OUTBOX]
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.max_backoff = max_backoff
        self.send_timeout = send_timeout
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._producer: Sender | None = None
        self._lease_until = 0.0  # monotonic end of the lease this relay holds
        self._tidied = False
        self.published_total = 0
        self.last_error: str | None = None
        # While messages keep coming, poll every ``linger`` seconds (a batch
        # gathers the messages of that span); once idle, sleep on a change
        # stream of the outbox until the next insert, or for a safety poll
        # every ``idle_poll`` seconds. The lease is not renewed while asleep:
        # it lapses, and the next batch takes it again first (or finds that
        # another relay took it meanwhile, and stands by): nothing is sent
        # without the lease either way. A renewal is a write, and SecantusDB
        # wakes every change stream on the server for any write, so renewing
        # while idle cost a getMore in every sleeping loop of the stack. Each
        # wait on the stream lasts 3 s, as the other sleeping loops' (an
        # insert still ends it at once). ``wake_gap``: how long to wait after
        # the stream was woken for another collection's write (IdlePause's
        # ``spurious_gap``): a relay whose messages nobody waits for takes 1 s.
        self.pause = IdlePause(
            self.collection,
            busy_pause=linger,
            max_sleep=max(idle_poll, lease_seconds / 2),
            await_seconds=3.0,
            spurious_gap=wake_gap,
        )

    def backlog(self) -> int:
        return self.collection.count_documents({"state": {"$in": [PENDING, IN_PROGRESS]}})

    # -- the relay lease ---------------------------------------------------------------
    def holds_lease(self) -> bool:
        """Take or renew the service's relay lease (renewed when a third of it has passed)."""
        left = self._lease_until - time.monotonic()
        if left > self.lease_seconds * 2 / 3:
            return True
        now = utcnow()
        try:
            result = self.db[RELAY_LEASES].update_one(
                {"_id": OUTBOX, "$or": [{"owner": self.owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "until": now + timedelta(seconds=self.lease_seconds)}},
                upsert=True,
            )
        except DuplicateKeyError:
            return self._lost_lease()  # another relay holds it
        if result.matched_count == 0 and result.upserted_id is None:
            return self._lost_lease()
        if self._lease_until <= 0:
            log.info("relay took the outbox lease", extra={"owner": self.owner})
        self._lease_until = time.monotonic() + self.lease_seconds
        return True

    def _lost_lease(self) -> bool:
        if self._lease_until > 0:
            log.info("relay lost the outbox lease", extra={"owner": self.owner})
        self._lease_until = 0.0
        return False

    def release_lease(self) -> None:
        """On a clean stop: let a relay beside this one take over at once."""
        if self._lease_until > 0:
            self.db[RELAY_LEASES].delete_one({"_id": OUTBOX, "owner": self.owner})
            self._lease_until = 0.0

    def _tidy_once(self) -> None:
        """Entries left by relays of the per-entry-lease design: send again what was in flight, drop what was sent."""
        if self._tidied:
            return
        self.collection.update_many({"state": IN_PROGRESS}, {"$set": {"state": PENDING}})
        self.collection.delete_many({"state": PUBLISHED})
        self._tidied = True

    # -- publishing --------------------------------------------------------------------
    def _pending(self) -> list[dict[str, Any]]:
        # Every entry is pending (published ones are removed), so this reads
        # the collection and sorts it: no index would save that read, and
        # one cost every message two index writes.
        return list(
            self.collection.find({"state": PENDING})
            .sort([("state", ASCENDING), ("created_at", ASCENDING), ("seq", ASCENDING)])
            .limit(self.batch_size)
        )

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
        """Publish the oldest pending entries if this relay holds the lease; return how many Kafka acknowledged."""
        if not self.holds_lease():
            return 0
        self._tidy_once()
        # Connect before reading, so a broker outage is reported as such.
        try:
            producer = self._producer_or_new()
        except Exception as exc:  # e.g. NoBrokersAvailable: back off
            self.last_error = repr(exc)
            raise RelayError(f"cannot connect to Kafka: {exc!r}") from exc
        entries = self._pending()
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
            self._record_failure([entry["_id"] for entry in entries], repr(exc))
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
        if acked:
            self.collection.delete_many({"_id": {"$in": acked}})
        self.published_total += len(acked)
        if failed:
            self._record_failure([entry_id for entry_id, _ in failed], failed[0][1])
            self._discard_producer()
            raise RelayError(f"{len(failed)} of {len(entries)} sends failed: {failed[0][1]}")
        return len(acked)

    def _record_failure(self, entry_ids: list[str], error: str) -> None:
        self.collection.update_many(
            {"_id": {"$in": entry_ids}},
            {"$set": {"last_error": error[:1000], "last_attempt_at": utcnow()}, "$inc": {"attempts": 1}},
        )

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set, backing off while the broker is unreachable."""
        backoff = 0.0
        try:
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
                if self._lease_until <= 0:
                    stop.wait(self.lease_seconds / 3)  # standing by: try the lease again later
                elif sent < self.batch_size:
                    self.pause.pause(stop, found_work=sent > 0)
        finally:
            self.pause.close()
            self._discard_producer()
            try:
                self.release_lease()
            except Exception:
                log.debug("releasing the relay lease failed", exc_info=True)


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
