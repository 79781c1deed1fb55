"""``IdlePause`` against the real SecantusDB: an idle loop stops polling, an
insert wakes it within milliseconds, no insert between the last poll and the
sleep is lost, and ``stop`` ends a sleep promptly."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from pymongo.collection import Collection

from turnout_common.types import Doc
from turnout_common.wake import IdlePause

pytestmark = pytest.mark.integration


@pytest.fixture
def collection(mongo_client: Any) -> Iterator[Collection[Doc]]:
    db = mongo_client[f"t_wake_{uuid.uuid4().hex[:10]}"]
    coll: Collection[Doc] = db["work"]
    coll.insert_one({"_id": "created"})  # the collection exists before anyone watches it
    coll.delete_one({"_id": "created"})
    yield coll
    mongo_client.drop_database(db.name)


class PollingLoop:
    """A loop as the relays and senders have it: poll, handle what was found, pause."""

    def __init__(
        self,
        collection: Collection[Doc],
        pause: IdlePause,
        before_pause: Callable[[int], None] | None = None,
    ) -> None:
        self.collection = collection
        self.pause = pause
        self.before_pause = before_pause
        self.stop = threading.Event()
        self.passes = 0
        self.handled: dict[str, float] = {}  # _id -> when the loop saw it
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            found = list(self.collection.find({"done": {"$ne": True}}))
            self.passes += 1
            for doc in found:
                self.handled[doc["_id"]] = time.monotonic()
                self.collection.update_one({"_id": doc["_id"]}, {"$set": {"done": True}})
            if self.before_pause is not None:
                self.before_pause(self.passes)
            self.pause.pause(self.stop, bool(found))
        self.pause.close()

    def __enter__(self) -> PollingLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def test_an_idle_loop_stops_polling_and_an_insert_wakes_it_at_once(collection: Collection[Doc]) -> None:
    pause = IdlePause(collection, busy_pause=0.02, idle_after=0.3, max_sleep=30.0, await_seconds=0.2)
    with PollingLoop(collection, pause) as loop:
        assert wait_for(lambda: pause.sleeping, 5), "the loop never went to sleep"
        time.sleep(0.3)
        before = loop.passes
        time.sleep(2.0)
        assert loop.passes - before == 0, f"an idle loop polled {loop.passes - before} times in 2 s"

        for n in range(3):
            inserted_at = time.monotonic()
            key = f"job-{n}"
            collection.insert_one({"_id": key})
            assert wait_for(partial(dict.__contains__, loop.handled, key), 2), f"{key} never handled"
            latency = loop.handled[key] - inserted_at
            assert latency < 0.5, f"{key} waited {latency:.3f} s"
            # back to sleep before the next one
            assert wait_for(lambda: pause.sleeping and loop.passes > 0, 5)
            time.sleep(0.5)
        assert pause.wakeups >= 3


def test_an_insert_between_the_last_poll_and_the_sleep_is_not_lost(collection: Collection[Doc]) -> None:
    """The stream opens before the loop's last poll: whatever lands after that poll wakes the sleep."""
    pause = IdlePause(collection, busy_pause=0.02, idle_after=0.0, max_sleep=30.0, await_seconds=0.2)
    inserted: dict[str, float] = {}

    def insert_right_after_the_armed_poll(passes: int) -> None:
        # The pass after arming found nothing; the loop is about to sleep. Insert now.
        if pause.sleeping and "late" not in inserted:
            collection.insert_one({"_id": "late"})
            inserted["late"] = time.monotonic()

    with PollingLoop(collection, pause, insert_right_after_the_armed_poll) as loop:
        assert wait_for(lambda: "late" in loop.handled, 5), "the insert made before the sleep was lost"
        assert loop.handled["late"] - inserted["late"] < 0.5


def test_stop_ends_a_sleep_promptly(collection: Collection[Doc]) -> None:
    pause = IdlePause(collection, busy_pause=0.02, idle_after=0.0, max_sleep=60.0, await_seconds=0.2)
    loop = PollingLoop(collection, pause)
    loop.thread.start()
    assert wait_for(lambda: pause.sleeping, 5)
    time.sleep(0.3)
    stopped_at = time.monotonic()
    loop.stop.set()
    loop.thread.join(5)
    assert not loop.thread.is_alive()
    assert time.monotonic() - stopped_at < 1.0


def test_a_safety_poll_comes_after_max_sleep(collection: Collection[Doc]) -> None:
    pause = IdlePause(collection, busy_pause=0.02, idle_after=0.0, max_sleep=0.5, await_seconds=0.1)
    with PollingLoop(collection, pause) as loop:
        assert wait_for(lambda: pause.sleeping, 5)
        before = loop.passes
        time.sleep(2.2)
        polls = loop.passes - before
        assert 3 <= polls <= 6, f"{polls} safety polls in 2.2 s at max_sleep 0.5 s"


def test_a_pipeline_can_wake_on_updates_that_make_work_ready(collection: Collection[Doc]) -> None:
    """Senders wake when a batch becomes ``ready`` again (an update), not on every lease renewal."""
    pipeline: list[Doc] = [
        {
            "$match": {
                "$or": [
                    {"operationType": "insert"},
                    {"operationType": "update", "updateDescription.updatedFields.state": "ready"},
                ]
            }
        },
        {"$project": {"_id": 1}},
    ]
    collection.insert_one({"_id": "batch", "state": "done", "lease": 0})
    pause = IdlePause(collection, pipeline, busy_pause=0.02, idle_after=0.0, max_sleep=30.0, await_seconds=0.2)
    stop = threading.Event()
    pause.pause(stop, False)  # arms the stream
    assert pause.sleeping
    woke: list[float] = []

    def sleeper() -> None:
        pause.pause(stop, False)
        woke.append(time.monotonic())

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    collection.update_one({"_id": "batch"}, {"$inc": {"lease": 1}})
    time.sleep(0.6)
    assert not woke, "an unrelated update woke the sleep"
    ready_at = time.monotonic()
    collection.update_one({"_id": "batch"}, {"$set": {"state": "ready"}})
    thread.join(3)
    assert woke and woke[0] - ready_at < 0.5
    stop.set()
    pause.close()
