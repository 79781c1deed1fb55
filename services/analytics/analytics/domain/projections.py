"""How a batch of messages changes the projections: pure, so the live
consumer and a rebuild from the archive run exactly the same rules.

The caller loads the current state of every registration, event and person
the batch touches (``touched``), ``fold_batch`` folds the messages into those
states and returns the new states and the *differences* of every figure
(event counters, lane throughput, cohort cells, funnel cells), which the caller
writes as increments. Because each state is a semilattice (see ``facts``), a
message applied twice or out of order changes nothing more.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from analytics.domain.events import EVENT_TYPES, EventMeta, fold_event
from analytics.domain.facts import (
    Counters,
    Stamp,
    add_into,
    difference,
    keyed_difference,
    merge_cells,
    parse_time,
)
from analytics.domain.people import (
    PERSON_TYPES,
    PersonState,
    anonymised,
    cohort_counters,
    fold_person,
    funnel_counters,
    loyalty_counters,
    merged,
)
from analytics.domain.registrations import (
    REGISTRATION_TYPES,
    RegistrationState,
    event_counters,
    fold_registration,
    lane_counters,
    new_registration,
)
from analytics.domain.reports import show_rate

__all__ = [
    "PROJECTIONS",
    "BatchChanges",
    "Message",
    "Touched",
    "erased_person",
    "fold_batch",
    "show_rate",
    "touched",
]

# Projection groups, each rebuildable on its own.
PROJECTIONS = ("events", "people")


class Message(Protocol):
    """What the rules read of a message (a CloudEvents ``Envelope`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def time(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Touched:
    registrations: set[str]
    events: set[str]
    people: set[str]


def _event_id(message: Message) -> str | None:
    value = message.data.get("event_id")
    return value if isinstance(value, str) else None


def touched(messages: Sequence[Message], projections: Sequence[str] = PROJECTIONS) -> Touched:
    """Which states a batch needs loaded."""
    out = Touched(set(), set(), set())
    for message in messages:
        if "events" in projections:
            if message.type in REGISTRATION_TYPES:
                out.registrations.add(message.data["registration_id"])
            if (message.type in EVENT_TYPES or message.type in REGISTRATION_TYPES) and _event_id(message):
                out.events.add(message.data["event_id"])
        if "people" in projections and message.type in PERSON_TYPES:
            out.people.add(message.data["person_id"])
    return out


def lane_key(event_id: str, lane: str) -> str:
    return f"{event_id}|{lane}"


@dataclass(slots=True)
class BatchChanges:
    registrations: dict[str, RegistrationState] = field(default_factory=dict)  # changed, new state
    events: dict[str, EventMeta] = field(default_factory=dict)  # touched, new description
    event_counters: dict[str, Counters] = field(default_factory=dict)  # event id -> increments
    lanes: dict[str, Counters] = field(default_factory=dict)  # lane key -> increments
    lane_ids: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # lane key -> (org, event, lane)
    people: dict[str, PersonState] = field(default_factory=dict)  # changed, new state
    cohorts: dict[tuple[str, str], Counters] = field(default_factory=dict)  # (org, month) -> increments
    funnel: dict[tuple[str, str, str], Counters] = field(default_factory=dict)  # (org, month, kind) -> increments
    loyalty: dict[tuple[str, int], Counters] = field(default_factory=dict)  # (org, events attended) -> increments

    def is_empty(self) -> bool:
        return not (self.registrations or self.events or self.people)


def _stamp(message: Message) -> Stamp:
    return (parse_time(message.time), message.id)


def fold_batch(
    messages: Sequence[Message],
    registrations: Mapping[str, RegistrationState],
    events: Mapping[str, EventMeta],
    people: Mapping[str, PersonState],
    projections: Sequence[str] = PROJECTIONS,
) -> BatchChanges:
    """Fold ``messages`` (in order) into the loaded states; return new states and figure increments."""
    changes = BatchChanges()
    if "events" in projections:
        _fold_events(messages, registrations, events, changes)
    if "people" in projections:
        _fold_people(messages, people, changes)
    return changes


def _fold_events(
    messages: Sequence[Message],
    loaded: Mapping[str, RegistrationState],
    events: Mapping[str, EventMeta],
    changes: BatchChanges,
) -> None:
    before: dict[str, tuple[Counters, dict[str, Counters]]] = {}
    states: dict[str, RegistrationState] = {}
    metas: dict[str, EventMeta] = {}
    for message in messages:
        data = message.data
        event_id = _event_id(message)
        if event_id is not None and (message.type in EVENT_TYPES or message.type in REGISTRATION_TYPES):
            meta = metas.get(event_id)
            if meta is None:
                existing = events.get(event_id)
                meta = metas[event_id] = (
                    copy.deepcopy(existing) if existing is not None else EventMeta(event_id, data["org_id"])
                )
            fold_event(meta, message.type, data, _stamp(message))
        if message.type not in REGISTRATION_TYPES:
            continue
        registration_id = data["registration_id"]
        state = states.get(registration_id)
        if state is None:
            original = loaded.get(registration_id)
            before[registration_id] = (event_counters(original), lane_counters(original))
            state = states[registration_id] = (
                copy.deepcopy(original) if original is not None else new_registration(data)
            )
        fold_registration(state, message.type, data, message.id)
    changes.events.update(metas)
    for registration_id, state in states.items():
        old_counters, old_lanes = before[registration_id]
        new_counters = event_counters(state)
        delta = difference(new_counters, old_counters)
        lane_delta = keyed_difference(lane_counters(state), old_lanes)
        original = loaded.get(registration_id)
        if original is None or original != state:
            changes.registrations[registration_id] = state
        if delta:
            add_into(changes.event_counters, state.event_id, delta)
        for lane, counters in lane_delta.items():
            key = lane_key(state.event_id, lane)
            changes.lane_ids[key] = (state.org_id, state.event_id, lane)
            add_into(changes.lanes, key, counters)


def _fold_people(messages: Sequence[Message], loaded: Mapping[str, PersonState], changes: BatchChanges) -> None:
    states: dict[str, PersonState] = {}
    for message in messages:
        if message.type not in PERSON_TYPES:
            continue
        person_id = message.data["person_id"]
        state = states.get(person_id)
        if state is None:
            original = loaded.get(person_id)
            state = states[person_id] = (
                original.copy() if original is not None else PersonState(person_id, message.data["org_id"])
            )
        fold_person(state, message.type, message.data, _stamp(message))
    for person_id, state in states.items():
        original = loaded.get(person_id)
        if original is not None and original == state:
            continue
        changes.people[person_id] = state
        _add_person_figures(changes, state, [original])


def _add_person_figures(changes: BatchChanges, state: PersonState, before: list[PersonState | None]) -> None:
    """Add to ``changes`` what the cross-event figures move when the states ``before`` become ``state``."""

    def old(counters: Any) -> dict[str, Counters]:
        return merge_cells(counters(previous) for previous in before)

    for cohort, counters in keyed_difference(cohort_counters(state), old(cohort_counters)).items():
        add_into_tuple(changes.cohorts, (state.org_id, cohort), counters)
    for key, counters in keyed_difference(funnel_counters(state), old(funnel_counters)).items():
        month, _, kind = key.partition("|")
        add_into_tuple(changes.funnel, (state.org_id, month, kind), counters)
    for attended, counters in keyed_difference(loyalty_counters(state), old(loyalty_counters)).items():
        add_into_tuple(changes.loyalty, (state.org_id, int(attended)), counters)


def erased_person(person: PersonState, under_alias: PersonState | None, alias: str) -> BatchChanges:
    """An erased person's state under their pseudonym, and the figures' increments.

    Usually nothing is known under the pseudonym yet and the figures do not
    move (the same facts under another key). A rebuild that ran while the
    person was erased may have folded some of their messages under each key:
    the two states are joined (as folding all the messages into one would),
    and the figures move from counting two people to counting one.
    """
    joined = anonymised(merged(person, under_alias) if under_alias is not None else person, alias)
    changes = BatchChanges(people={alias: joined})
    _add_person_figures(changes, joined, [person, under_alias])
    return changes


def add_into_tuple(target: dict[Any, Counters], key: Any, counters: Mapping[str, int]) -> None:
    cell = target.setdefault(key, {})
    for name, amount in counters.items():
        cell[name] = cell.get(name, 0) + amount
