"""Process plumbing for the relay and worker entry points, and readiness checks.

Liveness: each loop of ``run_loops`` gets its own view of the stop event
(``LoopStop``) that notes the time whenever the loop looks at it (``is_set()``,
``wait()``); every loop does so on each pass. A loop silent for longer than
``TURNOUT_LOOP_STALL_SECONDS`` (default 120; a loop inside ``stop.wait(t)``
counts as alive until ``t`` has passed) is stuck: the process logs it with the
loop's stack and exits 1 for its supervisor to restart it. While every loop is
healthy the main thread touches the heartbeat file (``turnout_common.alive``)
every few seconds, for a probe to catch what the watchdog cannot (the whole
process wedged).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from pymongo import MongoClient

from turnout_common.alive import Writer, heartbeat_file_from_env, write_heartbeat
from turnout_common.config import SettingError, env_float

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]

STALL_SECONDS_VARIABLE = "TURNOUT_LOOP_STALL_SECONDS"
DEFAULT_STALL_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Liveness:
    """How ``run_loops`` watches its loops: ``stall_seconds`` of silence make a loop
    stuck; the heartbeat file (None: none) is touched every ``heartbeat_every`` s;
    the main thread compares timestamps every ``check_every`` s, and if it wakes
    ``frozen_gap`` s later than that, the whole process was frozen (SIGSTOP, a
    starved host): the loops' silence then counts from the thaw."""

    stall_seconds: float = DEFAULT_STALL_SECONDS
    heartbeat_file: Path | None = None
    heartbeat_every: float = 5.0
    check_every: float = 1.0
    frozen_gap: float = 5.0

    @classmethod
    def from_env(cls) -> Liveness:
        stall = env_float(STALL_SECONDS_VARIABLE, DEFAULT_STALL_SECONDS)
        if not (math.isfinite(stall) and stall > 0):
            raise SettingError(f"{STALL_SECONDS_VARIABLE} must be a positive number of seconds, got {stall}")
        return cls(stall_seconds=stall, heartbeat_file=heartbeat_file_from_env())


class LoopStop(threading.Event):
    """One loop's view of the process's stop event: the same flag, and every look
    at it (``is_set``, ``wait``) is a heartbeat of that loop."""

    def __init__(self, shared: threading.Event) -> None:
        super().__init__()
        self._shared = shared
        # (last beat, end of the stop.wait(t) in progress or None): one tuple,
        # replaced whole, so the watchdog never reads half an update.
        self._beat: tuple[float, float | None] = (time.monotonic(), None)

    def is_set(self) -> bool:
        self._beat = (time.monotonic(), None)
        return self._shared.is_set()

    def isSet(self) -> bool:  # threading.Event's deprecated alias
        return self.is_set()

    def set(self) -> None:
        self._shared.set()

    def clear(self) -> None:
        self._shared.clear()

    def wait(self, timeout: float | None = None) -> bool:
        started = time.monotonic()
        until = math.inf if timeout is None else started + max(0.0, timeout)
        self._beat = (started, until)
        try:
            return self._shared.wait(timeout)
        finally:
            self._beat = (time.monotonic(), None)

    def silent_for(self, now: float) -> float:
        """Seconds the loop has gone without a sign of life (0 while inside its ``wait``)."""
        beat, waiting_until = self._beat
        if waiting_until is not None:
            return max(0.0, now - waiting_until)
        return max(0.0, now - beat)


