"""How the consumer loop gathers a batch: at once after a quiet spell, lingering under load.

A scripted stand-in for kafka-python's poll (the pure batching logic only; the
loop against the real broker is tested in tests/common/integration).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from kafka import TopicPartition

from turnout_common.consumer import ConsumerWorker

A = TopicPartition("turnout.checkin", 0)
B = TopicPartition("turnout.checkin", 1)


class ScriptedPolls:
    """Answers each poll with the next prepared batch (empty once they run out) and records the calls."""

    def __init__(self, answers: list[dict[TopicPartition, list[str]]]) -> None:
        self._answers: Iterator[dict[TopicPartition, list[str]]] = iter(answers)
        self.calls: list[dict[str, Any]] = []

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[str]]:
        self.calls.append({"timeout_ms": timeout_ms, "max_records": max_records})
        return next(self._answers, {})


def worker(linger_ms: int = 50, batch_target: int = 200) -> ConsumerWorker:
    return ConsumerWorker(
        group_id="g",
        consumer_factory=lambda: None,  # type: ignore[arg-type,return-value]
        dlq_producer_factory=lambda: None,  # type: ignore[arg-type,return-value]
        client=None,  # type: ignore[arg-type]
        db=defaultdict(lambda: None),  # type: ignore[arg-type]  # no collection is touched
        handler=lambda uow, messages: None,
        linger_ms=linger_ms,
        batch_target=batch_target,
    )


def test_the_first_message_after_a_quiet_spell_is_taken_at_once() -> None:
    polls = ScriptedPolls([{A: ["a1"]}, {A: ["a2"]}])
    batch = worker()._poll(polls, busy=False)  # type: ignore[arg-type]
    assert batch == {A: ["a1"]} and len(polls.calls) == 1


def test_under_load_a_batch_gathers_more_polls_in_partition_order() -> None:
    polls = ScriptedPolls([{A: ["a1"], B: ["b1"]}, {A: ["a2"]}, {B: ["b2"], A: ["a3"]}])
    batch = worker()._poll(polls, busy=True)  # type: ignore[arg-type]
    assert batch == {A: ["a1", "a2", "a3"], B: ["b1", "b2"]}


def test_lingering_stops_at_the_batch_target_and_asks_only_for_what_fits() -> None:
    polls = ScriptedPolls([{A: ["a1", "a2", "a3"]}, {A: ["a4", "a5"]}, {A: ["never"]}])
    batch = worker(batch_target=5)._poll(polls, busy=True)  # type: ignore[arg-type]
    assert batch == {A: ["a1", "a2", "a3", "a4", "a5"]}
    assert polls.calls[1]["max_records"] == 2 and len(polls.calls) == 2


def test_lingering_ends_when_nothing_more_comes_or_the_time_is_up() -> None:
    polls = ScriptedPolls([{A: ["a1"]}])  # then empty answers
    started = time.monotonic()
    batch = worker(linger_ms=200)._poll(polls, busy=True)  # type: ignore[arg-type]
    assert batch == {A: ["a1"]}
    assert len(polls.calls) == 2  # one more poll, empty: no waiting out the rest
    assert time.monotonic() - started < 1.0


class FetcherConfig:
    """Where kafka-python's fetcher reads each fetch's ``max_wait_ms``."""

    def __init__(self) -> None:
        self.config = {"fetch_max_wait_ms": 500}


def test_fetches_are_held_briefly_while_messages_come_and_long_once_quiet() -> None:
    polls = ScriptedPolls([{A: ["a1"]}])  # then nothing
    polls._fetcher = FetcherConfig()  # type: ignore[attr-defined]
    w = worker(linger_ms=0)
    w.fetch_wait_ms, w.busy_for = (500, 50), 0.2
    w._poll(polls, busy=False)  # type: ignore[arg-type]  # quiet before: the long wait
    assert polls._fetcher.config["fetch_max_wait_ms"] == 500  # type: ignore[attr-defined]
    w._poll(polls, busy=True)  # type: ignore[arg-type]  # a message came: the next fetches are short
    assert polls._fetcher.config["fetch_max_wait_ms"] == 50  # type: ignore[attr-defined]
    time.sleep(0.25)
    w._poll(polls, busy=False)  # type: ignore[arg-type]  # quiet for longer than busy_for
    assert polls._fetcher.config["fetch_max_wait_ms"] == 500  # type: ignore[attr-defined]


def test_without_adaptive_waits_the_consumer_keeps_its_own_setting() -> None:
    polls = ScriptedPolls([{A: ["a1"]}, {A: ["a2"]}])
    polls._fetcher = FetcherConfig()  # type: ignore[attr-defined]
    worker()._poll(polls, busy=False)  # type: ignore[arg-type]
    worker()._poll(polls, busy=False)  # type: ignore[arg-type]
    assert polls._fetcher.config["fetch_max_wait_ms"] == 500  # type: ignore[attr-defined]
