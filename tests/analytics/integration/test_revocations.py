"""Analytics refuses what checkin revoked: its consumer handler (``project``)
records ``access.revoked`` in ``revoked_subjects`` in the batch's transaction,
and the API and dashboard refuse that user, API token or signed-out session
within seconds, on the real database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.analytics.integration.conftest import app_settings
from turnout_common.auth import SESSION_COOKIE, Principal, TokenSigner
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.config import secret_key
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.mongo import UnitOfWork
from turnout_common.revocations import REVOKED_SUBJECTS

pytestmark = pytest.mark.integration

# When a signed-out session's token would have expired anyway (its record may go then).
EXPIRES_AT = to_rfc3339(utcnow() + timedelta(hours=12))


def revoked(org_id: str, subject_id: str, kind: str) -> Envelope:
    envelope = new_envelope(
        "access.revoked",
        source="/turnout/checkin",
        subject=subject_id,
        data={
            "org_id": org_id,
            "subject_id": subject_id,
            "subject_kind": kind,
            "reason": "api_token_revoked" if kind == "api" else "user_deactivated",
            "revoked_at": "2026-03-20T09:15:02.411Z",
        },
    )
    registry().validate(envelope)
    return envelope


@pytest.fixture
def app(service_env: dict[str, str]) -> Iterator[Flask]:
    from analytics import create_app

    application = create_app(app_settings())
    yield application
    context = application.extensions["analytics"]
    context.client.drop_database(context.db.name)
    context.client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def project(app: Flask, messages: list[Envelope]) -> None:
    """What the worker does with a batch (the handler, inside one transaction)."""
    from analytics.service_layer.projector import project as handler

    context = app.extensions["analytics"]
    UnitOfWork(context.client, context.db).run(lambda uow: handler(uow, messages))


def _until(check: Callable[[], bool], seconds: float = 6.0) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not refused in time"
        time.sleep(0.1)


def test_project_records_revocations_once_and_no_projection(app: Flask) -> None:
    message = revoked("org-1", "6604d1e2f3a4b5c6d7e8f901", "user")
    project(app, [message])
    project(app, [message])  # a replay changes nothing
    db = app.extensions["analytics"].db
    (doc,) = list(db[REVOKED_SUBJECTS].find())
    assert doc["_id"] == "6604d1e2f3a4b5c6d7e8f901"
    assert (doc["org_id"], doc["subject_kind"], doc["reason"]) == ("org-1", "user", "user_deactivated")
    assert db["event_figures"].count_documents({}) == 0


def test_a_revoked_api_token_and_a_deactivated_user_are_refused(app: Flask, client: FlaskClient) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    signer = TokenSigner(secret_key())
    user = Principal("user", f"u-{uuid.uuid4().hex[:8]}", org_id, "viewer", "Ann")
    api = Principal("api", f"api:{uuid.uuid4().hex[:16]}", org_id, "viewer", "CRM", session_id="t")
    user_token, api_token = signer.issue(user), signer.issue(api)
    bearer = {name: {"Authorization": f"Bearer {token}"} for name, token in (("user", user_token), ("api", api_token))}
    assert client.get("/api/v1/events", headers=bearer["user"]).status_code == 200
    assert client.get("/api/v1/events", headers=bearer["api"]).status_code == 200
    client.set_cookie(SESSION_COOKIE, user_token)
    assert client.get("/dashboard").status_code == 200
    client.delete_cookie(SESSION_COOKIE)

    project(app, [revoked(org_id, api.subject_id, "api"), revoked(org_id, user.subject_id, "user")])

    _until(lambda: client.get("/api/v1/events", headers=bearer["api"]).status_code == 401)
    answer = client.get("/api/v1/events", headers=bearer["api"])
    assert answer.get_json()["error"]["code"] == "token_revoked"
    answer = client.get("/api/v1/events", headers=bearer["user"])
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "user_deactivated"
    # The dashboard (session cookie) asks the user to sign in again.
    client.set_cookie(SESSION_COOKIE, user_token)
    page = client.get("/dashboard")
    assert page.status_code == 401 and "checkin.test:8001/login" in page.get_data(as_text=True)
    other = signer.issue(Principal("user", "u-other", org_id, "viewer", "Ben"))
    client.delete_cookie(SESSION_COOKIE)
    assert client.get("/api/v1/events", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_a_signed_out_session_is_refused_and_its_record_expires_with_it(app: Flask, client: FlaskClient) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    signer = TokenSigner(secret_key())
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    ended = Principal("user", user_id, org_id, "viewer", "Ann", session_id=uuid.uuid4().hex[:16])
    kept = Principal("user", user_id, org_id, "viewer", "Ann", session_id=uuid.uuid4().hex[:16])
    ended_bearer = {"Authorization": f"Bearer {signer.issue(ended)}"}
    kept_bearer = {"Authorization": f"Bearer {signer.issue(kept)}"}
    assert client.get("/api/v1/overview", headers=ended_bearer).status_code == 200

    subject_id = f"session:{ended.session_id}"
    message = new_envelope(
        "access.revoked",
        source="/turnout/checkin",
        subject=subject_id,
        data={
            "org_id": org_id,
            "subject_id": subject_id,
            "subject_kind": "session",
            "reason": "signed_out",
            "revoked_at": "2026-03-20T09:15:02.411Z",
            "expires_at": EXPIRES_AT,  # in the future: the TTL index keeps it
        },
    )
    registry().validate(message)
    project(app, [message])
    project(app, [message])  # a replay changes nothing

    _until(lambda: client.get("/api/v1/overview", headers=ended_bearer).status_code == 401)
    answer = client.get("/api/v1/events", headers=ended_bearer)
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "session_ended"
    client.set_cookie(SESSION_COOKIE, signer.issue(ended))
    assert client.get("/dashboard").status_code == 401
    client.delete_cookie(SESSION_COOKIE)
    assert client.get("/api/v1/overview", headers=kept_bearer).status_code == 200
    db = app.extensions["analytics"].db
    (doc,) = list(db[REVOKED_SUBJECTS].find())
    assert doc["_id"] == subject_id and doc["reason"] == "signed_out"
    assert to_rfc3339(doc["expires_at"]) == EXPIRES_AT
    ttl = [i for i in db[REVOKED_SUBJECTS].index_information().values() if i["key"] == [("expires_at", 1)]]
    assert ttl and ttl[0]["expireAfterSeconds"] == 0
