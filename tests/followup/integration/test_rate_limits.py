"""Abuse limits on the links inside follow-up emails: each link route per
client address (a page for the HTML ones, the JSON error for the click
redirect), every refusal a 429 with Retry-After; the open pixel is not limited."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from followup import create_app
from followup.config import Settings
from followup.service_layer.context import Services
from turnout_common.config import RateLimitSettings

pytestmark = pytest.mark.integration

ADDRESS = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def app(settings: Settings, svc: Services) -> Flask:
    app: Flask = create_app(replace(settings, rate_limits=RateLimitSettings(links="3 per minute")))
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_each_link_route_is_bounded_per_address_with_a_page(client: FlaskClient, svc: Services) -> None:
    token = svc.links.feedback("no-such-message")
    answers = [client.get(f"/f/{token}?rating=5", environ_overrides=ADDRESS) for _ in range(3)]
    assert all(answer.status_code == 404 for answer in answers), [a.status_code for a in answers]
    refused = client.get(f"/f/{token}?rating=5", environ_overrides=ADDRESS)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Cache-Control"] == "no-store"
    assert "Too many requests from your network. Try again in" in refused.get_data(as_text=True)
    # Another address, and another link route from this address, go on.
    assert client.get(f"/f/{token}?rating=5", environ_overrides={"REMOTE_ADDR": "198.51.100.3"}).status_code == 404
    unsubscribe = svc.links.unsubscribe("no-such-message")
    assert client.post(f"/u/{unsubscribe}", environ_overrides=ADDRESS).status_code == 404


def test_the_unsubscribe_page_and_one_click_are_bounded(client: FlaskClient, svc: Services) -> None:
    token = svc.links.unsubscribe("no-such-message")
    for _ in range(3):
        client.get(f"/u/{token}", environ_overrides=ADDRESS)
    assert client.get(f"/u/{token}", environ_overrides=ADDRESS).status_code == 429
    for _ in range(3):
        client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}, environ_overrides=ADDRESS)
    refused = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}, environ_overrides=ADDRESS)
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_the_click_redirect_answers_with_the_json_error(client: FlaskClient, svc: Services) -> None:
    target = "https://example.org/photos"
    token = svc.links.click("no-such-message", target)
    for _ in range(3):
        assert client.get(f"/c/{token}", query_string={"u": target}, environ_overrides=ADDRESS).status_code != 429
    refused = client.get(f"/c/{token}", query_string={"u": target}, environ_overrides=ADDRESS)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Location" not in refused.headers
    error = refused.get_json()["error"]
    assert error["code"] == "rate_limited" and error["field"] is None
    assert error["message"].startswith("Too many requests from your network.")


def test_the_open_pixel_is_not_limited(client: FlaskClient, svc: Services) -> None:
    token = svc.links.open("no-such-message")
    answers: list[Any] = [client.get(f"/o/{token}.gif", environ_overrides=ADDRESS) for _ in range(6)]
    assert all(answer.status_code != 429 for answer in answers)
