"""The outbox and its relay against the real broker and database."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaConsumer

from tests.conftest import Infrastructure
from turnout_common.contracts import ContractViolation, registry
from turnout_common.envelope import new_envelope
from turnout_common.kafka import ensure_topics, make_producer
from turnout_common.mongo import UnitOfWork
from turnout_common.outbox import OUTBOX, PUBLISHED, RELAY_LEASES, OutboxRelay, ensure_outbox_indexes, wait_for
from turnout_local.processes import free_port, start_broker

pytestmark = pytest.mark.integration


def checked_in(event_id: str, person: str) -> Any:
    return new_envelope(
        "attendee.checked_in",
        source="/turnout/checkin",
        subject=event_id,
        data={
            "org_id": "org-1",
            "event_id": event_id,
            "registration_id": f"reg-{person}",
            "person_id": person,
            "kiosk_id": None,
            "method": "qr",
            "scanned_at": "2026-05-01T18:00:00.000Z",
            "received_at": "2026-05-01T18:00:00.100Z",
            "first_time_ever": True,
            "event_kind": "networking",
            "event_starts_at": "2026-05-01T18:00:00Z",
        },
    )


def read_topic(bootstrap: str, topic: str, wanted: int, timeout: float = 30) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(found) < wanted:
        for records in consumer.poll(timeout_ms=300).values():
            found.extend(records)
    consumer.close()
    return found


def test_a_write_and_its_messages_commit_together_or_not_at_all(mongo_client: Any, unique: str) -> None:
    db = mongo_client[f"t_uow_{unique}"]
    ensure_outbox_indexes(db)

    def succeed(uow: UnitOfWork) -> None:
        uow.db["things"].insert_one({"_id": "a"}, session=uow.session)
        uow.publish(checked_in("ev-1", "p-1"))

    UnitOfWork(mongo_client, db).run(succeed)
    assert db["things"].count_documents({}) == 1
    assert db[OUTBOX].count_documents({"state": "pending"}) == 1

    def fail(uow: UnitOfWork) -> None:
        uow.db["things"].insert_one({"_id": "b"}, session=uow.session)
        uow.publish(checked_in("ev-1", "p-2"))
        raise RuntimeError("the use case failed after writing")

    with pytest.raises(RuntimeError):
        UnitOfWork(mongo_client, db).run(fail)
    assert db["things"].count_documents({}) == 1
    assert db[OUTBOX].count_documents({}) == 1

    def invalid(uow: UnitOfWork) -> None:
        uow.db["things"].insert_one({"_id": "c"}, session=uow.session)
        envelope = checked_in("ev-1", "p-3")
        envelope.data["method"] = "teleport"
        uow.publish(envelope)

    with pytest.raises(ContractViolation):
        UnitOfWork(mongo_client, db).run(invalid)
    assert db["things"].count_documents({}) == 1
    assert db[OUTBOX].count_documents({}) == 1


def test_relay_publishes_in_order_per_key_and_removes_what_kafka_acknowledged(
    infra: Infrastructure, mongo_client: Any, unique: str
) -> None:
    ensure_topics(infra.bootstrap, 6)
    db = mongo_client[f"t_relay_{unique}"]
    ensure_outbox_indexes(db)
    events = [f"ev-{unique}-a", f"ev-{unique}-b"]
    sent = []
    for index in range(40):
        envelope = checked_in(events[index % 2], f"p{index}")
        sent.append(envelope)
        UnitOfWork(mongo_client, db).run(lambda uow, e=envelope: uow.publish(e))
    relay = OutboxRelay(db, lambda: make_producer(infra.bootstrap, "test-relay"), batch_size=15)
    total = 0
    while (published := relay.publish_batch()) > 0:
        total += published
    assert total == 40
    assert db[OUTBOX].count_documents({}) == 0
    assert relay.backlog() == 0

    records = [r for r in read_topic(infra.bootstrap, "turnout.checkin", 10_000, timeout=8) if r.key.decode() in events]
    ids = [registry().parse(r.value).id for r in records]
    assert sorted(ids) == sorted(e.id for e in sent)
    for event_id in events:
        order = [registry().parse(r.value).id for r in records if r.key.decode() == event_id]
        assert order == [e.id for e in sent if e.data["event_id"] == event_id]
    assert all(dict(r.headers)["content-type"].startswith(b"application/cloudevents+json") for r in records)


def test_relay_backs_off_while_the_broker_is_down_then_delivers_everything(
    infra: Infrastructure, mongo_client: Any, unique: str
) -> None:
    db = mongo_client[f"t_relay_down_{unique}"]
    ensure_outbox_indexes(db)
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    for index in range(10):
        UnitOfWork(mongo_client, db).run(lambda uow, i=index: uow.publish(checked_in(f"ev-{unique}", f"p{i}")))
    relay = OutboxRelay(db, lambda: make_producer(bootstrap, "test-relay-down"), max_backoff=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    broker = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and relay.last_error is None:
            time.sleep(0.2)
        # Nothing is leased or lost while the broker is away; the backlog shows it.
        assert relay.backlog() == 10
        assert db[OUTBOX].count_documents({"state": "pending"}) == 10
        assert relay.last_error is not None
        broker = start_broker(port, infra.workdir / "logs-relay-down")
        ensure_topics(bootstrap, 6)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and relay.backlog() > 0:
            time.sleep(0.2)
        assert relay.backlog() == 0
        records = read_topic(bootstrap, "turnout.checkin", 10)
        assert len({registry().parse(r.value).id for r in records}) == 10
    finally:
        stop.set()
        thread.join(20)
        if broker is not None:
            broker.stop()


def test_a_second_relay_stands_by_until_the_first_one_s_lease_expires(
    infra: Infrastructure, mongo_client: Any, unique: str
) -> None:
    ensure_topics(infra.bootstrap, 6)
    db = mongo_client[f"t_relay_lease_{unique}"]
    ensure_outbox_indexes(db)
    for index in range(5):
        UnitOfWork(mongo_client, db).run(lambda uow, i=index: uow.publish(checked_in(f"ev-{unique}", f"p{i}")))
    crashed = OutboxRelay(db, lambda: make_producer(infra.bootstrap, "dead"), lease_seconds=1.0)
    assert crashed.holds_lease()  # then "killed" before sending anything
    survivor = OutboxRelay(db, lambda: make_producer(infra.bootstrap, "survivor"), lease_seconds=1.0)
    assert survivor.publish_batch() == 0  # the lease is the dead relay's
    assert survivor.backlog() == 5
    time.sleep(1.2)
    assert survivor.publish_batch() == 5
    assert survivor.backlog() == 0
    # The dead relay, were it only paused, finds the lease gone and stands by.
    crashed._lease_until = 0.0
    assert not crashed.holds_lease()


def test_a_relay_stopped_cleanly_hands_its_lease_over_at_once(
    infra: Infrastructure, mongo_client: Any, unique: str
) -> None:
    ensure_topics(infra.bootstrap, 6)
    db = mongo_client[f"t_relay_handover_{unique}"]
    ensure_outbox_indexes(db)
    first = OutboxRelay(db, lambda: make_producer(infra.bootstrap, "first"), lease_seconds=30.0)
    stop = threading.Event()
    thread = threading.Thread(target=first.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and first._lease_until <= 0:
        time.sleep(0.05)
    second = OutboxRelay(db, lambda: make_producer(infra.bootstrap, "second"), lease_seconds=30.0)
    assert not second.holds_lease()
    stop.set()
    thread.join(20)
    assert second.holds_lease()
    UnitOfWork(mongo_client, db).run(lambda uow: uow.publish(checked_in(f"ev-{unique}", "late")))
    assert second.publish_batch() == 1


def test_an_idle_relay_lets_its_lease_lapse_and_takes_it_again_for_the_next_message(
    infra: Infrastructure, mongo_client: Any, unique: str
) -> None:
    """Asleep, a relay writes nothing (a renewal would wake every change stream
    on SecantusDB); the next insert wakes it, and it takes the lease again
    before sending."""
    ensure_topics(infra.bootstrap, 6)
    db = mongo_client[f"t_relay_idle_{unique}"]
    ensure_outbox_indexes(db)
    relay = OutboxRelay(db, lambda: make_producer(infra.bootstrap, "idle"), lease_seconds=1.0)
    relay.pause.idle_after = 0.2
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        assert wait_for(lambda: relay.pause.sleeping, 10)
        taken = db[RELAY_LEASES].find_one({"_id": OUTBOX})
        assert taken is not None
        lapsed = taken["until"].replace(tzinfo=UTC) + timedelta(seconds=0.5)
        assert wait_for(lambda: datetime.now(UTC) > lapsed, 5)
        assert db[RELAY_LEASES].find_one({"_id": OUTBOX}) == taken  # not renewed while asleep
        UnitOfWork(mongo_client, db).run(lambda uow: uow.publish(checked_in(f"ev-{unique}", "woken")))
        assert wait_for(lambda: relay.backlog() == 0, 10)
        again = db[RELAY_LEASES].find_one({"_id": OUTBOX})
        assert again is not None and again["owner"] == relay.owner and again["until"] > taken["until"]
    finally:
        stop.set()
        thread.join(20)


def test_relay_sends_the_oldest_pending_entries_first_and_tidies_what_older_relays_left(
    mongo_client: Any, unique: str
) -> None:
    """The read walks the (state, created_at, seq) index: the oldest pending
    entries, whatever order they were written in. Entries an older relay had
    marked published are removed; those it had in flight are sent again."""
    db = mongo_client[f"t_claim_{unique}"]
    base = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)
    entries = [
        {
            "_id": f"m{minute:02d}-{seq}",
            "state": "published" if minute % 5 == 0 else ("in_progress" if minute == 7 else "pending"),
            "created_at": base + timedelta(minutes=minute),
            "seq": seq,
        }
        for minute in range(30)
        for seq in (1, 0)
    ]
    random.Random(7).shuffle(entries)
    db[OUTBOX].insert_many(entries)
    relay = OutboxRelay(db, lambda: None, batch_size=10)  # type: ignore[arg-type,return-value]
    assert relay.holds_lease()
    relay._tidy_once()
    assert db[OUTBOX].count_documents({"state": PUBLISHED}) == 0
    oldest = sorted((e for e in entries if e["state"] != "published"), key=lambda e: (e["created_at"], e["seq"]))
    assert [doc["_id"] for doc in relay._pending()] == [e["_id"] for e in oldest[:10]]
