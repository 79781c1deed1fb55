"""A registration's ``party`` (group/order key) on the real SecantusDB: the API and an Eventbrite import."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, register, registered
from tests.checkin.integration.test_imports import queued, report, run_imports

pytestmark = pytest.mark.integration


def test_the_api_stores_a_trimmed_party_and_refuses_a_long_one(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    ada = registered(client, org.token, event["id"], "ada@example.org", party="  Lovelace   family ")
    assert ada["party"] == "Lovelace family"
    bob = registered(client, org.token, event["id"], "bob@example.org", first_name="Bob")
    assert bob["party"] is None
    assert ctx.db["registrations"].find_one({"_id": ada["id"]})["party"] == "Lovelace family"
    assert "party" not in ctx.db["registrations"].find_one({"_id": bob["id"]})

    too_long = register(client, org.token, event["id"], "cy@example.org", party="p" * 101)
    assert too_long.status_code == 400
    assert "party" in too_long.get_json()["error"]["message"]
    listed = client.get(f"/api/v1/events/{event['id']}/registrations", headers=headers(org.token)).get_json()
    assert {reg["first_name"]: reg["party"] for reg in listed["registrations"]} == {
        "Ada": "Lovelace family",
        "Bob": None,
    }


def test_an_eventbrite_order_becomes_the_party_of_its_rows(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    raw = (
        b"Order #,First Name,Last Name,Email,Ticket Type,Attendee Status\n"
        b"4401,Ada,Lovelace,ada@example.org,GA,Attending\n"
        b"4401,Charles,Babbage,charles@example.org,GA,Attending\n"
        b"4402,Grace,Hopper,grace@example.org,GA,Attending\n"
    )
    job = queued(client, org.token, event["id"], raw)
    run_imports(ctx)
    assert report(client, org.token, job["id"])["created"] == 3
    parties = {reg["first_name"]: reg.get("party") for reg in ctx.db["registrations"].find({"event_id": event["id"]})}
    assert parties == {"Ada": "4401", "Charles": "4401", "Grace": "4402"}
