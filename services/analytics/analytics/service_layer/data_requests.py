"""A person's data in analytics: exports, erasures, corrections' and erased
people's messages, retention policies, all applied in the consumer's
transaction (the one that archives the messages and records them as applied).

- ``person.export_requested``: everything analytics holds about the person is
  gathered as one JSON object, cut into chunks and staged as
  ``person.data_exported`` messages in analytics' outbox.
- ``person.erasure_requested``: the person's projection states move to their
  pseudonym without personal fields (the figures do not change: the same facts,
  another key), their own documents go, every archived message naming them
  is masked in place, a tombstone remembers the pseudonym, and
  ``person.erased`` (with counts) is staged.
- Any message naming an erased person (a late one, never applied before) is
  applied masked: under the pseudonym, without personal fields. A replayed one
  is skipped by its id before it gets here.
- ``retention.policy_set``: the organization's newest policy is kept (the
  sweep, ``analytics.service_layer.retention``, enforces it).

The archive stores what the consumer handed to the handler, after the
handler returns (``turnout_common.consumer``). A message about an erased
person must be archived masked too, including the erasure request itself
(it carries the id and the address), so ``as_archived`` masks the envelopes
in place at the end of the batch, keeping each original: when the
transaction is retried, ``as_received`` puts the originals back first, so the
retry sees the messages as they came.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analytics.domain.facts import parse_time
from analytics.domain.people import cohort_counters, funnel_counters, loyalty_counters
from analytics.domain.privacy import (
    CHUNK_CHARS,
    ArchiveChange,
    applied,
    chunks,
    export_part,
    json_text,
    masked_fields,
    pseudonyms_named,
    secret_fields,
)
from analytics.domain.projections import BatchChanges, Message, erased_person
from analytics.domain.registrations import REGISTRATION_TYPES
from analytics.service_layer.ports import ErasableStorage, PersonalRecords, ProjectionGenerations
from turnout_common.clock import to_rfc3339
from turnout_common.emails import normalize_email
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.privacy import RetentionPeriods, email_digest, is_pseudonym, pseudonym

SOURCE = "/turnout/analytics"
SERVICE = "analytics"
EXPORT_REQUESTED = "person.export_requested"
ERASURE_REQUESTED = "person.erasure_requested"
POLICY_SET = "retention.policy_set"
# Handled one by one, in order, between the folds of the messages around them.
REQUEST_TYPES = frozenset({EXPORT_REQUESTED, ERASURE_REQUESTED, POLICY_SET})


@dataclass(slots=True)
class Requests:
    """What handling data requests needs: the live projections, the personal
    records, the outbox (``publish``) and the clock."""

    projections: ErasableStorage
    records: PersonalRecords
    publish: Callable[[Envelope], None]
    now: Callable[[], datetime]
    # Pseudonyms known erased in this batch (looked up first, then added to).
    erased: set[str] = field(default_factory=set)
    chunk_chars: int = CHUNK_CHARS


# -- masking --------------------------------------------------------------------------------------


def mask_changes(data: Mapping[str, Any], erased: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The field changes a message gets before it is applied or archived, and
    the ids it names that are erased (id -> pseudonym)."""
    changes = secret_fields(data)
    gone = {person_id: alias for person_id, alias in pseudonyms_named(data).items() if alias in erased}
    for person_id, alias in gone.items():
        changes.update(masked_fields(data, person_id, alias))
    return changes, gone


def masked(message: Envelope, erased: set[str]) -> Envelope:
    """The message as analytics applies it: erased people masked, secrets dropped."""
    changes, gone = mask_changes(message.data, erased)
    if not changes:
        return message
    subject = gone.get(message.subject, message.subject)
    return dataclasses.replace(message, data=applied(message.data, changes), subject=subject)


def mask_erased(records: PersonalRecords, messages: Sequence[Envelope]) -> list[Envelope]:
    """Archived messages as a rebuild may fold them: erased people masked.

    Erasures mask the archive, so this finds nothing to do; should a message
    naming an erased person have escaped (belt and braces), it is folded
    masked, and masked in the archive too.
    """
    named = {alias for message in messages for alias in pseudonyms_named(message.data).values()}
    erased = records.erased(named) if named else set()
    if not erased:
        return list(messages)
    out: list[Envelope] = []
    fixes: list[ArchiveChange] = []
    for message in messages:
        changes, gone = mask_changes(message.data, erased)
        if changes:
            subject = gone.get(message.subject)
            fixes.append(ArchiveChange(message.id, changes, subject))
            message = dataclasses.replace(
                message, data=applied(message.data, changes), subject=subject or message.subject
            )
        out.append(message)
    records.change_archived(fixes)
    return out


