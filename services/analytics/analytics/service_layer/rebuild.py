"""Rebuilding projections from the archive into a fresh generation of
collections, switched live at the end.

The live worker keeps running meanwhile, writing the current generation.
Folding is idempotent, so the rebuild re-reads whatever the worker archived
since the rebuild started (catch-up passes by ``applied_at``, with a margin
for transactions still committing) before the switch, and once more into the
new generation after it (the worker's transactions pick the generation when
they start; a short grace lets those that started before the switch finish),
so nothing archived during the rebuild is missed and nothing is doubled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from analytics.adapters.mongo import (
    PROJECTION_COLLECTIONS,
    PROJECTION_STATE,
    ArchiveReader,
    ProjectionStore,
    drop_collections,
    ensure_indexes,
    generation_name,
    generations,
    mark_current,
    names_for,
    outdated_groups,
    set_generation,
)
from analytics.domain.events import EventMeta
from analytics.domain.people import PersonState
from analytics.domain.projections import PROJECTIONS, BatchChanges, Message
from analytics.domain.registrations import RegistrationState
from analytics.service_layer.projector import apply_batch
from turnout_common.clock import utcnow
from turnout_common.mongo import UnitOfWork

Doc = dict[str, Any]
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
# the changed ones and starts afresh): about 100-200 MB at the most.
MAX_CACHED_REGISTRATIONS = 100_000
MAX_CACHED_PEOPLE = 10_000


class CachedStore:
    """The rebuild's store: registration and person states stay in memory across
    batches and are written when the cache is full or a pass ends, so a state
    touched by many batches is read once and written once (instead of once per
    batch). Figure increments and event descriptions are written per batch, as
    the live consumer does; they are computed against the cached states, so the
    collections are exactly what batch-by-batch folding gives once flushed."""

    def __init__(self, store: ProjectionStore) -> None:
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
    reader: ArchiveReader,
    apply: Callable[[Sequence[Message]], object],
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
    client: MongoClient[Doc],
    db: Database[Doc],
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
    current = generations(db)
    fresh = {group: current[group] + 1 for group in chosen}
    target_names = names_for({**current, **fresh})
    new_collections = {name: target_names[name] for group in chosen for name in PROJECTION_COLLECTIONS[group]}
    drop_collections(db, new_collections.values())
    reader = ArchiveReader(db)
    target = CachedStore(ProjectionStore(db, names=target_names))

    def into_target(batch: Sequence[Message]) -> int:
        return apply_batch(target, batch, chosen)

    started = time.monotonic()
    mark = utcnow()
    messages = _pass(reader, into_target, "archive", batch_size, None, on_progress, progress_every)
    target.flush()
    for _ in range(max_catch_up_passes):
        since, mark = mark - COMMIT_MARGIN, utcnow()
        caught_up = _pass(reader, into_target, "catch-up", batch_size, since, on_progress, progress_every)
        target.flush()
        if caught_up < batch_size:
            break
    ensure_indexes(db, new_collections)
    for group, generation in fresh.items():
        set_generation(db, group, generation)
    time.sleep(switch_grace)

    def into_live(batch: Sequence[Message]) -> int:
        # The live worker writes the new generation too now: a transaction, so a
        # write conflict on a shared document retries instead of losing a change.
        return UnitOfWork(client, db).run(lambda uow: apply_batch(ProjectionStore(uow.db, uow.session), batch, chosen))

    _pass(reader, into_live, "after switch", batch_size, mark - COMMIT_MARGIN, on_progress, progress_every)
    drop_collections(
        db, [generation_name(name, current[group]) for group in chosen for name in PROJECTION_COLLECTIONS[group]]
    )
    return RebuildReport(chosen, messages, time.monotonic() - started, {**current, **fresh})


UPGRADE_LEASE = timedelta(hours=6)


def _take_upgrade_lease(db: Database[Doc]) -> bool:
    """One worker upgrades at a time; a lease left by a crashed one expires."""
    now = utcnow()
    try:
        db[PROJECTION_STATE].insert_one({"_id": "upgrade-lease", "until": now + UPGRADE_LEASE})
        return True
    except DuplicateKeyError:
        taken = db[PROJECTION_STATE].update_one(
            {"_id": "upgrade-lease", "until": {"$lt": now}}, {"$set": {"until": now + UPGRADE_LEASE}}
        )
        return taken.modified_count == 1


def upgrade_outdated(
    client: MongoClient[Doc], db: Database[Doc], on_progress: ProgressCallback | None = None
) -> RebuildReport | None:
    """Rebuild the projection groups built by an older version of the rules (see
    ``PROJECTION_VERSIONS``), as the worker starts. With nothing archived yet
    there is nothing to rebuild; if another worker holds the upgrade lease,
    this one leaves it to them (its own writes are caught up by their rebuild)."""
    groups = outdated_groups(db)
    if not groups:
        return None
    if ArchiveReader(db).is_empty():  # (a find_one would read the whole archive on SecantusDB)
        mark_current(db, groups)
        return None
    if not _take_upgrade_lease(db):
        return None
    try:
        return rebuild(client, db, groups, on_progress=on_progress)
    finally:
        db[PROJECTION_STATE].delete_one({"_id": "upgrade-lease"})
