"""Revoked subjects: the upserts a worker writes for ``access.revoked`` and the
cached check a web app runs on every caller (no server: a fake collection)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from turnout_common.auth import Principal
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.revocations import RevokedSubjects, refusal, revocation_writes, session_ended, session_subject
from turnout_common.web import ApiError

USER = Principal(kind="user", subject_id="6604d1e2f3a4b5c6d7e8f901", org_id="o1", role="organizer", name="Ann")
API = Principal(kind="api", subject_id="api:Vq3xK9mZ2pLt7RwA", org_id="o1", role="viewer", name="CRM", session_id="t")
SESSION = Principal(
    kind="user", subject_id=USER.subject_id, org_id="o1", role="organizer", name="Ann", session_id="hT4kq9Z2xWm7PbRc"
)
KIOSK = Principal(kind="kiosk", subject_id="k1", org_id="o1", role="kiosk", name="Door", event_id="e1")


def _revoked(subject_id: str, kind: str, reason: str, expires_at: str | None = None) -> Envelope:
    data: dict[str, Any] = {
        "org_id": "o1",
        "subject_id": subject_id,
        "subject_kind": kind,
        "reason": reason,
        "revoked_at": "2026-03-20T09:15:02.411Z",
    }
    if expires_at is not None:
        data["expires_at"] = expires_at
    envelope = new_envelope("access.revoked", source="/turnout/checkin", subject=subject_id, data=data)
    registry().validate(envelope)
    return envelope


class FakeCollection:
    def __init__(self, ids: set[str] | None = None) -> None:
        self.ids = ids or set()
        self.lookups = 0

    def find(self, query: dict[str, Any], projection: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.lookups += 1
        return [{"_id": wanted} for wanted in query["_id"]["$in"] if wanted in self.ids]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _store(ids: set[str] | None = None) -> tuple[RevokedSubjects, FakeCollection, Clock]:
    collection, clock = FakeCollection(ids), Clock()
    return RevokedSubjects(collection, ttl=3.0, clock=clock), collection, clock  # type: ignore[arg-type]


def test_only_access_revoked_messages_become_idempotent_upserts() -> None:
    other = new_envelope("event.cancelled", source="/turnout/checkin", subject="e1", data={"event_id": "e1"})
    writes = revocation_writes([other, _revoked(API.subject_id, "api", "api_token_revoked")])
    assert len(writes) == 1
    doc = writes[0]._doc
    assert writes[0]._filter == {"_id": "api:Vq3xK9mZ2pLt7RwA"}
    assert writes[0]._upsert is True
    # Only on insert: a replay or a second revocation keeps the first record.
    assert set(doc) == {"$setOnInsert"}
    assert doc["$setOnInsert"] == {
        "org_id": "o1",
        "subject_kind": "api",
        "reason": "api_token_revoked",
        "revoked_at": datetime(2026, 3, 20, 9, 15, 2, 411000, tzinfo=UTC),
    }


def test_a_revoked_user_or_api_token_is_refused_with_the_same_401_as_checkin() -> None:
    store, _, _ = _store({USER.subject_id, API.subject_id})
    with pytest.raises(ApiError) as user_error:
        store.check(USER)
    assert (user_error.value.status, user_error.value.code) == (401, "user_deactivated")
    with pytest.raises(ApiError) as api_error:
        store.check(API)
    assert (api_error.value.status, api_error.value.code) == (401, "token_revoked")
    assert api_error.value.message == "this API token was revoked or has expired"


def test_others_pass_and_kiosks_are_not_looked_up() -> None:
    store, collection, _ = _store({"someone-else"})
    store.check(USER)
    store.check(API)
    store.check(KIOSK)
    assert collection.lookups == 2


def test_lookups_are_cached_a_few_seconds_then_refreshed() -> None:
    store, collection, clock = _store()
    store.check(USER)
    store.check(USER)
    assert collection.lookups == 1
    collection.ids.add(USER.subject_id)  # the worker records the revocation
    clock.now += 2.9
    store.check(USER)  # still the cached answer
    clock.now += 0.2
    with pytest.raises(ApiError):
        store.check(USER)
    assert collection.lookups == 2


def test_refusal_names_the_kind() -> None:
    assert refusal(USER).code == "user_deactivated"
    assert refusal(API).code == "token_revoked"


def test_a_signed_out_session_becomes_an_upsert_that_expires_with_the_session() -> None:
    subject = session_subject(SESSION.session_id or "")
    assert subject == "session:hT4kq9Z2xWm7PbRc"
    (write,) = revocation_writes([_revoked(subject, "session", "signed_out", "2026-03-20T21:15:02.411Z")])
    assert write._filter == {"_id": subject}
    assert write._doc["$setOnInsert"] == {
        "org_id": "o1",
        "subject_kind": "session",
        "reason": "signed_out",
        "revoked_at": datetime(2026, 3, 20, 9, 15, 2, 411000, tzinfo=UTC),
        "expires_at": datetime(2026, 3, 20, 21, 15, 2, 411000, tzinfo=UTC),
    }


def test_a_signed_out_session_is_refused_and_the_users_other_sessions_are_not() -> None:
    store, collection, _ = _store({session_subject(SESSION.session_id or "")})
    with pytest.raises(ApiError) as error:
        store.check(SESSION)
    assert (error.value.status, error.value.code) == (401, "session_ended")
    assert error.value.code == session_ended().code
    other = Principal(
        kind="user", subject_id=USER.subject_id, org_id="o1", role="organizer", name="Ann", session_id="x"
    )
    store.check(other)
    store.check(USER)  # a token without a session id: only the user is looked up
    # One lookup per caller: the user and the session in the same query.
    assert collection.lookups == 3


def test_a_deactivated_user_is_refused_as_such_in_any_session() -> None:
    store, _, _ = _store({USER.subject_id, session_subject(SESSION.session_id or "")})
    with pytest.raises(ApiError) as error:
        store.check(SESSION)
    assert error.value.code == "user_deactivated"


def test_an_api_tokens_id_is_never_taken_for_a_session() -> None:
    store, _, _ = _store({session_subject(API.session_id or "")})
    store.check(API)
