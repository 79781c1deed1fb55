"""People, their registrations and the client keys of check-ins on MongoDB (the check-in hot path)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from pymongo import UpdateOne

from checkin.adapters.mongo import (
    CHECKIN_REQUESTS,
    PEOPLE,
    REGISTRATIONS,
)
from checkin.adapters.repository_base import Repository, unique
from checkin.service_layer.ports import RegistrationFilter
from turnout_common.types import Doc


def _visit(at: datetime) -> Doc:
    return {"$inc": {"visits": 1}, "$set": {"last_seen_at": at}, "$min": {"first_seen_at": at}}


class MongoPeople(Repository):
    collection_name = PEOPLE

    def upsert(self, org_id: str, email_norm: str, new_person: Doc) -> Doc:
        """The person with this email in the organization, created from ``new_person`` if new."""
        self._coll.update_one(
            {"org_id": org_id, "email_norm": email_norm},
            {"$setOnInsert": new_person},
            upsert=True,
            session=self._s,
        )
        person = self._coll.find_one({"org_id": org_id, "email_norm": email_norm}, session=self._s)
        assert person is not None  # just upserted in this transaction
        return person

    def get(self, person_id: str) -> Doc | None:
        return self._coll.find_one({"_id": person_id}, session=self._s)

    def by_emails(self, org_id: str, email_norms: list[str]) -> dict[str, Doc]:
        return {
            person["email_norm"]: person
            for person in self._coll.find({"org_id": org_id, "email_norm": {"$in": email_norms}}, session=self._s)
        }

    def by_meetup_ids(self, org_id: str, member_ids: list[str]) -> dict[str, Doc]:
        # The sparse meetup_member_id index (ids are Meetup-wide; the organization is checked here).
        if not member_ids:
            return {}
        found = self._coll.find({"meetup_member_id": {"$in": member_ids}}, session=self._s)
        return {person["meetup_member_id"]: person for person in found if person.get("org_id") == org_id}

    def add_many(self, people: list[Doc]) -> None:
        with unique():
            self._coll.insert_many(people, ordered=True, session=self._s)

    def count_visit(self, person_id: str, at: datetime) -> None:
        self._coll.update_one({"_id": person_id}, _visit(at), session=self._s)

    def count_visits(self, person_ids: list[str], at: datetime) -> None:
        if person_ids:
            visit = _visit(at)
            self._coll.bulk_write(
                [UpdateOne({"_id": person_id}, visit) for person_id in person_ids], ordered=False, session=self._s
            )

    def uncount_visit(self, person_id: str) -> None:
        self._coll.update_one({"_id": person_id, "visits": {"$gt": 0}}, {"$inc": {"visits": -1}}, session=self._s)

    def add_hours(self, person_id: str, hours: float) -> None:
        self._coll.update_one({"_id": person_id}, {"$inc": {"volunteer_hours": hours}}, session=self._s)

    def volunteer_hours(self, person_id: str) -> float | None:
        person = self._coll.find_one({"_id": person_id}, {"volunteer_hours": 1}, session=self._s)
        if person is None:
            return None
        hours = person.get("volunteer_hours")
        return float(hours) if hours is not None else None

    def ids_by_email_prefix(self, org_id: str, prefix: str, limit: int) -> list[str]:
        # Anchored, so the (org_id, email_norm) index serves it.
        pattern = "^" + re.escape(prefix)
        found = self._coll.find({"org_id": org_id, "email_norm": {"$regex": pattern}}, {"_id": 1}, session=self._s)
        return [person["_id"] for person in found.limit(limit)]

    def emails(self, org_id: str, person_ids: list[str]) -> dict[str, str]:
        return {
            person["_id"]: person.get("email") or ""
            for person in self._coll.find({"_id": {"$in": person_ids}, "org_id": org_id}, {"email": 1}, session=self._s)
        }


_ROSTER_FIELDS = {
    "first_name": 1,
    "last_name": 1,
    "name_folded": 1,
    "badge_code": 1,
    "checkin": 1,
    "checkout": 1,
    "registered_at": 1,
    "email_hint": 1,
    "person_id": 1,
    "status": 1,
}


_VISITS_LOOKUP: Doc = {
    "$lookup": {
        "from": PEOPLE,
        "localField": "person_id",
        "foreignField": "_id",
        "as": "_person",
        "pipeline": [{"$project": {"visits": 1}}],
    }
}


def _by_badge_or_id(badge_code: str | None, registration_id: str | None) -> Doc:
    if badge_code is not None:
        return {"badge_code": badge_code}
    return {"_id": registration_id}


class MongoRegistrations(Repository):
    collection_name = REGISTRATIONS

    def get(self, registration_id: str) -> Doc | None:
        return self._coll.find_one({"_id": registration_id}, session=self._s)

    def get_in_org(self, registration_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": registration_id, "org_id": org_id}, session=self._s)

    def by_badge_or_id(self, badge_code: str | None, registration_id: str | None) -> Doc | None:
        return self._coll.find_one(_by_badge_or_id(badge_code, registration_id), session=self._s)

    def with_visits(self, badge_code: str | None, registration_id: str | None) -> tuple[Doc | None, Doc | None]:
        """The registration (by badge code or id) and its person's visit count, in one round trip.

        The match names only the unique key, so the engine can only use that
        key's index; the caller checks the other conditions on the document.
        """
        pipeline: list[Doc] = [
            {"$match": _by_badge_or_id(badge_code, registration_id)},
            {"$limit": 1},
            _VISITS_LOOKUP,
        ]
        for doc in self._coll.aggregate(pipeline, session=self._s):
            people = doc.pop("_person", None) or []
            return doc, (people[0] if people else None)
        return None, None

    def with_visits_many(self, badge_codes: list[str], registration_ids: list[str]) -> list[tuple[Doc, Doc | None]]:
        """``with_visits`` for several scans: one aggregate per kind of key (each on its unique index)."""
        found: list[tuple[Doc, Doc | None]] = []
        for field, values in (("badge_code", badge_codes), ("_id", registration_ids)):
            if not values:
                continue
            pipeline: list[Doc] = [{"$match": {field: {"$in": values}}}, _VISITS_LOOKUP]
            for doc in self._coll.aggregate(pipeline, session=self._s):
                people = doc.pop("_person", None) or []
                found.append((doc, people[0] if people else None))
        return found

    def of_person(self, event_id: str, person_id: str) -> Doc | None:
        return self._coll.find_one({"event_id": event_id, "person_id": person_id}, session=self._s)

    def of_people(self, event_id: str, person_ids: list[str]) -> dict[str, Doc]:
        return {
            reg["person_id"]: reg
            for reg in self._coll.find({"event_id": event_id, "person_id": {"$in": person_ids}}, session=self._s)
        }

    def add(self, registration: Doc) -> None:
        with unique():
            self._coll.insert_one(registration, session=self._s)

    def add_many(self, registrations: list[Doc]) -> None:
        with unique():
            self._coll.insert_many(registrations, ordered=True, session=self._s)

    def remove(self, registration_id: str) -> None:
        self._coll.delete_one({"_id": registration_id}, session=self._s)

    def remove_many(self, registration_ids: list[str]) -> None:
        self._coll.delete_many({"_id": {"$in": registration_ids}}, session=self._s)

    def set_fields(self, registration_id: str, changes: Doc) -> bool:
        """``$set`` by ``_id`` alone; True if the document changed.

        A second condition would cost the engine a pass of its general planner;
        in a transaction, a concurrent write to the document read in its
        snapshot is a write conflict, and the unit of work runs again.
        """
        result = self._coll.update_one({"_id": registration_id}, {"$set": changes}, session=self._s)
        return result.modified_count == 1

    def set_fields_many(self, changes: list[tuple[str, Doc]]) -> int:
        if not changes:
            return 0
        result = self._coll.bulk_write(
            [UpdateOne({"_id": registration_id}, {"$set": fields}) for registration_id, fields in changes],
            ordered=False,
            session=self._s,
        )
        return result.modified_count

    def set_checkout_if_none(self, registration_id: str, checkout: Doc) -> bool:
        result = self._coll.update_one(
            {"_id": registration_id, "checkout": {"$in": [None]}}, {"$set": {"checkout": checkout}}, session=self._s
        )
        return result.modified_count == 1

    def clear_checkin(self, registration_id: str) -> None:
        self._coll.update_one(
            {"_id": registration_id, "checkin": {"$ne": None}}, {"$set": {"checkin": None}}, session=self._s
        )

    def first_waitlisted(self, event_id: str) -> Doc | None:
        # Ids rise in creation order: rows of one import batch share registered_at and
        # keep the file's order (a Meetup waitlist is promoted in its own order).
        return self._coll.find_one(
            {"event_id": event_id, "status": "waitlisted"}, sort=[("registered_at", 1), ("_id", 1)], session=self._s
        )

    def page_of_event(self, org_id: str, event_id: str, skip: int, limit: int) -> list[Doc]:
        return list(
            self._coll.find({"event_id": event_id, "org_id": org_id}, session=self._s)
            .sort("_id", 1)
            .skip(skip)
            .limit(limit)
        )

    def of_event(self, event_id: str) -> list[Doc]:
        # The event's registrations by its index, filtered by the caller: with
        # "$ne"/"$in" conditions in the filter SecantusDB scanned every
        # registration of every event (the scan grows with every event ever held).
        return list(self._coll.find({"event_id": event_id}, session=self._s))

    def attendance_counts(self, event_ids: list[str]) -> dict[str, dict[str, int]]:
        """Registered, waitlisted and checked-in counts for several events in one query."""
        counts: dict[str, dict[str, int]] = {
            event_id: {"registered": 0, "waitlisted": 0, "checked_in": 0} for event_id in event_ids
        }
        rows = self._coll.aggregate(
            [
                {"$match": {"event_id": {"$in": event_ids}}},
                {
                    "$group": {
                        "_id": "$event_id",
                        "registered": {"$sum": {"$cond": [{"$eq": ["$status", "registered"]}, 1, 0]}},
                        "waitlisted": {"$sum": {"$cond": [{"$eq": ["$status", "waitlisted"]}, 1, 0]}},
                        "checked_in": {"$sum": {"$cond": [{"$gt": ["$checkin", None]}, 1, 0]}},
                    }
                },
            ],
            session=self._s,
        )
        for row in rows:
            counts[row["_id"]] = {name: int(row[name]) for name in ("registered", "waitlisted", "checked_in")}
        return counts

    def checkins_today_by_kiosk(self, event_id: str, kiosk_ids: list[str], since: datetime) -> dict[str, int]:
        return {
            row["_id"]: row["n"]
            for row in self._coll.aggregate(
                [
                    {
                        "$match": {
                            "event_id": event_id,
                            "checkin.kiosk_id": {"$in": kiosk_ids},
                            "checkin.received_at": {"$gte": since},
                        }
                    },
                    {"$group": {"_id": "$checkin.kiosk_id", "n": {"$sum": 1}}},
                ],
                session=self._s,
            )
        }

    def roster(self, org_id: str, event_id: str) -> list[Doc]:
        return list(
            self._coll.find(
                {"event_id": event_id, "org_id": org_id, "status": {"$in": ["registered", "waitlisted"]}},
                _ROSTER_FIELDS,
                session=self._s,
            )
        )

    def checked_in_flags(self, registration_ids: list[str]) -> dict[str, bool]:
        return {
            doc["_id"]: bool(doc.get("checkin"))
            for doc in self._coll.find({"_id": {"$in": registration_ids}}, {"checkin": 1}, session=self._s)
        }

    def badges_page(
        self, org_id: str, event_id: str, statuses: Sequence[str], skip: int, limit: int
    ) -> tuple[list[Doc], int]:
        query: Doc = {"event_id": event_id, "org_id": org_id, "status": {"$in": list(statuses)}}
        total = self._coll.count_documents(query, session=self._s)
        page = self._coll.find(query, session=self._s).sort([("last_name", 1), ("first_name", 1), ("_id", 1)])
        return list(page.skip(skip).limit(limit)), total

    def search(
        self,
        org_id: str,
        event_id: str,
        wanted: RegistrationFilter,
        name_pattern: str | None,
        person_ids: list[str],
        skip: int,
        limit: int,
    ) -> tuple[list[Doc], int]:
        """One page of the event's registrations matching the filter, by name; and the total.

        ``name_pattern`` matches ``name_folded``; ``person_ids`` are the people
        whose email matched. With search text, a registration must match either.
        """
        query: Doc = {"event_id": event_id, "org_id": org_id}
        if wanted.status is not None:
            query["status"] = wanted.status
        if wanted.checked_in is True:
            query["checkin"] = {"$ne": None}
        elif wanted.checked_in is False:
            query["checkin"] = None
        if wanted.consent is not None:
            query["consent_email"] = wanted.consent
        if wanted.text.strip():
            either: list[Doc] = []
            if name_pattern is not None:
                either.append({"name_folded": {"$regex": name_pattern}})
            if person_ids:
                either.append({"person_id": {"$in": person_ids}})
            query["$or"] = either or [{"_id": {"$in": []}}]
        total = self._coll.count_documents(query, session=self._s)
        found = self._coll.find(query, session=self._s).sort([("name_folded", 1), ("_id", 1)]).skip(skip).limit(limit)
        return list(found), total

    def arrivals(self, org_id: str, event_id: str, since: datetime | None, limit: int) -> list[Doc]:
        query: Doc = {"event_id": event_id, "org_id": org_id, "checkin": {"$ne": None}}
        if since is not None:
            query["checkin.received_at"] = {"$gt": since}
        found = self._coll.find(query, session=self._s).sort([("checkin.received_at", -1), ("_id", 1)]).limit(limit)
        return list(found)

    def first_timers_arrived(self, org_id: str, event_id: str, since: datetime | None, limit: int) -> list[Doc]:
        # The arrivals' (event_id, checkin.received_at) index; the first-timer mark filters its range.
        query: Doc = {"event_id": event_id, "org_id": org_id, "checkin.first_time": True}
        if since is not None:
            query["checkin.received_at"] = {"$gt": since}
        found = self._coll.find(query, session=self._s).sort([("checkin.received_at", -1), ("_id", 1)]).limit(limit)
        return list(found)


class MongoCheckinRequests(Repository):
    collection_name = CHECKIN_REQUESTS

    def remember(self, request: Doc) -> None:
        with unique():
            self._coll.insert_one(request, session=self._s)

    def remember_many(self, requests: list[Doc]) -> None:
        if requests:
            with unique():
                self._coll.insert_many(requests, ordered=False, session=self._s)

    def get(self, request_id: str) -> Doc | None:
        return self._coll.find_one({"_id": request_id}, session=self._s)
