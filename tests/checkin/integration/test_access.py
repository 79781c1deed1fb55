"""Users with roles and API tokens: granted no higher than the granter, revocable at once."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import PASSWORD, Org, add_user, headers, login, new_org

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
