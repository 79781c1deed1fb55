"""Rebuilding projections from the archive into a fresh generation of
collections, switched live at the end.

The live worker keeps running meanwhile, writing the current generation.
Folding is idempotent, so the rebuild re-reads whatever the worker archived
since the rebuild started (catch-up passes by ``applied_at``, with a margin
for transactions still committing) before the switch, and once more into the
new generation after it (the worker's transactions pick the generation when
they start; a short grace lets those that started before the switch finish),
so nothing archived during the rebuild is missed and nothing is doubled.

Erased people stay erased: every batch read is masked against the tombstones
before it is folded (erasures mask the archive, so normally there is nothing
to do), and people erased while the rebuild ran (it may have read their
messages before the erasure masked them) are erased from the new generation
once it is live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from analytics.domain.events import EventMeta
from analytics.domain.people import PersonState
from analytics.domain.projections import PROJECTIONS, BatchChanges
from analytics.domain.registrations import RegistrationState
from analytics.service_layer.data_requests import erase_late, mask_erased
from analytics.service_layer.ports import Archive, ErasableStorage, ProjectionGenerations, StateStorage
from analytics.service_layer.projector import apply_batch
from turnout_common.clock import utcnow
from turnout_common.envelope import Envelope

# A message applied this long before a pass started is certainly visible to it.
COMMIT_MARGIN = timedelta(seconds=60)


@dataclass(slots=True)
class Progress:
    phase: str
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(slots=True)
class RebuildReport:
    projections: tuple[str, ...]
    messages: int
    seconds: float
    generations: dict[str, int]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[Progress], None]
State = TypeVar("State")
# How many states the rebuild keeps in memory between batches (then it writes
# the changed ones and starts afresh): a bound on the rebuild's memory.
MAX_CACHED_REGISTRATIONS = 100_000
MAX_CACHED_PEOPLE = 10_000


class CachedStore:
    """The rebuild's store: registration and person states stay in memory across
    batches and are written when the cache is full or a pass ends, so a state
    touched by many batches is read once and written once (instead of once per
    batch). Figure increments and event descriptions are written per batch, as
    the live consumer does; they are computed against the cached states, so the
    collections are exactly what batch-by-batch folding gives once flushed."""

    def __init__(self, store: StateStorage) -> None:
        self.store = store
        self.registrations: dict[str, RegistrationState] = {}
        self.people: dict[str, PersonState] = {}
        self.dirty_registrations: set[str] = set()
        self.dirty_people: set[str] = set()
        # Looked up and not in the database: their first write is an insert.
        self.absent_registrations: set[str] = set()
        self.absent_people: set[str] = set()

    def load_registrations(self, ids: Iterable[str]) -> dict[str, RegistrationState]:
        return _through_cache(ids, self.registrations, self.absent_registrations, self.store.load_registrations)

    def load_events(self, ids: Iterable[str]) -> dict[str, EventMeta]:
        return self.store.load_events(ids)

    def load_people(self, ids: Iterable[str]) -> dict[str, PersonState]:
        return _through_cache(ids, self.people, self.absent_people, self.store.load_people)

    def write(self, changes: BatchChanges) -> None:
        # fold_batch returns new state objects (it never changes the loaded ones).
        self.registrations.update(changes.registrations)
        self.dirty_registrations.update(changes.registrations)
        self.people.update(changes.people)
        self.dirty_people.update(changes.people)
        changes.registrations, changes.people = {}, {}
        self.store.write(changes)
        if len(self.registrations) > MAX_CACHED_REGISTRATIONS or len(self.people) > MAX_CACHED_PEOPLE:
            self.flush()

    def flush(self) -> None:
        """Write every state changed since the last flush, and forget the cache."""
        new_registrations = self.dirty_registrations & self.absent_registrations
        new_people = self.dirty_people & self.absent_people
        self.store.insert_states(
            {key: self.registrations[key] for key in new_registrations},
            {key: self.people[key] for key in new_people},
        )
        self.store.write(
            BatchChanges(
                registrations={key: self.registrations[key] for key in self.dirty_registrations - new_registrations},
                people={key: self.people[key] for key in self.dirty_people - new_people},
            )
        )
        self.registrations, self.people = {}, {}
        self.dirty_registrations, self.dirty_people = set(), set()
        self.absent_registrations, self.absent_people = set(), set()


def _through_cache(
    ids: Iterable[str], cache: dict[str, State], absent: set[str], load: Callable[[list[str]], dict[str, State]]
) -> dict[str, State]:
    """The states of ``ids``: cached, else loaded (and cached); ids found nowhere are remembered as absent."""
    wanted = set(ids)
    missing = [key for key in wanted if key not in cache and key not in absent]
    found = load(missing)
    cache.update(found)
    absent.update(key for key in missing if key not in found)
    return {key: cache[key] for key in wanted if key in cache}


def _pass(
    reader: Archive,
    apply: Callable[[Sequence[Envelope]], object],
    phase: str,
    batch_size: int,
    since: datetime | None,
    on_progress: ProgressCallback | None,
    progress_every: float,
) -> int:
    total = reader.count(since)
    started = last = time.monotonic()
    done = 0
    for batch in reader.batches(batch_size, since):
        apply(batch)
        done += len(batch)
        now = time.monotonic()
        if on_progress is not None and now - last >= progress_every:
            last = now
            on_progress(Progress(phase, done, max(total, done), now - started))
    if on_progress is not None:
        on_progress(Progress(phase, done, max(total, done), time.monotonic() - started))
    return done


def rebuild(
    storage: ProjectionGenerations,
    projections: Sequence[str] = PROJECTIONS,
    *,
    batch_size: int = 2000,
    on_progress: ProgressCallback | None = None,
    progress_every: float = 1.0,
    max_catch_up_passes: int = 5,
    switch_grace: float = 3.0,
) -> RebuildReport:
    """Rebuild ``projections`` from every archived message; switch them live at the end."""
    unknown = [name for name in projections if name not in PROJECTIONS]
    if unknown:
        raise ValueError(f"unknown projection(s): {', '.join(unknown)} (known: {', '.join(PROJECTIONS)})")
    chosen = tuple(name for name in PROJECTIONS if name in projections)
    current = storage.generations()
    fresh = {group: current[group] + 1 for group in chosen}
    storage.clear(fresh)
    reader = storage.archive
    target = CachedStore(storage.storage({**current, **fresh}))

    def into_target(batch: Sequence[Envelope]) -> int:
        return apply_batch(target, mask_erased(storage.records, batch), chosen)

    started = time.monotonic()
    mark = began = utcnow()
    messages = _pass(reader, into_target, "archive", batch_size, None, on_progress, progress_every)
    target.flush()
    for _ in range(max_catch_up_passes):
        since, mark = mark - COMMIT_MARGIN, utcnow()
        caught_up = _pass(reader, into_target, "catch-up", batch_size, since, on_progress, progress_every)
        target.flush()
        if caught_up < batch_size:
            break
    storage.prepare(fresh)
    for group, generation in fresh.items():
        storage.switch(group, generation)
    time.sleep(switch_grace)

    def into_live(batch: Sequence[Envelope]) -> int:
        # The live worker writes the new generation too now: a transaction, so a
        # write conflict on a shared document retries instead of losing a change.
        def apply(store: ErasableStorage) -> int:
            return apply_batch(store, mask_erased(storage.records, batch), chosen)

        return storage.apply_live(apply)

    _pass(reader, into_live, "after switch", batch_size, mark - COMMIT_MARGIN, on_progress, progress_every)
    erase_late(storage, began - COMMIT_MARGIN)
    storage.clear({group: current[group] for group in chosen})
    return RebuildReport(chosen, messages, time.monotonic() - started, {**current, **fresh})


def upgrade_outdated(
    storage: ProjectionGenerations, on_progress: ProgressCallback | None = None
) -> RebuildReport | None:
    """Rebuild the projection groups built by an older version of the rules (see
    ``PROJECTION_VERSIONS``), as the worker starts. With nothing archived yet
    there is nothing to rebuild; if another worker holds the upgrade lease,
    this one leaves it to them (its own writes are caught up by their rebuild)."""
    groups = storage.outdated_groups()
    if not groups:
        return None
    if storage.archive.is_empty():
        storage.mark_current(groups)
        return None
    if not storage.take_upgrade_lease():
        return None
    try:
        return rebuild(storage, groups, on_progress=on_progress)
    finally:
        storage.release_upgrade_lease()
