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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from analytics.adapters.mongo import (
    PROJECTION_COLLECTIONS,
    ArchiveReader,
    ProjectionStore,
    drop_collections,
    ensure_indexes,
    generation_name,
    generations,
    names_for,
    set_generation,
)
from analytics.domain.projections import PROJECTIONS, Message
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
    batch_size: int = 1000,
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
    target = ProjectionStore(db, names=target_names)

    def into_target(batch: Sequence[Message]) -> int:
        return apply_batch(target, batch, chosen)

    started = time.monotonic()
    mark = utcnow()
    messages = _pass(reader, into_target, "archive", batch_size, None, on_progress, progress_every)
    for _ in range(max_catch_up_passes):
        since, mark = mark - COMMIT_MARGIN, utcnow()
        if _pass(reader, into_target, "catch-up", batch_size, since, on_progress, progress_every) < batch_size:
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
