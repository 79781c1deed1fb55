"""checkin's repositories on MongoDB: every query of the service, next to the
indexes in ``checkin.adapters.mongo`` that serve it.

Each repository is bound to the database and to a session source: the session
of the running unit of work (``MongoUnitOfWork.store``), or none
(``MongoStore(db)`` for reads and single writes outside a transaction).
A unique index refusing a write becomes ``AlreadyStored`` here, so no caller
needs the driver's exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from checkin.adapters.mongo import (
    API_TOKENS,
    AUDIT_LOG,
    CHECKIN_REQUESTS,
    EVENTS,
    IMPORT_ROWS,
    IMPORTS,
    KIOSKS,
    ORGANIZATIONS,
    PEOPLE,
    REGISTRATIONS,
    USERS,
)
from checkin.service_layer.ports import AlreadyStored, EventsOverview, RegistrationFilter
from turnout_common.mongo import find_in_org
from turnout_common.types import Doc

SessionSource = Callable[[], ClientSession | None]


def _no_session() -> ClientSession | None:
    return None


@contextmanager
def _unique() -> Iterator[None]:
    try:
        yield
    except DuplicateKeyError as exc:
        raise AlreadyStored(str(exc)) from exc


class _Repository:
    collection_name = ""

    def __init__(self, db: Database[Doc], session: SessionSource = _no_session) -> None:
        self._db = db
        self._session = session

    @property
    def _coll(self) -> Collection[Doc]:
        return self._db[self.collection_name]

    @property
    def _s(self) -> ClientSession | None:
        return self._session()


class MongoOrganizations(_Repository):
    collection_name = ORGANIZATIONS

    def add(self, org: Doc) -> None:
        with _unique():
            self._coll.insert_one(org, session=self._s)

    def name_of(self, org_id: str) -> str | None:
        org = self._coll.find_one({"_id": org_id}, {"name": 1}, session=self._s) or {}
        name = org.get("name")
        return str(name) if name is not None else None

    def get(self, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": org_id}, session=self._s)

    def by_slug(self, slug: str) -> Doc | None:
        return self._coll.find_one({"slug": slug}, session=self._s)


class MongoUsers(_Repository):
    collection_name = USERS

    def add(self, user: Doc) -> None:
        with _unique():
            self._coll.insert_one(user, session=self._s)

    def by_email(self, email_norm: str) -> Doc | None:
        return self._coll.find_one({"email": email_norm}, session=self._s)

    def get_in_org(self, user_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": user_id, "org_id": org_id}, session=self._s)

    def of_org(self, org_id: str) -> list[Doc]:
        return list(self._coll.find({"org_id": org_id}, {"password_hash": 0}, session=self._s).sort("created_at", 1))

    def set_deactivated(self, user_id: str, at: datetime) -> None:
        self._coll.update_one({"_id": user_id}, {"$set": {"deactivated_at": at}}, session=self._s)

    def is_active(self, user_id: str) -> bool:
        doc = self._coll.find_one({"_id": user_id}, {"deactivated_at": 1}, session=self._s)
        return doc is not None and not doc.get("deactivated_at")


class MongoApiTokens(_Repository):
    collection_name = API_TOKENS

    def add(self, token: Doc) -> None:
        self._coll.insert_one(token, session=self._s)

    def get_in_org(self, token_id: str, org_id: str) -> Doc | None:
        return find_in_org(self._coll, token_id, org_id, session=self._s)

    def of_org(self, org_id: str) -> list[Doc]:
        return list(self._coll.find({"org_id": org_id}, session=self._s).sort("created_at", -1))

    def set_revoked(self, token_id: str, at: datetime) -> None:
        self._coll.update_one({"_id": token_id}, {"$set": {"revoked_at": at}}, session=self._s)

    def is_valid(self, token_id: str, now: datetime) -> bool:
        doc = self._coll.find_one({"_id": token_id}, {"revoked_at": 1, "expires_at": 1}, session=self._s)
        return doc is not None and doc.get("revoked_at") is None and bool(doc["expires_at"] > now)


class MongoEvents(_Repository):
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


class MongoPeople(_Repository):
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

    def add_many(self, people: list[Doc]) -> None:
        with _unique():
            self._coll.insert_many(people, ordered=True, session=self._s)

    def count_visit(self, person_id: str, at: datetime) -> None:
        self._coll.update_one(
            {"_id": person_id},
            {"$inc": {"visits": 1}, "$set": {"last_seen_at": at}, "$min": {"first_seen_at": at}},
            session=self._s,
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
            person["_id"]: person.get("email", "")
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


def _by_badge_or_id(badge_code: str | None, registration_id: str | None) -> Doc:
    if badge_code is not None:
        return {"badge_code": badge_code}
    return {"_id": registration_id}


class MongoRegistrations(_Repository):
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
            {
                "$lookup": {
                    "from": PEOPLE,
                    "localField": "person_id",
                    "foreignField": "_id",
                    "as": "_person",
                    "pipeline": [{"$project": {"visits": 1}}],
                }
            },
        ]
        for doc in self._coll.aggregate(pipeline, session=self._s):
            people = doc.pop("_person", None) or []
            return doc, (people[0] if people else None)
        return None, None

    def of_person(self, event_id: str, person_id: str) -> Doc | None:
        return self._coll.find_one({"event_id": event_id, "person_id": person_id}, session=self._s)

    def of_people(self, event_id: str, person_ids: list[str]) -> dict[str, Doc]:
        return {
            reg["person_id"]: reg
            for reg in self._coll.find({"event_id": event_id, "person_id": {"$in": person_ids}}, session=self._s)
        }

    def add(self, registration: Doc) -> None:
        with _unique():
            self._coll.insert_one(registration, session=self._s)

    def add_many(self, registrations: list[Doc]) -> None:
        with _unique():
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
        return self._coll.find_one(
            {"event_id": event_id, "status": "waitlisted"}, sort=[("registered_at", 1)], session=self._s
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


class MongoCheckinRequests(_Repository):
    collection_name = CHECKIN_REQUESTS

    def remember(self, request: Doc) -> None:
        with _unique():
            self._coll.insert_one(request, session=self._s)

    def get(self, request_id: str) -> Doc | None:
        return self._coll.find_one({"_id": request_id}, session=self._s)


class MongoKiosks(_Repository):
    collection_name = KIOSKS

    def add(self, kiosk: Doc) -> None:
        self._coll.insert_one(kiosk, session=self._s)

    def get_scoped(self, kiosk_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": kiosk_id, "org_id": org_id}, session=self._s)

    def name_of(self, kiosk_id: str) -> str | None:
        kiosk = self._coll.find_one({"_id": kiosk_id}, {"name": 1}, session=self._s)
        return str(kiosk["name"]) if kiosk else None

    def names(self, event_id: str, kiosk_ids: list[str]) -> dict[str, str]:
        found = self._coll.find({"_id": {"$in": kiosk_ids}, "event_id": event_id}, {"name": 1}, session=self._s)
        return {kiosk["_id"]: str(kiosk.get("name") or "") for kiosk in found}

    def set_pairing_code(self, kiosk_id: str, org_id: str, code: str, expires_at: datetime) -> bool:
        result = self._coll.update_one(
            {"_id": kiosk_id, "org_id": org_id, "status": {"$ne": "revoked"}},
            {"$set": {"pairing_code": code, "pairing_expires_at": expires_at}},
            session=self._s,
        )
        return result.matched_count == 1

    def revoke(self, kiosk_id: str, org_id: str, at: datetime) -> bool:
        result = self._coll.update_one(
            {"_id": kiosk_id, "org_id": org_id},
            {"$set": {"status": "revoked", "session_id": None, "pairing_code": None, "revoked_at": at}},
            session=self._s,
        )
        return result.matched_count == 1

    def by_pairing_code(self, code: str) -> Doc | None:
        return self._coll.find_one({"pairing_code": code, "status": {"$ne": "revoked"}}, session=self._s)

    def pair(self, kiosk_id: str, code: str, session_id: str, at: datetime) -> bool:
        """One-time: only the first tablet to present the code gets the pairing."""
        result = self._coll.update_one(
            {"_id": kiosk_id, "pairing_code": code},
            {
                "$set": {
                    "status": "paired",
                    "pairing_code": None,
                    "session_id": session_id,
                    "paired_at": at,
                    "last_seen_at": at,
                }
            },
            session=self._s,
        )
        return result.modified_count == 1

    def current_session(self, kiosk_id: str) -> str | None:
        kiosk = self._coll.find_one({"_id": kiosk_id}, {"session_id": 1, "status": 1}, session=self._s)
        return kiosk["session_id"] if kiosk and kiosk.get("status") == "paired" else None

    def heartbeat(self, kiosk_id: str, at: datetime, queue_length: int) -> None:
        self._coll.update_one(
            {"_id": kiosk_id}, {"$set": {"last_seen_at": at, "queue_length": queue_length}}, session=self._s
        )

    def of_event(self, org_id: str, event_id: str) -> list[Doc]:
        return list(
            self._coll.find({"org_id": org_id, "event_id": event_id}, session=self._s).sort("created_at", ASCENDING)
        )


class MongoAuditLog(_Repository):
    collection_name = AUDIT_LOG

    def record(self, entry: Doc) -> None:
        self._coll.insert_one(entry, session=self._s)


class MongoImports(_Repository):
    collection_name = IMPORTS

    @property
    def _rows(self) -> Collection[Doc]:
        return self._db[IMPORT_ROWS]

    def add_rows(self, chunks: list[Doc]) -> None:
        self._rows.insert_many(chunks, session=self._s)

    def add(self, job: Doc) -> None:
        self._coll.insert_one(job, session=self._s)

    def get(self, job_id: str) -> Doc | None:
        return self._coll.find_one({"_id": job_id}, session=self._s)

    def get_scoped(self, job_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": job_id, "org_id": org_id}, session=self._s)

    def of_event(self, org_id: str, event_id: str, limit: int) -> list[Doc]:
        found = (
            self._coll.find({"event_id": event_id, "org_id": org_id}, {"errors": 0, "skipped_rows": 0}, session=self._s)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return list(found)

    def open_jobs(self) -> list[Doc]:
        """Queued and running jobs (the status index), for the caller to pick from.

        Not one findAndModify with "$or" and a sort, which SecantusDB answers
        by scanning every import job ever made.
        """
        return list(
            self._coll.find(
                {"status": {"$in": ["queued", "running"]}},
                {"status": 1, "lease_until": 1, "created_at": 1},
                session=self._s,
            )
        )

    def lease(self, unchanged: Doc, owner: str, until: datetime) -> bool:
        """Lease a job if it is still as read (``unchanged``: _id, status, lease_until)."""
        lease = {"$set": {"status": "running", "lease_owner": owner, "lease_until": until}}
        return self._coll.update_one(unchanged, lease, session=self._s).modified_count == 1

    def mark_started(self, job_id: str, at: datetime) -> None:
        self._coll.update_one({"_id": job_id, "started_at": None}, {"$set": {"started_at": at}}, session=self._s)

    def row_chunks(self, chunk_ids: list[str]) -> dict[str, list[Doc]]:
        return {doc["_id"]: doc["rows"] for doc in self._rows.find({"_id": {"$in": chunk_ids}}, session=self._s)}

    def advance(self, job_id: str, owner: str, cursor: int, changes: Doc, counters: Doc) -> bool:
        """Move the cursor on from ``cursor``, if ``owner`` still holds the lease there."""
        advanced = self._coll.update_one(
            {"_id": job_id, "lease_owner": owner, "cursor": cursor},
            {"$set": changes, "$inc": counters},
            session=self._s,
        )
        return advanced.matched_count == 1

    def record_failure(self, job_id: str, owner: str, cursor: int, problem: Doc, keep: int) -> bool:
        advanced = self._coll.update_one(
            {"_id": job_id, "lease_owner": owner, "cursor": cursor},
            {
                "$set": {"cursor": cursor + 1},
                "$inc": {"processed": 1, "failed": 1, "errors_count": 1},
                "$push": {"errors": {"$each": [problem], "$slice": keep}},
            },
            session=self._s,
        )
        return advanced.matched_count == 1

    def finish(self, job_id: str, owner: str, update: Doc) -> bool:
        finished = self._coll.update_one({"_id": job_id, "lease_owner": owner}, {"$set": update}, session=self._s)
        return finished.matched_count == 1

    def drop_rows(self, job_id: str) -> None:
        self._rows.delete_many({"job_id": job_id}, session=self._s)

    def release(self, job_id: str, owner: str, *, quiet: bool = False) -> None:
        """Hand a job back at once; ``quiet``: a database error is ignored (the lease runs out instead)."""
        try:
            self._coll.update_one(
                {"_id": job_id, "lease_owner": owner}, {"$set": {"lease_until": None}}, session=self._s
            )
        except PyMongoError:
            if not quiet:
                raise


class MongoStore:
    """Every repository on one database, bound to one session source."""

    def __init__(self, db: Database[Doc], session: SessionSource = _no_session) -> None:
        self.organizations = MongoOrganizations(db, session)
        self.users = MongoUsers(db, session)
        self.api_tokens = MongoApiTokens(db, session)
        self.events = MongoEvents(db, session)
        self.people = MongoPeople(db, session)
        self.registrations = MongoRegistrations(db, session)
        self.checkin_requests = MongoCheckinRequests(db, session)
        self.kiosks = MongoKiosks(db, session)
        self.audit = MongoAuditLog(db, session)
        self.imports = MongoImports(db, session)
