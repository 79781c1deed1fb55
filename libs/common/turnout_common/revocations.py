"""Revoked subjects: tokens that are well signed but must be refused anyway.

checkin deactivates users, revokes API tokens and ends sessions when their
user signs out, and checks all three itself on every call. Followup and
analytics accept checkin's tokens without calling checkin, so checkin
publishes ``access.revoked`` (in the same transaction as the change) and each
of them keeps its own ``revoked_subjects`` collection (``_id`` = the token's
``subject_id``, or ``session:<session id>`` for one signed-out session),
written by its worker and read, with a few seconds' cache, by its web app's
``principal_check``. A record that carries ``expires_at`` (a session's: its
tokens expire by then anyway) is dropped by a TTL index after that moment, so
the collection holds only what can still be presented.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from turnout_common.auth import Principal
from turnout_common.clock import parse_rfc3339
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork
from turnout_common.web import ApiError

ACCESS_REVOKED = "access.revoked"
REVOKED_SUBJECTS = "revoked_subjects"
SESSION_SUBJECT_PREFIX = "session:"

Doc = dict[str, Any]


def session_subject(session_id: str) -> str:
    """The ``subject_id`` under which one signed-out session is revoked."""
    return f"{SESSION_SUBJECT_PREFIX}{session_id}"


def session_ended() -> ApiError:
    """The 401 for a session its user signed out of (the same in every service)."""
    return ApiError(401, "session_ended", "this session was signed out; sign in again")


def ensure_revocation_indexes(db: Database[Doc]) -> None:
    """Drop a revocation once the tokens it refuses have expired anyway (records
    without ``expires_at``, deactivated users and revoked API tokens, stay)."""
    db[REVOKED_SUBJECTS].create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


def refusal(principal: Principal) -> ApiError:
    """The 401 for a revoked API token or a deactivated user (the same in every service)."""
    if principal.kind == "api":
        return ApiError(401, "token_revoked", "this API token was revoked or has expired")
    return ApiError(401, "user_deactivated", "this account was deactivated")


def revocation_writes(messages: Iterable[Envelope]) -> list[UpdateOne]:
    """Idempotent upserts for the ``access.revoked`` messages among ``messages``.

    The first revocation recorded stays; a replayed or repeated message
    changes nothing.
    """
    writes: list[UpdateOne] = []
    for message in messages:
        if message.type != ACCESS_REVOKED:
            continue
        data = message.data
        record: Doc = {
            "org_id": data["org_id"],
            "subject_kind": data["subject_kind"],
            "reason": data["reason"],
            "revoked_at": parse_rfc3339(data["revoked_at"]),
        }
        if data.get("expires_at") is not None:
            record["expires_at"] = parse_rfc3339(data["expires_at"])
        writes.append(UpdateOne({"_id": data["subject_id"]}, {"$setOnInsert": record}, upsert=True))
    return writes


def record_revocations(uow: UnitOfWork, messages: Sequence[Envelope]) -> int:
    """Record the batch's revocations in the consumer's transaction; return how many were in it."""
    writes = revocation_writes(messages)
    if writes:
        uow.db[REVOKED_SUBJECTS].bulk_write(writes, ordered=True, session=uow.session)
    return len(writes)


class RevokedSubjects:
    """Is this subject revoked? One lookup by ``_id`` per caller every ``ttl``
    seconds per process (so a revocation is refused within seconds of arriving):
    a user's session asks for the user and the session in that one lookup."""

    def __init__(
        self,
        db: Database[Doc] | Collection[Doc],
        ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collection: Collection[Doc] = db[REVOKED_SUBJECTS] if isinstance(db, Database) else db
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def revoked_among(self, subject_ids: tuple[str, ...]) -> frozenset[str]:
        """Which of ``subject_ids`` are revoked (one query, cached ``ttl`` seconds)."""
        now = self.clock()
        with self._lock:
            hit = self._cache.get(subject_ids)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        found = self.collection.find({"_id": {"$in": list(subject_ids)}}, {"_id": 1})
        revoked = frozenset(str(doc["_id"]) for doc in found)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[subject_ids] = (now, revoked)
        return revoked

    def is_revoked(self, subject_id: str) -> bool:
        return subject_id in self.revoked_among((subject_id,))

    def check(self, principal: Principal) -> None:
        """A ``principal_check`` for ``init_web``: refuse a revoked user or API token,
        or a signed-out session, with 401."""
        if principal.kind not in ("user", "api"):
            return
        if principal.kind == "user" and principal.session_id:
            session = session_subject(principal.session_id)
            revoked = self.revoked_among((principal.subject_id, session))
            if principal.subject_id in revoked:
                raise refusal(principal)
            if session in revoked:
                raise session_ended()
        elif self.is_revoked(principal.subject_id):
            raise refusal(principal)
