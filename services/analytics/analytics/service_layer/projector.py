"""Applies messages to the projections: load what the batch touches, fold it
with the domain rules, write states and increments in one bulk write per
collection. The consumer calls ``project`` inside the transaction that also
archives the messages; the rebuild calls ``apply_batch`` on fresh collections."""

from __future__ import annotations

from collections.abc import Sequence

from analytics.adapters.mongo import ProjectionStore
from analytics.domain.projections import PROJECTIONS, Message, fold_batch, touched
from analytics.service_layer.ports import ProjectionStorage
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork
from turnout_common.revocations import record_revocations


def apply_batch(store: ProjectionStorage, messages: Sequence[Message], projections: Sequence[str] = PROJECTIONS) -> int:
    """Fold ``messages`` into the projections of ``store``; return how many states changed."""
    needed = touched(messages, projections)
    changes = fold_batch(
        messages,
        store.load_registrations(needed.registrations),
        store.load_events(needed.events),
        store.load_people(needed.people),
        projections,
    )
    if changes.is_empty():
        return 0
    store.write(changes)
    return len(changes.registrations) + len(changes.events) + len(changes.people)


def project(uow: UnitOfWork, messages: Sequence[Envelope]) -> None:
    """The consumer's handler: update every projection for new messages, in the batch's transaction.

    Two workers touching one person (their messages come from different
    partitions) both read and write that person's document in their
    transactions; MongoDB's write conflict makes one retry on fresh data.
    ``access.revoked`` (no projection reads it) is recorded for the web
    app's token check in the same transaction.
    """
    record_revocations(uow, messages)
    apply_batch(ProjectionStore(uow.db, uow.session), messages)
