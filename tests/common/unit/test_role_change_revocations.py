"""A role change refuses the sessions begun before it: the issue time a token
carries, the ``access.revoked`` message and record of a role change, and the
cached check every web app runs (no server: a fake collection)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer

from turnout_common.auth import SESSION_MAX_AGE, InvalidToken, Principal, TokenSigner
from turnout_common.contracts import ContractViolation, registry
from turnout_common.envelope import new_envelope
from turnout_common.revocations import (
    RevokedSubjects,
    revocation_writes,
    role_changed,
    role_changed_message,
    role_outdated,
    role_subject,
    session_subject,
)
from turnout_common.web import ApiError

SECRET = "test-secret-key-of-enough-length"
USER_ID = "6604d1e2f3a4b5c6d7e8f901"
CHANGED_AT = datetime(2026, 3, 22, 8, 30, 45, 120000, tzinfo=UTC)


def _session(role: str = "organizer", issued_at: float | None = None, session_id: str | None = "s1") -> Principal:
    return Principal(
        kind="user",
        subject_id=USER_ID,
        org_id="o1",
        role=role,
        name="Ann",
        session_id=session_id,
        issued_at=issued_at,
    )


BEFORE = CHANGED_AT.timestamp() - 0.2  # signed in 200 ms before the change
AFTER = CHANGED_AT.timestamp() + 0.3  # signed in again 300 ms after it


# -- the issue time a token carries -----------------------------------------------------------


def test_a_token_carries_its_issue_time_to_the_millisecond() -> None:
    signer = TokenSigner(SECRET)
    before = time.time()
    principal = signer.verify(signer.issue(_session()))
    after = time.time()
    assert principal.issued_at is not None
    # Within the milliseconds around the call (the signature's own whole second would not be).
    assert before - 0.001 <= principal.issued_at <= after + 0.001
    # Who is calling is unchanged: the issue time is not part of the comparison.
    assert principal == _session()


def test_a_token_issued_before_issue_times_were_signed_in_uses_its_signatures_second() -> None:
    legacy = URLSafeTimedSerializer(SECRET, salt="turnout.token.v1").dumps(
        {"k": "user", "s": USER_ID, "o": "o1", "r": "organizer", "n": "Ann", "p": "s1"}
    )
    principal = TokenSigner(SECRET).verify(str(legacy))
    assert principal.issued_at is not None
    assert principal.issued_at == int(principal.issued_at)
    assert abs(principal.issued_at - time.time()) < 2


@pytest.mark.parametrize("issued", ["1700000000000", 1.5, True, None])
def test_a_malformed_issue_time_is_an_invalid_token(issued: Any) -> None:
    payload: dict[str, Any] = {"k": "user", "s": USER_ID, "o": "o1", "r": "organizer", "n": "Ann", "i": issued}
    token = str(URLSafeTimedSerializer(SECRET, salt="turnout.token.v1").dumps(payload))
    if issued is None:  # an explicit null is the same as absent
        assert TokenSigner(SECRET).verify(token).issued_at is not None
        return
    with pytest.raises(InvalidToken):
        TokenSigner(SECRET).verify(token)


def test_issued_before_compares_to_the_millisecond_and_takes_naive_moments_as_utc() -> None:
    assert _session(issued_at=BEFORE).issued_before(CHANGED_AT)
    assert not _session(issued_at=AFTER).issued_before(CHANGED_AT)
    # The same millisecond as the change is not before it (the database keeps milliseconds).
    assert not _session(issued_at=CHANGED_AT.timestamp()).issued_before(CHANGED_AT + timedelta(microseconds=700))
    assert _session(issued_at=BEFORE).issued_before(CHANGED_AT.replace(tzinfo=None))
    # A principal not read from a token has no issue time: never "before".
    assert not _session(issued_at=None).issued_before(CHANGED_AT)


def test_role_outdated_refuses_an_older_session_or_one_carrying_another_role() -> None:
    assert role_outdated(_session(issued_at=BEFORE), CHANGED_AT, "viewer")
    assert not role_outdated(_session("viewer", issued_at=AFTER), CHANGED_AT, "viewer")
    # Signed in while the change was being committed: after not_before, with the old role.
    assert role_outdated(_session("organizer", issued_at=AFTER), CHANGED_AT, "viewer")
    assert not role_outdated(_session(issued_at=AFTER), None, None)
    api = Principal(kind="api", subject_id="api:t", org_id="o1", role="organizer", name="CRM", issued_at=BEFORE)
    assert not role_outdated(api, CHANGED_AT, "viewer")  # an API token keeps the role it was created with


# -- the message and the record ---------------------------------------------------------------


def test_the_role_change_message_keeps_the_contract() -> None:
    message = role_changed_message("o1", USER_ID, "viewer", CHANGED_AT, "/turnout/checkin")
    registry().validate(message)
    assert message.subject == f"role:{USER_ID}" == role_subject(USER_ID)
    assert message.data == {
        "org_id": "o1",
        "subject_id": f"role:{USER_ID}",
        "subject_kind": "user",
        "reason": "role_changed",
        "revoked_at": "2026-03-22T08:30:45.120Z",
        "not_before": "2026-03-22T08:30:45.120Z",
        "role": "viewer",
        # Every session begun before the change has expired by then (a minute's margin).
        "expires_at": "2026-03-22T20:31:45.120Z",
    }
    assert SESSION_MAX_AGE == 12 * 3600


def _access_revoked(**data: Any) -> Any:
    return new_envelope("access.revoked", source="/turnout/checkin", subject=str(data.get("subject_id")), data=data)


@pytest.mark.parametrize(
    "changes",
    [
        {"not_before": None},  # a role change without its moment
        {"role": None},  # or without the role
        {"role": "superuser"},
        {"subject_id": USER_ID},  # would overwrite (or be kept as) the user's deactivation
        {"subject_kind": "session"},
        {"reason": "user_deactivated", "subject_id": USER_ID},  # a deactivation never carries not_before
        {"reason": "signed_out", "subject_id": "session:s1", "subject_kind": "session"},
    ],
)
def test_the_contract_keeps_role_changes_apart_from_other_revocations(changes: dict[str, Any]) -> None:
    data = dict(role_changed_message("o1", USER_ID, "viewer", CHANGED_AT, "/turnout/checkin").data)
    data.update(changes)
    data = {name: value for name, value in data.items() if value is not None}
    with pytest.raises(ContractViolation):
        registry().validate(_access_revoked(**data))


def test_a_deactivation_cannot_take_a_role_subject() -> None:
    data = {
        "org_id": "o1",
        "subject_id": f"role:{USER_ID}",
        "subject_kind": "user",
        "reason": "user_deactivated",
        "revoked_at": "2026-03-22T08:30:45.120Z",
    }
    with pytest.raises(ContractViolation):
        registry().validate(_access_revoked(**data))


def test_a_role_change_becomes_an_upsert_that_moves_forward_never_back() -> None:
    (write,) = revocation_writes([role_changed_message("o1", USER_ID, "viewer", CHANGED_AT, "/turnout/checkin")])
    assert write._filter == {"_id": f"role:{USER_ID}"}
    assert write._upsert is True
    assert write._doc == {
        "$setOnInsert": {"org_id": "o1", "subject_kind": "user", "reason": "role_changed"},
        # A replay of an older change cannot move the moments back ...
        "$max": {
            "revoked_at": CHANGED_AT,
            "not_before": CHANGED_AT,
            "expires_at": CHANGED_AT + timedelta(hours=12, minutes=1),
        },
        # ... and the organization's messages arrive in order, so the last names the role now.
        "$set": {"role": "viewer"},
    }


# -- the check --------------------------------------------------------------------------------


class FakeCollection:
    def __init__(self, records: dict[str, dict[str, Any]] | None = None) -> None:
        self.records = records or {}
        self.queries: list[list[str]] = []

    def find(self, query: dict[str, Any], projection: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.queries.append(list(query["_id"]["$in"]))
        return [
            {"_id": wanted, **{k: v for k, v in self.records[wanted].items() if not projection or k in projection}}
            for wanted in query["_id"]["$in"]
            if wanted in self.records
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _store(records: dict[str, dict[str, Any]] | None = None) -> tuple[RevokedSubjects, FakeCollection, Clock]:
    collection, clock = FakeCollection(records), Clock()
    return RevokedSubjects(collection, ttl=3.0, clock=clock), collection, clock  # type: ignore[arg-type]


def _role_record(at: datetime = CHANGED_AT, role: str = "viewer") -> dict[str, dict[str, Any]]:
    return {role_subject(USER_ID): {"not_before": at, "role": role, "reason": "role_changed", "org_id": "o1"}}


def test_a_session_begun_before_the_change_is_refused_and_one_begun_after_is_not() -> None:
    store, collection, _ = _store(_role_record())
    with pytest.raises(ApiError) as error:
        store.check(_session("organizer", issued_at=BEFORE))
    assert (error.value.status, error.value.code) == (401, "role_changed")
    assert error.value.message == "your role changed; sign in again" == role_changed().message
    store.check(_session("viewer", issued_at=AFTER, session_id="s2"))
    # One lookup per caller: the user, the session and the role change in the same query.
    assert collection.queries == [
        [USER_ID, session_subject("s1"), role_subject(USER_ID)],
        [USER_ID, session_subject("s2"), role_subject(USER_ID)],
    ]


def test_a_sign_in_that_raced_the_change_with_the_old_role_is_refused() -> None:
    store, _, _ = _store(_role_record())
    with pytest.raises(ApiError) as error:
        store.check(_session("organizer", issued_at=AFTER))
    assert error.value.code == "role_changed"


def test_a_session_without_an_id_is_checked_for_the_role_change_too() -> None:
    store, collection, _ = _store(_role_record())
    with pytest.raises(ApiError) as error:
        store.check(_session("organizer", issued_at=BEFORE, session_id=None))
    assert error.value.code == "role_changed"
    assert collection.queries == [[USER_ID, role_subject(USER_ID)]]


def test_a_later_change_refuses_the_session_begun_between_the_two() -> None:
    store, collection, clock = _store(_role_record())
    between = _session("viewer", issued_at=AFTER, session_id="s2")
    store.check(between)
    later = CHANGED_AT + timedelta(minutes=5)
    collection.records.update(_role_record(later, "door_staff"))  # the worker moved the record forward
    clock.now += 3.1
    with pytest.raises(ApiError) as error:
        store.check(between)
    assert error.value.code == "role_changed"
    store.check(_session("door_staff", issued_at=later.timestamp() + 1, session_id="s3"))


def test_deactivation_and_signing_out_are_named_before_a_role_change() -> None:
    records = {**_role_record(), USER_ID: {"reason": "user_deactivated"}, session_subject("s1"): {}}
    store, _, _ = _store(records)
    with pytest.raises(ApiError) as deactivated:
        store.check(_session("organizer", issued_at=BEFORE))
    assert deactivated.value.code == "user_deactivated"
    del records[USER_ID]
    store, _, _ = _store(records)
    with pytest.raises(ApiError) as signed_out:
        store.check(_session("organizer", issued_at=BEFORE))
    assert signed_out.value.code == "session_ended"


def test_api_tokens_and_kiosks_are_not_touched_by_a_role_change() -> None:
    store, collection, _ = _store(_role_record())
    api = Principal(
        kind="api", subject_id="api:t1", org_id="o1", role="organizer", name="CRM", session_id="t1", issued_at=BEFORE
    )
    store.check(api)
    kiosk = Principal(kind="kiosk", subject_id="k1", org_id="o1", role="kiosk", name="Door", issued_at=BEFORE)
    store.check(kiosk)
    assert collection.queries == [["api:t1"]]


def test_the_role_change_arrives_within_the_caches_few_seconds() -> None:
    store, collection, clock = _store()
    old = _session("organizer", issued_at=BEFORE)
    store.check(old)
    collection.records.update(_role_record())  # the worker records the change
    clock.now += 2.9
    store.check(old)  # still the cached answer
    clock.now += 0.2
    with pytest.raises(ApiError):
        store.check(old)
    assert len(collection.queries) == 2
