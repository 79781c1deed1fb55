"""People of an organization against the real database: finding them, a person
with their registrations (the view is audited), correcting a name or email
(the person, their registrations' copies, person.updated, the audit entry,
400/404/409), and the organizer pages /people and /people/<id>."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import (
    Org,
    add_user,
    check_in,
    create_event,
    headers,
    new_org,
    registered,
)
from tests.checkin.integration.test_pages import SAME_SITE, browser, text_of
from tests.checkin.integration.test_pages import add_user as add_page_user

pytestmark = pytest.mark.integration


def outbox(ctx: Any, event_type: str) -> list[dict[str, Any]]:
    """The data of the messages of ``event_type`` waiting in checkin's outbox."""
    return [json.loads(doc["payload"])["data"] for doc in ctx.db["outbox"].find({"type": event_type})]


def audit_entries(ctx: Any, org_id: str, action: str) -> list[dict[str, Any]]:
    return list(ctx.db["audit_log"].find({"org_id": org_id, "action": action}))


@pytest.fixture
def ada(client: FlaskClient, org: Org) -> dict[str, Any]:
    """Ada, registered at two events and checked in at one; Bo, another person."""
    first = create_event(client, org.token, title="Harbour clean-up")
    second = create_event(client, org.token, title="Grant writing workshop", kind="workshop")
    email = f"ada.{uuid.uuid4().hex[:6]}@example.org"
    at_first = registered(client, org.token, first["id"], email, first_name="Ada", last_name="Lovelace")
    at_second = registered(
        client, org.token, second["id"], email, first_name="Ada", last_name="Lovelace", offers=["Design"]
    )
    assert check_in(client, org.token, first["id"], badge_code=at_first["badge_code"]).status_code == 201
    bo = registered(client, org.token, first["id"], "bo@example.org", first_name="Bo", last_name="Diddley")
    return {
        "person_id": at_first["person_id"],
        "email": email,
        "events": [first, second],
        "registrations": [at_first, at_second],
        "bo": bo,
    }


# -- finding people -----------------------------------------------------------------------------------------


def test_people_are_found_by_a_word_of_their_name_or_the_start_of_their_email(
    app: Flask, client: FlaskClient, org: Org, ada: dict[str, Any]
) -> None:
    def found(q: str, **params: Any) -> Any:
        answer = client.get("/api/v1/people", query_string={"q": q, **params}, headers=headers(org.token))
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    everyone = found("")
    assert everyone["total"] == 2 and {p["first_name"] for p in everyone["people"]} == {"Ada", "Bo"}
    assert [p["id"] for p in found("love")["people"]] == [ada["person_id"]]  # a word of the name
    assert [p["id"] for p in found("LOVÉ")["people"]] == [ada["person_id"]]  # case and accents ignored
    assert [p["id"] for p in found(ada["email"][:6])["people"]] == [ada["person_id"]]  # the email's start
    assert found("ovelace")["total"] == 0  # not the middle of a word
    ada_row = found("ada")["people"][0]
    assert ada_row["email"] == ada["email"] and ada_row["visits"] == 1
    page = found("", limit=1, offset=1)
    assert page["total"] == 2 and len(page["people"]) == 1
    # Another organization finds none of them.
    other = new_org(app, client, "Other")
    answer = client.get("/api/v1/people", query_string={"q": "ada"}, headers=headers(other.token))
    assert answer.get_json() == {"total": 0, "people": []}
    too_long = client.get("/api/v1/people", query_string={"q": "x" * 101}, headers=headers(org.token))
    assert too_long.status_code == 400 and too_long.get_json()["error"]["field"] == "q"


def test_door_staff_and_viewers_cannot_see_people(
    app: Flask, client: FlaskClient, org: Org, ada: dict[str, Any]
) -> None:
    for role in ("door_staff", "viewer"):
        token = add_user(app, client, org.id, role)
        assert client.get("/api/v1/people", headers=headers(token)).status_code == 403
        assert client.get(f"/api/v1/people/{ada['person_id']}", headers=headers(token)).status_code == 403
        patched = client.patch(f"/api/v1/people/{ada['person_id']}", json={"first_name": "X"}, headers=headers(token))
        assert patched.status_code == 403
    assert client.get("/api/v1/people").status_code == 401


