"""The audit log on MongoDB: appended to and read, never changed (except an
erasure's rewrite of a person's id to their pseudonym).

Indexes (``checkin.adapters.mongo``): ``(org_id, at desc)`` for the whole
trail, ``(org_id, action, at desc)`` for an action filter, ``(org_id,
person_id)`` for a person's entries and their erasure.
"""

from __future__ import annotations

from collections.abc import Iterator

from pymongo import DESCENDING

from checkin.adapters.mongo import AUDIT_LOG
from checkin.adapters.repository_base import Repository
from checkin.domain.audit import pseudonymized
from checkin.service_layer.ports import AuditFilter
from turnout_common.types import Doc


def _query(org_id: str, wanted: AuditFilter) -> Doc:
    query: Doc = {"org_id": org_id}
    if wanted.actions:
        query["action"] = wanted.actions[0] if len(wanted.actions) == 1 else {"$in": list(wanted.actions)}
    at: Doc = {}
    if wanted.since is not None:
        at["$gte"] = wanted.since
    if wanted.until is not None:
        at["$lt"] = wanted.until
    if at:
        query["at"] = at
    return query


class MongoAuditLog(Repository):
    collection_name = AUDIT_LOG

    def record(self, entry: Doc) -> None:
        self._coll.insert_one(entry, session=self._s)

    def page(self, org_id: str, wanted: AuditFilter, skip: int, limit: int) -> tuple[list[Doc], int]:
        query = _query(org_id, wanted)
        found = list(
            self._coll.find(query, session=self._s)
            .sort([("at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return found, self._coll.count_documents(query, session=self._s)

    def matching(self, org_id: str, wanted: AuditFilter, limit: int) -> Iterator[Doc]:
        cursor = self._coll.find(_query(org_id, wanted), session=self._s)
        yield from cursor.sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)

    def of_person(self, org_id: str, person_id: str, limit: int) -> list[Doc]:
        cursor = self._coll.find({"org_id": org_id, "person_id": person_id}, session=self._s)
        return list(cursor.sort("at", DESCENDING).limit(limit))

    def pseudonymize_person(self, org_id: str, person_id: str, stand_in: str) -> int:
        changed = 0
        for doc in list(self._coll.find({"org_id": org_id, "person_id": person_id}, session=self._s)):
            self._coll.replace_one({"_id": doc["_id"]}, pseudonymized(doc, person_id, stand_in), session=self._s)
            changed += 1
        return changed
