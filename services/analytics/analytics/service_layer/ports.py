"""What analytics' use cases need from storage, as Protocols: MongoDB
implements them in ``analytics.adapters``, dictionaries in the unit tests'
fakes. No query is written here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from analytics.domain.events import EventMeta
from analytics.domain.people import PersonState
from analytics.domain.privacy import ArchiveChange
from analytics.domain.projections import BatchChanges
from analytics.domain.registrations import RegistrationState
from analytics.domain.reports import DateRange
from turnout_common.envelope import Envelope
from turnout_common.privacy import RetentionPeriods
from turnout_common.types import Doc


class ProjectionStorage(Protocol):
    """Where projection state lives (MongoDB in production, dictionaries in unit tests)."""

    def load_registrations(self, ids: Iterable[str]) -> dict[str, RegistrationState]: ...
    def load_events(self, ids: Iterable[str]) -> dict[str, EventMeta]: ...
    def load_people(self, ids: Iterable[str]) -> dict[str, PersonState]: ...
    def write(self, changes: BatchChanges) -> None: ...


class ErasableStorage(ProjectionStorage, Protocol):
    """Projection storage that can also forget a person's own documents (an erasure)."""

    def forget_people(self, ids: Iterable[str]) -> None:
        """Delete the facts and summaries kept under these person ids (no figure changes)."""
        ...


class PersonalRecords(Protocol):
    """What analytics keeps about people besides the projections: the archive
    read by person, the erased people's tombstones, the retention policies."""

    def erased(self, pseudonyms: Iterable[str]) -> set[str]:
        """Those of ``pseudonyms`` that belong to erased people."""
        ...

    def erased_since(self, moment: datetime) -> set[str]:
        """The pseudonyms of people erased at ``moment`` or later."""
        ...

    def remember_erased(self, tombstone: Doc) -> None:
        """Keep an erased person's tombstone (``_id``: the pseudonym); the first one stays."""
        ...

    def archived_naming(self, person_id: str) -> list[Doc]:
        """Every archived message naming the person (``{_id, applied_at, envelope}``), oldest first."""
        ...

    def change_archived(self, changes: Sequence[ArchiveChange]) -> int:
        """Change archived messages field by field; return how many changed."""
        ...

    def forget_leftovers(self, needles: Sequence[str]) -> dict[str, int]:
        """Delete dead letters and unsent export answers whose text contains any of ``needles``."""
        ...

    def store_policy(self, org_id: str, periods: dict[str, int], set_at: datetime, set_by: str | None) -> bool:
        """Keep an organization's retention policy unless a newer one is kept; True if kept."""
        ...


class RetentionStorage(Protocol):
    """What the retention sweep reads and changes (outside any transaction)."""

    def policies(self) -> dict[str, RetentionPeriods]: ...
    def watermarks(self) -> dict[tuple[str, str], datetime]:
        """(scope, kind) -> the moment up to which archived messages were swept."""
        ...

    def set_watermark(self, scope: str, kind: str, until: datetime) -> None: ...
    def archived_between(self, lower: datetime, upper: datetime, batch_size: int) -> Iterator[list[Doc]]:
        """Archived messages applied in ``[lower, upper)`` (``{_id, envelope}``), a window at a time."""
        ...

    def change_archived(self, changes: Sequence[ArchiveChange]) -> int: ...


class StateStorage(ErasableStorage, Protocol):
    """A rebuild's projection storage, which also takes states known to be new."""

    def insert_states(self, registrations: dict[str, RegistrationState], people: dict[str, PersonState]) -> None: ...


class Archive(Protocol):
    """Every message applied so far, read back by the time it was applied."""

    def count(self, since: datetime | None = None) -> int: ...
    def is_empty(self) -> bool: ...
    def batches(self, batch_size: int, since: datetime | None = None) -> Iterator[list[Envelope]]: ...


