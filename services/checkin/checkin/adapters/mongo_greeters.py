"""Greeters named per event and the welcomes they record, on MongoDB."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from checkin.adapters.repository_base import Repository, unique
from turnout_common.types import Doc

GREETERS = "greeters"
WELCOMES = "welcomes"


def ensure_greeter_indexes(db: Database[dict[str, Any]]) -> None:
    # An event's greeters (the event page, the welcome check of a signed-in user).
    db[GREETERS].create_index([("event_id", ASCENDING), ("created_at", ASCENDING)])
    # A volunteer greeter by address: their export and erasure.
    db[GREETERS].create_index([("org_id", ASCENDING), ("email_norm", ASCENDING)])
    # welcomes: _id is the registration's id (one welcome each); a person's (export, erasure).
    db[WELCOMES].create_index([("org_id", ASCENDING), ("person_id", ASCENDING)])


class MongoGreeters(Repository):
    collection_name = GREETERS

    def add(self, greeter: Doc) -> None:
        self._coll.insert_one(greeter, session=self._s)

    def of_event(self, org_id: str, event_id: str) -> list[Doc]:
        found = self._coll.find({"event_id": event_id, "org_id": org_id}, session=self._s)
        return list(found.sort([("created_at", ASCENDING), ("_id", ASCENDING)]))

    def get(self, greeter_id: str) -> Doc | None:
        return self._coll.find_one({"_id": greeter_id}, session=self._s)

    def with_email(self, org_id: str, email_norm: str) -> list[Doc]:
        return list(self._coll.find({"org_id": org_id, "email_norm": email_norm}, session=self._s))

    def remove_with_email(self, org_id: str, email_norm: str) -> int:
        return self._coll.delete_many({"org_id": org_id, "email_norm": email_norm}, session=self._s).deleted_count

    def remove(self, org_id: str, event_id: str, greeter_id: str) -> Doc | None:
        return self._coll.find_one_and_delete(
            {"_id": greeter_id, "org_id": org_id, "event_id": event_id}, session=self._s
        )


class MongoWelcomes(Repository):
    collection_name = WELCOMES

    def add(self, welcome: Doc) -> None:
        with unique():  # _id: the registration's; a second welcome is refused
            self._coll.insert_one(welcome, session=self._s)

    def get(self, registration_id: str) -> Doc | None:
        return self._coll.find_one({"_id": registration_id}, session=self._s)

    def of_registrations(self, registration_ids: list[str]) -> dict[str, Doc]:
        if not registration_ids:
            return {}
        found = self._coll.find({"_id": {"$in": registration_ids}}, session=self._s)
        return {welcome["_id"]: welcome for welcome in found}

    def of_person(self, org_id: str, person_id: str) -> list[Doc]:
        found = self._coll.find({"org_id": org_id, "person_id": person_id}, session=self._s)
        return list(found.sort("welcomed_at", ASCENDING))

    def pseudonymize_person(self, org_id: str, person_id: str, stand_in: str) -> int:
        query = {"org_id": org_id, "person_id": person_id}
        return self._coll.update_many(query, {"$set": {"person_id": stand_in}}, session=self._s).modified_count

    def count_of_event(self, event_id: str, since: datetime | None = None) -> int:
        query: Doc = {"event_id": event_id}
        if since is not None:
            query["welcomed_at"] = {"$gt": since}
        return self._coll.count_documents(query, session=self._s)
