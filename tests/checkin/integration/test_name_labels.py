"""Events carry ``name_labels`` (print a name label at check-in): set on create and
edit, stored, shown to the event's kiosk and carried in event.scheduled/event.updated."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers
from tests.checkin.integration.test_kiosks import paired
from tests.checkin.integration.test_pages import SAME_SITE, browser
from turnout_common.contracts import registry

pytestmark = pytest.mark.integration


def event_messages(ctx: Any, event_id: str) -> list[Any]:
    docs = ctx.db["outbox"].find({"type": {"$in": ["event.scheduled", "event.updated"]}})
    found = [registry().parse(bytes(doc["payload"])) for doc in docs]
    return sorted((m for m in found if m.data["event_id"] == event_id), key=lambda m: m.time)


def test_name_labels_default_off_can_be_turned_on_and_reach_kiosk_and_messages(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    ctx = app.extensions["checkin"]
    plain = create_event(client, org.token)
    assert plain["name_labels"] is False
    labelled = create_event(client, org.token, name_labels=True)
    assert labelled["name_labels"] is True
    fetched = client.get(f"/api/v1/events/{labelled['id']}", headers=headers(org.token)).get_json()
    assert fetched["name_labels"] is True

    token, _ = paired(client, org, labelled["id"])
    roster = client.get("/api/v1/kiosk/roster", headers=headers(token)).get_json()
    assert roster["event"]["name_labels"] is True

    edited = client.patch(f"/api/v1/events/{plain['id']}", json={"name_labels": True}, headers=headers(org.token))
    assert edited.status_code == 200 and edited.get_json()["name_labels"] is True
    scheduled, updated = event_messages(ctx, plain["id"])
    assert (scheduled.type, scheduled.data["name_labels"]) == ("event.scheduled", False)
    assert (updated.type, updated.data["name_labels"]) == ("event.updated", True)
    assert "series_id" not in scheduled.data  # a one-off event is in no series


def test_name_labels_must_be_a_boolean(client: FlaskClient, org: Org) -> None:
    from tests.checkin.integration.conftest import event_body

    answer = client.post("/api/v1/events", json=event_body(name_labels="yes"), headers=headers(org.token))
    assert answer.status_code == 400
    assert "name_labels" in str(answer.get_json())


def test_the_event_page_toggles_name_labels(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    organizer = browser(app, org.owner_email)
    page = organizer.get(f"/events/{event['id']}")
    assert "Name labels at check-in: <strong>off</strong>" in page.get_data(as_text=True)
    answer = organizer.post(f"/events/{event['id']}/name-labels", data={"name_labels": "yes"}, headers=SAME_SITE)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    page = organizer.get(f"/events/{event['id']}")
    assert "Name labels at check-in: <strong>on</strong>" in page.get_data(as_text=True)
