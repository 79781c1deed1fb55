"""Revoked subjects: tokens that are well signed but must be refused anyway.

checkin deactivates users and revokes API tokens, and checks both itself on
every call. Followup and analytics accept checkin's tokens without calling
checkin, so checkin publishes ``access.revoked`` (in the same transaction as
the change) and each of them keeps its own ``revoked_subjects`` collection
(``_id`` = the token's ``subject_id``), written by its worker and read, with a
few seconds' cache, by its web app's ``principal_check``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from turnout_common.auth import Principal
from turnout_common.clock import parse_rfc3339
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork
from turnout_common.web import ApiError

ACCESS_REVOKED = "access.revoked"
REVOKED_SUBJECTS = "revoked_subjects"

Doc = dict[str, Any]


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
        writes.append(
            UpdateOne(
                {"_id": data["subject_id"]},
                {
                    "$setOnInsert": {
                        "org_id": data["org_id"],
                        "subject_kind": data["subject_kind"],
                        "reason": data["reason"],
                        "revoked_at": parse_rfc3339(data["revoked_at"]),
                    }
                },
                upsert=True,
            )
        )
    return writes


def record_revocations(uow: UnitOfWork, messages: Sequence[Envelope]) -> int:
    """Record the batch's revocations in the consumer's transaction; return how many were in it."""
    writes = revocation_writes(messages)
    if writes:
        uow.db[REVOKED_SUBJECTS].bulk_write(writes, ordered=True, session=uow.session)
    return len(writes)


class RevokedSubjects:
    """Is this subject revoked? One lookup by ``_id`` per subject every ``ttl``
    seconds per process (so a revocation is refused within seconds of arriving)."""

    def __init__(
        self,
        db: Database[Doc] | Collection[Doc],
        ttl: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collection: Collection[Doc] = db[REVOKED_SUBJECTS] if isinstance(db, Database) else db
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def is_revoked(self, subject_id: str) -> bool:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(subject_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        revoked = self.collection.find_one({"_id": subject_id}, {"_id": 1}) is not None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[subject_id] = (now, revoked)
        return revoked

    def check(self, principal: Principal) -> None:
        """A ``principal_check`` for ``init_web``: refuse a revoked user or API token with 401."""
        if principal.kind in ("user", "api") and self.is_revoked(principal.subject_id):
            raise refusal(principal)
