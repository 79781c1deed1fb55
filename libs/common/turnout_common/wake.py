"""Loops that sleep while there is nothing to do and wake when work is written.

A relay or a sender that polls its collection every few milliseconds keeps a
database busy when nobody uses the stack. ``IdlePause`` lets such a loop poll
while work keeps coming (cheap per item: each poll finds many), and once it
has found nothing for ``idle_after`` seconds, sleep on a MongoDB change stream
of the collection it polls: an insert (or any change the pipeline lets
through) wakes it within milliseconds, and nothing at all is spent meanwhile
but one ``getMore`` every ``await_seconds``.

No wake-up is lost: the stream is opened *before* the loop's last poll, so a
change made between that poll and the wait is already in the stream. A
database without change streams (a standalone ``mongod``) gets capped
exponential back-off instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from pymongo.change_stream import CollectionChangeStream
from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError

from turnout_common.types import Doc

log = logging.getLogger(__name__)


def inserts_only() -> list[Doc]:
    """A change-stream pipeline that passes inserts and keeps only the resume token."""
    return [{"$match": {"operationType": "insert"}}, {"$project": {"_id": 1}}]


class IdlePause:
    """How long a polling loop waits between passes: ``pause(stop, found_work)`` after each.

    - work found: wait ``busy_pause`` (lets more work gather, so the next pass
      handles it together);
    - nothing found, but work was found less than ``idle_after`` seconds ago:
      wait ``busy_pause`` too (traffic has gaps);
    - idle: open a change stream and return at once (the caller polls once
      more, closing the race), then wait on the stream until something
      changes, ``max_sleep`` passes (a safety poll, and the time-based work of
      the loop, e.g. expired leases), or ``stop`` is set. A sleep may pass
      ``max_sleep`` by up to one ``await_seconds`` (a getMore is not cut
      short); a loop with a deadline of its own waits for that itself.
    """

    def __init__(
        self,
        collection: Collection[Doc],
        pipeline: Sequence[Doc] | None = None,
        *,
        busy_pause: float = 0.02,
        idle_after: float = 2.0,
        max_sleep: float = 30.0,
        await_seconds: float = 1.0,
        spurious_gap: float = 0.25,
    ) -> None:
        self.collection = collection
        self.pipeline = list(pipeline) if pipeline is not None else inserts_only()
        self.busy_pause = busy_pause
        self.idle_after = idle_after
        self.max_sleep = max_sleep
        self.await_ms = max(1, int(await_seconds * 1000))
        self.spurious_gap = spurious_gap
        self._stream: CollectionChangeStream[Doc] | None = None
        self._busy_until = 0.0
        self._streams_supported = True
        self._backoff = busy_pause
        self.wakeups = 0  # changes that ended a sleep (for tests and metrics)

    @property
    def sleeping(self) -> bool:
        """True while armed: the next pause without work waits on the stream."""
        return self._stream is not None

    def pause(self, stop: threading.Event, found_work: bool) -> None:
        now = time.monotonic()
        if found_work:
            self._busy_until = now + self.idle_after
            self._backoff = self.busy_pause
            self._disarm()
            stop.wait(self.busy_pause)
            return
        if now < self._busy_until:
            stop.wait(self.busy_pause)
            return
        if not self._streams_supported:
            self._backoff = min(self.max_sleep, 1.0, max(self.busy_pause, self._backoff * 2))
            stop.wait(self._backoff)
            return
        if self._stream is None:
            self._arm()
            return  # the caller polls once more with the stream already open
        self._sleep(stop)

    def wake(self) -> None:
        """Forget the idle state (e.g. the loop saw an error and will retry)."""
        self._disarm()

    def close(self) -> None:
        self._disarm()

    # -- the stream -----------------------------------------------------------------
    def _arm(self) -> None:
        try:
            self._stream = self.collection.watch(self.pipeline, max_await_time_ms=self.await_ms)
        except OperationFailure as exc:
            # e.g. "The $changeStream stage is only supported on replica sets"
            log.warning("change streams unavailable; backing off instead", extra={"error": str(exc)[:200]})
            self._streams_supported = False
        except PyMongoError as exc:
            log.info("opening a change stream failed; polling", extra={"error": repr(exc)[:200]})

    def _disarm(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except PyMongoError:
                log.debug("closing a change stream failed", exc_info=True)

    def _sleep(self, stop: threading.Event) -> None:
        assert self._stream is not None
        deadline = time.monotonic() + self.max_sleep
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                asked = time.monotonic()
                if self._stream.try_next() is not None:
                    self.wakeups += 1
                    self._busy_until = time.monotonic() + self.idle_after
                    self._disarm()
                    return
                if time.monotonic() - asked < self.await_ms / 2000:
                    # An early empty answer: the server woke this stream for a
                    # write it then filtered out (SecantusDB wakes every stream
                    # on every write). Under someone else's load that would be
                    # a getMore per write; the stream keeps its position, so
                    # waiting a little loses nothing and bounds the cost.
                    stop.wait(self.spurious_gap)
        except PyMongoError as exc:
            log.info("change stream failed; polling", extra={"error": repr(exc)[:200]})
            self._disarm()
            stop.wait(min(1.0, self.max_sleep))
            return
        # The safety poll: keep the stream open, the caller polls once.
