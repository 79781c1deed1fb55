"""Abuse limits on checkin's routes: sign-in per account (failures only) and
per address, by the API and the form together; kiosk name search per kiosk;
the public registration form per address. Refusals are 429 with Retry-After."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import PASSWORD, Org, create_event, headers, new_org
from tests.checkin.integration.test_kiosks import paired
from tests.checkin.integration.test_pages import SAME_SITE
from tests.checkin.integration.test_public_registration import public_link
from turnout_common.config import RateLimitSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Any) -> Any:
    """The default per account; smaller limits elsewhere, so the tests reach them quickly."""
    limits = RateLimitSettings(
        sign_in_address="30 per 15 minutes", kiosk_search="5 per minute", public_registration="3 per 15 minutes"
    )
    assert limits.sign_in_account == "10 per 15 minutes"
    return replace(settings, rate_limits=limits)


def sign_in(client: FlaskClient, email: str, password: str = "wrong password", address: str = "203.0.113.5") -> Any:
    answer = client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        environ_overrides={"REMOTE_ADDR": address},
    )
    client.delete_cookie("turnout_session")
    return answer


def assert_rate_limited(answer: Any) -> None:
    assert answer.status_code == 429, answer.get_data(as_text=True)
    assert 1 <= int(answer.headers["Retry-After"]) <= 15 * 60
    error = answer.get_json()["error"]
    assert error["code"] == "rate_limited" and error["field"] is None and "Try again in" in error["message"]


def test_the_eleventh_wrong_password_for_one_account_is_refused(app: Any, client: FlaskClient, org: Org) -> None:
    answers = [sign_in(client, org.owner_email) for _ in range(10)]
    assert [answer.status_code for answer in answers] == [401] * 10
    refused = sign_in(client, org.owner_email)
    assert_rate_limited(refused)
    assert refused.get_json()["error"]["message"].startswith("Too many failed sign-ins for this account.")
    # The right password waits too (from anywhere), as does the same account spelled differently.
    assert_rate_limited(sign_in(client, org.owner_email, PASSWORD, address="198.51.100.20"))
    assert_rate_limited(sign_in(client, f"  {org.owner_email.upper()} "))
    # Another account from the same address is not held by the first one's limit.
    other = new_org(app, client, "Other")
    assert sign_in(client, other.owner_email).status_code == 401
    assert sign_in(client, other.owner_email, PASSWORD).status_code == 200


def test_signing_in_again_and_again_is_never_refused(client: FlaskClient, org: Org) -> None:
    for _ in range(15):
        assert sign_in(client, org.owner_email, PASSWORD).status_code == 200


def test_the_form_counts_on_the_same_account_and_says_when_to_come_back(client: FlaskClient, org: Org) -> None:
    for _ in range(5):
        assert sign_in(client, org.owner_email).status_code == 401
    form = {"email": org.owner_email, "password": "wrong password", "next": "/events"}
    origin = SAME_SITE
    for _ in range(5):
        assert client.post("/login", data=form, headers=origin).status_code == 401
    refused = client.post("/login", data=form, headers=origin)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) >= 1
    page = refused.get_data(as_text=True)
    assert "Too many failed sign-ins for this account. Try again in" in page and 'id="login-error"' in page
    assert "turnout_session" not in refused.headers.get("Set-Cookie", "")
    assert_rate_limited(sign_in(client, org.owner_email, PASSWORD))


def test_one_address_trying_many_accounts_is_refused(client: FlaskClient, org: Org) -> None:
    address = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    for index in range(30):
        assert sign_in(client, f"nobody-{index}@example.org", address=address).status_code == 401
    refused = sign_in(client, org.owner_email, PASSWORD, address=address)
    assert_rate_limited(refused)
    assert refused.get_json()["error"]["message"].startswith("Too many sign-in attempts from your network.")
    assert sign_in(client, org.owner_email, PASSWORD, address="198.51.100.30").status_code == 200


def test_a_kiosk_searches_names_at_a_bounded_rate(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    first, _ = paired(client, org, event["id"])
    second, _ = paired(client, org, event["id"])
    for _ in range(5):
        assert client.get("/api/v1/kiosk/search?q=ada", headers=headers(first)).status_code == 200
    refused = client.get("/api/v1/kiosk/search?q=ada", headers=headers(first))
    assert_rate_limited(refused)
    assert refused.get_json()["error"]["message"].startswith("Too many name searches from this kiosk.")
    # Per kiosk: the next kiosk at the door searches on; the refused one still checks people in.
    assert client.get("/api/v1/kiosk/search?q=ada", headers=headers(second)).status_code == 200
    assert client.get("/api/v1/kiosk/roster", headers=headers(first)).status_code == 200
    # Without a kiosk token the answer is still "who are you", not a count.
    assert client.get("/api/v1/kiosk/search?q=ada").status_code == 401


def test_public_registration_is_bounded_per_address(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token, title="Open house")
    link = public_link(client, org, event["id"], ctx)

    def register(index: int, address: str = "203.0.113.77") -> Any:
        form = {"first_name": "Ada", "email": f"ada{index}@example.org", "consent_email": "yes"}
        return client.post(link, data=form, environ_overrides={"REMOTE_ADDR": address})

    assert [register(index).status_code for index in range(3)] == [201, 201, 201]
    refused = register(3)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many registrations from your network. Try again in" in refused.get_data(as_text=True)
    assert ctx.db["registrations"].count_documents({"event_id": event["id"]}) == 3
    assert register(4, address="198.51.100.40").status_code == 201
    # Reading the form is not limited.
    assert client.get(link, environ_overrides={"REMOTE_ADDR": "203.0.113.77"}).status_code == 200


def test_with_mongodb_storage_every_worker_counts_on_the_same_counters(
    settings: Any, service_env: dict[str, str]
) -> None:
    """Two apps stand for two gunicorn workers: in memory each would allow ten
    failures; in MongoDB they share them."""
    from checkin import create_app

    shared = replace(settings, rate_limits=replace(settings.rate_limits, storage_uri=service_env["MONGODB_URI"]))
    workers = [create_app(shared), create_app(shared)]
    try:
        clients = [worker.test_client() for worker in workers]
        org = new_org(workers[0], clients[0], "Shared")
        for attempt in range(10):
            assert sign_in(clients[attempt % 2], org.owner_email).status_code == 401
        assert_rate_limited(sign_in(clients[0], org.owner_email))
        assert_rate_limited(sign_in(clients[1], org.owner_email))
    finally:
        for worker in workers:
            worker.extensions["checkin"].client.close()
