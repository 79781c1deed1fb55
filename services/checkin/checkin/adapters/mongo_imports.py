"""CSV import jobs and their stored rows on MongoDB (leased by the workers)."""

from __future__ import annotations

from datetime import datetime

from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from checkin.adapters.mongo import (
    IMPORT_ROWS,
    IMPORTS,
)
from checkin.adapters.repository_base import Repository
from turnout_common.types import Doc


class MongoImports(Repository):
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