# The original of every envelope masked in place, by message id, so that a
# retried transaction sees the messages as they came. Masked envelopes are few
# (an erasure, an erased person's late message, a data-link request): the
# oldest are forgotten beyond this many.
_ORIGINALS: OrderedDict[str, tuple[dict[str, Any], str]] = OrderedDict()
_MAX_ORIGINALS = 10_000


def as_received(messages: Sequence[Envelope]) -> None:
    """Undo ``as_archived`` on these envelopes (the start of a retried transaction)."""
    for message in messages:
        original = _ORIGINALS.get(message.id)
        if original is not None:
            object.__setattr__(message, "data", original[0])
            object.__setattr__(message, "subject", original[1])


def as_archived(messages: Sequence[Envelope], erased: set[str]) -> None:
    """Mask, in place, the envelopes the consumer is about to archive (see the module's doc)."""
    for message in messages:
        change = masked(message, erased)
        if change is message:
            continue
        _ORIGINALS[message.id] = (message.data, message.subject)
        while len(_ORIGINALS) > _MAX_ORIGINALS:
            _ORIGINALS.popitem(last=False)
        object.__setattr__(message, "data", change.data)
        object.__setattr__(message, "subject", change.subject)


# -- the requests ---------------------------------------------------------------------------------


def handle_request(requests: Requests, message: Message, batch: Sequence[Message]) -> None:
    """Apply one data request (already masked if it names an erased person)."""
    if message.type == EXPORT_REQUESTED:
        export(requests, message, batch)
    elif message.type == ERASURE_REQUESTED:
        erase(requests, message, batch)
    elif message.type == POLICY_SET:
        keep_policy(requests, message)


def _in_org(doc: Mapping[str, Any], org_id: str) -> bool:
    return bool(doc.get("envelope", {}).get("data", {}).get("org_id") == org_id)


def _naming(message: Message, person_id: str) -> bool:
    return person_id in (message.data.get("person_id"), message.data.get("other_person_id"))


def export(requests: Requests, message: Message, batch: Sequence[Message]) -> int:
    """Stage the person's part of an export: ``person.data_exported`` chunks; return how many."""
    data = message.data
    org_id, person_id, request_id = data["org_id"], data["person_id"], data["request_id"]
    exported_at = requests.now()
    person = summary = None
    registrations: list[dict[str, Any]] = []
    contributions: dict[str, Any] = {"cohorts": {}, "funnel": {}, "loyalty": {}}
    messages: list[dict[str, Any]] = []
    if not is_pseudonym(person_id):  # an erased person (masked request) has nothing left to export
        state = requests.projections.load_people([person_id]).get(person_id)
        if state is not None and state.org_id == org_id:
            person, summary = state.to_doc(), state.summary_doc()
            contributions = {
                "cohorts": cohort_counters(state),
                "funnel": funnel_counters(state),
                "loyalty": loyalty_counters(state),
            }
        archived = [doc for doc in requests.records.archived_naming(person_id) if _in_org(doc, org_id)]
        messages = [{"id": doc["_id"], "applied_at": doc.get("applied_at"), **doc["envelope"]} for doc in archived]
        # Messages of this batch before the request are applied but not archived yet.
        position = next((index for index, item in enumerate(batch) if item.id == message.id), len(batch))
        messages += [
            {"id": item.id, "type": item.type, "time": item.time, "data": item.data}
            for item in batch[:position]
            if _naming(item, person_id) and item.type not in REQUEST_TYPES
        ]
        ids = {doc["data"]["registration_id"] for doc in messages if doc.get("type") in REGISTRATION_TYPES}
        loaded = requests.projections.load_registrations(ids)
        registrations = [state.to_doc() for _, state in sorted(loaded.items()) if state.person_id == person_id]
    part = export_part(
        org_id=org_id,
        person_id=person_id,
        request_id=request_id,
        exported_at=exported_at,
        person=person,
        summary=summary,
        registrations=registrations,
        contributions=contributions,
        messages=messages,
    )
    pieces = chunks(json_text(part), requests.chunk_chars)
    for index, piece in enumerate(pieces):
        requests.publish(
            new_envelope(
                "person.data_exported",
                source=SOURCE,
                subject=request_id,
                data={
                    "org_id": org_id,
                    "request_id": request_id,
                    "service": SERVICE,
                    "chunk_index": index,
                    "chunk_count": len(pieces),
                    "chunk": piece,
                    "exported_at": part["exported_at"],
                },
            )
        )
    return len(pieces)


