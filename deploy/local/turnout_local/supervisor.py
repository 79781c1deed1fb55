"""A supervisor for the stack's service processes: what systemd's
``Restart=always`` or Kubernetes' restart policy does in production.

Used by the fault-injection tests: a process that dies (SIGKILLed by the test,
or for any other reason) is started again after ``delay`` seconds, and every
restart is recorded. The broker and the database are not supervised.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from turnout_local.stack import Stack

INFRASTRUCTURE = ("kafka", "mongodb")


@dataclass(frozen=True)
class Restart:
    name: str
    returncode: int | None
    at: float  # time.monotonic() of the restart


class Supervisor(threading.Thread):
    def __init__(self, stack: Stack, delay: float = 1.0, interval: float = 0.2) -> None:
        super().__init__(name="turnout-supervisor", daemon=True)
        self.stack = stack
        self.delay = delay
        self.interval = interval
        self.restarts: list[Restart] = []
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            for name, child in list(self.stack.children.items()):
                if name in INFRASTRUCTURE or child.alive():
                    continue
                returncode = child.process.returncode if child.process is not None else None
                if self._stop_event.wait(self.delay):
                    return
                with self._lock:
                    self.stack.restart(name)
                    self.restarts.append(Restart(name, returncode, time.monotonic()))

    def restarts_of(self, name: str) -> int:
        with self._lock:
            return sum(1 for restart in self.restarts if restart.name == name)

    def stop(self) -> None:
        """Stop supervising (before the stack stops, or it would start everything again)."""
        self._stop_event.set()
        self.join(timeout=30)