# -- one person ---------------------------------------------------------------------------------------------


def test_a_person_shows_their_registrations_and_the_view_is_audited(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, ada: dict[str, Any]
) -> None:
    answer = client.get(f"/api/v1/people/{ada['person_id']}", headers=headers(org.token))
    assert answer.status_code == 200, answer.get_json()
    shown = answer.get_json()
    assert (shown["first_name"], shown["last_name"], shown["email"]) == ("Ada", "Lovelace", ada["email"])
    by_event = {reg["event_title"]: reg for reg in shown["registrations"]}
    assert set(by_event) == {"Harbour clean-up", "Grant writing workshop"}
    assert by_event["Harbour clean-up"]["checked_in_at"] is not None
    assert by_event["Grant writing workshop"]["checked_in_at"] is None
    assert by_event["Grant writing workshop"]["offers"] == ["design"]
    viewed = audit_entries(ctx, org.id, "personal_data.viewed")
    assert len(viewed) == 1
    assert viewed[0]["subject"] == {"kind": "person", "id": ada["person_id"]}
    assert viewed[0]["actor"]["kind"] == "user"
    # Another organization's person is not found, and nothing is recorded for it.
    other = new_org(app, client, "Other")
    assert client.get(f"/api/v1/people/{ada['person_id']}", headers=headers(other.token)).status_code == 404
    assert client.get("/api/v1/people/no-such-person", headers=headers(org.token)).status_code == 404
    assert audit_entries(ctx, other.id, "personal_data.viewed") == []


# -- correction ---------------------------------------------------------------------------------------------


def test_a_correction_reaches_the_registrations_the_message_and_the_trail(
    client: FlaskClient, org: Org, ctx: Any, ada: dict[str, Any]
) -> None:
    new_email = f"augusta.{uuid.uuid4().hex[:6]}@example.org"
    answer = client.patch(
        f"/api/v1/people/{ada['person_id']}",
        json={"first_name": "Augusta", "email": new_email},
        headers=headers(org.token),
    )
    assert answer.status_code == 200, answer.get_json()
    corrected = answer.get_json()
    assert (corrected["first_name"], corrected["email"]) == ("Augusta", new_email)
    assert corrected["changed"] == ["first_name", "email"]
    # The registrations' copies (what the door and the badges show) follow.
    for reg in ada["registrations"]:
        stored = ctx.db["registrations"].find_one({"_id": reg["id"]})
        assert (stored["first_name"], stored["name_folded"]) == ("Augusta", "augusta lovelace")
        assert stored["email_hint"].startswith("a…")
    # The other services learn it: the new name and address, and the address it replaces.
    [message] = outbox(ctx, "person.updated")
    assert message["person_id"] == ada["person_id"] and message["first_name"] == "Augusta"
    assert message["email"] == new_email and message["previous_email"] == ada["email"]
    [entry] = audit_entries(ctx, org.id, "person.corrected")
    assert entry["details"] == {"fields": ["first_name", "email"]}
    assert ada["email"] not in str(entry) and new_email not in str(entry)  # the trail names fields, not values
    # Searching by the new address finds them; the old address finds nobody.
    found = client.get("/api/v1/people", query_string={"q": new_email}, headers=headers(org.token)).get_json()
    assert [p["id"] for p in found["people"]] == [ada["person_id"]]
    gone = client.get("/api/v1/people", query_string={"q": ada["email"]}, headers=headers(org.token)).get_json()
    assert gone["total"] == 0
    # Nothing to change: nothing published.
    again = client.patch(
        f"/api/v1/people/{ada['person_id']}", json={"first_name": "Augusta"}, headers=headers(org.token)
    )
    assert again.status_code == 200 and again.get_json()["changed"] == []
    assert len(outbox(ctx, "person.updated")) == 1


