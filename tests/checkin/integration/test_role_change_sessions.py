"""A role change reaches the user's signed-in sessions: every session begun
before it is refused (401 ``role_changed``) by checkin at once (by the web
worker that made the change; the others within their cache's few seconds),
and ``access.revoked`` carries it to followup and analytics in the same
transaction; signing in again gives a session with the new role."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import PASSWORD, Org, headers, login
from turnout_common.auth import Principal
from turnout_common.clock import parse_rfc3339
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope

pytestmark = pytest.mark.integration


def _new_user(client: FlaskClient, org: Org, role: str, name: str = "Rosa Role") -> tuple[str, str]:
    """A user added by the owner through the API; returns (user id, email)."""
    email = f"{role}-{time.monotonic_ns()}@example.org"
    added = client.post(
        "/api/v1/users",
        json={"email": email, "name": name, "role": role, "password": PASSWORD},
        headers=headers(org.token),
    )
    assert added.status_code == 201, added.get_json()
    return str(added.get_json()["id"]), email


def _change_role(client: FlaskClient, token: str, user_id: str, role: str) -> Any:
    answer = client.patch(f"/api/v1/users/{user_id}", json={"role": role}, headers=headers(token))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["role"] == role
    return answer


def _refused(client: FlaskClient, token: str) -> str | None:
    """The 401's code for ``token`` on a read every role may make, or None if served."""
    answer = client.get("/api/v1/events", headers=headers(token))
    if answer.status_code == 401:
        error = answer.get_json()["error"]
        if error["code"] == "role_changed":
            assert error["message"] == "your role changed; sign in again"
        return str(error["code"])
    assert answer.status_code == 200, answer.get_json()
    return None


def _role_changes(ctx: Any, user_id: str) -> list[Envelope]:
    docs = ctx.db["outbox"].find({"type": "access.revoked"}).sort([("created_at", 1), ("seq", 1)])
    messages = [registry().parse(bytes(doc["payload"])) for doc in docs]
    return [m for m in messages if m.data["subject_id"] == f"role:{user_id}"]


def test_a_demoted_organizers_session_is_refused_and_a_new_sign_in_has_the_new_role(
    client: FlaskClient, org: Org, ctx: Any
) -> None:
    user_id, email = _new_user(client, org, "organizer")
    old = login(client, email)
    assert _refused(client, old) is None
    assert client.post("/api/v1/events", json={}, headers=headers(old)).status_code == 400  # may manage: bad body

    _change_role(client, org.token, user_id, "viewer")
    assert _refused(client, old) == "role_changed"
    # Its pages ask to sign in again, like any refused session.
    client.set_cookie("turnout_session", old)
    page = client.get("/events")
    client.delete_cookie("turnout_session")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=")

    new = login(client, email)
    assert client.get("/api/v1/me", headers=headers(new)).get_json()["role"] == "viewer"
    assert _refused(client, new) is None
    refused = client.post("/api/v1/events", json={}, headers=headers(new))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    # The owner who made the change goes on.
    assert _refused(client, org.token) is None


def test_the_change_publishes_access_revoked_in_the_same_write(client: FlaskClient, org: Org, ctx: Any) -> None:
    user_id, _ = _new_user(client, org, "organizer")
    assert _role_changes(ctx, user_id) == []
    _change_role(client, org.token, user_id, "viewer")
    (message,) = _role_changes(ctx, user_id)
    stored = ctx.db["users"].find_one({"_id": user_id})
    assert message.subject == f"role:{user_id}"
    assert message.data["org_id"] == org.id
    assert (message.data["subject_kind"], message.data["reason"], message.data["role"]) == (
        "user",
        "role_changed",
        "viewer",
    )
    # not_before is the moment checkin stored; every session begun before it has expired 12 h (and a minute) later.
    not_before = parse_rfc3339(message.data["not_before"])
    assert not_before == stored["role_changed_at"]
    assert parse_rfc3339(message.data["expires_at"]) == not_before + timedelta(hours=12, minutes=1)
    entry = ctx.db["outbox"].find_one({"_id": message.id})
    assert (entry["topic"], entry["key"]) == ("turnout.checkin", org.id)

    # The same role again changes nothing and announces nothing; a refused change neither.
    _change_role(client, org.token, user_id, "viewer")
    bad = client.patch(f"/api/v1/users/{user_id}", json={"role": "emperor"}, headers=headers(org.token))
    assert bad.status_code == 400
    assert len(_role_changes(ctx, user_id)) == 1
    # A second change is a second message with a later not_before.
    _change_role(client, org.token, user_id, "door_staff")
    first, second = _role_changes(ctx, user_id)
    assert parse_rfc3339(second.data["not_before"]) > parse_rfc3339(first.data["not_before"])
    assert second.data["role"] == "door_staff"