class ProjectionGenerations(Protocol):
    """The generations of each projection group (``events``, ``people``): which
    one is live, building a new one beside it, switching, and dropping."""

    @property
    def archive(self) -> Archive: ...
    @property
    def records(self) -> PersonalRecords:
        """The tombstones (a rebuild masks what it reads of erased people) and the archive by person."""
        ...

    def generations(self) -> dict[str, int]: ...
    def clear(self, generations: Mapping[str, int]) -> None:
        """Drop whatever the collections of these group generations hold."""
        ...

    def storage(self, generations: Mapping[str, int]) -> StateStorage:
        """The projection storage of these group generations (written without a transaction)."""
        ...

    def prepare(self, generations: Mapping[str, int]) -> None:
        """Index these group generations as the live ones are."""
        ...

    def switch(self, group: str, generation: int) -> None: ...
    def people_named(
        self, generations: Mapping[str, int], wanted: Callable[[str, str], bool]
    ) -> dict[str, tuple[str, set[str]]]:
        """Person ids in these group generations' people and registration facts
        for which ``wanted(org_id, person_id)``, each with their organization and
        the ids of their registration facts (two scans: only for an erasure that
        happened while a rebuild ran)."""
        ...

    def apply_live(self, apply: Callable[[ErasableStorage], int]) -> int:
        """Run ``apply`` on the live generations in one transaction (retried on a write conflict)."""
        ...

    def outdated_groups(self) -> list[str]: ...
    def mark_current(self, groups: Iterable[str]) -> None: ...
    def take_upgrade_lease(self) -> bool: ...
    def release_upgrade_lease(self) -> None: ...


class DashboardQueries(Protocol):
    """The dashboard's reads of one generation of the projections, each scoped
    to one organization. Documents are the projections' (see ``analytics.domain``)."""

    def events(self, org_id: str, date_range: DateRange, kind: str | None, limit: int) -> list[Doc]:
        """The events starting in the range (of the kind), newest first."""
        ...

    def event(self, org_id: str, event_id: str) -> Doc | None: ...
    def lanes(self, org_id: str, event_id: str) -> list[Doc]: ...
    def series_events(self, org_id: str, series_id: str) -> list[Doc]:
        """A series' occurrences with their figures, first to last."""
        ...

    def series_attendance(self, org_id: str, event_ids: list[str]) -> list[tuple[str, str]]:
        """(person_id, event_id) of every check-in at these events."""
        ...

    def ended_events(self, org_id: str, kind: str | None, limit: int) -> list[Doc]:
        """The latest ended events (of the kind): arrivals, checked_in, registered, starts_at."""
        ...

    def next_scheduled(self, org_id: str, kind: str | None, after: datetime) -> Doc | None:
        """The first scheduled event of the kind after a moment: title, starts_at, registered."""
        ...

    def held_event_starts(self, org_id: str, until: datetime, limit: int) -> list[datetime]:
        """When the events not cancelled started, up to a moment, oldest first."""
        ...

    def event_titles(self, org_id: str, event_ids: Iterable[str]) -> dict[str, str | None]: ...
    def first_timers_attended(self, org_id: str, event_id: str) -> dict[str, int]:
        """Person id -> how many events they attended, for each person whose first event this was."""
        ...

    def welcomed_people(self, org_id: str, event_id: str) -> set[str]:
        """The people a greeter welcomed at this event (``attendee.welcomed``)."""
        ...

    def risk_from_between(self, org_id: str, lower: datetime, upper: datetime, limit: int) -> list[Doc]:
        """People summaries whose ``risk_from`` is in ``(lower, upper]``, latest first."""
        ...

    def people_by_events_attended(self, org_id: str, lowest: int, highest: int, skip: int, limit: int) -> list[Doc]:
        """People summaries with ``lowest..highest`` events attended, most first (then by id)."""
        ...

    def person_summary(self, org_id: str, person_id: str) -> Doc | None: ...
    def person_facts(self, org_id: str, person_id: str) -> Doc | None: ...
    def loyalty_cells(self, org_id: str) -> list[Doc]: ...
    def cohort_cells(self, org_id: str, date_range: DateRange) -> list[Doc]: ...
    def funnel_cells(self, org_id: str, date_range: DateRange) -> list[Doc]: ...
