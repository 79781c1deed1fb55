"""A checkin app on the session's real Tansu and SecantusDB, with helpers to
create organizations, users, events and registrations through the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

PASSWORD = "correct-horse-battery"


@dataclass
class Org:
    id: str
    owner_email: str
    token: str


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    # Tests authenticate explicitly; don't let the session cookie ride along.
    client.delete_cookie("turnout_session")
    return str(response.get_json()["token"])


def new_org(app: Flask, client: FlaskClient, label: str = "Org") -> Org:
    from checkin.service_layer import organizations

    suffix = uuid.uuid4().hex[:8]
    email = f"owner-{suffix}@example.org"
    org = organizations.create_organization(
        app.extensions["checkin"], f"{label} {suffix}", email, f"Owner {label}", PASSWORD
    )
    return Org(id=org["_id"], owner_email=email, token=login(client, email))


def add_user(app: Flask, client: FlaskClient, org_id: str, role: str) -> str:
    """A user of ``role`` in the organization; returns their session token."""
    from checkin.service_layer import organizations

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    user = organizations.new_user_doc(org_id, email, f"A {role}", PASSWORD, role)
    app.extensions["checkin"].db["users"].insert_one(user)
    return login(client, email)


def event_body(**changes: Any) -> dict[str, Any]:
    """An event whose check-in window is open now."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "title": "Saturday Pantry Shift",
        "kind": "volunteer_shift",
        "starts_at": iso(now - timedelta(minutes=10)),
        "ends_at": iso(now + timedelta(hours=2)),
        "timezone": "America/Chicago",
        "venue": "Warehouse",
        "capacity": None,
    }
    body.update(changes)
    return body


def create_event(client: FlaskClient, token: str, **changes: Any) -> dict[str, Any]:
    response = client.post("/api/v1/events", json=event_body(**changes), headers=headers(token))
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def register(client: FlaskClient, token: str, event_id: str, email: str, **changes: Any) -> Any:
    body: dict[str, Any] = {"first_name": "Ada", "last_name": "Lovelace", "email": email, "consent_email": True}
    body.update(changes)
    return client.post(f"/api/v1/events/{event_id}/registrations", json=body, headers=headers(token))


def registered(client: FlaskClient, token: str, event_id: str, email: str, **changes: Any) -> dict[str, Any]:
    response = register(client, token, event_id, email, **changes)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def check_in(client: FlaskClient, token: str, event_id: str, **body: Any) -> Any:
    body.setdefault("client_key", f"key-{uuid.uuid4().hex}")
    return client.post(f"/api/v1/events/{event_id}/checkins", json=body, headers=headers(token))


@pytest.fixture
def settings(service_env: dict[str, str]) -> Any:
    """The app's settings, passed to ``create_app`` (not read from the environment by it)."""
    from checkin.config import Settings

    return replace(
        Settings.from_env(),
        mongodb_uri=service_env["MONGODB_URI"],
        database=service_env["CHECKIN_MONGODB_DATABASE"],
        kafka_bootstrap_servers=service_env["KAFKA_BOOTSTRAP_SERVERS"],
        log_level="WARNING",
    )


@pytest.fixture
def app(settings: Any) -> Iterator[Flask]:
    from checkin import create_app

    application = create_app(settings)
    yield application
    application.extensions["checkin"].client.close()


@pytest.fixture
def ctx(app: Flask) -> Any:
    return app.extensions["checkin"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def org(app: Flask, client: FlaskClient) -> Org:
    return new_org(app, client, "Alpha")