class _Heartbeat:
    """The heartbeat file: written (naming this process) when the loops start,
    touched while they are healthy, removed on a clean stop."""

    def __init__(self, path: Path | None, proc: str, every: float) -> None:
        self.path = path
        self.writer = Writer.this_process(proc)
        self.every = every
        self._last = -math.inf
        self._failing = False

    def beat(self, now: float) -> None:
        if self.path is None or now - self._last < self.every:
            return
        self._last = now
        try:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                write_heartbeat(self.path, self.writer)
        except OSError as exc:
            if not self._failing:
                log.error("cannot write the heartbeat file", extra={"file": str(self.path), "error": repr(exc)})
            self._failing = True
            return
        self._failing = False

    def start(self) -> None:
        if self.path is None:
            return
        try:
            write_heartbeat(self.path, self.writer)
        except OSError as exc:
            self._failing = True
            log.error("cannot write the heartbeat file", extra={"file": str(self.path), "error": repr(exc)})
        self._last = time.monotonic()

    def remove(self) -> None:
        if self.path is not None and Writer.loads(_read(self.path)) == self.writer:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _stack_of(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    return "".join(traceback.format_stack(frame)) if frame is not None else ""


def run_loops(name: str, loops: Sequence[tuple[str, Loop]], liveness: Liveness | None = None) -> int:
    """Run each loop in a thread until SIGTERM/SIGINT; return the exit code.

    A loop that raises stops the whole process (non-zero exit) so the
    supervisor restarts it instead of leaving it half-alive; so does a loop
    that has not looked at its stop event for ``liveness.stall_seconds``
    (``Liveness.from_env()`` by default).
    """
    liveness = liveness if liveness is not None else Liveness.from_env()
    stop = threading.Event()
    failures: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name, "proc": name})
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}

    def guarded(loop_name: str, loop: Loop, view: LoopStop) -> None:
        try:
            loop(view)
        except Exception as exc:
            log.exception("loop failed", extra={"loop": loop_name})
            failures.append(f"{loop_name}: {exc!r}")
            stop.set()

    watched = [(loop_name, loop, LoopStop(stop)) for loop_name, loop in loops]
    threads = [
        threading.Thread(target=guarded, args=watched_loop, name=watched_loop[0], daemon=True)
        for watched_loop in watched
    ]
    heartbeat = _Heartbeat(liveness.heartbeat_file, name, liveness.heartbeat_every)
    stalled: set[threading.Thread] = set()
    try:
        for thread in threads:
            thread.start()
        heartbeat.start()
        log.info(
            "started",
            extra={"proc": name, "loops": [n for n, _ in loops], "stall_seconds": liveness.stall_seconds},
        )
        checked = resumed = time.monotonic()
        while not stop.wait(liveness.check_every):
            now = time.monotonic()
            if now - checked > liveness.check_every + liveness.frozen_gap:
                log.warning("process was frozen", extra={"proc": name, "frozen_s": round(now - checked, 1)})
                resumed = now
            checked = now
            for thread, (loop_name, _, view) in zip(threads, watched, strict=True):
                silent = min(view.silent_for(now), now - resumed)
                if silent > liveness.stall_seconds and thread.is_alive():
                    stalled.add(thread)
                    log.error(
                        "loop %s stalled: no sign of life for %.0f s; exiting for a restart",
                        loop_name,
                        silent,
                        extra={
                            "proc": name,
                            "loop": loop_name,
                            "silent_s": round(silent, 1),
                            "stack": _stack_of(thread),
                        },
                    )
                    failures.append(f"{loop_name}: stalled for {silent:.0f} s")
            if stalled:
                stop.set()
                break
            heartbeat.beat(now)
        deadline = time.monotonic() + 20
        for thread in threads:
            if thread not in stalled:
                thread.join(max(0.1, deadline - time.monotonic()))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failures:
        log.error("exiting after failure", extra={"proc": name, "failures": failures})
        return 1
    heartbeat.remove()
    log.info("stopped", extra={"proc": name})
    return 0


def exit_with(code: int) -> None:
    """Exit with ``code``. After a failure, a stuck thread or exit handler (a
    client closing against a dead server) must not keep the process from
    exiting: it is cut short after 10 s."""
    sys.stdout.flush()
    sys.stderr.flush()
    if code != 0:
        timer = threading.Timer(10.0, os._exit, args=(code,))
        timer.daemon = True
        timer.start()
    sys.exit(code)


def mongo_check(client: MongoClient[dict[str, Any]]) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            client.admin.command("ping")
        except Exception as exc:  # noqa: BLE001 - the reason is the answer
            return f"mongodb unreachable: {exc.__class__.__name__}"
        return None

    return check


class KafkaCheck:
    """Readiness of Kafka: metadata answers and our topics exist (cached 2 s)."""

    def __init__(self, bootstrap_servers: str, topics: Sequence[str]) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, str | None] = (0.0, None)

    def __call__(self) -> str | None:
        with self._lock:
            at, answer = self._cached
            if time.monotonic() - at < 2.0:
                return answer
            answer = self._probe()
            self._cached = (time.monotonic(), answer)
            return answer

    def _reachable(self) -> bool:
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=1.0):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def _probe(self) -> str | None:
        # A plain TCP connect first: constructing a Kafka client against a dead
        # broker blocks for its bootstrap timeout and leaves a retrying thread.
        if not self._reachable():
            return "kafka unreachable: no bootstrap server accepts connections"
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id="turnout-readyz",
                    request_timeout_ms=3000,
                    bootstrap_timeout_ms=3000,
                )
            existing = set(self._admin.list_topics())
        except Exception as exc:  # noqa: BLE001
            if self._admin is not None:
                with contextlib.suppress(Exception):
                    self._admin.close()
                self._admin = None
            return f"kafka unreachable: {exc.__class__.__name__}"
        missing = [topic for topic in self.topics if topic not in existing]
        if missing:
            return f"kafka topics missing: {', '.join(missing)}"
        return None
