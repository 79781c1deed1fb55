"""An in-memory projection store: the same increments MongoDB would apply, in dictionaries."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from analytics.domain.events import EventMeta
from analytics.domain.people import PersonState
from analytics.domain.projections import BatchChanges
from analytics.domain.registrations import RegistrationState


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
