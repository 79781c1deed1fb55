"""A role change's ``access.revoked`` record on the real database: the record a
consumer writes moves forward with every later change (never back on a
replay), stays apart from the user's deactivation, and the web app's check
refuses the sessions begun before the latest change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from turnout_common.auth import Principal
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.revocations import (
    REVOKED_SUBJECTS,
    RevokedSubjects,
    ensure_revocation_indexes,
    revocation_writes,
    role_changed_message,
    role_subject,
)
from turnout_common.web import ApiError

pytestmark = pytest.mark.integration

USER_ID = "6604d1e2f3a4b5c6d7e8f901"
FIRST = datetime(2026, 3, 22, 8, 30, 45, 120000, tzinfo=UTC)
SECOND = FIRST + timedelta(minutes=20)


def _change(at: datetime, role: str) -> Envelope:
    return role_changed_message("o1", USER_ID, role, at, "/turnout/checkin")


def _deactivation() -> Envelope:
    data = {
        "org_id": "o1",
        "subject_id": USER_ID,
        "subject_kind": "user",
        "reason": "user_deactivated",
        "revoked_at": "2026-03-22T09:30:00.000Z",
    }
    return new_envelope("access.revoked", source="/turnout/checkin", subject=USER_ID, data=data)


def _session(role: str, issued_at: datetime, session_id: str = "s1") -> Principal:
    return Principal(
        kind="user",
        subject_id=USER_ID,
        org_id="o1",
        role=role,
        name="Ann",
        session_id=session_id,
        issued_at=issued_at.timestamp(),
    )


def _refusal(store: RevokedSubjects, principal: Principal) -> str | None:
    try:
        store.check(principal)
    except ApiError as error:
        return error.code
    return None


def test_later_changes_move_the_record_forward_and_replays_do_not_move_it_back(mongo_client: Any, unique: str) -> None:
    db = mongo_client[f"t_role_change_{unique}"]
    ensure_revocation_indexes(db)
    collection = db[REVOKED_SUBJECTS]

    def consume(*messages: Envelope) -> None:
        collection.bulk_write(revocation_writes(messages), ordered=True)

    consume(_change(FIRST, "viewer"))
    record = collection.find_one({"_id": role_subject(USER_ID)})
    assert record is not None
    assert (record["not_before"], record["role"], record["reason"]) == (FIRST, "viewer", "role_changed")
    assert record["expires_at"] == FIRST + timedelta(hours=12, minutes=1)

    consume(_change(SECOND, "door_staff"), _change(FIRST, "viewer"))  # a later change, then a replay of the first
    record = collection.find_one({"_id": role_subject(USER_ID)})
    assert record is not None
    assert record["not_before"] == SECOND and record["revoked_at"] == SECOND
    assert record["expires_at"] == SECOND + timedelta(hours=12, minutes=1)
    assert collection.count_documents({}) == 1

    # Deactivated later: its own record, kept as first written; the role record is untouched.
    consume(_deactivation(), _change(SECOND, "door_staff"))
    assert collection.count_documents({}) == 2
    assert collection.find_one({"_id": USER_ID}, {"_id": 0, "reason": 1}) == {"reason": "user_deactivated"}


def test_the_check_refuses_sessions_begun_before_the_latest_change(mongo_client: Any, unique: str) -> None:
    db = mongo_client[f"t_role_check_{unique}"]
    ensure_revocation_indexes(db)
    collection = db[REVOKED_SUBJECTS]
    store = RevokedSubjects(db, ttl=0.0)
    first_session = _session("organizer", FIRST - timedelta(hours=1))
    assert _refusal(store, first_session) is None

    collection.bulk_write(revocation_writes([_change(FIRST, "viewer")]))
    assert _refusal(store, first_session) == "role_changed"
    between = _session("viewer", FIRST + timedelta(seconds=5), "s2")
    assert _refusal(store, between) is None

    collection.bulk_write(revocation_writes([_change(SECOND, "door_staff")]))
    assert _refusal(store, between) == "role_changed"
    assert _refusal(store, _session("door_staff", SECOND + timedelta(milliseconds=1), "s3")) is None
    # Signed in while the change committed, with the role it was leaving: refused too.
    assert _refusal(store, _session("viewer", SECOND + timedelta(milliseconds=1), "s4")) == "role_changed"
