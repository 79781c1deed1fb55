"""Loops that sleep while there is nothing to do and wake when work is written.

A relay or a sender that polls its collection every few milliseconds keeps a
database busy when nobody uses the stack. ``IdlePause`` lets such a loop poll
while work keeps coming (cheap per item: each poll finds many), and once it
has found nothing for ``idle_after`` seconds, sleep until a change of its
collection (an insert, or any change its pipeline lets through) wakes it
within milliseconds.

The sleeping loops of a process share one MongoDB change stream per database
(``ChangeFeed``): one getMore waiting on the server and one thread waiting
for it, instead of one of each per loop. Each of those costs CPU while
nothing happens (pymongo wakes a thread blocked on a read every 0.5 s,
SecantusDB answers every waiting getMore for every write); the stream is
open only while some loop sleeps, so under load, when the loops poll, it
costs nothing.

No wake-up is lost: the stream is open *before* the loop's last poll, so a
change made between that poll and the sleep is already in the stream. A
database without change streams (a standalone ``mongod``) gets capped
exponential back-off instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bson import json_util
from pymongo.change_stream import DatabaseChangeStream
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError

from turnout_common.types import Doc

log = logging.getLogger(__name__)


def inserts_only() -> list[Doc]:
    """A change-stream pipeline that passes inserts and keeps only the resume token."""
    return [{"$match": {"operationType": "insert"}}, {"$project": {"_id": 1}}]


# Why a sleep ended (``IdlePause._reason``).
_CHANGED = "changed"  # a change the loop waits for
_FAILED = "failed"  # the stream failed: poll again after a moment


class IdlePause:
    """How long a polling loop waits between passes: ``pause(stop, found_work)`` after each.

    - work found: wait ``busy_pause`` (lets more work gather, so the next pass
      handles it together);
    - nothing found, but work was found less than ``idle_after`` seconds ago:
      wait ``busy_pause`` too (traffic has gaps);
    - idle: arm (make sure its database's ``ChangeFeed`` streams the
      collection's changes) and return at once (the caller polls once more,
      closing the race), then sleep until the feed sees a change the
      ``pipeline`` lets through, ``max_sleep`` passes (a safety poll, and the
      time-based work of the loop, e.g. expired leases), or ``stop`` is set
      (seen within ``await_seconds``).

    ``pipeline`` is ``$match`` stages (and ``$project``, ignored: the feed
    keeps only what it needs). ``await_seconds`` is also the longest a getMore
    of the feed waits; ``spurious_gap`` how long the feed waits after an early
    empty answer (a write this loop does not wait for) before asking again.
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
        self.key = _feed_key(collection.name, self.pipeline)
        self._feed: ChangeFeed | None = None
        self._armed = False
        self._woken = threading.Event()
        self._reason = _CHANGED
        self._busy_until = 0.0
        self._streams_supported = True
        self._backoff = busy_pause
        self.wakeups = 0  # changes that ended a sleep (for tests and metrics)

    @property
    def sleeping(self) -> bool:
        """True while armed: the next pause without work waits on the feed."""
        return self._armed

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
        if not self._armed:
            self._arm()
            return  # the caller polls once more with the feed already streaming
        self._sleep(stop)

    def wake(self) -> None:
        """Forget the idle state (e.g. the loop saw an error and will retry)."""
        self._disarm()

    def close(self) -> None:
        self._disarm()
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.leave(self)

    # -- the feed ---------------------------------------------------------------------
    def _arm(self) -> None:
        if self._feed is None:
            self._feed = join_feed(self.collection.database, self)
        try:
            self._feed.arm(self)
            self._armed = True
        except OperationFailure as exc:
            # e.g. "The $changeStream stage is only supported on replica sets"
            log.warning("change streams unavailable; backing off instead", extra={"error": str(exc)[:200]})
            self._streams_supported = False
        except PyMongoError as exc:
            log.info("opening a change stream failed; polling", extra={"error": repr(exc)[:200]})

    def _disarm(self) -> None:
        if self._armed:
            self._armed = False
            if self._feed is not None:
                self._feed.disarm(self)

    def _woke(self, reason: str) -> None:
        """Called by the feed (holding its lock): end this loop's sleep."""
        self._armed = False
        self._reason = reason
        self._woken.set()

    def _sleep(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.max_sleep
        slice_seconds = self.await_ms / 1000
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return  # the safety poll: still armed, the caller polls once
            if self._woken.wait(min(left, slice_seconds)):
                break
        else:
            return
        if self._reason == _CHANGED:
            self.wakeups += 1
            self._busy_until = time.monotonic() + self.idle_after
        elif self._reason == _FAILED:
            stop.wait(min(1.0, self.max_sleep))


def _feed_key(collection: str, pipeline: Sequence[Doc]) -> str:
    """What a pause waits for, as one ``$match`` condition on a database's change stream."""
    matches: list[Doc] = [{"ns.coll": collection}]
    for stage in pipeline:
        (name, spec), *rest = stage.items()
        if rest or name not in ("$match", "$project"):
            raise ValueError(f"a pause's pipeline may hold only $match and $project stages, not {stage!r}")
        if name == "$match":
            matches.append(spec)
    return json_util.dumps({"$and": matches}, sort_keys=True)


class ChangeFeed:
    """One change stream of a database, shared by the sleeping ``IdlePause`` loops of a process.

    The stream passes the changes the armed pauses wait for (their
    conditions, ``$or``-ed on the server) and its thread ends the sleep of
    each armed pause whose collection changed. A pause arming with a
    condition the open stream lacks opens a new stream that resumes where the
    old one stands, before it returns; a change for a pause no longer armed
    (it found work and polls) makes the thread resume without its condition;
    with no pause armed the stream is closed. Resuming from the old stream's
    token loses nothing between the two; at worst a change is seen twice, a
    sleep ended for nothing (the loop polls once and sleeps again).
    """

    def __init__(self, db: Database[Doc]) -> None:
        self.db = db
        self._cond = threading.Condition()
        self._members: dict[int, IdlePause] = {}
        self._armed: dict[int, IdlePause] = {}
        self._stream: DatabaseChangeStream[Doc] | None = None
        self._stream_keys: frozenset[str] = frozenset()
        self._await_seconds = 1.0
        self._retired: list[DatabaseChangeStream[Doc]] = []
        self._thread: threading.Thread | None = None
        self.streams_opened = 0  # for tests and metrics

    # -- members (called by the pauses) -----------------------------------------------
    def join(self, pause: IdlePause) -> None:
        with self._cond:
            self._members[id(pause)] = pause

    def leave(self, pause: IdlePause) -> None:
        with self._cond:
            self._members.pop(id(pause), None)
            self._armed.pop(id(pause), None)
            self._cond.notify_all()

    def arm(self, pause: IdlePause) -> None:
        """Stream ``pause``'s changes from now on (opening a stream if needed); raises PyMongoError."""
        with self._cond:
            self._members[id(pause)] = pause
            if self._stream is None or pause.key not in self._stream_keys:
                keys = self._stream_keys | {p.key for p in self._armed.values()} | {pause.key}
                self._open(keys, self._stream.resume_token if self._stream is not None else None)
            pause._woken.clear()
            self._armed[id(pause)] = pause
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"change-feed-{self.db.name}", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def disarm(self, pause: IdlePause) -> None:
        with self._cond:
            self._armed.pop(id(pause), None)

    def _open(self, keys: frozenset[str] | set[str], resume_token: Mapping[str, Any] | None) -> None:
        """Replace the stream by one passing ``keys``' changes after ``resume_token`` (holding the lock).

        Without a token (no stream open yet) it starts now: every pause
        polls once after arming, which covers what came before. Raises
        PyMongoError, leaving the old stream in place.
        """
        pipeline: list[Doc] = [
            {"$match": {"$or": [json_util.loads(key) for key in sorted(keys)]}},
            {"$project": {"_id": 1, "ns": 1}},
        ]
        await_ms = min(member.await_ms for member in self._members.values())
        stream = self.db.watch(pipeline, max_await_time_ms=await_ms, resume_after=resume_token)
        self.streams_opened += 1
        if self._stream is not None:
            self._retired.append(self._stream)
        self._stream, self._stream_keys, self._await_seconds = stream, frozenset(keys), await_ms / 1000

    def _drop_stream(self, reason: str) -> None:
        """Close the stream (holding the lock); every armed pause polls."""
        if self._stream is not None:
            self._retired.append(self._stream)
        self._stream, self._stream_keys = None, frozenset()
        for pause in self._armed.values():
            pause._woke(reason)
        self._armed.clear()

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stream is not None and not self._armed:
                    self._drop_stream(_CHANGED)
                closing, self._retired = self._retired, []
                stream = self._stream if self._armed else None
                if stream is None and not closing:
                    if not self._members and _forget(self):
                        self._thread = None
                        return
                    self._cond.wait()
                    continue
                gap = min((pause.spurious_gap for pause in self._armed.values()), default=0.0)
                await_seconds = self._await_seconds
            for old in closing:
                _close_quietly(old)
            if stream is None:
                continue
            asked = time.monotonic()
            try:
                change = stream.try_next()
            except PyMongoError as exc:
                log.info("change stream failed; the sleeping loops poll", extra={"error": repr(exc)[:200]})
                with self._cond:
                    if self._stream is stream:
                        self._drop_stream(_FAILED)
                continue
            except Exception:  # never let the thread die: the loops would sleep to their safety poll
                log.exception("change feed failed")
                with self._cond:
                    self._drop_stream(_FAILED)
                time.sleep(1.0)
                continue
            if change is not None:
                self._dispatch(stream, change)
            elif time.monotonic() - asked < await_seconds / 2:
                # An early empty answer: the server woke the stream for a write
                # it then filtered out (SecantusDB wakes every stream on every
                # write). Under someone else's load that would be a getMore per
                # write; the stream keeps its position, so waiting a little
                # loses nothing and bounds the cost.
                time.sleep(gap)

    def _dispatch(self, stream: DatabaseChangeStream[Doc], change: Doc) -> None:
        ns: Any = change.get("ns")
        collection = ns.get("coll") if isinstance(ns, dict) else None
        with self._cond:
            if collection is None:  # e.g. the database was dropped: everyone polls
                if self._stream is stream:
                    self._drop_stream(_FAILED)
                return
            woken = [key for key, pause in self._armed.items() if pause.collection.name == collection]
            for key in woken:
                self._armed.pop(key)._woke(_CHANGED)
            if woken or stream is not self._stream:
                return  # (a retired stream's change, seen again or already on the new one)
            # Nobody armed waits for this collection now (its loop found work and
            # polls): resume without its condition rather than hear each of its changes.
            keys = frozenset(pause.key for pause in self._armed.values())
            if not keys:
                return  # the thread closes the stream
            try:
                self._open(keys, stream.resume_token)
            except PyMongoError as exc:
                log.info("reopening the change stream failed; loops poll", extra={"error": repr(exc)[:200]})
                self._drop_stream(_FAILED)


def _close_quietly(stream: DatabaseChangeStream[Doc]) -> None:
    try:
        stream.close()
    except PyMongoError:
        log.debug("closing a change stream failed", exc_info=True)


_FEEDS: dict[tuple[int, str], ChangeFeed] = {}
_FEEDS_LOCK = threading.Lock()


def join_feed(db: Database[Doc], pause: IdlePause) -> ChangeFeed:
    """The change feed of ``db`` (one per client and database), with ``pause`` a member."""
    with _FEEDS_LOCK:
        feed = _FEEDS.get((id(db.client), db.name))
        if feed is None:
            feed = _FEEDS[(id(db.client), db.name)] = ChangeFeed(db)
        feed.join(pause)
        return feed


def _forget(feed: ChangeFeed) -> bool:
    """Drop a feed without members from the registry (its thread then ends).

    Called holding the feed's lock; takes the registry's without waiting (the
    registry's lock is taken before a feed's in ``join_feed``), so a feed
    that cannot have it now tries again on its next wake-up.
    """
    if not _FEEDS_LOCK.acquire(blocking=False):
        return False
    try:
        if _FEEDS.get((id(feed.db.client), feed.db.name)) is feed:
            del _FEEDS[(id(feed.db.client), feed.db.name)]
        return True
    finally:
        _FEEDS_LOCK.release()
