"""Group commit: requests that arrive together are written together.

Eight kiosks scanning at once make eight web threads each open a transaction
of five statements. Each statement costs the database about the same
whatever it carries, so the same work written as *one* transaction with one
statement per collection costs a fraction. ``GroupCommit.submit`` does that
without a background thread and without delaying anyone: the first caller
runs its own item at once (a batch of one); callers that arrive while a
batch is being written queue up, and when it is done, one of them writes
the whole queue in the next batch. So a lone kiosk is answered as fast as
before, and under load batches grow by themselves, exactly as large as the
concurrency. Each caller still gets its own answer (or its own exception)
only after its batch is durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Runs a batch; returns one outcome per item, in order: the item's result or
# the exception that item's caller should see.
BatchRunner = Callable[[Sequence[Item]], Sequence[Result | BaseException]]


@dataclass(slots=True, eq=False)
class _Slot(Generic[Item, Result]):
    item: Item
    ready: threading.Event = field(default_factory=threading.Event)
    leads: bool = False  # woken to write the queue, not with an answer
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None

    def outcome(self) -> Result:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set together with done


class GroupCommit(Generic[Item, Result]):
    """Runs concurrent ``submit`` calls in batches through ``run_batch``."""

    def __init__(self, run_batch: BatchRunner[Item, Result], max_batch: int = 64) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[Item, Result]] = []
        self._writing = False
        self.batches = 0  # figures for tests and benchmarks
        self.items = 0

    def submit(self, item: Item) -> Result:
        slot: _Slot[Item, Result] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            leader = not self._writing
            self._writing = True
        if not leader:
            slot.ready.wait()
            if not slot.leads:
                return slot.outcome()
        self._lead(slot)
        return slot.outcome()

    def _lead(self, own: _Slot[Item, Result]) -> None:
        """Write batches until our own item is done, then hand the queue to a waiting caller."""
        while True:
            with self._lock:
                batch = self._queue[: self.max_batch]
                del self._queue[: len(batch)]
            if batch:
                self._write(batch)
            with self._lock:
                if not self._queue:
                    self._writing = False
                    return
                if own.done:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.ready.set()
                    return

    def _write(self, batch: list[_Slot[Item, Result]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            outcomes = list(self._run_batch([slot.item for slot in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} returned {len(outcomes)} outcomes")
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch gets it
            outcomes = [exc] * len(batch)
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.done = True
            slot.leads = False
            slot.ready.set()
