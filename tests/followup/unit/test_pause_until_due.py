"""An idle loop's pause ends by the time its next item falls due, even though
a sleep on the change feed can last one wait past its ``max_sleep``."""

from __future__ import annotations

import threading

from followup.service_layer.ports import pause_until_due


class RecordingPause:
    def __init__(self, sleeping: bool, await_ms: int = 3000) -> None:
        self.max_sleep = 30.0
        self.await_ms = await_ms
        self._sleeping = sleeping
        self.slept: list[float] = []

    @property
    def sleeping(self) -> bool:
        return self._sleeping

    def pause(self, stop: threading.Event, found_work: bool) -> None:
        self.slept.append(self.max_sleep)

    def wake(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_nothing_scheduled_sleeps_up_to_the_safety_poll() -> None:
    pause = RecordingPause(sleeping=True)
    pause_until_due(pause, threading.Event(), None, 30.0)
    assert pause.slept == [30.0]


def test_a_far_due_item_caps_the_sleep_at_the_safety_poll() -> None:
    pause = RecordingPause(sleeping=True)
    pause_until_due(pause, threading.Event(), 500.0, 30.0)
    assert pause.slept == [30.0]


def test_a_sleep_ends_one_wait_before_the_due_time() -> None:
    pause = RecordingPause(sleeping=True, await_ms=3000)
    pause_until_due(pause, threading.Event(), 10.0, 30.0)
    assert pause.slept == [7.0]  # may last up to 3 s longer: still by the due time


def test_the_last_stretch_is_a_plain_wait() -> None:
    pause = RecordingPause(sleeping=True, await_ms=3000)
    stop = threading.Event()
    stop.set()  # the wait returns at once; what matters is that the feed is not waited on
    pause_until_due(pause, stop, 2.0, 30.0)
    assert pause.slept == []


def test_a_loop_not_yet_asleep_pauses_as_usual() -> None:
    pause = RecordingPause(sleeping=False)
    pause_until_due(pause, threading.Event(), 2.0, 30.0)
    assert pause.slept == [30.0]
