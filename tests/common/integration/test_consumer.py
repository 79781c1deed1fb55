"""The consumer loop against the real broker and database: idempotency,
dead letters, bounded retries and the dead-letter limit."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from kafka import KafkaProducer

from tests.common.integration.test_outbox_relay import checked_in, read_topic
from tests.conftest import Infrastructure
from turnout_common.consumer import ConsumerWorker, DeadLetterLimitExceeded
from turnout_common.envelope import Envelope
from turnout_common.kafka import ensure_topics, make_consumer, make_producer
from turnout_common.mongo import UnitOfWork

pytestmark = pytest.mark.integration


def counting_handler(poison_ids: frozenset[str] = frozenset()) -> Callable[[UnitOfWork, Sequence[Envelope]], None]:
    def handle(uow: UnitOfWork, messages: Sequence[Envelope]) -> None:
        for message in messages:
            if message.id in poison_ids:
                raise ValueError(f"cannot apply {message.id}")
            uow.db["counts"].update_one(
                {"_id": message.data["event_id"]}, {"$inc": {"n": 1}}, upsert=True, session=uow.session
            )

    return handle


def worker_for(infra: Infrastructure, db: Any, topic: str, handler: Any, **options: Any) -> ConsumerWorker:
    group = f"g-{uuid.uuid4().hex[:8]}"
    return ConsumerWorker(
        group_id=group,
        consumer_factory=lambda: make_consumer(infra.bootstrap, group, [topic], client_id="test"),
        dlq_producer_factory=lambda: make_producer(infra.bootstrap, "test-dlq"),
        client=db.client,
        db=db,
        handler=handler,
        status_interval=0.2,
        **options,
    )


def run_until(worker: ConsumerWorker, done: Callable[[], bool], timeout: float = 40) -> None:
    stop = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test below
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done() and not failure:
        time.sleep(0.1)
    stop.set()
    thread.join(20)
    if failure:
        raise failure[0]


def produce(infra: Infrastructure, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
    for value in values:
        producer.send(topic, key=b"k", value=value)
    producer.flush()
    producer.close()


@pytest.fixture
def topic(infra: Infrastructure, unique: str) -> str:
    name = f"test.{unique}"
    ensure_topics(infra.bootstrap, 3, topics=[name])
    return name


def test_a_message_delivered_twice_is_applied_once(
    infra: Infrastructure, mongo_client: Any, unique: str, topic: str
) -> None:
    db = mongo_client[f"t_consumer_{unique}"]
    first, second = checked_in("ev-a", "p1"), checked_in("ev-b", "p2")
    produce(infra, topic, [first.to_json(), first.to_json(), second.to_json(), first.to_json()])
    worker = worker_for(infra, db, topic, counting_handler())
    run_until(worker, lambda: db["processed_messages"].count_documents({}) >= 2 and worker.applied_total >= 2)
    time.sleep(0.5)
    assert db["counts"].find_one({"_id": "ev-a"})["n"] == 1
    assert db["counts"].find_one({"_id": "ev-b"})["n"] == 1
    assert worker.applied_total == 2

    # A fresh consumer group replaying the topic from the start changes nothing.
    replay = worker_for(infra, db, topic, counting_handler())
    run_until(replay, lambda: sum(s["committed"] for s in db["consumer_status"].find({"group": replay.group_id})) >= 4)
    assert replay.applied_total == 0
    assert db["counts"].find_one({"_id": "ev-a"})["n"] == 1


def test_invalid_and_failing_messages_go_to_the_dead_letter_topic(
    infra: Infrastructure, mongo_client: Any, unique: str, topic: str
) -> None:
    db = mongo_client[f"t_consumer_dlq_{unique}"]
    good, poison, after = checked_in("ev-a", "p1"), checked_in("ev-b", "p2"), checked_in("ev-c", "p3")
    produce(infra, topic, [b"{not json", good.to_json(), poison.to_json(), after.to_json()])
    worker = worker_for(infra, db, topic, counting_handler(frozenset({poison.id})), max_retries=2)
    run_until(worker, lambda: worker.dead_lettered_total >= 2 and worker.applied_total >= 2)
    assert worker.dead_lettered_total == 2
    assert {d["_id"] for d in db["counts"].find()} == {"ev-a", "ev-c"}

    records = read_topic(infra.bootstrap, f"{topic}.dlq", 2)
    assert len(records) == 2
    by_error = {dict(r.headers)["dlq.error"].decode(): r for r in records}
    assert any("not JSON" in error for error in by_error)
    failed = next(r for e, r in by_error.items() if "handler failed 2 times" in e)
    headers = dict(failed.headers)
    assert headers["dlq.original_topic"] == topic.encode()
    assert failed.value == poison.to_json()
    assert int(headers["dlq.original_offset"]) == 2
    assert db["dead_letters"].count_documents({}) == 2


def test_too_many_dead_letters_in_a_row_stop_the_worker(
    infra: Infrastructure, mongo_client: Any, unique: str, topic: str
) -> None:
    db = mongo_client[f"t_consumer_limit_{unique}"]
    produce(infra, topic, [f"garbage {i}".encode() for i in range(6)])
    worker = worker_for(infra, db, topic, counting_handler(), dead_letter_limit=3)
    with pytest.raises(DeadLetterLimitExceeded):
        run_until(worker, lambda: False, timeout=30)
    assert worker.dead_lettered_total == 3
