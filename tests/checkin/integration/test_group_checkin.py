"""Group check-in and name labels at the door, on the real SecantusDB: a kiosk
scan answers with the others of the person's party and their label; each
member is then checked in with its own client key (counted once, replays
change nothing); the waitlisted are not let in with the group."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, check_in, create_event, headers, registered
from tests.checkin.integration.test_kiosks import paired

pytestmark = pytest.mark.integration


def kiosk_checkin(client: FlaskClient, token: str, **body: Any) -> Any:
    body.setdefault("client_key", f"kiosk-{uuid.uuid4().hex}")
    return client.post("/api/v1/kiosk/checkins", json=body, headers=headers(token))


def test_a_scan_offers_the_group_and_each_member_is_checked_in_once(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token, capacity=3)
    eid = event["id"]
    ada = registered(client, org.token, eid, "ada@example.org", party="Order 4401")
    bob = registered(client, org.token, eid, "bob@example.org", first_name="Bob", last_name="Byron", party="Order 4401")
    cy = registered(client, org.token, eid, "cy@example.org", first_name="Cy", last_name="Chen", party="Order 4401")
    dee = registered(client, org.token, eid, "dee@example.org", first_name="Dee", last_name="Dunn", party="Order 4401")
    gone = registered(client, org.token, eid, "eve@example.org", first_name="Eve", last_name="Ek", party="Order 4401")
    other = registered(client, org.token, eid, "zed@example.org", first_name="Zed", party="Order 9")
    assert dee["status"] == "waitlisted"  # the fourth of a capacity of three
    cancel = client.post(f"/api/v1/registrations/{gone['id']}/cancel", json={}, headers=headers(org.token))
    assert cancel.status_code == 200
    token, _ = paired(client, org, eid)

    first = kiosk_checkin(client, token, badge_code=ada["badge_code"], method="qr")
    assert first.status_code == 201
    group = first.get_json()["group"]
    # Cancelled Eve is not listed; the waitlisted Dee is, marked; names are first name + last initial.
    assert [(m["name"], m["checked_in"], m["waitlisted"]) for m in group] == [
        ("Bob B.", False, False),
        ("Cy C.", False, False),
        ("Dee D.", False, True),
    ]
    assert "label" not in first.get_json()  # this event prints no labels
    assert first.get_json()["has_email"] is True

    key = f"group-{uuid.uuid4().hex}"
    bob_in = kiosk_checkin(
        client, token, registration_id=bob["id"], method="search", group_of=ada["id"], client_key=key
    )
    assert bob_in.status_code == 201 and bob_in.get_json()["status"] == "checked_in"
    replay = kiosk_checkin(
        client, token, registration_id=bob["id"], method="search", group_of=ada["id"], client_key=key
    )
    assert replay.status_code == 201 and replay.get_json()["replayed"] is True
    again = kiosk_checkin(client, token, registration_id=bob["id"], method="search", group_of=ada["id"])
    assert again.status_code == 200 and again.get_json()["status"] == "already_checked_in"

    waitlisted = kiosk_checkin(client, token, registration_id=dee["id"], method="search", group_of=ada["id"])
    assert waitlisted.status_code == 409
    assert waitlisted.get_json()["error"]["code"] == "waitlisted_in_group"
    stranger = kiosk_checkin(client, token, registration_id=other["id"], method="search", group_of=ada["id"])
    assert stranger.status_code == 409 and stranger.get_json()["error"]["code"] == "not_in_group"
    bad = kiosk_checkin(client, token, registration_id=cy["id"], group_of="")
    assert bad.status_code == 400

    # Staff see the same group, Bob now in; staff check Cy in with the group.
    members = client.get(f"/api/v1/events/{eid}/registrations/{ada['id']}/group", headers=headers(org.token))
    assert [(m["first_name"], m["checked_in"]) for m in members.get_json()["members"]] == [
        ("Bob", True),
        ("Cy", False),
        ("Dee", False),
    ]
    cy_in = check_in(client, org.token, eid, registration_id=cy["id"], method="staff", group_of=ada["id"])
    assert cy_in.status_code == 201
    assert {m["first_name"]: m["checked_in"] for m in cy_in.get_json()["group"]} == {
        "Ada": True,
        "Bob": True,
        "Dee": False,
    }
    alone = client.get(f"/api/v1/events/{eid}/registrations/{other['id']}/group", headers=headers(org.token))
    assert alone.get_json()["members"] == []
    missing = client.get(f"/api/v1/events/{eid}/registrations/nope/group", headers=headers(org.token))
    assert missing.status_code == 404

    # Each counted once: Ada, Bob and Cy in; Dee still waitlisted and not in.
    stored = {r["first_name"]: r for r in ctx.db["registrations"].find({"event_id": eid})}
    assert [name for name, r in sorted(stored.items()) if r.get("checkin")] == ["Ada", "Bob", "Cy"]
    assert stored["Dee"]["status"] == "waitlisted"
    assert ctx.db["people"].find_one({"_id": stored["Bob"]["person_id"]})["visits"] == 1


def test_a_label_event_answers_the_label_and_the_label_page_renders(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token, kind="networking", title="Founders & Friends")
    eid = event["id"]
    ctx.db["events"].update_one({"_id": eid}, {"$set": {"name_labels": True}})
    ada = registered(client, org.token, eid, "ada@example.org", offers=["python", "mentoring"], seeks=["a co-founder"])
    token, _ = paired(client, org, eid)
    answer = kiosk_checkin(client, token, badge_code=ada["badge_code"], method="qr")
    assert answer.status_code == 201
    assert answer.get_json()["label"] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "offers": ["python", "mentoring"],
        "seeks": ["a co-founder"],
        "first_time": True,
        "event_title": "Founders & Friends",
    }
    # A repeat scan is no new check-in: no second label.
    assert "label" not in kiosk_checkin(client, token, badge_code=ada["badge_code"]).get_json()

    # The label page, as the staff view opens it (signed in with a session cookie).
    client.post("/api/v1/auth/login", json={"email": org.owner_email, "password": "correct-horse-battery"})
    page = client.get(f"/events/{eid}/registrations/{ada['id']}/label?size=4x3in")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-size="4x3in"' in html and "label-4x3in.css" in html
    assert "Lovelace" in html and "First time here" in html and "a co-founder" in html
    assert client.get(f"/events/{eid}/registrations/{ada['id']}/label?size=A4").status_code == 400
    assert client.get(f"/events/{eid}/registrations/nope/label").status_code == 404
