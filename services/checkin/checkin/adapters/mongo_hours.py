"""Off-site hours the volunteers logged, on MongoDB.

An entry keeps its review (``review``) and, beside it, its state (``state``:
pending, approved, adjusted, rejected) for the organization's pending list.
Indexes (``checkin.adapters.mongo``): ``(org_id, person_id, date desc)`` for a
person's entries, ``(org_id, state, logged_at)`` for the pending list.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING

from checkin.adapters.mongo import HOUR_ENTRIES
from checkin.adapters.repository_base import Repository, unique
from turnout_common.types import Doc


class MongoHourEntries(Repository):
    collection_name = HOUR_ENTRIES

    def add(self, entry: Doc) -> None:
        with unique():
            self._coll.insert_one({**entry, "state": "pending"}, session=self._s)

    def get_in_org(self, entry_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": entry_id, "org_id": org_id}, session=self._s)

    def set_review(self, entry_id: str, review: Doc) -> None:
        self._coll.update_one(
            {"_id": entry_id}, {"$set": {"review": review, "state": review["state"]}}, session=self._s
        )

    def of_person(self, org_id: str, person_id: str) -> list[Doc]:
        cursor = self._coll.find({"org_id": org_id, "person_id": person_id}, session=self._s)
        return list(cursor.sort([("date", DESCENDING), ("_id", DESCENDING)]))

    def pending_of_org(self, org_id: str, limit: int) -> list[Doc]:
        cursor = self._coll.find({"org_id": org_id, "state": "pending"}, session=self._s)
        return list(cursor.sort([("logged_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))

    def remove_of_person(self, org_id: str, person_id: str) -> int:
        result = self._coll.delete_many({"org_id": org_id, "person_id": person_id}, session=self._s)
        return result.deleted_count
