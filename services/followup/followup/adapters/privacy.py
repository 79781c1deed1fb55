"""The repositories behind personal-data requests and retention on MongoDB:
tombstones of erased people, the consent history, the organizations'
retention policies, and the copies of messages the shared plumbing keeps
(dead letters, outbox entries not yet relayed)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from pymongo import UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database

from followup.adapters.mongo import CONSENT_HISTORY, ERASED_PEOPLE, RETENTION_POLICIES
from turnout_common.consumer import DEAD_LETTERS
from turnout_common.contracts import ContractViolation, registry
from turnout_common.outbox import OUTBOX, PENDING
from turnout_common.types import Doc

log = logging.getLogger("followup.privacy")


class _Collection:
    def __init__(self, db: Database[Doc], session: ClientSession | None) -> None:
        self.db = db
        self.session = session


class MongoErasedPeople(_Collection):
    def among(self, stand_ins: Iterable[str]) -> set[str]:
        ids = sorted(set(stand_ins))
        if not ids:
            return set()
        found = self.db[ERASED_PEOPLE].find({"_id": {"$in": ids}}, {"_id": 1}, session=self.session)
        return {doc["_id"] for doc in found}

    def by_address(self, digests: Iterable[str]) -> dict[str, datetime | None]:
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        latest: dict[str, datetime | None] = {}
        found = self.db[ERASED_PEOPLE].find(
            {"email_digests": {"$in": wanted}}, {"email_digests": 1, "requested_at": 1}, session=self.session
        )
        for doc in found:
            at = doc.get("requested_at")
            for digest in doc.get("email_digests") or []:
                if digest not in wanted:
                    continue
                seen = latest.get(digest)
                if digest not in latest or (seen is not None and (at is None or at > seen)):
                    latest[digest] = at
        return latest

    def remember(self, doc: Doc) -> bool:
        result = self.db[ERASED_PEOPLE].update_one(
            {"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True, session=self.session
        )
        return result.upserted_id is not None


class MongoConsentHistory(_Collection):
    def add(self, entries: Sequence[Doc]) -> None:
        writes = [UpdateOne({"_id": e["_id"]}, {"$setOnInsert": e}, upsert=True) for e in entries]
        if writes:
            self.db[CONSENT_HISTORY].bulk_write(writes, ordered=True, session=self.session)

    def of_person(self, org_id: str, person_id: str) -> list[Doc]:
        found = self.db[CONSENT_HISTORY].find({"org_id": org_id, "person_id": person_id}, session=self.session)
        return list(found.sort([("at", 1), ("_id", 1)]))

    def forget(self, org_id: str, person_id: str) -> int:
        result = self.db[CONSENT_HISTORY].delete_many({"org_id": org_id, "person_id": person_id}, session=self.session)
        return result.deleted_count


class MongoRetentionPolicies(_Collection):
    def get(self, org_id: str) -> Doc | None:
        return self.db[RETENTION_POLICIES].find_one({"_id": org_id}, session=self.session)

    def all(self) -> list[Doc]:
        return list(self.db[RETENTION_POLICIES].find({}, session=self.session))

    def put(self, org_id: str, doc: Doc) -> None:
        self.db[RETENTION_POLICIES].replace_one(
            {"_id": org_id}, {**doc, "_id": org_id}, upsert=True, session=self.session
        )


class MongoLeftovers(_Collection):
    """Both collections hold only what is in flight or broken (bounded by the
    outbox's backlog and the dead-letter limit), so they are read whole."""

    def forget_dead_letters(self, needles: Sequence[bytes]) -> int:
        named = [
            doc["_id"]
            for doc in self.db[DEAD_LETTERS].find({}, {"value": 1}, session=self.session)
            if any(needle in bytes(doc.get("value") or b"") for needle in needles)
        ]
        if not named:
            return 0
        return self.db[DEAD_LETTERS].delete_many({"_id": {"$in": named}}, session=self.session).deleted_count

    def mask_outbox(self, needles: Sequence[bytes], mask: Callable[[Doc], Doc | None]) -> int:
        contracts = registry()
        changed = 0
        for entry in self.db[OUTBOX].find({"state": PENDING}, session=self.session):
            payload = bytes(entry.get("payload") or b"")
            if not any(needle in payload for needle in needles):
                continue
            masked = mask(json.loads(payload))
            envelope = None
            if masked is not None:
                try:
                    envelope = contracts.parse(json.dumps(masked).encode())
                except ContractViolation as exc:
                    log.warning("masked outbox entry breaks its contract; dropped", extra={"error": str(exc)})
                    masked = None
            changed += 1
            if envelope is None:
                self.db[OUTBOX].delete_one({"_id": entry["_id"]}, session=self.session)
                continue
            route = contracts.route(envelope.type)
            self.db[OUTBOX].update_one(
                {"_id": entry["_id"]},
                {"$set": {"payload": envelope.to_json(), "key": str(envelope.data[route.key_field])}},
                session=self.session,
            )
        return changed
