"""In-memory stand-ins for analytics' storage ports (``analytics.service_layer.ports``):
a projection store applying the same increments MongoDB would, the archive and
the projection generations for the rebuild, and the dashboard's queries."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from analytics.domain.events import EventMeta
from analytics.domain.people import PersonState
from analytics.domain.privacy import ArchiveChange, applied
from analytics.domain.projections import BatchChanges
from analytics.domain.registrations import RegistrationState
from analytics.domain.reports import DateRange
from turnout_common.envelope import Envelope
from turnout_common.privacy import RetentionPeriods
from turnout_common.types import Doc


def _inc(target: dict[str, Any], dotted: str, amount: int) -> None:
    head, _, rest = dotted.partition(".")
    if rest:
        _inc(target.setdefault(head, {}), rest, amount)
    else:
        target[head] = target.get(head, 0) + amount


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {key: _clean(inner) for key, inner in value.items()}
        return {key: inner for key, inner in cleaned.items() if inner != 0 and inner != {}}
    return value


class FakeProjectionStore:
    def __init__(self) -> None:
        self.registrations: dict[str, RegistrationState] = {}
        self.events: dict[str, EventMeta] = {}
        self.event_counters: dict[str, dict[str, Any]] = {}
        self.lanes: dict[str, dict[str, Any]] = {}
        self.people: dict[str, PersonState] = {}
        self.cohorts: dict[tuple[str, str], dict[str, Any]] = {}
        self.funnel: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.loyalty: dict[tuple[str, int], dict[str, Any]] = {}

    def load_registrations(self, ids: Iterable[str]) -> dict[str, RegistrationState]:
        return {i: copy.deepcopy(self.registrations[i]) for i in ids if i in self.registrations}

    def load_events(self, ids: Iterable[str]) -> dict[str, EventMeta]:
        return {i: copy.deepcopy(self.events[i]) for i in ids if i in self.events}

    def load_people(self, ids: Iterable[str]) -> dict[str, PersonState]:
        return {i: copy.deepcopy(self.people[i]) for i in ids if i in self.people}

    def forget_people(self, ids: Iterable[str]) -> None:
        for person_id in ids:
            self.people.pop(person_id, None)

    def write(self, changes: BatchChanges) -> None:
        self.registrations.update(copy.deepcopy(changes.registrations))
        self.events.update(copy.deepcopy(changes.events))
        self.people.update(copy.deepcopy(changes.people))
        for target, increments in (
            (self.event_counters, changes.event_counters),
            (self.lanes, changes.lanes),
            (self.cohorts, changes.cohorts),
            (self.funnel, changes.funnel),
            (self.loyalty, changes.loyalty),
        ):
            for key, counters in increments.items():
                cell = target.setdefault(key, {})  # type: ignore[attr-defined]
                for name, amount in counters.items():
                    _inc(cell, name, amount)

    def figures(self) -> dict[str, Any]:
        """Everything the projections say (zeros dropped), for comparing two stores."""
        return {
            "registrations": {k: v.to_doc() for k, v in self.registrations.items()},
            "events": {k: v.fields() for k, v in self.events.items()},
            "event_counters": _clean(self.event_counters),
            "lanes": _clean(self.lanes),
            "people": {k: v.to_doc() for k, v in self.people.items()},
            "cohorts": _clean({"|".join(k): v for k, v in self.cohorts.items()}),
            "funnel": _clean({"|".join(k): v for k, v in self.funnel.items()}),
            "loyalty": _clean({f"{k[0]}|{k[1]}": v for k, v in self.loyalty.items()}),
        }


class FakeStateStore(FakeProjectionStore):
    """A rebuild's fresh generation: new states may be inserted directly."""

    def __init__(self) -> None:
        super().__init__()
        self.inserted = 0

    def insert_states(self, registrations: dict[str, RegistrationState], people: dict[str, PersonState]) -> None:
        assert not set(registrations) & set(self.registrations), "inserted a registration that exists"
        assert not set(people) & set(self.people), "inserted a person who exists"
        self.inserted += len(registrations) + len(people)
        self.registrations.update(copy.deepcopy(registrations))
        self.people.update(copy.deepcopy(people))


