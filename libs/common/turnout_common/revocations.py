"""Revoked subjects: tokens that are well signed but must be refused anyway.

checkin deactivates users, revokes API tokens, ends sessions when their user
signs out and changes users' roles, and checks all four itself on every call.
Followup and analytics accept checkin's tokens without calling checkin, so
checkin publishes ``access.revoked`` (in the same transaction as the change)
and each of them keeps its own ``revoked_subjects`` collection (``_id`` = the
token's ``subject_id``, ``session:<session id>`` for one signed-out session,
or ``role:<user id>`` for the sessions a user began before their role last
changed), written by its worker and read, with a few seconds' cache, by its
web app's ``principal_check``. A record that carries ``expires_at`` (a
session's or a role change's: the tokens it refuses expire by then anyway) is
dropped by a TTL index after that moment, so the collection holds only what
can still be presented.

A deactivation, a revocation or a sign-out is final: its record is written
once and a replay changes nothing. A role change is not: the same user's
``role:`` record is moved forward by every later change (``not_before``,
``role`` and ``expires_at``), so one lookup by ``_id`` still answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from turnout_common.auth import SESSION_MAX_AGE, Principal
from turnout_common.clock import parse_rfc3339, to_rfc3339
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.errors import ApiError
from turnout_common.mongo import UnitOfWork

ACCESS_REVOKED = "access.revoked"
REVOKED_SUBJECTS = "revoked_subjects"
SESSION_SUBJECT_PREFIX = "session:"
ROLE_SUBJECT_PREFIX = "role:"
ROLE_CHANGED = "role_changed"

Doc = dict[str, Any]


def session_subject(session_id: str) -> str:
    """The ``subject_id`` under which one signed-out session is revoked."""
    return f"{SESSION_SUBJECT_PREFIX}{session_id}"


def role_subject(user_id: str) -> str:
    """The ``subject_id`` under which a user's sessions begun before their last
    role change are revoked (never the user's own id: that one is a deactivation)."""
    return f"{ROLE_SUBJECT_PREFIX}{user_id}"


def role_changed_message(org_id: str, user_id: str, role: str, changed_at: datetime, source: str) -> Envelope:
    """access.revoked for a role change: the user's session tokens issued before
    ``changed_at`` (or carrying another role than ``role``) are refused; the
    record may go once they would have expired anyway (a minute's margin for a
    sign-in that raced the change)."""
    data: Doc = {
        "org_id": org_id,
        "subject_id": role_subject(user_id),
        "subject_kind": "user",
        "reason": ROLE_CHANGED,
        "revoked_at": to_rfc3339(changed_at),
        "expires_at": to_rfc3339(changed_at + timedelta(seconds=SESSION_MAX_AGE + 60)),
        "not_before": to_rfc3339(changed_at),
        "role": role,
    }
    return new_envelope(ACCESS_REVOKED, source=source, subject=data["subject_id"], data=data)


def role_changed() -> ApiError:
    """The 401 for a session begun before its user's role changed (the same in every service)."""
    return ApiError(401, ROLE_CHANGED, "your role changed; sign in again")


def role_outdated(principal: Principal, not_before: datetime | None, role: str | None) -> bool:
    """Whether a user's session predates their role change: its token was issued
    before ``not_before``, or carries a role other than the user's ``role`` now (a
    sign-in that read the old role while the change was being committed)."""
    if principal.kind != "user":
        return False
    if not_before is not None and principal.issued_before(not_before):
        return True
    return role is not None and principal.role != role


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
    changes nothing. A role change (it carries ``not_before``) moves its
    record's moments forward, never back, and sets the role it names (an
    organization's messages arrive in order, so the last one names the role
    the user has now).
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
        if data.get("not_before") is None:
            writes.append(UpdateOne({"_id": data["subject_id"]}, {"$setOnInsert": record}, upsert=True))
            continue
        moments: Doc = {name: record.pop(name) for name in ("revoked_at", "expires_at") if name in record}
        moments["not_before"] = parse_rfc3339(data["not_before"])
        update: Doc = {"$setOnInsert": record, "$max": moments}
        if data.get("role") is not None:
            update["$set"] = {"role": data["role"]}
        writes.append(UpdateOne({"_id": data["subject_id"]}, update, upsert=True))
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
    a user's session asks for the user, the session and the user's role change
    in that one lookup."""

    def __init__(
        self,
        db: Database[Doc] | Collection[Doc],
        ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collection: Collection[Doc] = db[REVOKED_SUBJECTS] if isinstance(db, Database) else db
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, dict[str, Doc]]] = {}
        self._lock = threading.Lock()

    def records(self, subject_ids: tuple[str, ...]) -> dict[str, Doc]:
        """The revocation records of ``subject_ids`` that exist, by ``_id`` (one
        query, cached ``ttl`` seconds); only what the check reads is fetched."""
        now = self.clock()
        with self._lock:
            hit = self._cache.get(subject_ids)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        found = self.collection.find({"_id": {"$in": list(subject_ids)}}, {"_id": 1, "not_before": 1, "role": 1})
        records = {str(doc["_id"]): doc for doc in found}
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[subject_ids] = (now, records)
        return records

    def revoked_among(self, subject_ids: tuple[str, ...]) -> frozenset[str]:
        """Which of ``subject_ids`` are revoked (one query, cached ``ttl`` seconds)."""
        return frozenset(self.records(subject_ids))

    def is_revoked(self, subject_id: str) -> bool:
        return subject_id in self.revoked_among((subject_id,))

    def check(self, principal: Principal) -> None:
        """A ``principal_check`` for ``init_web``: refuse a revoked user or API token,
        a signed-out session, or a session begun before its user's role changed,
        with 401."""
        if principal.kind == "api":
            if self.is_revoked(principal.subject_id):
                raise refusal(principal)
            return
        if principal.kind != "user":
            return
        role = role_subject(principal.subject_id)
        session = session_subject(principal.session_id) if principal.session_id else None
        wanted = (principal.subject_id, role) if session is None else (principal.subject_id, session, role)
        found = self.records(wanted)
        if principal.subject_id in found:
            raise refusal(principal)
        if session is not None and session in found:
            raise session_ended()
        change = found.get(role)
        if change is not None and role_outdated(principal, change.get("not_before"), change.get("role")):
            raise role_changed()
