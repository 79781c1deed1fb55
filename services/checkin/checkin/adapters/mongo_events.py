"""Events on MongoDB: by id (scoped to an organization), the organizer's lists, the end of the day's events."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument

from checkin.adapters.mongo import (
    EVENTS,
)
from checkin.adapters.repository_base import Repository
from checkin.service_layer.ports import EventsOverview
from turnout_common.mongo import find_in_org
from turnout_common.types import Doc


class MongoEvents(Repository):
    collection_name = EVENTS

    def add(self, event: Doc) -> None:
        self._coll.insert_one(event, session=self._s)

    def get(self, event_id: str) -> Doc | None:
        return self._coll.find_one({"_id": event_id}, session=self._s)

    def get_in_org(self, event_id: str, org_id: str) -> Doc | None:
        """By ``_id`` alone, then the organization checked here (see ``find_in_org``)."""
        return find_in_org(self._coll, event_id, org_id, session=self._s)

    def get_scoped(self, event_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": event_id, "org_id": org_id}, session=self._s)

    def exists_in_org(self, event_id: str, org_id: str) -> bool:
        return self._coll.find_one({"_id": event_id, "org_id": org_id}, {"_id": 1}, session=self._s) is not None

    def timezone_of(self, event_id: str) -> str | None:
        event = self._coll.find_one({"_id": event_id}, {"timezone": 1}, session=self._s) or {}
        zone = event.get("timezone")
        return str(zone) if zone is not None else None

    def end_if_scheduled(self, event_id: str, org_id: str, at: datetime, ended_by: str) -> Doc | None:
        return self._coll.find_one_and_update(
            {"_id": event_id, "org_id": org_id, "status": "scheduled"},
            {"$set": {"status": "ended", "ended_at": at, "ended_by": ended_by}},
            return_document=ReturnDocument.AFTER,
            session=self._s,
        )

    def due_to_end(self, now: datetime, limit: int) -> list[Doc]:
        return list(
            self._coll.find({"status": "scheduled", "ends_at": {"$lte": now}}, {"org_id": 1}, session=self._s).limit(
                limit
            )
        )

    def replace(self, event: Doc) -> None:
        self._coll.replace_one({"_id": event["_id"]}, event, session=self._s)

    def set_cancelled(self, event_id: str, status: str, at: datetime, reason: str | None) -> None:
        self._coll.update_one(
            {"_id": event_id},
            {"$set": {"status": status, "cancelled_at": at, "cancel_reason": reason}},
            session=self._s,
        )

    def add_to_registered_count(self, event_id: str, delta: int) -> None:
        self._coll.update_one({"_id": event_id}, {"$inc": {"registered_count": delta}}, session=self._s)

    def page_of_org(self, org_id: str, skip: int, limit: int) -> list[Doc]:
        return list(self._coll.find({"org_id": org_id}, session=self._s).sort("starts_at", -1).skip(skip).limit(limit))

    def overview(self, org_id: str, now: datetime, past_skip: int, past_limit: int) -> EventsOverview:
        """Happening now, upcoming and (one page of) past: each event in exactly one group."""
        happening = list(
            self._coll.find(
                {"org_id": org_id, "status": "scheduled", "starts_at": {"$lte": now}, "ends_at": {"$gt": now}},
                session=self._s,
            )
            .sort("starts_at", 1)
            .limit(100)
        )
        upcoming = list(
            self._coll.find({"org_id": org_id, "status": {"$ne": "ended"}, "starts_at": {"$gt": now}}, session=self._s)
            .sort("starts_at", 1)
            .limit(200)
        )
        past_query = {
            "org_id": org_id,
            "$or": [
                {"ends_at": {"$lte": now}},
                {"status": "ended"},
                {"status": "cancelled", "starts_at": {"$lte": now}},
            ],
        }
        past_total = self._coll.count_documents(past_query, session=self._s)
        past = list(
            self._coll.find(past_query, session=self._s).sort("starts_at", -1).skip(past_skip).limit(past_limit)
        )
        return EventsOverview(happening, upcoming, past, past_total)

    def latest_timezone(self, org_id: str) -> str | None:
        latest = self._coll.find_one({"org_id": org_id}, {"timezone": 1}, sort=[("starts_at", -1)], session=self._s)
        return str(latest["timezone"]) if latest else None

    def ensure_public_token(self, event_id: str, token: str) -> str | None:
        """Set the token unless one is set already; return the stored one."""
        self._coll.update_one(
            {"_id": event_id, "public_token": None}, {"$set": {"public_token": token}}, session=self._s
        )
        stored = self._coll.find_one({"_id": event_id}, {"public_token": 1}, session=self._s)
        return str(stored["public_token"]) if stored else None

    def by_public_token(self, token: str) -> Doc | None:
        return self._coll.find_one({"public_token": token}, session=self._s)

    def in_series(self, org_id: str, series_id: str) -> list[Doc]:
        """A series' occurrences, first to last."""
        return list(
            self._coll.find({"org_id": org_id, "series_id": series_id}, session=self._s)
            .sort("occurrence", 1)
            .limit(1000)
        )
