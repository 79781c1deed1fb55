"""Follow-up refuses what checkin revoked: the consumer records ``access.revoked``
in ``revoked_subjects`` (idempotently), and the API and the pages refuse that
user, API token or signed-out session within seconds, on the real database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from followup import create_app
from followup.service_layer.context import Services
from followup.service_layer.handlers import HANDLED_TYPES
from tests.followup.helpers import Gathering
from tests.followup.integration.conftest import apply
from turnout_common.auth import SESSION_COOKIE, Principal, TokenSigner
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.config import secret_key
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope, new_envelope
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
def app(followup_env: dict[str, str], svc: Services) -> Flask:
    return create_app()


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


def _until(check: object, seconds: float = 6.0) -> float:
    """Seconds until ``check()`` is true (fails after ``seconds``)."""
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < seconds, "not refused in time"
        time.sleep(0.1)
    return time.monotonic() - started


def test_the_consumer_lets_access_revoked_through_and_records_it_once(svc: Services, org_id: str) -> None:
    assert "access.revoked" in HANDLED_TYPES
    message = revoked(org_id, "api:Vq3xK9mZ2pLt7RwA", "api")
    apply(svc, [message])
    apply(svc, [message, revoked(org_id, "api:Vq3xK9mZ2pLt7RwA", "api")])  # replay and a repeat
    docs = list(svc.db[REVOKED_SUBJECTS].find())
    assert len(docs) == 1
    assert docs[0]["_id"] == "api:Vq3xK9mZ2pLt7RwA"
    assert (docs[0]["org_id"], docs[0]["subject_kind"], docs[0]["reason"]) == (org_id, "api", "api_token_revoked")
    assert docs[0]["revoked_at"].isoformat().startswith("2026-03-20T09:15:02.411")


def test_a_revoked_api_token_and_a_deactivated_user_are_refused(
    client: FlaskClient, svc: Services, org_id: str
) -> None:
    signer = TokenSigner(secret_key())
    user = Principal("user", f"u-{uuid.uuid4().hex[:8]}", org_id, "organizer", "Ann")
    api = Principal("api", f"api:{uuid.uuid4().hex[:16]}", org_id, "organizer", "CRM", session_id="t")
    user_token, api_token = signer.issue(user), signer.issue(api)
    gathering = Gathering(org_id, kind="networking", title="Revocation evening")
    apply(svc, [gathering.scheduled()])
    page_url = f"/events/{gathering.event_id}/messages"
    bearer = {name: {"Authorization": f"Bearer {token}"} for name, token in (("user", user_token), ("api", api_token))}
    assert client.get("/api/v1/contacts", headers=bearer["user"]).status_code == 200
    assert client.get("/api/v1/contacts", headers=bearer["api"]).status_code == 200
    client.set_cookie(SESSION_COOKIE, user_token)
    assert client.get(page_url).status_code == 200
    client.delete_cookie(SESSION_COOKIE)

    apply(svc, [revoked(org_id, api.subject_id, "api"), revoked(org_id, user.subject_id, "user")])

    _until(lambda: client.get("/api/v1/contacts", headers=bearer["api"]).status_code == 401)
    answer = client.get("/api/v1/contacts", headers=bearer["api"])
    assert answer.get_json()["error"] == {
        "code": "token_revoked",
        "message": "this API token was revoked or has expired",
        "field": None,
    }
    answer = client.get("/api/v1/contacts", headers=bearer["user"])
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "user_deactivated"
    # The organizer pages (session cookie) send the user to sign in again.
    client.set_cookie(SESSION_COOKIE, user_token)
    page = client.get(page_url)
    assert page.status_code == 302 and "/login?next=" in page.headers["Location"]
    # Somebody else of the same organization is not affected.
    other = signer.issue(Principal("user", "u-other", org_id, "organizer", "Ben"))
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_a_signed_out_session_is_refused_and_its_record_expires_with_it(
    client: FlaskClient, svc: Services, org_id: str
) -> None:
    signer = TokenSigner(secret_key())
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    ended = Principal("user", user_id, org_id, "organizer", "Ann", session_id=uuid.uuid4().hex[:16])
    kept = Principal("user", user_id, org_id, "organizer", "Ann", session_id=uuid.uuid4().hex[:16])
    ended_token, kept_token = signer.issue(ended), signer.issue(kept)
    gathering = Gathering(org_id, kind="networking", title="Signing-out evening")
    apply(svc, [gathering.scheduled()])
    assert client.get("/api/v1/settings", headers={"Authorization": f"Bearer {ended_token}"}).status_code == 200
    message = signed_out(org_id, ended.session_id or "")
    apply(svc, [message])
    apply(svc, [message])  # a replay changes nothing

    _until(
        lambda: client.get("/api/v1/settings", headers={"Authorization": f"Bearer {ended_token}"}).status_code == 401
    )
    answer = client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {ended_token}"})
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "session_ended"
    client.set_cookie(SESSION_COOKIE, ended_token)
    page = client.get(f"/events/{gathering.event_id}/messages")
    assert page.status_code == 302 and "/login?next=" in page.headers["Location"]
    client.delete_cookie(SESSION_COOKIE)
    # The same user's other session goes on.
    assert client.get("/api/v1/settings", headers={"Authorization": f"Bearer {kept_token}"}).status_code == 200
    (doc,) = list(svc.db[REVOKED_SUBJECTS].find({"subject_kind": "session"}))
    assert doc["_id"] == f"session:{ended.session_id}" and doc["reason"] == "signed_out"
    assert to_rfc3339(doc["expires_at"]) == EXPIRES_AT
    ttl = [i for i in svc.db[REVOKED_SUBJECTS].index_information().values() if i["key"] == [("expires_at", 1)]]
    assert ttl and ttl[0]["expireAfterSeconds"] == 0


def signed_out(org_id: str, session_id: str) -> Envelope:
    subject_id = f"session:{session_id}"
    envelope = new_envelope(
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
    registry().validate(envelope)
    return envelope
