"""The retention policy on the real SecantusDB: owners set it (stored, audited,
announced), organizers read it; the schedule says what each period means today."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import PASSWORD, Org, add_user, headers, new_org
from turnout_common.clock import parse_rfc3339
from turnout_common.contracts import registry
from turnout_common.privacy import DEFAULT_RETENTION, months_ago

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://localhost"}
CHOSEN = {"checkin_details": 6, "message_bodies": 3, "delivery_journal": 9, "tracking_events": 2, "inactive_people": 48}


def policy_messages(ctx: Any, org_id: str) -> list[Any]:
    found = [registry().parse(bytes(doc["payload"])) for doc in ctx.db["outbox"].find({"type": "retention.policy_set"})]
    return [message for message in found if message.data["org_id"] == org_id]


def test_until_an_owner_chooses_the_defaults_apply_with_todays_cutoffs(client: FlaskClient, org: Org) -> None:
    answer = client.get("/api/v1/retention", headers=headers(org.token))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["periods"] == DEFAULT_RETENTION.as_dict() and body["chosen"] is False and body["set_at"] is None
    kinds = {row["kind"]: row for row in body["kinds"]}
    assert list(kinds) == list(DEFAULT_RETENTION.as_dict())
    details = kinds["checkin_details"]
    assert details["months"] == details["default_months"] == 24 and details["is_default"] is True
    assert details["enforced_by"] == ["checkin", "analytics"] and "walk-ins" in details["covers"]
    assert kinds["inactive_people"]["enforced_by"] == ["checkin", "followup", "analytics"]
    expected = months_ago(datetime.now(UTC), 24)
    assert abs((parse_rfc3339(details["cutoff"]) - expected).total_seconds()) < 60


def test_an_owner_sets_the_periods_stored_audited_and_announced(app: Flask, client: FlaskClient, org: Org) -> None:
    ctx = app.extensions["checkin"]
    me = client.get("/api/v1/me", headers=headers(org.token)).get_json()
    answer = client.put("/api/v1/retention", json={"periods": CHOSEN}, headers=headers(org.token))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["periods"] == CHOSEN and body["chosen"] is True and body["set_by"] == me["id"]
    kinds = {row["kind"]: row for row in body["kinds"]}
    assert kinds["checkin_details"]["is_default"] is False and kinds["checkin_details"]["default_months"] == 24
    assert ctx.db["organizations"].find_one({"_id": org.id})["retention_periods"] == CHOSEN
    assert client.get("/api/v1/retention", headers=headers(org.token)).get_json()["periods"] == CHOSEN

    (message,) = policy_messages(ctx, org.id)
    assert message.subject == org.id
    assert message.data["periods"] == CHOSEN and message.data["set_by"] == me["id"]
    assert message.data["set_at"] == body["set_at"]
    assert ctx.db["outbox"].find_one({"_id": message.id})["key"] == org.id

    (entry,) = client.get("/api/v1/audit?action=retention.changed", headers=headers(org.token)).get_json()["entries"]
    assert entry["subject"] == {"kind": "organization", "id": org.id} and entry["actor"]["id"] == me["id"]
    assert entry["details"]["periods"] == CHOSEN
    assert entry["details"]["changed"]["checkin_details"] == {"from": 24, "to": 6}
    assert "inactive_people 36→48 months" in entry["summary"]

    # Kinds left out keep their period.
    partial = client.put("/api/v1/retention", json={"periods": {"tracking_events": 4}}, headers=headers(org.token))
    assert partial.get_json()["periods"] == {**CHOSEN, "tracking_events": 4}
    assert len(policy_messages(ctx, org.id)) == 2


def test_bad_periods_are_refused_naming_the_field(app: Flask, client: FlaskClient, org: Org) -> None:
    for periods, field in (
        ({"checkin_details": 0}, "periods.checkin_details"),
        ({"message_bodies": 121}, "periods.message_bodies"),
        ({"tracking_events": 2.5}, "periods.tracking_events"),
        ({"tracking_events": "12"}, "periods.tracking_events"),
        ({"inactive_people": True}, "periods.inactive_people"),
        ({"forever": 12}, "periods"),
        ({}, "periods"),
    ):
        answer = client.put("/api/v1/retention", json={"periods": periods}, headers=headers(org.token))
        assert answer.status_code == 400, periods
        assert answer.get_json()["error"]["field"] == field, (periods, answer.get_json())
    assert client.put("/api/v1/retention", json={"months": 12}, headers=headers(org.token)).status_code == 400
    assert app.extensions["checkin"].db["organizations"].find_one({"_id": org.id}).get("retention_periods") is None
    assert policy_messages(app.extensions["checkin"], org.id) == []


def test_organizers_read_the_schedule_and_only_owners_change_it(app: Flask, client: FlaskClient, org: Org) -> None:
    organizer = add_user(app, client, org.id, "organizer")
    assert client.get("/api/v1/retention", headers=headers(organizer)).status_code == 200
    refused = client.put("/api/v1/retention", json={"periods": CHOSEN}, headers=headers(organizer))
    assert refused.status_code == 403
    for role in ("door_staff", "viewer"):
        assert client.get("/api/v1/retention", headers=headers(add_user(app, client, org.id, role))).status_code == 403
    assert client.get("/api/v1/retention").status_code == 401
    # Each organization has its own policy.
    client.put("/api/v1/retention", json={"periods": CHOSEN}, headers=headers(org.token))
    other = new_org(app, client, "Other")
    assert client.get("/api/v1/retention", headers=headers(other.token)).get_json()["chosen"] is False


# -- the pages ------------------------------------------------------------------------------------


def browser(app: Flask, email: str) -> FlaskClient:
    signed_in = app.test_client()
    assert signed_in.post("/login", data={"email": email, "password": PASSWORD}, headers=ORIGIN).status_code == 303
    return signed_in


def user_email(app: Flask, org_id: str, role: str) -> str:
    from checkin.service_layer import organizations

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    user = organizations.new_user_doc(org_id, email, f"A {role}", PASSWORD, role)
    app.extensions["checkin"].db["users"].insert_one(user)
    return email


def test_the_retention_page_lets_owners_edit_and_organizers_read(app: Flask, org: Org) -> None:
    owner = browser(app, org.owner_email)
    page = owner.get("/retention")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Check-in details" in html and "24 months" in html and "These are the defaults" in html
    assert 'name="checkin_details"' in html and 'href="/retention"' in html

    form = {**{kind: str(months) for kind, months in CHOSEN.items()}, "checkin_details": "12"}
    saved = owner.post("/retention", data=form, headers=ORIGIN)
    assert saved.status_code == 303 and saved.headers["Location"].endswith("/retention?saved=1")
    after = owner.get("/retention?saved=1").get_data(as_text=True)
    assert "Saved." in after and "12 months" in after and "default 24" in after
    policy = app.extensions["checkin"].db["organizations"].find_one({"_id": org.id})["retention_periods"]
    assert policy["checkin_details"] == 12

    bad = owner.post("/retention", data={**form, "delivery_journal": "999"}, headers=ORIGIN)
    assert bad.status_code == 400
    assert 'id="f-delivery_journal-error">Enter a whole number of months from 1 to 120.' in bad.get_data(as_text=True)
    assert 'value="999"' in bad.get_data(as_text=True)  # what was typed stays
    assert owner.post("/retention", data=form, headers={"Origin": "https://evil.example"}).status_code == 403

    organizer = browser(app, user_email(app, org.id, "organizer"))
    read_only = organizer.get("/retention")
    assert read_only.status_code == 200 and 'name="checkin_details"' not in read_only.get_data(as_text=True)
    assert "Only an owner can change" in read_only.get_data(as_text=True)
    assert organizer.post("/retention", data=form, headers=ORIGIN).status_code == 403
    assert browser(app, user_email(app, org.id, "door_staff")).get("/retention").status_code == 403
    assert app.test_client().get("/retention").status_code == 302