def test_an_email_another_person_has_is_refused_with_409(
    client: FlaskClient, org: Org, ctx: Any, ada: dict[str, Any]
) -> None:
    answer = client.patch(
        f"/api/v1/people/{ada['person_id']}", json={"email": "BO@example.org"}, headers=headers(org.token)
    )
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert error["code"] == "email_taken" and error["field"] == "email" and "another person" in error["message"]
    assert ctx.db["people"].find_one({"_id": ada["person_id"]})["email"] == ada["email"]
    assert outbox(ctx, "person.updated") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"first_name": ""}, "first_name"),
        ({"first_name": "   "}, "first_name"),
        ({"email": "not-an-address"}, "email"),
        ({"nickname": "Ada"}, None),
        ({}, None),
    ],
)
def test_a_bad_correction_is_a_400_naming_what_to_fix(
    client: FlaskClient, org: Org, ada: dict[str, Any], body: dict[str, Any], field: str | None
) -> None:
    answer = client.patch(f"/api/v1/people/{ada['person_id']}", json=body, headers=headers(org.token))
    assert answer.status_code == 400, answer.get_json()
    error = answer.get_json()["error"]
    assert error["message"]
    if field is not None:
        assert error["field"] == field


def test_another_organizations_person_cannot_be_corrected(
    app: Flask, client: FlaskClient, ada: dict[str, Any], ctx: Any
) -> None:
    other = new_org(app, client, "Other")
    answer = client.patch(
        f"/api/v1/people/{ada['person_id']}", json={"first_name": "Mallory"}, headers=headers(other.token)
    )
    assert answer.status_code == 404
    assert ctx.db["people"].find_one({"_id": ada["person_id"]})["first_name"] == "Ada"


# -- pages --------------------------------------------------------------------------------------------------


def test_the_people_page_finds_a_person_and_their_page_shows_everything(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, ada: dict[str, Any]
) -> None:
    page = browser(app, org.owner_email)
    listing = page.get("/people?q=lovelace")
    assert listing.status_code == 200
    text = text_of(listing)
    assert "Ada Lovelace" in text and ada["email"] in text and "Bo Diddley" not in text
    assert f'href="/people/{ada["person_id"]}"' in listing.get_data(as_text=True)
    assert "People" in text  # in the navigation
    person = page.get(f"/people/{ada['person_id']}")
    assert person.status_code == 200
    html = person.get_data(as_text=True)
    text = text_of(person)
    assert "Harbour clean-up" in text and "Grant writing workshop" in text
    assert "Save correction" in text and "Export their data" in text and "Erase this person" in text
    assert 'id="correct-form"' in html and 'src="/static/js/people.js"' in html
    # Under the default policy: no inline script or style, scripts from files.
    assert "script-src 'self'" in person.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))", html)
    assert " style=" not in html and "onclick" not in html
    assert page.get("/static/js/people.js").status_code == 200
    assert len(audit_entries(ctx, org.id, "personal_data.viewed")) == 1
    assert page.get("/people/no-such-person").status_code == 404


def test_people_pages_are_for_owners_and_organizers(
    app: Flask, client: FlaskClient, org: Org, ada: dict[str, Any]
) -> None:
    assert client.get("/people").status_code == 302
    assert client.get(f"/people/{ada['person_id']}").headers["Location"].startswith("/login?next=")
    organizer = browser(app, add_page_user(app, org.id, "organizer"))
    assert organizer.get("/people").status_code == 200
    for role in ("door_staff", "viewer"):
        staff = browser(app, add_page_user(app, org.id, role))
        refused = staff.get(f"/people/{ada['person_id']}")
        assert refused.status_code == 403 and "can't do this" in text_of(refused)
        assert "People" not in text_of(staff.get("/events")).split("Signed in")[0]  # not in their navigation
    other = new_org(app, client, "Other")
    assert browser(app, other.owner_email).get(f"/people/{ada['person_id']}").status_code == 404


def test_the_page_corrects_through_the_api_with_the_session_cookie(
    app: Flask, org: Org, ctx: Any, ada: dict[str, Any]
) -> None:
    page = browser(app, org.owner_email)
    path = f"/api/v1/people/{ada['person_id']}"
    # What people.js sends: the cookie and this site's Origin. Without the Origin, refused.
    assert page.patch(path, json={"last_name": "King"}).status_code == 403
    answer = page.patch(path, json={"last_name": "King"}, headers=SAME_SITE)
    assert answer.status_code == 200 and answer.get_json()["last_name"] == "King"
    assert "Ada King" in text_of(page.get(f"/people/{ada['person_id']}"))
