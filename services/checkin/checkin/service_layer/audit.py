"""The audit trail: one helper every use case records through, and the owners' reading of it.

Recording (inside the use case's own transaction, so the entry exists exactly
when the change does)::

    from checkin.domain.audit import PERSON_CORRECTED, Subject, actor_of
    from checkin.service_layer import audit

    audit.record(tx.store, org_id, actor_of(principal), PERSON_CORRECTED,
                 Subject("person", person_id), details={"fields": ["email"]})

``entry(...)`` builds the same document without storing it. Labels and
details must not carry a person's name or email (the entry names the person
by ``person_id`` only, which an erasure rewrites to the pseudonym:
``AuditLog.pseudonymize_person``).

Reading: ``page`` (newest first, filtered by action and a time range) and
``rows`` (the same filter, for the CSV download).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from checkin.adapters.ids import new_id
from checkin.domain import audit as rules
from checkin.domain.audit import Actor, Subject
from checkin.domain.model import RuleBroken
from checkin.service_layer.context import Context
from checkin.service_layer.ports import AuditFilter, Store
from turnout_common.clock import utcnow
from turnout_common.types import Doc

__all__ = ["Actor", "AuditFilter", "Subject", "entry", "page", "record", "rows"]

MAX_PAGE_SIZE = 500
# The CSV download stops here (an owner narrows the range for more).
MAX_CSV_ROWS = 100_000


def entry(
    org_id: str,
    actor: Actor,
    action: str,
    subject: Subject,
    *,
    at: datetime | None = None,
    event_id: str | None = None,
    registration_id: str | None = None,
    person_id: str | None = None,
    details: Doc | None = None,
) -> Doc:
    """A new audit entry (a fresh id; ``at`` defaults to now)."""
    return rules.entry(
        new_id(),
        org_id,
        at or utcnow(),
        actor,
        action,
        subject,
        event_id=event_id,
        registration_id=registration_id,
        person_id=person_id,
        details=details,
    )


def record(
    store: Store,
    org_id: str,
    actor: Actor,
    action: str,
    subject: Subject,
    *,
    at: datetime | None = None,
    event_id: str | None = None,
    registration_id: str | None = None,
    person_id: str | None = None,
    details: Doc | None = None,
) -> Doc:
    """Build an entry and append it through ``store`` (a transaction's, normally); returns it."""
    doc = entry(
        org_id,
        actor,
        action,
        subject,
        at=at,
        event_id=event_id,
        registration_id=registration_id,
        person_id=person_id,
        details=details,
    )
    store.audit.record(doc)
    return doc


def check_filter(wanted: AuditFilter) -> None:
    for action in wanted.actions:
        if action not in rules.ACTIONS:
            raise RuleBroken("invalid_query", f"action must be one of {', '.join(rules.ACTIONS)}", "action")
    if wanted.since is not None and wanted.until is not None and wanted.until <= wanted.since:
        raise RuleBroken("invalid_query", "to must be after from", "to")


def _stored(wanted: AuditFilter) -> AuditFilter:
    """The filter as storage sees it: each action with the names it was stored under before."""
    names = [name for action in wanted.actions for name in rules.actions_matching(action)]
    return AuditFilter(actions=tuple(names), since=wanted.since, until=wanted.until)


def page(ctx: Context, org_id: str, wanted: AuditFilter, *, skip: int, limit: int) -> tuple[list[Doc], int]:
    """One page of the organization's entries, newest first, in today's shape; and how many match."""
    check_filter(wanted)
    found, total = ctx.store.audit.page(org_id, _stored(wanted), skip, min(limit, MAX_PAGE_SIZE))
    return [rules.normalized(doc) for doc in found], total


def rows(ctx: Context, org_id: str, wanted: AuditFilter) -> Iterator[Doc]:
    """Every matching entry (up to ``MAX_CSV_ROWS``), newest first, in today's shape."""
    check_filter(wanted)
    for doc in ctx.store.audit.matching(org_id, _stored(wanted), MAX_CSV_ROWS):
        yield rules.normalized(doc)