class FakeArchive:
    """Archived envelopes with the moment each was applied."""

    def __init__(self) -> None:
        self.applied: list[tuple[datetime, Envelope]] = []

    def add(self, messages: Iterable[Envelope], at: datetime) -> None:
        self.applied.extend((at, message) for message in messages)

    def _since(self, since: datetime | None) -> list[Envelope]:
        return [message for at, message in self.applied if since is None or at >= since]

    def count(self, since: datetime | None = None) -> int:
        return len(self._since(since))

    def is_empty(self) -> bool:
        return not self.applied

    def batches(self, batch_size: int, since: datetime | None = None) -> Iterator[list[Envelope]]:
        found = self._since(since)
        for start in range(0, len(found), batch_size):
            yield found[start : start + batch_size]


class FakeRecords:
    """The personal records (``PersonalRecords``, ``RetentionStorage``) in dictionaries:
    archived messages as the consumer stores them, tombstones, policies, leftovers."""

    def __init__(self) -> None:
        self.archive: dict[str, Doc] = {}
        self.tombstones: dict[str, Doc] = {}
        self.policies_kept: dict[str, Doc] = {}
        self.leftovers: list[str] = []  # texts of dead letters and unsent exports
        self.marks: dict[tuple[str, str], datetime] = {}

    def add(self, messages: Iterable[Envelope], at: datetime) -> None:
        """What the consumer does after the handler: archive each envelope as it is now."""
        for message in messages:
            self.archive[message.id] = {
                "_id": message.id,
                "applied_at": at,
                "envelope": copy.deepcopy(message.to_dict()),
                "subject": message.subject,
            }

    def erased(self, pseudonyms: Iterable[str]) -> set[str]:
        return {alias for alias in pseudonyms if alias in self.tombstones}

    def erased_since(self, moment: datetime) -> set[str]:
        return {alias for alias, doc in self.tombstones.items() if doc["erased_at"] >= moment}

    def remember_erased(self, tombstone: Doc) -> None:
        self.tombstones.setdefault(tombstone["_id"], dict(tombstone))

    def archived_naming(self, person_id: str) -> list[Doc]:
        found = [
            copy.deepcopy(doc)
            for doc in self.archive.values()
            if person_id in (doc["envelope"]["data"].get("person_id"), doc["envelope"]["data"].get("other_person_id"))
        ]
        return sorted(found, key=lambda doc: (doc["applied_at"], doc["_id"]))

    def change_archived(self, changes: Sequence[ArchiveChange]) -> int:
        changed = 0
        for change in changes:
            doc = self.archive.get(change.message_id)
            if doc is None:
                continue
            changed += 1
            doc["envelope"]["data"] = applied(doc["envelope"]["data"], change.data)
            if change.subject is not None:
                doc["envelope"]["subject"] = doc["subject"] = change.subject
        return changed

    def forget_leftovers(self, needles: Sequence[str]) -> dict[str, int]:
        gone = [text for text in self.leftovers if any(needle in text for needle in needles)]
        self.leftovers = [text for text in self.leftovers if text not in gone]
        return {"dead_letters": len(gone), "unsent_exports": 0}

    def store_policy(self, org_id: str, periods: dict[str, int], set_at: datetime, set_by: str | None) -> bool:
        current = self.policies_kept.get(org_id)
        if current is not None and current["set_at"] >= set_at:
            return False
        self.policies_kept[org_id] = {"periods": periods, "set_at": set_at, "set_by": set_by}
        return True

    # -- RetentionStorage ----------------------------------------------------------------------
    def policies(self) -> dict[str, RetentionPeriods]:
        return {org: RetentionPeriods.from_dict(doc["periods"]) for org, doc in self.policies_kept.items()}

    def watermarks(self) -> dict[tuple[str, str], datetime]:
        return dict(self.marks)

    def set_watermark(self, scope: str, kind: str, until: datetime) -> None:
        self.marks[(scope, kind)] = until

    def archived_between(self, lower: datetime, upper: datetime, batch_size: int) -> Iterator[list[Doc]]:
        found = [copy.deepcopy(doc) for doc in self.archive.values() if lower <= doc["applied_at"] < upper]
        for start in range(0, len(found), batch_size):
            yield found[start : start + batch_size]


