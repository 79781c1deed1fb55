"""Liveness of relays and workers (turnout_common.runtime.run_loops): a loop that
hangs makes the process exit non-zero, a loop waiting on its stop event is not
mistaken for a hung one, and healthy loops keep the heartbeat file fresh.
Real threads with short timings."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from turnout_common.alive import check
from turnout_common.config import SettingError
from turnout_common.runtime import Liveness, LoopStop, run_loops

STALL = 1.0


def quick(heartbeat_file: Path | None = None, stall: float = STALL) -> Liveness:
    return Liveness(stall_seconds=stall, heartbeat_file=heartbeat_file, heartbeat_every=0.2, check_every=0.1)


@pytest.fixture
def never() -> Iterator[threading.Event]:
    """An event nobody sets until the test ends (lets the hung threads go)."""
    event = threading.Event()
    yield event
    event.set()


def test_a_loop_that_hangs_makes_the_process_exit_non_zero(
    never: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    entered = threading.Event()

    def healthy(stop: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(0.05)

    def hangs(stop: threading.Event) -> None:
        while not stop.is_set():
            entered.set()
            never.wait()  # blocked forever in a call, never looking at ``stop``

    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="turnout_common.runtime"):
        code = run_loops("test-worker", [("healthy", healthy), ("stuck", hangs)], quick())
    took = time.monotonic() - started

    assert entered.is_set()
    assert code == 1
    # Declared stuck after the stall time (plus one check), not 20 s of joining later.
    assert STALL <= took < STALL + 2.0, took
    stalled = [r for r in caplog.records if getattr(r, "loop", None) == "stuck"]
    assert stalled, [r.getMessage() for r in caplog.records]
    assert "loop stuck stalled" in stalled[0].getMessage()
    assert "never.wait()" in stalled[0].stack  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if getattr(r, "loop", None) == "healthy"]


def test_a_loop_waiting_on_its_stop_event_is_alive_until_the_wait_ends(never: threading.Event) -> None:
    waits = []

    def idles(stop: threading.Event) -> None:
        # One long pause (longer than the stall time), then hangs outside ``stop``.
        while not stop.is_set():
            started = time.monotonic()
            stop.wait(2.5 * STALL)
            waits.append(time.monotonic() - started)
            never.wait()

    started = time.monotonic()
    code = run_loops("test-relay", [("idle", idles)], quick())
    took = time.monotonic() - started

    assert code == 1
    assert len(waits) == 1 and waits[0] >= 2.5 * STALL  # the wait was not cut short
    # Stuck only once the wait was over and the loop then stayed silent for the stall time.
    assert took >= 3.5 * STALL, took
    assert took < 3.5 * STALL + 2.0, took


def test_waiting_for_ever_on_the_stop_event_is_alive(tmp_path: Path) -> None:
    heartbeat = tmp_path / "alive"
    answers: list[str | None] = []

    def sleeps(stop: threading.Event) -> None:
        stop.wait()  # idle until the process stops: not stuck

    def stops_later(stop: threading.Event) -> None:
        stop.wait(3 * STALL)
        answers.append(check(heartbeat, max_age=1.0))
        stop.set()

    code = run_loops("test-worker", [("sleeper", sleeps), ("stopper", stops_later)], quick(heartbeat))

    assert code == 0
    assert answers == [None]  # alive, 3 stall times in


def test_healthy_loops_keep_the_heartbeat_file_fresh_and_remove_it_on_a_clean_stop(tmp_path: Path) -> None:
    heartbeat = tmp_path / "alive"
    views: list[threading.Event] = []

    def busy(stop: threading.Event) -> None:
        views.append(stop)
        while not stop.is_set():
            time.sleep(0.02)  # works without waiting on ``stop``, but looks at it every pass

    def idle(stop: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(0.3)

    stopper = threading.Timer(3.0, lambda: views[0].set())
    stopper.start()
    ages = []

    def sample() -> None:
        for _ in range(10):
            time.sleep(0.25)
            if heartbeat.exists():
                ages.append(time.time() - heartbeat.stat().st_mtime)

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = run_loops("test-worker", [("busy", busy), ("idle", idle)], quick(heartbeat))
    sampler.join()
    stopper.join()

    assert code == 0
    assert len(ages) >= 8, ages
    assert max(ages) < 0.2 + 0.1 + 0.3, ages  # touched every 0.2 s (checks every 0.1 s)
    assert isinstance(views[0], LoopStop)
    assert not heartbeat.exists(), "a cleanly stopped process left its heartbeat behind"


def test_after_a_stall_the_heartbeat_file_is_left_to_age(tmp_path: Path, never: threading.Event) -> None:
    heartbeat = tmp_path / "alive"

    def hangs(stop: threading.Event) -> None:
        stop.is_set()
        never.wait()

    code = run_loops("test-worker", [("stuck", hangs)], quick(heartbeat))
    assert code == 1
    # Not removed as on a clean stop: if the exit itself got stuck, the probe
    # sees the file age and the container is restarted anyway.
    written = json.loads(heartbeat.read_text())
    assert written["proc"] == "test-worker" and written["pid"] == os.getpid()
    touched = heartbeat.stat().st_mtime
    time.sleep(0.7)
    assert heartbeat.stat().st_mtime == touched
    reason = check(heartbeat, max_age=0.5)
    assert reason is not None and "test-worker" in reason and "stuck" in reason


def test_the_stall_time_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_LOOP_STALL_SECONDS", "45")
    monkeypatch.setenv("TURNOUT_HEARTBEAT_FILE", "/run/turnout/alive")
    assert Liveness.from_env() == Liveness(stall_seconds=45.0, heartbeat_file=Path("/run/turnout/alive"))
    monkeypatch.setenv("TURNOUT_HEARTBEAT_FILE", "off")
    assert Liveness.from_env().heartbeat_file is None
    monkeypatch.delenv("TURNOUT_LOOP_STALL_SECONDS")
    monkeypatch.delenv("TURNOUT_HEARTBEAT_FILE")
    assert Liveness.from_env() == Liveness(stall_seconds=120.0, heartbeat_file=Path("/tmp/turnout-alive"))
    for bad in ("soon", "0", "-5", "nan"):
        monkeypatch.setenv("TURNOUT_LOOP_STALL_SECONDS", bad)
        with pytest.raises(SettingError, match="TURNOUT_LOOP_STALL_SECONDS"):
            Liveness.from_env()


def test_a_loops_view_of_stop_is_the_shared_flag() -> None:
    shared = threading.Event()
    view = LoopStop(shared)
    assert not view.is_set() and not view.wait(0.01)
    view.set()
    assert shared.is_set() and view.is_set() and view.wait(5)
    view.clear()
    assert not shared.is_set()
