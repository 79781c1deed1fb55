"""Organizations, their users, their API tokens and the sessions signed out of, on MongoDB."""

from __future__ import annotations

from datetime import datetime

from checkin.adapters.mongo import (
    API_TOKENS,
    ENDED_SESSIONS,
    ORGANIZATIONS,
    USERS,
)
from checkin.adapters.repository_base import Repository, unique
from turnout_common.mongo import find_in_org
from turnout_common.types import Doc


class MongoOrganizations(Repository):
    collection_name = ORGANIZATIONS

    def add(self, org: Doc) -> None:
        with unique():
            self._coll.insert_one(org, session=self._s)

    def name_of(self, org_id: str) -> str | None:
        org = self._coll.find_one({"_id": org_id}, {"name": 1}, session=self._s) or {}
        name = org.get("name")
        return str(name) if name is not None else None

    def get(self, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": org_id}, session=self._s)

    def by_slug(self, slug: str) -> Doc | None:
        return self._coll.find_one({"slug": slug}, session=self._s)

    def mark_roles_changed(self, org_id: str, at: datetime) -> None:
        self._coll.update_one({"_id": org_id}, {"$set": {"roles_changed_at": at}}, session=self._s)


class MongoUsers(Repository):
    collection_name = USERS

    def add(self, user: Doc) -> None:
        with unique():
            self._coll.insert_one(user, session=self._s)

    def by_email(self, email_norm: str) -> Doc | None:
        return self._coll.find_one({"email": email_norm}, session=self._s)

    def get_in_org(self, user_id: str, org_id: str) -> Doc | None:
        return self._coll.find_one({"_id": user_id, "org_id": org_id}, session=self._s)

    def of_org(self, org_id: str) -> list[Doc]:
        return list(self._coll.find({"org_id": org_id}, {"password_hash": 0}, session=self._s).sort("created_at", 1))

    def set_deactivated(self, user_id: str, at: datetime) -> None:
        self._coll.update_one({"_id": user_id}, {"$set": {"deactivated_at": at}}, session=self._s)

    def set_role(self, user_id: str, role: str, at: datetime) -> None:
        self._coll.update_one({"_id": user_id}, {"$set": {"role": role, "role_changed_at": at}}, session=self._s)

    def is_active(self, user_id: str) -> bool:
        doc = self._coll.find_one({"_id": user_id}, {"deactivated_at": 1}, session=self._s)
        return doc is not None and not doc.get("deactivated_at")


class MongoApiTokens(Repository):
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


class MongoEndedSessions(Repository):
    """``_id`` = the session id; a TTL index on ``expires_at`` drops a record
    once the session's token has expired anyway."""

    collection_name = ENDED_SESSIONS

    def end(self, session: Doc) -> None:
        fields = {key: value for key, value in session.items() if key != "_id"}
        self._coll.update_one({"_id": session["_id"]}, {"$setOnInsert": fields}, upsert=True, session=self._s)

    def is_ended(self, session_id: str) -> bool:
        return self._coll.find_one({"_id": session_id}, {"_id": 1}, session=self._s) is not None
