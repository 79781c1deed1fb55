"""Greeters on the real SecantusDB: the organizer names them (users or volunteers),
each greeter's signed link lists the first-timers who checked in and marks them
welcomed once (attendee.welcomed in the same transaction), the link dies with its
greeter, and a person's export and erasure cover their welcomes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, add_user, check_in, create_event, headers, new_org, registered
from tests.checkin.integration.test_pages import browser
from turnout_common.contracts import registry
from turnout_common.privacy import pseudonym

pytestmark = pytest.mark.integration


def welcomed_messages(ctx: Any, registration_id: str) -> list[Any]:
    found = [registry().parse(bytes(doc["payload"])) for doc in ctx.db["outbox"].find({"type": "attendee.welcomed"})]
    return [message for message in found if message.data["registration_id"] == registration_id]


def link_path(greeter: dict[str, Any]) -> str:
    return urlsplit(greeter["link"]).path


def test_greeters_are_named_listed_and_their_link_sees_and_welcomes_first_timers(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    ctx = app.extensions["checkin"]
    event = create_event(client, org.token, kind="networking")
    base = f"/api/v1/events/{event['id']}/greeters"
    named = client.post(base, json={"name": "Grace Hopper", "email": "grace@example.org"}, headers=headers(org.token))
    assert named.status_code == 201, named.get_json()
    grace = named.get_json()
    assert grace["kind"] == "volunteer" and link_path(grace).startswith("/greet/")
    again = client.post(base, json={"name": "Grace", "email": "GRACE@example.org"}, headers=headers(org.token))
    assert again.status_code == 200 and again.get_json()["id"] == grace["id"]  # the same volunteer, once
    bad = client.post(base, json={"name": "  ", "email": "nope"}, headers=headers(org.token))
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "name"
    assert client.get(base, headers=headers(org.token)).get_json()["greeters"] == [grace]
    door = add_user(app, client, org.id, "door_staff")
    assert client.post(base, json={"name": "X", "email": "x@example.org"}, headers=headers(door)).status_code == 403

    first = registered(client, org.token, event["id"], "ada@example.org", offers=["python"], seeks=["a mentor"])
    regular = registered(client, org.token, event["id"], "bob@example.org", first_name="Bob")
    other = create_event(client, org.token)
    earlier = registered(client, org.token, other["id"], "bob@example.org", first_name="Bob")
    assert check_in(client, org.token, other["id"], badge_code=earlier["badge_code"]).status_code == 201
    for reg in (first, regular):
        assert check_in(client, org.token, event["id"], badge_code=reg["badge_code"]).status_code == 201

    feed = client.get(link_path(grace).replace("/greet/", "/api/v1/greet/") + "/arrivals")
    assert feed.status_code == 200, feed.get_json()
    [ada] = feed.get_json()["first_timers"]  # Bob has been before: not a first-timer
    assert (ada["name"], ada["offers"], ada["seeks"], ada["welcomed"]) == ("Ada L.", ["python"], ["a mentor"], False)
    assert "Lovelace" not in feed.get_data(as_text=True) and "ada@example.org" not in feed.get_data(as_text=True)

    welcomes = link_path(grace).replace("/greet/", "/api/v1/greet/") + "/welcomes"
    done = client.post(welcomes, json={"registration_id": first["id"]})
    assert done.status_code == 201, done.get_json()
    assert done.get_json()["welcomed_by"] == "Grace Hopper"
    assert client.post(welcomes, json={"registration_id": first["id"]}).get_json() == done.get_json()
    assert client.post(welcomes, json={"registration_id": first["id"]}).status_code == 200
    refused = client.post(welcomes, json={"registration_id": regular["id"]})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_a_first_timer"
    assert client.post(welcomes, json={"registration_id": earlier["id"]}).status_code == 404  # another event's

    (message,) = welcomed_messages(ctx, first["id"])
    assert message.subject == event["id"]
    assert message.data == {
        "org_id": org.id,
        "event_id": event["id"],
        "registration_id": first["id"],
        "person_id": first["person_id"],
        "greeter_id": grace["id"],
        "greeter_kind": "volunteer",
        "welcomed_at": done.get_json()["welcomed_at"],
    }
    later = client.get(link_path(grace).replace("/greet/", "/api/v1/greet/") + "/arrivals").get_json()
    assert later["first_timers"][0]["welcomed"] is True and later["first_timers"][0]["welcomed_by"] == "Grace Hopper"
    page = client.get(link_path(grace))  # no sign-in: the link is the key
    assert page.status_code == 200 and "Ada L." in page.get_data(as_text=True)

    removed = client.delete(f"{base}/{grace['id']}", headers=headers(org.token))
    assert removed.status_code == 200
    assert client.get(link_path(grace)).status_code == 404
    gone = client.get(link_path(grace).replace("/greet/", "/api/v1/greet/") + "/arrivals")
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "greeter_link_refused"
    assert client.get(link_path(grace)[:-3] + "abc").status_code == 404  # a tampered link


def test_a_user_greeter_opens_their_page_signed_in_and_another_org_sees_nothing(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    event = create_event(client, org.token)
    me = client.get("/api/v1/me", headers=headers(org.token)).get_json()
    signed_in = browser(app, org.owner_email)
    assert signed_in.get(f"/events/{event['id']}/greet").status_code == 403  # not named yet
    base = f"/api/v1/events/{event['id']}/greeters"
    named = client.post(base, json={"user_id": me["id"]}, headers=headers(org.token))
    assert named.status_code == 201 and named.get_json()["kind"] == "user"
    page = signed_in.get(f"/events/{event['id']}/greet")
    assert page.status_code == 200 and "First-timers arriving" in page.get_data(as_text=True)
    event_page = signed_in.get(f"/events/{event['id']}").get_data(as_text=True)
    assert "Greeters" in event_page and named.get_json()["link"] in event_page

    other = new_org(app, client, "Beta")
    assert client.get(base, headers=headers(other.token)).status_code == 404
    stranger = client.post(base, json={"user_id": me["id"]}, headers=headers(other.token))
    assert stranger.status_code == 404


def test_a_persons_export_lists_their_welcome_and_erasure_keeps_it_under_the_pseudonym(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    ctx = app.extensions["checkin"]
    event = create_event(client, org.token)
    greeter = client.post(
        f"/api/v1/events/{event['id']}/greeters",
        json={"name": "Sam", "email": "sam@example.org"},
        headers=headers(org.token),
    ).get_json()
    reg = registered(client, org.token, event["id"], "newcomer@example.org", first_name="Nia")
    assert check_in(client, org.token, event["id"], badge_code=reg["badge_code"]).status_code == 201
    welcomes = link_path(greeter).replace("/greet/", "/api/v1/greet/") + "/welcomes"
    assert client.post(welcomes, json={"registration_id": reg["id"]}).status_code == 201

    export = client.post(f"/api/v1/people/{reg['person_id']}/export", headers=headers(org.token))
    assert export.status_code == 201
    summary = export.get_json()["services"]["checkin"]["summary"]
    assert summary["counts"]["welcomes"] == 1

    erased = client.post(f"/api/v1/people/{reg['person_id']}/erasure", headers=headers(org.token))
    assert erased.status_code == 201
    assert erased.get_json()["services"]["checkin"]["counts"]["welcomes"] == 1
    kept = ctx.db["welcomes"].find_one({"_id": reg["id"]})
    assert kept["person_id"] == pseudonym(org.id, reg["person_id"])
    assert ctx.db["welcomes"].count_documents({"person_id": reg["person_id"]}) == 0
