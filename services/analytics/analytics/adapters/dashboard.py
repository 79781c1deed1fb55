"""The dashboard's queries on the live projections: each one small, indexed and
scoped to one organization (``analytics.service_layer.ports.DashboardQueries``).

The live generation of each projection group is looked up once per
``MongoDashboard`` (one per request, or per few seconds of a live stream), on
its first query."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from analytics.adapters.mongo import (
    COHORTS,
    EVENT_FIGURES,
    EVENT_LANES,
    FUNNEL,
    LOYALTY,
    PEOPLE,
    PEOPLE_SUMMARY,
    REGISTRATION_FACTS,
    live_names,
)
from analytics.domain.reports import DateRange
from turnout_common.clock import as_utc
from turnout_common.types import Doc

EVENT_FIELDS = {
    name: 1
    for name in (
        "org_id",
        "title",
        "kind",
        "starts_at",
        "ends_at",
        "timezone",
        "status",
        "capacity",
        "registered",
        "waitlisted",
        "walk_ins",
        "cancelled",
        "checked_in",
        "first_timers",
        "first_timers_welcomed",
        "returning",
        "checked_out",
        "not_arrived",
        "volunteer_centihours",
        "methods",
    )
}
PERSON_FIELDS = {
    name: 1
    for name in (
        "first_name",
        "last_name",
        "events_attended",
        "first_seen",
        "last_seen",
        "streak_last",
        "streak_last_month",
        "streak_longest",
        "centihours",
        "followups_received",
        "followups_acted",
        "unsubscribed",
        "typical_gap_days",
        "last_event_at",
    )
}


def _range_query(date_range: DateRange, field: str = "starts_at") -> Doc:
    bounds: Doc = {}
    if date_range.start is not None:
        bounds["$gte"] = datetime(date_range.start.year, date_range.start.month, date_range.start.day, tzinfo=UTC)
    end = date_range.end_exclusive()
    if end is not None:
        bounds["$lt"] = datetime(end.year, end.month, end.day, tzinfo=UTC)
    return {field: bounds} if bounds else {}


def _month_query(date_range: DateRange, field: str) -> Doc:
    first, last = date_range.months()
    bounds: Doc = {}
    if first:
        bounds["$gte"] = first
    if last:
        bounds["$lte"] = last
    return {field: bounds} if bounds else {}


class MongoDashboard:
    """The dashboard's reads, on the projections' live generation."""

    def __init__(self, db: Database[Doc], names: Mapping[str, str] | None = None) -> None:
        self.db = db
        self._names = names

    def _c(self, name: str) -> Collection[Doc]:
        if self._names is None:
            self._names = live_names(self.db)
        return self.db[self._names[name]]

    # -- events ---------------------------------------------------------------------------------

    def events(self, org_id: str, date_range: DateRange, kind: str | None, limit: int) -> list[Doc]:
        query = _range_query(date_range)
        if kind:
            query["kind"] = kind
        cursor = self._c(EVENT_FIGURES).find({"org_id": org_id, **query}, EVENT_FIELDS)
        return list(cursor.sort("starts_at", DESCENDING).limit(limit))

    def event(self, org_id: str, event_id: str) -> Doc | None:
        return self._c(EVENT_FIGURES).find_one({"_id": event_id, "org_id": org_id})

    def series_events(self, org_id: str, series_id: str) -> list[Doc]:
        """A series' occurrences with their figures, first to last."""
        found = self._c(EVENT_FIGURES).find({"org_id": org_id, "series_id": series_id}).sort("occurrence", ASCENDING)
        return list(found.limit(1000))

    def series_attendance(self, org_id: str, event_ids: list[str]) -> list[tuple[str, str]]:
        """(person_id, event_id) of every check-in at these events."""
        found = self._c(REGISTRATION_FACTS).find(
            {"org_id": org_id, "event_id": {"$in": event_ids}, "checkin": {"$ne": None}},
            {"person_id": 1, "event_id": 1},
        )
        return [(str(doc["person_id"]), str(doc["event_id"])) for doc in found]

    def lanes(self, org_id: str, event_id: str) -> list[Doc]:
        return list(self._c(EVENT_LANES).find({"event_id": event_id, "org_id": org_id}))

    def ended_events(self, org_id: str, kind: str | None, limit: int) -> list[Doc]:
        query: Doc = {"status": "ended"}
        if kind:
            query["kind"] = kind
        fields = {"arrivals": 1, "checked_in": 1, "registered": 1, "starts_at": 1}
        cursor = self._c(EVENT_FIGURES).find({"org_id": org_id, **query}, fields)
        return list(cursor.sort("starts_at", DESCENDING).limit(limit))

    def next_scheduled(self, org_id: str, kind: str | None, after: datetime) -> Doc | None:
        return self._c(EVENT_FIGURES).find_one(
            {"org_id": org_id, "kind": kind, "status": "scheduled", "starts_at": {"$gt": after}},
            {"title": 1, "starts_at": 1, "registered": 1},
            sort=[("starts_at", 1)],
        )

    def held_event_starts(self, org_id: str, until: datetime, limit: int) -> list[datetime]:
        docs = self._c(EVENT_FIGURES).find(
            {"org_id": org_id, "starts_at": {"$lte": until}, "status": {"$ne": "cancelled"}}, {"starts_at": 1}
        )
        return sorted(as_utc(doc["starts_at"]) for doc in docs.limit(limit) if doc.get("starts_at") is not None)

    def event_titles(self, org_id: str, event_ids: Iterable[str]) -> dict[str, str | None]:
        found = self._c(EVENT_FIGURES).find(
            # ``_id`` first: SecantusDB plans by the first field, and org_id first walked the org's events.
            {"_id": {"$in": list(event_ids)}, "org_id": org_id},
            {"title": 1},
        )
        return {item["_id"]: item.get("title") for item in found}

    # -- people ---------------------------------------------------------------------------------

    def first_timers_attended(self, org_id: str, event_id: str) -> dict[str, int]:
        # One indexed read of this event's first-timers (a second condition on
        # events_attended can make a planner walk that index instead).
        found = self._c(PEOPLE_SUMMARY).find({"org_id": org_id, "first_event": event_id}, {"events_attended": 1})
        return {item["_id"]: int(item.get("events_attended", 0)) for item in found}

    def welcomed_people(self, org_id: str, event_id: str) -> set[str]:
        # The sparse welcomed_event index: only the event's welcomed first-timers.
        found = self._c(REGISTRATION_FACTS).find({"welcomed_event": event_id}, {"person_id": 1, "org_id": 1})
        return {item["person_id"] for item in found if item.get("org_id") == org_id}

    def risk_from_between(self, org_id: str, lower: datetime, upper: datetime, limit: int) -> list[Doc]:
        # One indexed range on (org_id, risk_from): a second condition, on
        # last_seen, made SecantusDB scan the collection.
        query = {"org_id": org_id, "risk_from": {"$lte": upper, "$gt": lower}}
        found = self._c(PEOPLE_SUMMARY).find(query, PERSON_FIELDS).sort("risk_from", DESCENDING)
        return list(found.limit(limit))

    def people_by_events_attended(self, org_id: str, lowest: int, highest: int, skip: int, limit: int) -> list[Doc]:
        # Strict bounds (counts are integers): SecantusDB reads ``$gte`` on the middle
        # field of a three-field index as ``$gt``.
        query = {"org_id": org_id, "events_attended": {"$gt": lowest - 1, "$lt": highest + 1}}
        cursor = self._c(PEOPLE_SUMMARY).find(query, PERSON_FIELDS)
        return list(cursor.sort([("events_attended", DESCENDING), ("_id", 1)]).skip(skip).limit(limit))

    def person_summary(self, org_id: str, person_id: str) -> Doc | None:
        return self._c(PEOPLE_SUMMARY).find_one({"_id": person_id, "org_id": org_id})

    def person_facts(self, org_id: str, person_id: str) -> Doc | None:
        return self._c(PEOPLE).find_one({"_id": person_id, "org_id": org_id})

    # -- counter cells --------------------------------------------------------------------------

    def loyalty_cells(self, org_id: str) -> list[Doc]:
        return list(self._c(LOYALTY).find({"org_id": org_id}, {"events_attended": 1, "people": 1}))

    def cohort_cells(self, org_id: str, date_range: DateRange) -> list[Doc]:
        return list(self._c(COHORTS).find({"org_id": org_id, **_month_query(date_range, "cohort")}))

    def funnel_cells(self, org_id: str, date_range: DateRange) -> list[Doc]:
        return list(self._c(FUNNEL).find({"org_id": org_id, **_month_query(date_range, "month")}))
