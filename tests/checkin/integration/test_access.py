"""Users with roles and API tokens: granted no higher than the granter, revocable at once."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import PASSWORD, Org, add_user, headers, login, new_org
from turnout_common.clock import to_rfc3339

pytestmark = pytest.mark.integration


def test_an_owner_adds_a_door_staff_user_who_can_sign_in(client: FlaskClient, org: Org) -> None:
    answer = client.post(
        "/api/v1/users",
        json={"email": "door@example.org", "name": "Door Person", "role": "door_staff", "password": PASSWORD},
        headers=headers(org.token),
    )
    assert answer.status_code == 201, answer.get_json()
    token = login(client, "door@example.org")
    assert client.get("/api/v1/me", headers=headers(token)).get_json()["role"] == "door_staff"
    users = client.get("/api/v1/users", headers=headers(org.token)).get_json()["users"]
    assert "door@example.org" in {u["email"] for u in users}
    assert all("password" not in str(u) for u in users)


def test_nobody_grants_more_than_they_hold(client: FlaskClient, org: Org) -> None:
    organizer = add_user(client.application, client, org.id, "organizer")
    answer = client.post(
        "/api/v1/users",
        json={"email": "boss@example.org", "name": "Boss", "role": "owner", "password": PASSWORD},
        headers=headers(organizer),
    )
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "forbidden_role"
    viewer = add_user(client.application, client, org.id, "viewer")
    assert client.get("/api/v1/users", headers=headers(viewer)).status_code == 403


def test_deactivated_user_is_locked_out_at_once(client: FlaskClient, org: Org) -> None:
    token = add_user(client.application, client, org.id, "door_staff")
    user_id = client.get("/api/v1/me", headers=headers(token)).get_json()["id"]
    email = client.application.extensions["checkin"].db["users"].find_one({"_id": user_id})["email"]
    assert client.post(f"/api/v1/users/{user_id}/deactivate", headers=headers(org.token)).status_code == 200
    client.application.extensions["checkin"].access._cache.clear()
    answer = client.get("/api/v1/events", headers=headers(token))
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "user_deactivated"
    refused = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 401


def test_api_token_works_until_revoked_and_stays_in_its_organization(client: FlaskClient, org: Org, ctx: Any) -> None:
    created = client.post(
        "/api/v1/api-tokens",
        json={"name": "CRM sync", "role": "viewer", "expires_in_days": 30},
        headers=headers(org.token),
    )
    assert created.status_code == 201
    body = created.get_json()
    token = body["token"]
    assert client.get("/api/v1/events", headers=headers(token)).status_code == 200
    assert client.post("/api/v1/events", json={}, headers=headers(token)).status_code == 403  # a viewer
    listed = client.get("/api/v1/api-tokens", headers=headers(org.token)).get_json()["tokens"]
    assert token not in str(listed) and listed[0]["name"] == "CRM sync"
    outsider = new_org(client.application, client, "Outsider")
    assert client.post(f"/api/v1/api-tokens/{body['id']}/revoke", headers=headers(outsider.token)).status_code == 404
    assert client.post(f"/api/v1/api-tokens/{body['id']}/revoke", headers=headers(org.token)).status_code == 200
    answer = client.get("/api/v1/events", headers=headers(token))
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "token_revoked"


def _access_revoked(ctx: Any) -> list[Any]:
    from turnout_common.contracts import registry

    return [registry().parse(bytes(doc["payload"])) for doc in ctx.db["outbox"].find({"type": "access.revoked"})]


def test_api_token_carries_its_own_expiry(client: FlaskClient, org: Org, ctx: Any) -> None:
    created = client.post(
        "/api/v1/api-tokens", json={"name": "Short", "role": "viewer", "expires_in_days": 2}, headers=headers(org.token)
    ).get_json()
    principal = ctx.signer.verify(created["token"])
    stored = ctx.db["api_tokens"].find_one({"_id": created["id"]})
    assert principal.expires_at == int(stored["expires_at"].timestamp())
    assert principal.subject_id == f"api:{created['id']}"


def test_revoking_a_token_publishes_access_revoked_in_the_same_write(client: FlaskClient, org: Org, ctx: Any) -> None:
    created = client.post(
        "/api/v1/api-tokens", json={"name": "CRM sync", "role": "viewer"}, headers=headers(org.token)
    ).get_json()
    assert _access_revoked(ctx) == []
    answer = client.post(f"/api/v1/api-tokens/{created['id']}/revoke", headers=headers(org.token))
    assert answer.status_code == 200 and answer.get_json()["revoked"] is True
    (message,) = _access_revoked(ctx)
    assert message.subject == f"api:{created['id']}"
    assert message.data["org_id"] == org.id
    assert (message.data["subject_kind"], message.data["reason"]) == ("api", "api_token_revoked")
    entry = ctx.db["outbox"].find_one({"type": "access.revoked"})
    assert (entry["topic"], entry["key"]) == ("turnout.checkin", org.id)
    # Revoking again keeps the first moment (and may announce it again: consumers keep the first).
    first = ctx.db["api_tokens"].find_one({"_id": created["id"]})["revoked_at"]
    assert client.post(f"/api/v1/api-tokens/{created['id']}/revoke", headers=headers(org.token)).status_code == 200
    assert ctx.db["api_tokens"].find_one({"_id": created["id"]})["revoked_at"] == first
    # Unknown or foreign tokens: a 404, and nothing published.
    before = ctx.db["outbox"].count_documents({"type": "access.revoked"})
    missing = client.post("/api/v1/api-tokens/nope/revoke", headers=headers(org.token))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "token_not_found"
    assert ctx.db["outbox"].count_documents({"type": "access.revoked"}) == before


def test_deactivating_a_user_publishes_access_revoked(client: FlaskClient, org: Org, ctx: Any) -> None:
    token = add_user(client.application, client, org.id, "viewer")
    user_id = client.get("/api/v1/me", headers=headers(token)).get_json()["id"]
    assert client.post(f"/api/v1/users/{user_id}/deactivate", headers=headers(org.token)).status_code == 200
    (message,) = _access_revoked(ctx)
    assert message.subject == message.data["subject_id"] == user_id
    assert (message.data["subject_kind"], message.data["reason"]) == ("user", "user_deactivated")
    # checkin itself refuses the user at once (its own cache was told).
    answer = client.get("/api/v1/events", headers=headers(token))
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "user_deactivated"


def test_signing_out_ends_that_session_at_once_and_announces_it(client: FlaskClient, org: Org, ctx: Any) -> None:
    from turnout_common.auth import SESSION_MAX_AGE

    token = add_user(client.application, client, org.id, "viewer")
    other = login(client, ctx.db["users"].find_one({"_id": _me(client, token)["id"]})["email"])
    principal = ctx.signer.verify(token)
    assert principal.session_id and principal.session_id != ctx.signer.verify(other).session_id
    answer = client.post("/api/v1/auth/logout", headers=headers(token))
    assert answer.status_code == 204 and answer.get_data() == b""
    assert "turnout_session=;" in answer.headers["Set-Cookie"]
    # checkin refuses it at once; the user's other session goes on.
    for path in ("/api/v1/me", "/api/v1/events"):
        refused = client.get(path, headers=headers(token))
        assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "session_ended"
    assert client.get("/api/v1/me", headers=headers(other)).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers(token)).status_code == 401
    # Recorded until the session would have expired anyway (a TTL index drops it then) ...
    stored = ctx.db["ended_sessions"].find_one({"_id": principal.session_id})
    assert stored["user_id"] == principal.subject_id and stored["org_id"] == org.id
    assert (stored["expires_at"] - stored["ended_at"]).total_seconds() == SESSION_MAX_AGE
    ttl = [i for i in ctx.db["ended_sessions"].index_information().values() if i["key"] == [("expires_at", 1)]]
    assert ttl and ttl[0]["expireAfterSeconds"] == 0
    # ... and announced to followup and analytics in the same write.
    (message,) = _access_revoked(ctx)
    assert message.subject == message.data["subject_id"] == f"session:{principal.session_id}"
    assert (message.data["subject_kind"], message.data["reason"]) == ("session", "signed_out")
    assert message.data["org_id"] == org.id
    assert message.data["expires_at"] == to_rfc3339(stored["expires_at"])


def test_only_a_session_signs_out(client: FlaskClient, org: Org, ctx: Any) -> None:
    created = client.post(
        "/api/v1/api-tokens", json={"name": "CRM sync", "role": "viewer"}, headers=headers(org.token)
    ).get_json()
    answer = client.post("/api/v1/auth/logout", headers=headers(created["token"]))
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "not_a_session"
    assert client.get("/api/v1/me", headers=headers(created["token"])).status_code == 200
    nobody = client.post("/api/v1/auth/logout")
    assert nobody.status_code == 401
    assert _access_revoked(ctx) == []


def _me(client: FlaskClient, token: str) -> Any:
    return client.get("/api/v1/me", headers=headers(token)).get_json()
