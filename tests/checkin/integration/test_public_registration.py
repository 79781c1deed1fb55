"""The public registration link: register without an account, consent asked, badge shown."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers

pytestmark = pytest.mark.integration


def public_link(client: FlaskClient, org: Org, event_id: str, ctx: Any) -> str:
    event = ctx.db["events"].find_one({"_id": event_id})
    return f"/r/{event['public_token']}"


def test_anyone_with_the_link_can_register_and_gets_a_badge(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token, title="Open house")
    link = public_link(client, org, event["id"], ctx)
    form = client.get(link)
    assert form.status_code == 200 and "Open house" in form.get_data(as_text=True)
    answer = client.post(
        link,
        data={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.org",
            "offers": "mentoring, grant writing",
            "seeks": "Web development",
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 201, page[:500]
    assert "registered" in page and "<svg" in page
    registration = ctx.db["registrations"].find_one({"event_id": event["id"]})
    assert registration["source"] == "public"
    assert registration["consent_email"] is False  # never assumed: the box was not ticked
    assert registration["offers"] == ["mentoring", "grant writing"]
    assert registration["seeks"] == ["web development"]
    message = ctx.db["outbox"].find_one({"type": "attendee.registered", "key": event["id"]})
    assert message is not None
    # Registering again is not a second registration.
    again = client.post(link, data={"first_name": "Ada", "email": "ADA@example.org", "consent_email": "yes"})
    assert again.status_code == 200 and "already registered" in again.get_data(as_text=True)
    assert ctx.db["registrations"].count_documents({"event_id": event["id"]}) == 1


def test_bad_input_says_what_to_fix_and_stores_nothing(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    link = public_link(client, org, event["id"], ctx)
    answer = client.post(link, data={"first_name": "", "email": "not-an-email"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "valid email" in page and "first name" in page
    assert ctx.db["registrations"].count_documents({"event_id": event["id"]}) == 0
    assert client.get("/r/not-a-real-token-at-all").status_code == 404


def test_the_link_closes_with_the_event_and_shows_on_the_event_page(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    link = public_link(client, org, event["id"], ctx)
    client.set_cookie("turnout_session", org.token)
    page = client.get(f"/events/{event['id']}").get_data(as_text=True)
    assert re.search(re.escape(link) + r'"', page)
    assert client.post(f"/api/v1/events/{event['id']}/cancel", json={}, headers=headers(org.token)).status_code == 200
    assert client.get(link).status_code == 410
    assert client.post(link, data={"first_name": "Late", "email": "late@example.org"}).status_code == 410