class FakeGenerations:
    """Projection groups' generations, each a ``FakeStateStore`` per (group, generation)
    (the two groups of one generation share a store: they write different parts)."""

    def __init__(self, groups: Iterable[str] = ("events", "people")) -> None:
        self.archive = FakeArchive()
        self.records = FakeRecords()
        self.live: dict[str, int] = {group: 0 for group in groups}
        self.stores: dict[tuple[int, ...], FakeStateStore] = {}
        self.versions_outdated: list[str] = []
        self.lease_taken = False
        self.log: list[str] = []

    def _key(self, generations: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(generations.get(group, self.live[group]) for group in self.live)

    def generations(self) -> dict[str, int]:
        return dict(self.live)

    def clear(self, generations: Mapping[str, int]) -> None:
        self.log.append(f"clear {dict(generations)}")

    def storage(self, generations: Mapping[str, int]) -> FakeStateStore:
        return self.stores.setdefault(self._key(generations), FakeStateStore())

    def prepare(self, generations: Mapping[str, int]) -> None:
        self.log.append(f"prepare {dict(generations)}")

    def switch(self, group: str, generation: int) -> None:
        self.log.append(f"switch {group} {generation}")
        self.live[group] = generation

    def people_named(
        self, generations: Mapping[str, int], wanted: Callable[[str, str], bool]
    ) -> dict[str, tuple[str, set[str]]]:
        store = self.storage(generations)
        found: dict[str, tuple[str, set[str]]] = {}
        for person_id, person in store.people.items():
            if wanted(person.org_id, person_id):
                found[person_id] = (person.org_id, set())
        for registration_id, state in store.registrations.items():
            if state.person_id in found or wanted(state.org_id, state.person_id):
                found.setdefault(state.person_id, (state.org_id, set()))[1].add(registration_id)
        return found

    def apply_live(self, apply: Callable[[FakeProjectionStore], int]) -> int:
        return apply(self.storage(self.live))

    def outdated_groups(self) -> list[str]:
        return list(self.versions_outdated)

    def mark_current(self, groups: Iterable[str]) -> None:
        self.log.append(f"mark current {sorted(groups)}")
        self.versions_outdated = []

    def take_upgrade_lease(self) -> bool:
        if self.lease_taken:
            return False
        self.lease_taken = True
        return True

    def release_upgrade_lease(self) -> None:
        self.lease_taken = False


def _in_range(moment: datetime | None, date_range: DateRange) -> bool:
    if moment is None:
        return date_range.start is None and date_range.end is None
    day = moment.date()
    return (date_range.start is None or day >= date_range.start) and (date_range.end is None or day <= date_range.end)


def _in_months(month: str, date_range: DateRange) -> bool:
    first, last = date_range.months()
    return (first is None or month >= first) and (last is None or month <= last)


class FakeDashboard:
    """The dashboard's reads over documents kept in lists, recording each query."""

    def __init__(self) -> None:
        self.event_docs: list[Doc] = []
        self.lane_docs: list[Doc] = []
        self.summaries: list[Doc] = []
        self.facts: list[Doc] = []
        self.registration_facts: list[Doc] = []
        self.loyalty: list[Doc] = []
        self.cohorts: list[Doc] = []
        self.funnel: list[Doc] = []
        self.queries: list[tuple[Any, ...]] = []

    def _org(self, docs: list[Doc], org_id: str) -> list[Doc]:
        return [doc for doc in docs if doc.get("org_id") == org_id]

    def events(self, org_id: str, date_range: DateRange, kind: str | None, limit: int) -> list[Doc]:
        self.queries.append(("events", date_range, kind, limit))
        found = [
            doc
            for doc in self._org(self.event_docs, org_id)
            if _in_range(doc.get("starts_at"), date_range) and (not kind or doc.get("kind") == kind)
        ]
        return sorted(found, key=lambda doc: doc["starts_at"], reverse=True)[:limit]

    def event(self, org_id: str, event_id: str) -> Doc | None:
        self.queries.append(("event", event_id))
        return next((doc for doc in self._org(self.event_docs, org_id) if doc["_id"] == event_id), None)

    def lanes(self, org_id: str, event_id: str) -> list[Doc]:
        self.queries.append(("lanes", event_id))
        return [doc for doc in self._org(self.lane_docs, org_id) if doc["event_id"] == event_id]

    def ended_events(self, org_id: str, kind: str | None, limit: int) -> list[Doc]:
        self.queries.append(("ended_events", kind, limit))
        found = [
            doc
            for doc in self._org(self.event_docs, org_id)
            if doc.get("status") == "ended" and (not kind or doc.get("kind") == kind)
        ]
        return sorted(found, key=lambda doc: doc["starts_at"], reverse=True)[:limit]

    def next_scheduled(self, org_id: str, kind: str | None, after: datetime) -> Doc | None:
        self.queries.append(("next_scheduled", kind, after))
        found = [
            doc
            for doc in self._org(self.event_docs, org_id)
            if doc.get("kind") == kind and doc.get("status") == "scheduled" and doc["starts_at"] > after
        ]
        return min(found, key=lambda doc: doc["starts_at"], default=None)

    def held_event_starts(self, org_id: str, until: datetime, limit: int) -> list[datetime]:
        self.queries.append(("held_event_starts", until, limit))
        return sorted(
            doc["starts_at"]
            for doc in self._org(self.event_docs, org_id)
            if doc["starts_at"] <= until and doc.get("status") != "cancelled"
        )[:limit]

    def event_titles(self, org_id: str, event_ids: Iterable[str]) -> dict[str, str | None]:
        wanted = set(event_ids)
        self.queries.append(("event_titles", sorted(wanted)))
        return {doc["_id"]: doc.get("title") for doc in self._org(self.event_docs, org_id) if doc["_id"] in wanted}

    def first_timers_attended(self, org_id: str, event_id: str) -> dict[str, int]:
        self.queries.append(("first_timers_attended", event_id))
        return {
            doc["_id"]: int(doc.get("events_attended", 0))
            for doc in self._org(self.summaries, org_id)
            if doc.get("first_event") == event_id
        }

    def welcomed_people(self, org_id: str, event_id: str) -> set[str]:
        self.queries.append(("welcomed_people", event_id))
        return {
            doc["person_id"]
            for doc in self._org(self.registration_facts, org_id)
            if doc.get("welcomed_event") == event_id
        }

    def risk_from_between(self, org_id: str, lower: datetime, upper: datetime, limit: int) -> list[Doc]:
        self.queries.append(("risk_from_between", lower, upper, limit))
        found = [
            doc
            for doc in self._org(self.summaries, org_id)
            if doc.get("risk_from") is not None and lower < doc["risk_from"] <= upper
        ]
        return sorted(found, key=lambda doc: doc["risk_from"], reverse=True)[:limit]

    def people_by_events_attended(self, org_id: str, lowest: int, highest: int, skip: int, limit: int) -> list[Doc]:
        self.queries.append(("people_by_events_attended", lowest, highest, skip, limit))
        found = [
            doc for doc in self._org(self.summaries, org_id) if lowest <= int(doc.get("events_attended", 0)) <= highest
        ]
        found.sort(key=lambda doc: (-int(doc.get("events_attended", 0)), doc["_id"]))
        return found[skip : skip + limit]

    def person_summary(self, org_id: str, person_id: str) -> Doc | None:
        self.queries.append(("person_summary", person_id))
        return next((doc for doc in self._org(self.summaries, org_id) if doc["_id"] == person_id), None)

    def person_facts(self, org_id: str, person_id: str) -> Doc | None:
        self.queries.append(("person_facts", person_id))
        return next((doc for doc in self._org(self.facts, org_id) if doc["_id"] == person_id), None)

    def loyalty_cells(self, org_id: str) -> list[Doc]:
        self.queries.append(("loyalty_cells",))
        return self._org(self.loyalty, org_id)

    def cohort_cells(self, org_id: str, date_range: DateRange) -> list[Doc]:
        self.queries.append(("cohort_cells", date_range))
        return [doc for doc in self._org(self.cohorts, org_id) if _in_months(doc["cohort"], date_range)]

    def funnel_cells(self, org_id: str, date_range: DateRange) -> list[Doc]:
        self.queries.append(("funnel_cells", date_range))
        return [doc for doc in self._org(self.funnel, org_id) if _in_months(doc["month"], date_range)]
