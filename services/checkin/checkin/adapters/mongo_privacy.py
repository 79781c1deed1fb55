"""A person's data on MongoDB: data requests, export parts, tombstones of the
erased, and the queries a person's page, a correction, an export and an
erasure make across checkin's collections; the privacy consumer's handler.

Collections (and indexes, made by ``ensure_privacy_indexes``):

- ``data_requests``: ``(org_id, requested_at desc)`` for the list,
  ``(org_id, person_id, requested_at desc)`` for a person's requests (and an
  erasure's removal of their exports), a unique sparse ``link_nonce`` (a
  self-service link makes one request, whoever clicks twice).
- ``export_parts``: ``(request_id, service, chunk_index)``.
- ``erased_people``: by ``_id`` (the pseudonym) only.
- ``privacy_processed``: the ids of the ``turnout.privacy`` messages applied (by ``_id``).

No index is added to ``people`` or ``registrations``: every index of those is
rewritten by each check-in. A person's registrations are found through the
``(event_id, person_id)`` unique index, one key per event of the
organization; a person search and the retention sweep read the
organization's people through the ``(org_id, email_norm)`` index (hinted:
SecantusDB would scan every organization's people for a filter with a
regex, a range or an ``$or``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.database import Database

from checkin.adapters.mongo import CHECKIN_REQUESTS, EVENTS, IMPORTS, ORGANIZATIONS, PEOPLE, REGISTRATIONS
from checkin.adapters.repository_base import Repository, unique
from checkin.service_layer.ports import Store, Transaction
from turnout_common.consumer import MessageHandler
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork
from turnout_common.types import Doc

DATA_REQUESTS = "data_requests"
EXPORT_PARTS = "export_parts"
ERASED_PEOPLE = "erased_people"
PRIVACY_PROCESSED = "privacy_processed"


def ensure_privacy_indexes(db: Database[dict[str, Any]]) -> None:
    db[DATA_REQUESTS].create_index([("org_id", ASCENDING), ("requested_at", DESCENDING)])
    db[DATA_REQUESTS].create_index([("org_id", ASCENDING), ("person_id", ASCENDING), ("requested_at", DESCENDING)])
    db[DATA_REQUESTS].create_index([("link_nonce", ASCENDING)], unique=True, sparse=True)
    db[EXPORT_PARTS].create_index([("request_id", ASCENDING), ("service", ASCENDING), ("chunk_index", ASCENDING)])


class MongoDataRequests(Repository):
    collection_name = DATA_REQUESTS

    def add(self, request: Doc) -> None:
        with unique():
            self._coll.insert_one(request, session=self._s)

    def get_in_org(self, request_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": request_id, "org_id": org_id}, session=self._s)

    def by_link_nonce(self, nonce: str) -> Doc | None:
        return self._coll.find_one({"link_nonce": nonce}, session=self._s)

    def page_of_org(self, org_id: str, skip: int, limit: int) -> tuple[list[Doc], int]:
        query = {"org_id": org_id}
        found = self._coll.find(query, session=self._s).sort([("requested_at", DESCENDING), ("_id", DESCENDING)])
        return list(found.skip(skip).limit(limit)), self._coll.count_documents(query, session=self._s)

    def of_person(self, org_id: str, person_ref: str, limit: int) -> list[Doc]:
        found = self._coll.find({"org_id": org_id, "person_id": person_ref}, session=self._s)
        return list(found.sort("requested_at", DESCENDING).limit(limit))

    def set_answer(self, request_id: str, service: str, answer: Doc) -> None:
        self._coll.update_one({"_id": request_id}, {"$set": {f"services.{service}": answer}}, session=self._s)

    def set_complete(self, request_id: str, at: datetime) -> None:
        self._coll.update_one(
            {"_id": request_id}, {"$set": {"status": "complete", "completed_at": at}}, session=self._s
        )

    def remove_exports_of(self, org_id: str, person_id: str) -> list[str]:
        query = {"org_id": org_id, "person_id": person_id}
        ids = [doc["_id"] for doc in self._coll.find(query, {"kind": 1}, session=self._s) if doc["kind"] == "export"]
        if ids:
            self._coll.delete_many({"_id": {"$in": ids}}, session=self._s)
        return ids


class MongoExportParts(Repository):
    collection_name = EXPORT_PARTS

    def add(self, chunks: list[Doc]) -> None:
        # Upserts, not inserts: a duplicate key would abort the whole transaction.
        if chunks:
            self._coll.bulk_write(
                [
                    UpdateOne(
                        {"_id": chunk["_id"]},
                        {"$setOnInsert": {k: v for k, v in chunk.items() if k != "_id"}},
                        upsert=True,
                    )
                    for chunk in chunks
                ],
                ordered=True,
                session=self._s,
            )

    def count(self, request_id: str, service: str) -> int:
        return self._coll.count_documents({"request_id": request_id, "service": service}, session=self._s)

    def of_service(self, request_id: str, service: str) -> list[Doc]:
        found = self._coll.find({"request_id": request_id, "service": service}, session=self._s)
        return list(found.sort("chunk_index", ASCENDING))

    def remove_of_requests(self, request_ids: list[str]) -> int:
        if not request_ids:
            return 0
        return self._coll.delete_many({"request_id": {"$in": request_ids}}, session=self._s).deleted_count


class MongoErasedPeople(Repository):
    collection_name = ERASED_PEOPLE

    def add(self, tombstone: Doc) -> None:
        fields = {k: v for k, v in tombstone.items() if k != "_id"}
        self._coll.update_one({"_id": tombstone["_id"]}, {"$setOnInsert": fields}, upsert=True, session=self._s)

    def get(self, stand_in: str) -> Doc | None:
        return self._coll.find_one({"_id": stand_in}, session=self._s)


_PERSON_LIST_FIELDS = {
    "first_name": 1,
    "last_name": 1,
    "email": 1,
    "visits": 1,
    "last_seen_at": 1,
    "created_at": 1,
}
# SecantusDB plans a filter with a range, a regex or an $or beside the organization
# as a scan of the whole collection (every organization's documents): these hints
# keep such queries on the organization's part of an index.
_PEOPLE_BY_ORG = [("org_id", ASCENDING), ("email_norm", ASCENDING)]
_EVENTS_BY_ORG = [("org_id", ASCENDING), ("starts_at", DESCENDING)]
_BY_ID = [("_id", ASCENDING)]


class MongoPersonData(Repository):
    """Queries over people, registrations, events, checkin_requests and imports for one person.

    A person's registrations are read event by event (one lookup of the
    ``(event_id, person_id)`` unique index each): SecantusDB answers an ``$in``
    over the events with a scan of every registration of every organization.
    """

    collection_name = PEOPLE

    def _org_event_ids(self, org_id: str, starting_from: datetime | None = None) -> list[str]:
        query: Doc = {"org_id": org_id}
        if starting_from is not None:
            query["starts_at"] = {"$gte": starting_from}
        found = self._db[EVENTS].find(query, {"_id": 1}, session=self._s).hint(_EVENTS_BY_ORG)
        return [doc["_id"] for doc in found]

    def person(self, org_id: str, person_id: str) -> Doc | None:
        return self._coll.find_one({"_id": person_id, "org_id": org_id}, session=self._s)

    def by_email(self, org_id: str, email_norm: str) -> Doc | None:
        return self._coll.find_one({"org_id": org_id, "email_norm": email_norm}, session=self._s)

    def search(
        self, org_id: str, email_prefix: str | None, name_pattern: str | None, skip: int, limit: int
    ) -> tuple[list[Doc], int]:
        query: Doc = {"org_id": org_id}
        either: list[Doc] = []
        if email_prefix:
            either.append({"email_norm": {"$regex": "^" + re.escape(email_prefix)}})
        if name_pattern:
            either.append({"name_folded": {"$regex": name_pattern}})
        if either:
            query["$or"] = either
        total = self._coll.count_documents(query, hint=_PEOPLE_BY_ORG, session=self._s)
        found = self._coll.find(query, _PERSON_LIST_FIELDS, session=self._s).hint(_PEOPLE_BY_ORG)
        return list(found.sort([("email_norm", ASCENDING)]).skip(skip).limit(limit)), total

    def registrations(self, org_id: str, person_id: str) -> list[Doc]:
        registrations = self._db[REGISTRATIONS]
        found = [
            registration
            for event_id in self._org_event_ids(org_id)
            if (registration := registrations.find_one({"event_id": event_id, "person_id": person_id}, session=self._s))
            is not None
        ]
        return sorted(found, key=lambda reg: (reg.get("registered_at") or datetime.min, reg["_id"]))

    def events(self, org_id: str, event_ids: list[str]) -> dict[str, Doc]:
        if not event_ids:
            return {}
        found = self._db[EVENTS].find({"_id": {"$in": event_ids}}, session=self._s)
        return {event["_id"]: event for event in found if event.get("org_id") == org_id}

    def correct(self, person_id: str, changes: Doc) -> None:
        with unique():
            self._coll.update_one({"_id": person_id}, {"$set": changes}, session=self._s)

    def correct_registrations(self, registration_ids: list[str], changes: Doc) -> int:
        if not registration_ids or not changes:
            return 0
        result = self._db[REGISTRATIONS].update_many(
            {"_id": {"$in": registration_ids}}, {"$set": changes}, session=self._s
        )
        return result.modified_count

    def note_link_sent(self, person_id: str, purpose: str, at: datetime) -> None:
        self._coll.update_one({"_id": person_id}, {"$set": {f"data_link_sent_at.{purpose}": at}}, session=self._s)

    def replace_registrations(self, registrations: list[Doc]) -> int:
        replaced = 0
        with unique():
            for registration in registrations:
                result = self._db[REGISTRATIONS].replace_one(
                    {"_id": registration["_id"]}, registration, session=self._s
                )
                replaced += result.modified_count
        return replaced

    def forget_checkin_requests(self, org_id: str, registration_ids: list[str]) -> int:
        # _id is "<org_id>:<client key>": the organization's range of the _id index.
        if not registration_ids:
            return 0
        result = self._db[CHECKIN_REQUESTS].delete_many(
            {"_id": {"$regex": "^" + re.escape(f"{org_id}:")}, "body.registration_id": {"$in": registration_ids}},
            hint=_BY_ID,
            session=self._s,
        )
        return result.deleted_count

    def imports_with_problems(self, org_id: str) -> list[Doc]:
        imports = self._db[IMPORTS]
        fields = {"org_id": 1, "errors": 1, "skipped_rows": 1}
        return [
            job
            for event_id in self._org_event_ids(org_id)
            for job in imports.find({"event_id": event_id}, fields, session=self._s)
            if job.get("org_id") == org_id and (job.get("errors") or job.get("skipped_rows"))
        ]

    def set_import_problems(self, job_id: str, errors: list[Doc], skipped_rows: list[Doc]) -> None:
        self._db[IMPORTS].update_one(
            {"_id": job_id}, {"$set": {"errors": errors, "skipped_rows": skipped_rows}}, session=self._s
        )

    def remove_person(self, person_id: str) -> bool:
        return self._coll.delete_one({"_id": person_id}, session=self._s).deleted_count == 1

    def seen_before(self, org_id: str, cutoff: datetime, after: str, limit: int) -> list[Doc]:
        # The (org_id, email_norm) index, in its order from ``after``: a page of the organization's people.
        query: Doc = {
            "org_id": org_id,
            "email_norm": {"$gt": after},
            "created_at": {"$lt": cutoff},
            "$or": [{"last_seen_at": {"$lt": cutoff}}, {"last_seen_at": None}],
        }
        fields = {"email_norm": 1, "created_at": 1, "last_seen_at": 1}
        found = self._coll.find(query, fields, session=self._s).hint(_PEOPLE_BY_ORG)
        return list(found.sort("email_norm", ASCENDING).limit(limit))

    def recent_registrations(self, org_id: str, events_from: datetime) -> list[Doc]:
        registrations = self._db[REGISTRATIONS]
        fields = {"person_id": 1, "registered_at": 1, "checkin.received_at": 1}
        return [
            registration
            for event_id in self._org_event_ids(org_id, events_from)
            for registration in registrations.find({"event_id": event_id}, fields, session=self._s)
        ]

    def organizations(self) -> list[Doc]:
        return list(self._db[ORGANIZATIONS].find({}, {"retention_periods": 1}, session=self._s))


# -- the privacy consumer's unit of work -----------------------------------------------------------------


class _ConsumerTransaction:
    """checkin's ``Transaction`` on the consumer loop's unit of work (its session and outbox)."""

    def __init__(self, uow: UnitOfWork, store: Store) -> None:
        self._uow = uow
        self.store = store

    def publish(self, envelope: Envelope) -> None:
        self._uow.publish(envelope)


def in_transaction(handler: Callable[[Transaction, Sequence[Envelope]], None]) -> MessageHandler:
    """A consumer handler (``turnout_common.consumer``) from one on checkin's ``Transaction``."""
    from checkin.adapters.repositories import MongoStore

    def handle(uow: UnitOfWork, messages: Sequence[Envelope]) -> None:
        handler(_ConsumerTransaction(uow, MongoStore(uow.db, lambda: uow.session)), messages)

    return handle
