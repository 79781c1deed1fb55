"""Kiosks (pairing, sessions, heartbeats) on MongoDB (the audit log: ``mongo_audit``)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING

from checkin.adapters.mongo import KIOSKS
from checkin.adapters.repository_base import Repository
from turnout_common.types import Doc


class MongoKiosks(Repository):
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
