"""Process plumbing for the relay and worker entry points, and readiness checks."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka import KafkaAdminClient
from pymongo import MongoClient

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]


def run_loops(name: str, loops: Sequence[tuple[str, Loop]]) -> int:
    """Run each loop in a thread until SIGTERM/SIGINT; return the exit code.

    A loop that raises stops the whole process (non-zero exit) so the
    supervisor restarts it instead of leaving it half-alive.
    """
    stop = threading.Event()
    failures: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name, "proc": name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def guarded(loop_name: str, loop: Loop) -> None:
        try:
            loop(stop)
        except Exception as exc:
            log.exception("loop failed", extra={"loop": loop_name})
            failures.append(f"{loop_name}: {exc!r}")
            stop.set()

    threads = [
        threading.Thread(target=guarded, args=(loop_name, loop), name=loop_name, daemon=True)
        for loop_name, loop in loops
    ]
    for thread in threads:
        thread.start()
    log.info("started", extra={"proc": name, "loops": [n for n, _ in loops]})
    while not stop.is_set():
        stop.wait(0.5)
    deadline = time.monotonic() + 20
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    if failures:
        log.error("exiting after failure", extra={"failures": failures})
        return 1
    log.info("stopped", extra={"proc": name})
    return 0


def exit_with(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
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
