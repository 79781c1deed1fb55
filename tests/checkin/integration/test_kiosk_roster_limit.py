"""The kiosk roster download is limited per kiosk (``TURNOUT_RATE_LIMIT_KIOSK_ROSTER``):
the kiosk page fetches it once a minute, so a stolen kiosk token cannot pull the
whole roster over and over, while every other kiosk, and the refused kiosk's own
check-ins, go on. Refusals are 429 with Retry-After."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, registered
from tests.checkin.integration.test_kiosks import paired
from tests.checkin.integration.test_rate_limits import assert_rate_limited
from turnout_common.config import SettingError

pytestmark = pytest.mark.integration

VARIABLE = "TURNOUT_RATE_LIMIT_KIOSK_ROSTER"


def roster(client: FlaskClient, token: str) -> Any:
    return client.get("/api/v1/kiosk/roster", headers=headers(token))


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "3 per minute")


@pytest.mark.usefixtures("small_limit")
def test_a_kiosk_downloads_its_roster_at_a_bounded_rate(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "amber@example.org", first_name="Amber", last_name="Nguyen")
    first, _ = paired(client, org, event["id"])
    second, _ = paired(client, org, event["id"])
    for _ in range(3):
        answer = roster(client, first)
        assert answer.status_code == 200 and len(answer.get_json()["people"]) == 1
    refused = roster(client, first)
    assert_rate_limited(refused)
    assert int(refused.headers["Retry-After"]) <= 60
    message = refused.get_json()["error"]["message"]
    assert message.startswith("Too many roster downloads from this kiosk. Try again in"), message
    assert "Amber" not in refused.get_data(as_text=True)
    # Per kiosk: the next kiosk at the door still gets it ...
    assert roster(client, second).status_code == 200
    # ... and the refused one still checks people in and searches.
    body = {"badge_code": reg["badge_code"], "client_key": f"k-{uuid.uuid4().hex}"}
    assert client.post("/api/v1/kiosk/checkins", headers=headers(first), json=body).status_code == 201
    assert client.get("/api/v1/kiosk/search?q=amber", headers=headers(first)).status_code == 200
    # Callers that are not a kiosk are told who may call, not counted.
    assert client.get("/api/v1/kiosk/roster").status_code == 401
    assert roster(client, org.token).status_code == 403


@pytest.fixture
def default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)


@pytest.mark.usefixtures("default_limit")
def test_by_default_a_kiosks_own_pace_is_far_below_the_limit(client: FlaskClient, org: Org) -> None:
    """The page asks once a minute, plus once when it starts, comes back online or
    staff tap "refresh": even a kiosk restarted several times in one minute is served."""
    event = create_event(client, org.token)
    token, _ = paired(client, org, event["id"])
    assert [roster(client, token).status_code for _ in range(10)] == [200] * 10
    assert_rate_limited(roster(client, token))


def test_the_limit_is_documented_in_the_openapi_description(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    responses = spec["paths"]["/api/v1/kiosk/roster"]["get"]["responses"]
    assert "429" in responses and "Retry-After" in responses["429"]["description"]


@pytest.mark.parametrize("bad", ["often", "10 per fortnight"])
def test_an_unusable_rate_stops_the_start(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    from checkin.config import Settings

    monkeypatch.setenv(VARIABLE, bad)
    with pytest.raises(SettingError, match=VARIABLE):
        Settings.from_env()
