"""What the service layer needs from storage, as protocols (the ports).

``followup.adapters.repositories`` implements them on MongoDB;
``tests/followup/unit/fakes.py`` in memory. A ``Store`` bundles one
repository per kind of record; a ``Tx`` is one transaction: a store bound to
it, plus the messages the transaction publishes (the outbox). Work done
through ``Services.transaction`` is stored together with its messages, or not
at all, and may be re-run from the start on a transient conflict.

Documents are plain mappings (``Doc``) shaped as the collections keep them;
the queries behind each method are the adapter's business (their shapes are
tuned to the database: see ``followup.adapters.mongo``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from turnout_common.envelope import Envelope
from turnout_common.types import Doc

T = TypeVar("T")


class DuplicateRecord(RuntimeError):
    """A write broke a uniqueness rule (the storage's duplicate-key error)."""


class EventRepository(Protocol):
    """Gatherings, as checkin's messages describe them."""

    def get(self, event_id: str) -> Doc | None: ...

    def in_org(self, org_id: str, event_id: str) -> Doc | None: ...

    def timezone_of(self, event_id: str) -> str | None: ...

    def by_ids(self, event_ids: Iterable[str]) -> list[Doc]: ...

    def upcoming(self, org_id: str, now: datetime, limit: int) -> list[Doc]:
        """Scheduled gatherings starting after ``now``, soonest first."""
        ...


class ContactRepository(Protocol):
    def get(self, person_id: str) -> Doc | None: ...

    def in_org(self, org_id: str, person_id: str) -> Doc | None: ...

    def by_ids(self, person_ids: Iterable[str]) -> list[Doc]: ...

    def page(self, org_id: str, limit: int, offset: int) -> list[Doc]: ...

    def with_email(self, email_norm: str, limit: int) -> list[Doc]:
        """Contacts of any organization under this address (``_id`` and ``org_id``)."""
        ...

    def unsubscribe(self, person_id: str, now: datetime, via: str) -> bool:
        """Mark the contact unsubscribed; False when it already was (or is unknown)."""
        ...

    def unsubscribe_address(self, org_id: str, email_norm: str, now: datetime, via: str) -> list[str]:
        """Unsubscribe the organization's contacts under this address not yet unsubscribed; their ids."""
        ...

    def resubscribe_address(self, org_id: str, email_norm: str, via: str) -> list[str]:
        """Lift unsubscribes made ``via`` this route for the organization's contacts under this address;
        their ids."""
        ...

    def correct(self, person_id: str, org_id: str, details: Doc, details_at: datetime) -> None:
        """Set the contact's name and address (creating it, without consent, when unknown)."""
        ...

    def forget(self, person_id: str) -> int:
        """Delete the contact; how many were deleted."""
        ...


class AttendanceRepository(Protocol):
    def of_event(self, event_id: str, *, checked_in: bool = False) -> list[Doc]: ...

    def of_people(self, person_ids: Iterable[str], event_id: str | None = None) -> list[Doc]: ...

    def registered(self, event_id: str, person_id: str) -> bool: ...

    def history(self) -> list[Doc]:
        """Per person: ``_id`` (person), ``org_id``, ``attended``, ``last``, ``last_event``."""
        ...

    def of_person(self, org_id: str, person_id: str) -> list[Doc]: ...

    def undo_checkin(self, event_id: str, person_id: str, undone_at: datetime) -> bool:
        """Not checked in any more (nor out), unless checked in again after ``undone_at``;
        whether the row changed."""
        ...

    def pseudonymise(self, org_id: str, person_id: str, stand_in: str, drop: Sequence[str]) -> int:
        """The person's rows name ``stand_in`` instead, without the ``drop`` fields; how many."""
        ...


class IntroductionRepository(Protocol):
    def get(self, introduction_id: str) -> Doc | None: ...

    def by_ids(self, introduction_ids: Iterable[str]) -> list[Doc]: ...

    def of_people_at(self, event_id: str, person_ids: Iterable[str]) -> list[Doc]: ...

    def of_people_in_org(self, org_id: str, person_ids: Iterable[str]) -> list[Doc]: ...

    def first_of_person_at(self, event_id: str, person_id: str) -> Doc | None: ...

    def add(self, docs: Sequence[Doc]) -> None:
        """Insert, in order; ``DuplicateRecord`` when a pair exists already."""
        ...

    def accept(self, introduction_id: str, person_id: str, changes: Doc) -> bool:
        """Add ``person_id`` to ``accepted_by`` (and set ``changes``) unless there already."""
        ...

    def rewrite(self, introduction_id: str, fields: Doc) -> None:
        """Replace these top-level fields (an erasure's rewrite)."""
        ...


class SettingsRepository(Protocol):
    def of(self, org_id: str, event_id: str | None) -> dict[str, Doc]:
        """The ``org:<org>`` and ``event:<event>`` documents that exist, by ``_id``."""
        ...

    def update(self, settings_id: str, fields: Doc) -> None:
        """Set ``fields`` (dotted paths) on the document, creating it when missing."""
        ...


class SuppressionRepository(Protocol):
    def existing(self, suppression_ids: Iterable[str]) -> set[str]: ...

    def get(self, suppression_id: str) -> Doc | None: ...

    def exists(self, suppression_id: str) -> bool: ...

    def add(self, suppression_id: str, doc: Doc) -> None:
        """Insert unless present (the first reason stays)."""
        ...

    def remove(self, suppression_id: str) -> None: ...

    def page(self, org_id: str, limit: int, offset: int) -> list[Doc]:
        """Newest first."""
        ...

    def of_person(self, org_id: str, email_keys: Iterable[str], person_id: str) -> list[Doc]:
        """The organization's entries under these addresses, or made for this person."""
        ...

    def replace(self, old_id: str, new_id: str, doc: Doc) -> None:
        """Remove ``old_id``; keep ``doc`` under ``new_id`` (unless an entry is there already)."""
        ...


class NudgeRepository(Protocol):
    def get(self, followup: str) -> Doc | None: ...

    def in_org(self, org_id: str, followup: str) -> Doc | None: ...

    def of_batch(self, batch_id: str) -> list[Doc]: ...

    def pending_send_times(self, batch_id: str) -> list[datetime]:
        """``send_at`` of the batch's nudges still pending."""
        ...

    def existing_keys(self, keys: Sequence[str]) -> set[str]: ...

    def add(self, docs: Sequence[Doc]) -> None: ...

    def of_people_at(self, event_id: str, person_ids: Iterable[str]) -> list[Doc]: ...

    def skip_pending(self, followups: Sequence[str], reason: str, now: datetime) -> None: ...

    def decide_pending(
        self, skips: Sequence[tuple[str, str]], waits: Sequence[tuple[str, datetime, str]], now: datetime
    ) -> None:
        """Send-time decisions in one write: ``(id, reason)`` skipped, ``(id, until, reason)`` postponed."""
        ...

    def claim(self, followups: Sequence[str], token: str, now: datetime) -> int:
        """Pending -> ``claimed`` by ``token``, one attempt more; how many were claimed."""
        ...

    def claimed_by(self, followups: Sequence[str], token: str) -> set[str]: ...

    def left_claimed(self, batch_id: str, token: str) -> list[Doc]: ...

    def unclaim(self, followups: Sequence[str], token: str) -> None:
        """Claimed but never handed over: ``scheduled`` again, the attempt given back."""
        ...

    def settled_candidates(self, followups: Sequence[str], attempt: int, states: Sequence[str]) -> list[str]: ...

    def mark_sent(
        self, followups: Sequence[str], attempt: int, states: Sequence[str], at: datetime, transport: str
    ) -> None: ...

    def record_outcome(self, followup: str, fields: Doc, attempt: int | None) -> bool:
        """Set ``fields`` while the nudge is ``claimed`` on ``attempt`` (None: while still pending)."""
        ...

    def resolve(self, followup: str, state: str, changes: Doc) -> bool:
        """Set ``changes`` while the nudge is still in ``state``."""
        ...

    def first_open(self, followup: str, now: datetime, machine: str | None = None) -> bool:
        """Record the first open (a person's, or with ``machine``'s reason a machine's); whether it was."""
        ...

    def count_open(self, followup: str, machine: bool = False) -> None: ...

    def first_click(self, followup: str, url: str, now: datetime, machine: str | None = None) -> bool:
        """Record the first click of ``url`` (a person's, or with ``machine``'s reason a machine's); whether it was."""
        ...

    def count_click(self, followup: str, machine: bool = False) -> None: ...

    def note_fetch(self, followup: str, url: str, now: datetime) -> None:
        """Remember the latest fetch of any of the message's links (``last_click_url``, ``last_click_at``)."""
        ...

    def record_feedback(self, followup: str, rating: int, comment: str | None, now: datetime) -> bool: ...

    def record_bounce(self, followup: str, field: str, now: datetime, bounce_type: str, reason: str) -> bool: ...

    def listing(
        self, org_id: str, event_id: str, *, status: str | None, kind: str | None, limit: int, offset: int
    ) -> list[Doc]:
        """A gathering's nudges with this display status and kind (when given), oldest first."""
        ...

    def status_fields(self, org_id: str, event_id: str) -> list[Doc]:
        """Every nudge of the gathering, only the fields its display status needs."""
        ...

    def of_person(self, person_id: str, event_ids: Iterable[str | None]) -> list[Doc]:
        """The person's nudges about these gatherings (None: those tied to no gathering)."""
        ...

    def win_backs(self, org_id: str) -> list[Doc]:
        """The organization's win-back nudges (drafts included), oldest first."""
        ...

    def people_of(self, followups: Sequence[str]) -> dict[str, str]:
        """Whom each nudge is for now (an erasure may have replaced the person's id)."""
        ...

    def skipped_for(self, followups: Sequence[str], reason: str) -> set[str]:
        """Those of ``followups`` skipped for ``reason``."""
        ...

    def rewrite(self, followup: str, changes: Doc, drop: Sequence[str]) -> None:
        """Set ``changes`` and remove the ``drop`` fields (an erasure's rewrite)."""
        ...

    def strip_tracking(self, followups: Sequence[str], before: datetime, now: datetime) -> int:
        """Forget which links were followed on those sent before ``before``; how many changed."""
        ...


class SendBatchRepository(Protocol):
    def add(self, doc: Doc) -> None: ...

    def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of ready batches due by ``now``, earliest first."""
        ...

    def claim(self, batch_id: str, token: str, now: datetime, lease_until: datetime) -> bool: ...

    def renew(self, batch_id: str, token: str, lease_until: datetime) -> bool: ...

    def release(self, batch_id: str, token: str, changes: Doc) -> None: ...

    def expired(self, now: datetime, limit: int) -> list[Doc]: ...

    def take_over(self, batch_id: str, owner: str, token: str, lease_until: datetime) -> bool: ...

    def reopen(self, batch_id: str, now: datetime) -> None:
        """A ``done`` batch is ``ready`` again (a resent message)."""
        ...

    def count_due(self, now: datetime) -> int: ...

    def next_due_at(self) -> datetime | None:
        """When the earliest ready batch falls due (None when none is ready)."""
        ...

    def org_ids(self) -> list[str]:
        """Every organization that has send batches."""
        ...

    def to_sweep(self, org_id: str, stage: str, before: datetime, limit: int) -> list[Doc]:
        """Finished batches due before ``before`` that retention ``stage`` has not swept yet."""
        ...

    def swept(self, batch_id: str, stage: str, now: datetime) -> None: ...


class DeliveryJournal(Protocol):
    def append(self, entries: Sequence[Doc]) -> int:
        """Insert in order; stop at the first existing id and return how many were inserted
        (``len(entries)`` when all were)."""
        ...

    def by_ids(self, entry_ids: Sequence[str]) -> dict[str, Doc]: ...

    def get(self, entry_id: str) -> Doc | None: ...

    def fence(self, entry: Doc) -> bool:
        """Insert ``entry`` unless its id exists (then False: a sender got there first)."""
        ...

    def delete(self, entry_ids: Sequence[str], before: datetime | None = None) -> tuple[int, int]:
        """Delete these entries (only those written before ``before``, when given);
        how many were deleted, and how many newer ones were kept."""
        ...


class RenderedRepository(Protocol):
    def store(self, docs: Sequence[Doc]) -> None:
        """Keep each rendered attempt (replacing one with the same ``_id``)."""
        ...

    def raw(self, rendered_id: str) -> bytes | None: ...

    def of_ids(self, rendered_ids: Sequence[str]) -> list[Doc]:
        """The stored attempts, ``raw`` decompressed (None once the body was removed)."""
        ...

    def remove(self, rendered_ids: Sequence[str]) -> int: ...

    def strip(
        self, rendered_ids: Sequence[str], now: datetime, before: datetime | None = None, *, subject: bool = False
    ) -> tuple[int, int]:
        """Remove the bodies (only of those rendered before ``before``, when given), keeping
        recipient and times, and the subject unless ``subject``; how many were stripped, and
        how many newer ones were kept."""
        ...


class InDoubtRepository(Protocol):
    def add(self, followup: str, doc: Doc) -> None: ...

    def remove(self, followups: Sequence[str]) -> None: ...

    def count(self) -> int: ...

    def of_ids(self, followups: Sequence[str]) -> list[Doc]: ...


class PlanRepository(Protocol):
    def get(self, event_id: str) -> Doc | None: ...

    def pending(self, limit: int) -> list[Doc]: ...

    def dirty(self, limit: int) -> list[Doc]: ...

    def due_for_introductions(self, now: datetime, limit: int) -> list[Doc]: ...

    def next_introductions_at(self) -> datetime | None:
        """When the earliest plan awaiting introductions falls due (None when none waits)."""
        ...

    def claim(self, plan_id: str, owner: str, now: datetime, lease_until: datetime) -> bool: ...

    def release(self, plan_id: str, owner: str, changes: Doc) -> None: ...

    def clean(self, plan_id: str, people: Sequence[str]) -> None:
        """Forget ``people`` as dirty (and the flag when none is left)."""
        ...

    def forget_dirty(self, person_id: str) -> int:
        """Forget the person as dirty on every plan; how many plans named them."""
        ...


class FiguresRepository(Protocol):
    def add(self, increments: dict[str, int]) -> None: ...

    def totals(self) -> Doc: ...


class ScanRepository(Protocol):
    def claim(self, scan: str, now: datetime, next_at: datetime) -> bool:
        """Take the scan when due; set when it is due next. Writes nothing when not due."""
        ...

    def next_at(self, scan: str) -> datetime | None:
        """When the scan is due next (None: never run, due now)."""
        ...


class ErasedPeople(Protocol):
    """Tombstones: what follow-up keeps of each erased person (one-way digests only)."""

    def among(self, stand_ins: Iterable[str]) -> set[str]:
        """Which of these pseudonyms belong to erased people."""
        ...

    def by_address(self, digests: Iterable[str]) -> dict[str, datetime | None]:
        """Address digests of erased people, with the latest erasure's request time."""
        ...

    def remember(self, doc: Doc) -> bool:
        """Keep the tombstone (the first one stays); False when it was there already."""
        ...


class ConsentHistory(Protocol):
    def add(self, entries: Sequence[Doc]) -> None:
        """Append entries (an entry whose ``_id`` exists is not written again)."""
        ...

    def of_person(self, org_id: str, person_id: str) -> list[Doc]:
        """Oldest first."""
        ...

    def forget(self, org_id: str, person_id: str) -> int: ...


class RetentionPolicies(Protocol):
    def get(self, org_id: str) -> Doc | None: ...

    def all(self) -> list[Doc]: ...

    def put(self, org_id: str, doc: Doc) -> None: ...


class Leftovers(Protocol):
    """Copies of messages kept by the plumbing (dead letters, the outbox not yet relayed)."""

    def forget_dead_letters(self, needles: Sequence[bytes]) -> int:
        """Delete dead letters whose stored value contains any of ``needles``; how many."""
        ...

    def mask_outbox(self, needles: Sequence[bytes], mask: Callable[[Doc], Doc | None]) -> int:
        """Rewrite pending outbox entries containing any of ``needles`` with ``mask`` (given the
        envelope as a dict: the envelope to send instead, or None to drop the entry); how many."""
        ...


class CheckinFacts(Protocol):
    """What checkin's messages change, written in the consumer's transaction."""

    def planned(self, event_ids: Iterable[str]) -> set[str]: ...

    def apply(
        self,
        events: Sequence[tuple[str, Doc]],
        contacts: Sequence[tuple[str, Doc, Doc]],
        attendance: Sequence[tuple[str, str, Doc]],
        plans: Sequence[tuple[str, Doc]],
        dirty: dict[str, set[str]],
    ) -> None:
        """Upsert gatherings ``(id, fields)``, contacts ``(id, fields, on_insert)``, attendance
        ``(event, person, update)`` and plans ``(id, on_insert)``; mark people dirty per plan."""
        ...

    def record_revocations(self, messages: Sequence[Envelope]) -> int: ...


class Store(Protocol):
    """Every repository, bound to one transaction or to none."""

    @property
    def events(self) -> EventRepository: ...
    @property
    def contacts(self) -> ContactRepository: ...
    @property
    def attendance(self) -> AttendanceRepository: ...
    @property
    def introductions(self) -> IntroductionRepository: ...
    @property
    def settings(self) -> SettingsRepository: ...
    @property
    def suppressions(self) -> SuppressionRepository: ...
    @property
    def nudges(self) -> NudgeRepository: ...
    @property
    def batches(self) -> SendBatchRepository: ...
    @property
    def journal(self) -> DeliveryJournal: ...
    @property
    def rendered(self) -> RenderedRepository: ...
    @property
    def in_doubt(self) -> InDoubtRepository: ...
    @property
    def plans(self) -> PlanRepository: ...
    @property
    def figures(self) -> FiguresRepository: ...
    @property
    def scans(self) -> ScanRepository: ...
    @property
    def checkin_facts(self) -> CheckinFacts: ...
    @property
    def erased(self) -> ErasedPeople: ...
    @property
    def consent(self) -> ConsentHistory: ...
    @property
    def retention(self) -> RetentionPolicies: ...
    @property
    def leftovers(self) -> Leftovers: ...


class Tx(Protocol):
    """One transaction: its store, and the messages it publishes."""

    @property
    def store(self) -> Store: ...

    def publish(self, envelope: Envelope) -> None: ...


class Transactions(Protocol):
    def run(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction (re-run from the start on a transient conflict)."""
        ...