def erase_from_projections(
    projections: ErasableStorage, person_id: str, alias: str, registration_ids: set[str]
) -> dict[str, int]:
    """Move a person's states to their pseudonym, personal fields removed, and
    forget their own documents. The figures are functions of the facts, which
    do not change: no counter moves."""
    if person_id == alias:
        return {"registration_facts": 0, "people": 0}
    registrations = {
        registration_id: dataclasses.replace(state, person_id=alias)
        for registration_id, state in projections.load_registrations(registration_ids).items()
        if state.person_id == person_id
    }
    people = projections.load_people([person_id, alias])
    person = people.get(person_id)
    changes = erased_person(person, people.get(alias), alias) if person is not None else BatchChanges()
    changes.registrations = registrations
    if changes.registrations or changes.people:
        projections.write(changes)
    if person is not None:
        projections.forget_people([person_id])
    return {"registration_facts": len(registrations), "people": 1 if person is not None else 0}


def erase_late(generations: ProjectionGenerations, since: datetime) -> int:
    """Erase, from the live projections, people erased since ``since`` whose states
    came back: a rebuild that read their messages before the erasure masked them
    wrote them into its new generation. Return how many were found."""
    late = generations.records.erased_since(since)
    if not late:
        return 0
    found = generations.people_named(
        generations.generations(),
        lambda org_id, person_id: not is_pseudonym(person_id) and pseudonym(org_id, person_id) in late,
    )

    def apply(store: ErasableStorage) -> int:
        for person_id, (org_id, registration_ids) in found.items():
            erase_from_projections(store, person_id, pseudonym(org_id, person_id), registration_ids)
        return len(found)

    return generations.apply_live(apply) if found else 0


def erase(requests: Requests, message: Message, batch: Sequence[Message]) -> dict[str, int]:
    """Erase the person from every collection of analytics; stage ``person.erased``."""
    data = message.data
    org_id, person_id, request_id = data["org_id"], data["person_id"], data["request_id"]
    counts = {"archived_messages": 0, "registration_facts": 0, "people": 0, "dead_letters": 0, "unsent_exports": 0}
    alias = pseudonym(org_id, person_id)
    if not is_pseudonym(person_id):  # else: erased before (this request came masked)
        archived = [doc for doc in requests.records.archived_naming(person_id) if _in_org(doc, org_id)]
        changes = [
            ArchiveChange(
                doc["_id"],
                masked_fields(doc["envelope"]["data"], person_id, alias),
                alias if doc["envelope"].get("subject") == person_id else None,
            )
            for doc in archived
        ]
        counts["archived_messages"] = requests.records.change_archived(changes)
        registration_ids = {
            doc["envelope"]["data"]["registration_id"]
            for doc in archived
            if doc["envelope"].get("type") in REGISTRATION_TYPES
        }
        registration_ids |= {
            item.data["registration_id"]
            for item in batch
            if item.type in REGISTRATION_TYPES and item.data.get("person_id") == person_id
        }
        counts.update(erase_from_projections(requests.projections, person_id, alias, registration_ids))
        email = data.get("email")
        counts.update(requests.records.forget_leftovers([person_id, *([email] if email else [])]))
    email = data.get("email")
    requests.records.remember_erased(
        {
            "_id": alias,
            "org_id": org_id,
            "email_digest": email_digest(org_id, normalize_email(email)) if email else None,
            "erased_at": requests.now(),
            "request_id": request_id,
        }
    )
    requests.erased.add(alias)
    requests.publish(
        new_envelope(
            "person.erased",
            source=SOURCE,
            subject=request_id,
            data={
                "org_id": org_id,
                "request_id": request_id,
                "service": SERVICE,
                "erased_at": to_rfc3339(requests.now()),
                "counts": counts,
            },
        )
    )
    return counts


def keep_policy(requests: Requests, message: Message) -> bool:
    """Keep an organization's retention policy (the newest ``set_at`` wins)."""
    data = message.data
    periods = RetentionPeriods.from_dict(data["periods"]).as_dict()
    return requests.records.store_policy(data["org_id"], periods, parse_time(data["set_at"]), data.get("set_by"))
