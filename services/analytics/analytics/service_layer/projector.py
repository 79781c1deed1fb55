"""Applies messages to the projections: load what the batch touches, fold it
with the domain rules, write states and increments in one bulk write per
collection. The consumer calls ``project`` inside the transaction that also
archives the messages; the rebuild calls ``apply_batch`` on fresh collections.

Data requests (exports, erasures, retention policies) are applied in their
place in the batch, between the folds of the messages before and after them
(``analytics.service_layer.data_requests``); a message naming an erased
person is applied, and archived, masked."""

from __future__ import annotations

from collections.abc import Sequence

from analytics.adapters.mongo import ProjectionStore
from analytics.adapters.privacy import PersonalRecords
from analytics.domain.privacy import pseudonyms_named
from analytics.domain.projections import PROJECTIONS, Message, fold_batch, touched
from analytics.service_layer.data_requests import (
    REQUEST_TYPES,
    Requests,
    as_archived,
    as_received,
    handle_request,
    masked,
)
from analytics.service_layer.ports import ProjectionStorage
from turnout_common.clock import utcnow
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


def apply_messages(requests: Requests, messages: Sequence[Envelope]) -> None:
    """Apply new messages in order: folds, and data requests in their place.

    Every message naming an erased person (erased before this batch, or by a
    request in it) is folded masked and archived masked.
    """
    as_received(messages)  # a retried transaction: the messages as they came
    named = {alias for message in messages for alias in pseudonyms_named(message.data).values()}
    if named:
        requests.erased |= requests.records.erased(named)
    run: list[Envelope] = []
    for message in messages:
        incoming = masked(message, requests.erased)
        if message.type not in REQUEST_TYPES:
            run.append(incoming)
            continue
        if run:
            apply_batch(requests.projections, run)
            run = []
        handle_request(requests, incoming, messages)
    if run:
        apply_batch(requests.projections, run)
    as_archived(messages, requests.erased)


def project(uow: UnitOfWork, messages: Sequence[Envelope]) -> None:
    """The consumer's handler: update every projection for new messages, in the batch's transaction.

    Two workers touching one person (their messages come from different
    partitions) both read and write that person's document in their
    transactions; MongoDB's write conflict makes one retry on fresh data.
    ``access.revoked`` (no projection reads it) is recorded for the web
    app's token check in the same transaction; the answers to data requests
    are staged in analytics' outbox in it too.
    """
    record_revocations(uow, messages)
    requests = Requests(
        projections=ProjectionStore(uow.db, uow.session),
        records=PersonalRecords(uow.db, uow.session),
        publish=uow.publish,
        now=utcnow,
    )
    apply_messages(requests, messages)