def test_each_change_refuses_the_sessions_begun_before_it(client: FlaskClient, org: Org) -> None:
    user_id, email = _new_user(client, org, "viewer")
    first = login(client, email)
    _change_role(client, org.token, user_id, "door_staff")
    second = login(client, email)
    assert (_refused(client, first), _refused(client, second)) == ("role_changed", None)
    _change_role(client, org.token, user_id, "organizer")
    third = login(client, email)
    assert (_refused(client, second), _refused(client, third)) == ("role_changed", None)
    # Back to a role held before: the sessions of that time stay refused.
    _change_role(client, org.token, user_id, "door_staff")
    assert (_refused(client, second), _refused(client, third)) == ("role_changed", "role_changed")
    assert _refused(client, login(client, email)) is None


def test_a_sign_in_that_read_the_old_role_while_the_change_committed_is_refused(
    client: FlaskClient, org: Org, ctx: Any
) -> None:
    user_id, email = _new_user(client, org, "organizer", "Racing Rita")
    _change_role(client, org.token, user_id, "viewer")
    time.sleep(0.01)
    # Issued after the change, but with the role the user had before it.
    raced = ctx.signer.issue(
        Principal(kind="user", subject_id=user_id, org_id=org.id, role="organizer", name="Racing Rita", session_id="r1")
    )
    changed_at = ctx.db["users"].find_one({"_id": user_id})["role_changed_at"]
    assert ctx.signer.verify(raced).issued_at > changed_at.timestamp()
    assert _refused(client, raced) == "role_changed"
    assert _refused(client, login(client, email)) is None


def test_an_owner_who_steps_down_signs_in_again(client: FlaskClient, org: Org) -> None:
    second_id, second_email = _new_user(client, org, "owner", "Second Owner")
    second = login(client, second_email)
    owner_id = client.get("/api/v1/me", headers=headers(org.token)).get_json()["id"]
    _change_role(client, second, owner_id, "organizer")
    assert _refused(client, org.token) == "role_changed"
    again = login(client, org.owner_email)
    assert client.get("/api/v1/me", headers=headers(again)).get_json()["role"] == "organizer"
    demote = client.patch(f"/api/v1/users/{second_id}", json={"role": "viewer"}, headers=headers(again))
    assert demote.status_code == 403
    assert _refused(client, second) is None


def test_api_tokens_keep_their_role_and_deactivation_is_named_first(client: FlaskClient, org: Org) -> None:
    user_id, email = _new_user(client, org, "organizer")
    session = login(client, email)
    created = client.post(
        "/api/v1/api-tokens", json={"name": "CRM sync", "role": "organizer"}, headers=headers(session)
    ).get_json()
    _change_role(client, org.token, user_id, "viewer")
    # An API token's role was set when it was made: the role change of its maker does not touch it.
    assert _refused(client, created["token"]) is None
    assert _refused(client, session) == "role_changed"
    assert client.post(f"/api/v1/users/{user_id}/deactivate", headers=headers(org.token)).status_code == 200
    assert _refused(client, session) == "user_deactivated"


def test_another_web_worker_refuses_the_old_session_within_its_caches_seconds(
    app: Flask, client: FlaskClient, org: Org, settings: Any
) -> None:
    """Every gunicorn worker keeps its own few seconds' cache: one that served
    the old session just before the change refuses it once the cache lapses."""
    from checkin import create_app

    other = create_app(settings)
    try:
        other_client = other.test_client()
        user_id, email = _new_user(client, org, "organizer")
        old = login(client, email)
        assert _refused(other_client, old) is None  # cached there as an organizer in good standing
        changed = datetime.now(UTC)
        _change_role(client, org.token, user_id, "viewer")
        assert _refused(client, old) == "role_changed"  # this worker: at once
        deadline = changed + timedelta(seconds=3.5)
        while datetime.now(UTC) < deadline and _refused(other_client, old) is None:
            time.sleep(0.1)
        assert _refused(other_client, old) == "role_changed"
        assert datetime.now(UTC) - changed < timedelta(seconds=3.6)
        assert _refused(other_client, login(client, email)) is None
    finally:
        other.extensions["checkin"].client.close()
