"""The organizer pages (sign-in, events, an event, door staff view, imports) and the
door staff's JSON (arrivals, search, undo), against the real SecantusDB."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import (
    PASSWORD,
    Org,
    check_in,
    create_event,
    headers,
    iso,
    new_org,
    registered,
)

pytestmark = pytest.mark.integration

ORIGIN = "http://localhost"  # the Flask test client's host
SAME_SITE = {"Origin": ORIGIN}


@pytest.fixture(autouse=True)
def badges_api(app: Flask) -> Iterator[None]:
    """Register the api_badges blueprint if create_app doesn't yet."""
    from checkin.entrypoints import api_badges

    if "api_badges" not in app.blueprints:
        api_badges.init_app(app)
    yield


def browser(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    """A fresh test client signed in through the form, holding the session cookie."""
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": password}, headers=SAME_SITE)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return client


def add_user(app: Flask, org_id: str, role: str, name: str | None = None) -> str:
    """A user of ``role``; returns their email."""
    from checkin.service_layer import organizations

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    user = organizations.new_user_doc(org_id, email, name or f"A {role}", PASSWORD, role)
    app.extensions["checkin"].db["users"].insert_one(user)
    return email


def text_of(response: Any) -> str:
    """The page's visible text, roughly: tags dropped, whitespace squeezed, entities kept simple."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").replace("&amp;", "&").replace("&#34;", '"')
    return " ".join(text.split())


def registrations_table(response: Any) -> str:
    html = response.get_data(as_text=True)
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


# -- sign in and out ----------------------------------------------------------------------------------


def test_home_is_the_sign_in_page_then_the_events(app: Flask, client: FlaskClient, org: Org) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "Sign in" in text_of(response)
    signed_in = browser(app, org.owner_email)
    response = signed_in.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/events")


def test_sign_in_sets_a_lax_http_only_cookie_and_follows_next(app: Flask, org: Org) -> None:
    client = app.test_client()
    response = client.post(
        "/login",
        data={"email": org.owner_email.upper(), "password": PASSWORD, "next": "/events?page=1"},
        headers=SAME_SITE,
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/events?page=1"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("turnout_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/events").status_code == 200
    # The cookie works on the JSON API too (one login for pages and API).
    assert client.get("/api/v1/me").get_json()["role"] == "owner"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "events", ""])
def test_sign_in_never_redirects_off_site(app: Flask, org: Org, target: str) -> None:
    response = app.test_client().post(
        "/login", data={"email": org.owner_email, "password": PASSWORD, "next": target}, headers=SAME_SITE
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/events"


def test_wrong_password_re_renders_the_form_with_401(app: Flask, org: Org) -> None:
    client = app.test_client()
    response = client.post("/login", data={"email": org.owner_email, "password": "wrong-password"}, headers=SAME_SITE)
    assert response.status_code == 401
    page = text_of(response)
    assert "don't match" in page
    assert org.owner_email in response.get_data(as_text=True)  # the email is kept
    assert "Set-Cookie" not in response.headers
    assert client.get("/events").status_code == 302


def test_missing_or_oversized_login_fields_are_400(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/login", data={"email": "a@b.org"}, headers=SAME_SITE).status_code == 400
    assert client.post("/login", data={}, headers=SAME_SITE).status_code == 400
    assert client.post("/login", data={"email": "a@b.org", "password": "x" * 300}, headers=SAME_SITE).status_code == 400
    assert client.post("/login", json={"email": "a@b.org", "password": "x"}, headers=SAME_SITE).status_code == 400


@pytest.mark.parametrize(
    "origin",
    [{}, {"Origin": "https://evil.example"}, {"Origin": "null"}, {"Referer": "https://evil.example/page"}],
)
def test_posts_from_another_site_are_refused(app: Flask, org: Org, origin: dict[str, str]) -> None:
    client = app.test_client()
    response = client.post("/login", data={"email": org.owner_email, "password": PASSWORD}, headers=origin)
    assert response.status_code == 403
    assert "not sent from a Turnout page" in text_of(response)
    signed_in = browser(app, org.owner_email)
    assert signed_in.post("/events", data={"title": "x"}, headers=origin).status_code == 403
    assert signed_in.post("/logout", headers=origin).status_code == 403


def test_a_same_site_referer_is_enough_without_origin(app: Flask, org: Org) -> None:
    response = app.test_client().post(
        "/login", data={"email": org.owner_email, "password": PASSWORD}, headers={"Referer": f"{ORIGIN}/login"}
    )
    assert response.status_code == 303


def test_sign_out_clears_the_cookie(app: Flask, org: Org) -> None:
    client = browser(app, org.owner_email)
    response = client.post("/logout", headers=SAME_SITE)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/login")
    assert "turnout_session=;" in response.headers["Set-Cookie"]
    response = client.get("/events")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/events"


def test_signing_out_ends_the_session_not_only_the_cookie(app: Flask, org: Org) -> None:
    client = browser(app, org.owner_email)
    token = client.get_cookie("turnout_session")
    assert token is not None
    kept = app.test_client()
    kept.set_cookie("turnout_session", token.value)  # a copy of the cookie, taken before signing out
    assert kept.get("/events").status_code == 200
    assert client.post("/logout", headers=SAME_SITE).status_code == 303
    refused = kept.get("/events")
    assert refused.status_code == 302 and refused.headers["Location"] == "/login?next=/events"
    answer = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token.value}"})
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "session_ended"
    # Signing out again with the ended session is harmless; signing in again gives a new session.
    assert kept.post("/logout", headers=SAME_SITE).status_code == 303
    assert browser(app, org.owner_email).get("/events").status_code == 200


def test_pages_redirect_to_sign_in_with_next(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    for path in (
        "/events",
        f"/events/{event['id']}",
        f"/events/{event['id']}/staff",
        f"/events/{event['id']}/imports",
        f"/events/{event['id']}/badges",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=")
    response = client.get(f"/events/{event['id']}?q=ada&page=1")
    assert response.headers["Location"] == f"/login?next=/events/{event['id']}?q%3Dada%26page%3D1"
    client.set_cookie("turnout_session", "forged-token")
    assert client.get("/events").status_code == 302


# -- the events page ----------------------------------------------------------------------------------


def test_events_page_groups_events_with_counts(app: Flask, client: FlaskClient, org: Org) -> None:
    now = datetime.now(UTC)
    tonight = create_event(client, org.token, title="Soup kitchen tonight")
    later = create_event(
        client,
        org.token,
        title="Spring gala",
        starts_at=iso(now + timedelta(days=5)),
        ends_at=iso(now + timedelta(days=5, hours=3)),
    )
    create_event(
        client,
        org.token,
        title="Winter clean-up",
        starts_at=iso(now - timedelta(days=30)),
        ends_at=iso(now - timedelta(days=30) + timedelta(hours=2)),
    )
    for index in range(3):
        reg = registered(client, org.token, tonight["id"], f"guest{index}@example.org")
        if index < 2:
            assert check_in(client, org.token, tonight["id"], registration_id=reg["id"]).status_code == 201
    registered(client, org.token, later["id"], "early@example.org")

    page = text_of(browser(app, org.owner_email).get("/events"))
    now_part, rest = page.split("Happening now", 1)[1].split("Upcoming", 1)
    upcoming_part, past_part = rest.split("Past", 1)
    assert "Soup kitchen tonight" in now_part and "3 registered 2 checked in" in now_part
    assert "Spring gala" in upcoming_part and "1 registered 0 checked in" in upcoming_part
    assert "Winter clean-up" in past_part and "Soup kitchen tonight" not in past_part
    # The header names the organization and who is signed in, with their role.
    org_name = app.extensions["checkin"].db["organizations"].find_one({"_id": org.id})["name"]
    assert org_name in page and "Owner Alpha" in page and "Owner Sign out" in page


def test_new_event_form_creates_an_event_in_its_time_zone(app: Flask, org: Org) -> None:
    client = browser(app, org.owner_email)
    form = {
        "title": "Tool library workshop",
        "kind": "workshop",
        "starts_at": "2031-05-02T17:00",
        "ends_at": "2031-05-02T19:30",
        "timezone": "America/Chicago",
        "venue": "Library basement",
        "capacity": "25",
        "description": "",
    }
    response = client.post("/events", data=form, headers=SAME_SITE)
    assert response.status_code == 303
    event_id = response.headers["Location"].split("/events/")[1].split("?")[0]
    event = app.extensions["checkin"].db["events"].find_one({"_id": event_id})
    assert event["org_id"] == org.id and event["capacity"] == 25 and event["kind"] == "workshop"
    assert event["starts_at"] == datetime(2031, 5, 2, 22, 0, tzinfo=UTC)  # 17:00 CDT
    page = text_of(client.get(response.headers["Location"]))
    assert "Tool library workshop" in page and "Event created" in page
    assert "Fri 2 May 2031 · 17:00–19:30 CDT" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": "   "}, "title", "Give the event a title"),
        ({"kind": "party"}, "kind", "Choose what kind"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Not a time zone we know"),
        ({"timezone": "America"}, "timezone", "Not a time zone we know"),
        ({"timezone": ""}, "timezone", "Choose the event's time zone"),
        ({"starts_at": "tomorrow"}, "starts_at", "Enter a date and time"),
        ({"starts_at": "0001-01-01T00:00"}, "starts_at", "between 1970 and 9998"),
        ({"ends_at": ""}, "ends_at", "Required"),
        ({"ends_at": "2031-05-01T10:00"}, "ends_at", "Ends_at must be after starts_at"),
        ({"ends_at": "2031-06-30T10:00"}, "ends_at", "at most 14 days"),
        ({"capacity": "lots"}, "capacity", "A whole number"),
        ({"capacity": "0"}, "capacity", "A whole number"),
        ({"title": "x" * 201}, "title", "At most 200 characters"),
    ],
)
def test_bad_new_event_input_re_renders_with_field_errors(
    app: Flask, org: Org, changes: dict[str, str], field: str, message: str
) -> None:
    form = {
        "title": "Fine title",
        "kind": "meeting",
        "starts_at": "2031-05-02T17:00",
        "ends_at": "2031-05-02T19:00",
        "timezone": "Europe/Paris",
    }
    form.update(changes)
    client = browser(app, org.owner_email)
    response = client.post("/events", data=form, headers=SAME_SITE)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="f-{field}-error"' in html
    assert message in text_of(response)
    assert app.extensions["checkin"].db["events"].count_documents({"org_id": org.id}) == 0


# -- one event: figures, search, filters ---------------------------------------------------------------


@pytest.fixture
def crowd(app: Flask, client: FlaskClient, org: Org) -> dict[str, Any]:
    """An event with José (checked in), Ada (no consent), Zoë (waitlisted) and a cancelled Bob."""
    event = create_event(client, org.token, title="Harvest supper", capacity=3)
    jose = registered(client, org.token, event["id"], "jose.garcia@example.org", first_name="José", last_name="García")
    ada = registered(client, org.token, event["id"], "ada@lovelace.org", consent_email=False)
    bob = registered(client, org.token, event["id"], "bob@example.org", first_name="Bob", last_name="Builder")
    zoe = registered(client, org.token, event["id"], "zoe@example.org", first_name="Zoë", last_name="Åström")
    assert zoe["status"] == "waitlisted"
    assert check_in(client, org.token, event["id"], registration_id=jose["id"]).status_code == 201
    app.extensions["checkin"].db["registrations"].update_one({"_id": bob["id"]}, {"$set": {"status": "cancelled"}})
    return {"event": event, "jose": jose, "ada": ada, "bob": bob, "zoe": zoe}


def test_event_page_shows_figures_and_registrations(app: Flask, org: Org, crowd: dict[str, Any]) -> None:
    client = browser(app, org.owner_email)
    response = client.get(f"/events/{crowd['event']['id']}")
    assert response.status_code == 200
    page = text_of(response)
    assert "Harvest supper" in page
    assert "2 Registered of 3" in page and "1 Waitlisted" in page and "1 Checked in · 50%" in page
    table = registrations_table(response)
    for name in ("José García", "Ada Lovelace", "Bob Builder", "Zoë Åström", "jose.garcia@example.org"):
        assert name in table
    assert "Door staff view" in page and "Print badges" in page and "Import CSV" in page
    assert f"/badges/{crowd['jose']['id']}" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("q=jose", ["José García"], ["Ada", "Bob", "Zoë"]),
        ("q=GARC", ["José García"], ["Ada", "Bob"]),
        ("q=%C3%A5str", ["Zoë Åström"], ["José", "Ada"]),  # "åstr", accent-insensitive either way
        ("q=zoe+astrom", ["Zoë Åström"], ["José"]),
        ("q=ada%40love", ["Ada Lovelace"], ["José", "Zoë"]),  # email prefix
        ("q=.%2A", [], ["José", "Ada", "Bob", "Zoë"]),  # regex characters are literal
        ("status=waitlisted", ["Zoë Åström"], ["José", "Ada", "Bob"]),
        ("status=cancelled", ["Bob Builder"], ["José", "Ada", "Zoë"]),
        ("checked_in=yes", ["José García"], ["Ada", "Bob", "Zoë"]),
        ("checked_in=no", ["Ada Lovelace", "Bob Builder", "Zoë Åström"], ["José"]),
        ("consent=no", ["Ada Lovelace"], ["José", "Bob", "Zoë"]),
        ("status=registered&consent=yes", ["José García"], ["Ada", "Bob", "Zoë"]),
    ],
)
def test_search_and_filters_narrow_the_table(
    app: Flask, org: Org, crowd: dict[str, Any], query: str, shown: list[str], hidden: list[str]
) -> None:
    response = browser(app, org.owner_email).get(f"/events/{crowd['event']['id']}?{query}")
    assert response.status_code == 200
    table = registrations_table(response)
    for name in shown:
        assert name in table, (query, table)
    for name in hidden:
        assert name not in table, (query, table)
    if not shown:
        assert "Nobody matches this search" in table


def test_registrations_are_paginated(app: Flask, client: FlaskClient, org: Org) -> None:
    from checkin.service_layer import registrations

    ctx = app.extensions["checkin"]
    event = create_event(client, org.token)
    for index in range(53):
        registrations.register(
            ctx,
            org.id,
            event["id"],
            first_name=f"P{index:02d}",
            last_name="Person",
            email=f"p{index}@x.org",
            consent_email=True,
        )
    browser_client = browser(app, org.owner_email)
    first = registrations_table(browser_client.get(f"/events/{event['id']}"))
    second_page = browser_client.get(f"/events/{event['id']}?page=2")
    second = registrations_table(second_page)
    assert "P00 Person" in first and "P49 Person" in first and "P50" not in first
    assert "P50 Person" in second and "P52 Person" in second and "P49" not in second
    assert "Page 2 of 2" in text_of(second_page)
    assert "Nobody matches" in registrations_table(browser_client.get(f"/events/{event['id']}?page=9&q=p"))


@pytest.mark.parametrize(
    "query", ["status=bogus", "checked_in=maybe", "consent=1", "page=0", "page=abc", "page=-1", "q=" + "a" * 101]
)
def test_bad_event_page_queries_are_400(app: Flask, org: Org, crowd: dict[str, Any], query: str) -> None:
    response = browser(app, org.owner_email).get(f"/events/{crowd['event']['id']}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"


def test_register_someone_form(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    browser_client = browser(app, org.owner_email)
    form = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@navy.mil",
        "consent_email": "yes",
        "offers": "cobol, teaching",
    }
    response = browser_client.post(f"/events/{event['id']}/registrations", data=form, headers=SAME_SITE)
    assert response.status_code == 303
    page = browser_client.get(response.headers["Location"])
    assert "Grace Hopper is registered" in text_of(page)
    reg = app.extensions["checkin"].db["registrations"].find_one({"event_id": event["id"], "first_name": "Grace"})
    assert reg["consent_email"] is True and reg["offers"] == ["cobol", "teaching"] and reg["source"] == "api"
    again = browser_client.post(f"/events/{event['id']}/registrations", data=form, headers=SAME_SITE)
    assert "was already registered" in text_of(browser_client.get(again.headers["Location"]))


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"first_name": "", "email": "a@b.org"}, "Required."),
        ({"first_name": "Al", "email": "not-an-email"}, "Enter an email address"),
        ({"first_name": "x" * 101, "email": "a@b.org"}, "At most 100 characters"),
        ({"first_name": "Al", "email": "a@b.org", "seeks": "x" * 61}, "Up to 20 tags"),
    ],
)
def test_bad_registration_forms_are_400(
    app: Flask, client: FlaskClient, org: Org, form: dict[str, str], message: str
) -> None:
    event = create_event(client, org.token)
    response = browser(app, org.owner_email).post(f"/events/{event['id']}/registrations", data=form, headers=SAME_SITE)
    assert response.status_code == 400
    assert message in text_of(response)
    assert app.extensions["checkin"].db["registrations"].count_documents({"event_id": event["id"]}) == 0


def test_registering_for_an_ended_event_says_why(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    assert client.post(f"/api/v1/events/{event['id']}/end", headers=headers(org.token)).status_code == 200
    form = {"first_name": "Late", "email": "late@example.org"}
    response = browser(app, org.owner_email).post(f"/events/{event['id']}/registrations", data=form, headers=SAME_SITE)
    assert response.status_code == 400
    assert "registration is closed" in text_of(response)


def test_kiosks_section_lists_the_event_s_kiosks(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    front, side = f"k-{uuid.uuid4().hex[:6]}", f"k-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    app.extensions["checkin"].db["kiosks"].insert_many(
        [
            {"_id": front, "org_id": org.id, "event_id": event["id"], "name": "Front door", "status": "paired",
             "last_seen_at": now, "queue_length": 3, "created_at": now},
            {"_id": side, "org_id": org.id, "event_id": event["id"], "name": "Side door", "status": "revoked",
             "created_at": now + timedelta(seconds=1)},
        ]
    )  # fmt: skip
    for index in range(2):
        reg = registered(client, org.token, event["id"], f"k{index}@example.org")
        assert check_in(client, org.token, event["id"], registration_id=reg["id"], kiosk_id=front).status_code == 201
    page = text_of(browser(app, org.owner_email).get(f"/events/{event['id']}"))
    kiosks = page.split("Kiosks", 1)[1]
    assert "Front door Paired just now 3 2" in kiosks  # 2 check-ins today, counted by the kiosk service
    assert "Side door Revoked never 0 0" in kiosks
    assert "Pair a kiosk" in kiosks


def test_the_apis_the_pages_call_exist(app: Flask) -> None:
    """The pages' scripts call these; a renamed route would break them silently."""
    rules = {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods or ()}
    for path, method in [
        ("/api/v1/events/<event_id>/kiosks", "POST"),
        ("/api/v1/kiosks/<kiosk_id>/revoke", "POST"),
        ("/api/v1/kiosks/<kiosk_id>/pairing-code", "POST"),
        ("/api/v1/events/<event_id>/imports", "POST"),
        ("/api/v1/events/<event_id>/imports", "GET"),
        ("/api/v1/imports/preview", "POST"),
        ("/api/v1/imports/<import_id>", "GET"),
        ("/api/v1/events/<event_id>/checkins", "POST"),
        ("/api/v1/events/<event_id>/arrivals", "GET"),
        ("/api/v1/events/<event_id>/registrations/search", "GET"),
        ("/api/v1/events/<event_id>/checkins/<registration_id>/undo", "POST"),
    ]:
        assert (path, method) in rules, (method, path)


# -- roles and organizations --------------------------------------------------------------------------


def test_viewer_sees_no_management_forms_and_cannot_post_them(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    viewer = browser(app, add_user(app, org.id, "viewer", "Vera Viewer"))
    events_page = viewer.get("/events")
    assert events_page.status_code == 200
    assert "Vera Viewer Viewer" in text_of(events_page)
    assert "New event" not in text_of(events_page)
    event_page = viewer.get(f"/events/{event['id']}")
    html = event_page.get_data(as_text=True)
    assert event_page.status_code == 200
    for marker in ("Register someone", "Pair a kiosk", "Import CSV", 'method="post" action="/events'):
        assert marker not in html, marker
    staff = viewer.get(f"/events/{event['id']}/staff")
    assert staff.status_code == 200
    assert 'id="search"' not in staff.get_data(as_text=True)
    assert "can watch arrivals but not check people in" in text_of(staff)
    assert viewer.get(f"/events/{event['id']}/imports").status_code == 403
    form = {
        "title": "Sneaky",
        "kind": "meeting",
        "starts_at": "2031-01-01T10:00",
        "ends_at": "2031-01-01T11:00",
        "timezone": "UTC",
    }
    refused = viewer.post("/events", data=form, headers=SAME_SITE)
    assert refused.status_code == 403 and "can't do this" in text_of(refused)
    assert (
        viewer.post(
            f"/events/{event['id']}/registrations", data={"first_name": "X", "email": "x@y.org"}, headers=SAME_SITE
        ).status_code
        == 403
    )
    assert app.extensions["checkin"].db["events"].count_documents({"org_id": org.id}) == 1


def test_door_staff_get_the_check_in_search_but_not_management(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    staff = browser(app, add_user(app, org.id, "door_staff"))
    assert 'id="search"' in staff.get(f"/events/{event['id']}/staff").get_data(as_text=True)
    assert "Register someone" not in staff.get(f"/events/{event['id']}").get_data(as_text=True)
    assert staff.post("/events", data={}, headers=SAME_SITE).status_code == 403


def test_another_organization_s_pages_are_404(app: Flask, client: FlaskClient, org: Org) -> None:
    theirs = create_event(client, org.token, title="Private dinner")
    reg = registered(client, org.token, theirs["id"], "secret@example.org")
    other = new_org(app, client, "Beta")
    intruder = browser(app, other.owner_email)
    for path in (
        f"/events/{theirs['id']}",
        f"/events/{theirs['id']}/staff",
        f"/events/{theirs['id']}/imports",
        f"/events/{theirs['id']}/badges",
        f"/badges/{reg['id']}",
        "/events/no-such-event",
    ):
        response = intruder.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html"
        assert "Private dinner" not in response.get_data(as_text=True)
    response = intruder.post(
        f"/events/{theirs['id']}/registrations", data={"first_name": "X", "email": "x@y.org"}, headers=SAME_SITE
    )
    assert response.status_code == 404
    assert "Private dinner" not in text_of(intruder.get("/events"))


# -- the door staff view, arrivals, search, undo ------------------------------------------------------


def test_staff_page_shows_arrivals_with_kiosk_and_method(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token, title="Pantry shift")
    app.extensions["checkin"].db["kiosks"].insert_one(
        {"_id": "kiosk-front-1", "event_id": event["id"], "name": "Front door"}
    )
    amber = registered(client, org.token, event["id"], "amber@example.org", first_name="Amber", last_name="Nguyen")
    registered(client, org.token, event["id"], "later@example.org", first_name="Not", last_name="Yet")
    assert (
        check_in(client, org.token, event["id"], badge_code=amber["badge_code"], kiosk_id="kiosk-front-1").status_code
        == 201
    )
    page = text_of(browser(app, org.owner_email).get(f"/events/{event['id']}/staff"))
    assert "At the door" in page and "Pantry shift" in page
    assert "1 Checked in 2 Registered 1 Still expected" in page
    arrivals = page.split("Arrivals", 1)[1]
    assert "Amber Nguyen" in arrivals and "Front door · QR badge" in arrivals
    assert "Not Yet" not in arrivals


def test_arrivals_api_returns_new_check_ins_since(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    first = registered(client, org.token, event["id"], "first@example.org", first_name="First")
    second = registered(client, org.token, event["id"], "second@example.org", first_name="Second")
    check_in(client, org.token, event["id"], registration_id=first["id"])
    answer = client.get(f"/api/v1/events/{event['id']}/arrivals", headers=headers(org.token)).get_json()
    assert [a["first_name"] for a in answer["arrivals"]] == ["First"]
    assert answer["counts"] == {"registered": 2, "waitlisted": 0, "checked_in": 1}
    since = answer["arrivals"][0]["checked_in_at"]
    check_in(client, org.token, event["id"], registration_id=second["id"], method="staff")
    newer = client.get(f"/api/v1/events/{event['id']}/arrivals?since={since}", headers=headers(org.token)).get_json()
    assert [(a["first_name"], a["method"]) for a in newer["arrivals"]] == [("Second", "staff")]
    assert newer["counts"]["checked_in"] == 2


@pytest.mark.parametrize("query", ["since=yesterday", "since=2026-01-01T10:00:00", "limit=0", "limit=201", "limit=x"])
def test_bad_arrivals_queries_are_400(client: FlaskClient, org: Org, query: str) -> None:
    event = create_event(client, org.token)
    response = client.get(f"/api/v1/events/{event['id']}/arrivals?{query}", headers=headers(org.token))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_query"


def test_search_api_finds_people_without_accents(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    registered(client, org.token, event["id"], "jose@example.org", first_name="José", last_name="Núñez")
    registered(client, org.token, event["id"], "joan@example.org", first_name="Joan", last_name="Smith")
    registered(client, org.token, event["id"], "zed@example.org", first_name="Zed", last_name="Jones")
    url = f"/api/v1/events/{event['id']}/registrations/search"
    found = client.get(f"{url}?q=jo", headers=headers(org.token)).get_json()["results"]
    assert sorted(r["name"] for r in found) == ["Joan Smith", "José Núñez", "Zed Jones"]
    found = client.get(f"{url}?q=nunez", headers=headers(org.token)).get_json()["results"]
    assert [(r["name"], r["email"], r["checked_in"]) for r in found] == [("José Núñez", "jose@example.org", False)]
    assert client.get(f"{url}?q=", headers=headers(org.token)).get_json() == {"results": []}
    assert client.get(f"{url}?q={'x' * 101}", headers=headers(org.token)).status_code == 400
    assert client.get(f"{url}?q=jo&limit=51", headers=headers(org.token)).status_code == 400


def test_undo_check_in_is_audited_and_allows_a_fresh_check_in(app: Flask, client: FlaskClient, org: Org) -> None:
    ctx = app.extensions["checkin"]
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "undo@example.org", first_name="Uma")
    assert check_in(client, org.token, event["id"], registration_id=reg["id"]).get_json()["visit_number"] == 1
    outbox_before = ctx.db["outbox"].count_documents({})

    response = client.post(f"/api/v1/events/{event['id']}/checkins/{reg['id']}/undo", headers=headers(org.token))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "undone"
    assert ctx.db["registrations"].find_one({"_id": reg["id"]})["checkin"] is None
    audit = ctx.db["audit_log"].find_one({"registration_id": reg["id"]})
    assert audit["action"] == "checkin.undone" and audit["org_id"] == org.id and audit["event_id"] == event["id"]
    assert audit["actor"]["role"] == "owner" and audit["actor"]["label"] == "Owner Alpha"
    assert audit["details"]["before"]["checkin"]["method"] == "staff" and audit["at"] is not None
    # One message: attendee.checkin_undone (tests/checkin/integration/test_undo_message.py reads it).
    assert ctx.db["outbox"].count_documents({}) == outbox_before + 1

    again = client.post(f"/api/v1/events/{event['id']}/checkins/{reg['id']}/undo", headers=headers(org.token))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_checked_in"
    fresh = check_in(client, org.token, event["id"], registration_id=reg["id"])
    assert fresh.status_code == 201
    assert fresh.get_json()["visit_number"] == 1  # the undone visit is not counted twice


def test_undo_with_a_reason_and_bad_undos(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    other_event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "r@example.org")
    check_in(client, org.token, event["id"], registration_id=reg["id"])
    base = f"/api/v1/events/{event['id']}/checkins"
    assert client.post(f"{base}/nope/undo", headers=headers(org.token)).status_code == 404
    wrong_event = client.post(
        f"/api/v1/events/{other_event['id']}/checkins/{reg['id']}/undo", headers=headers(org.token)
    )
    assert wrong_event.status_code == 404
    assert client.post(f"/api/v1/events/nope/checkins/{reg['id']}/undo", headers=headers(org.token)).status_code == 404
    bad = client.post(f"{base}/{reg['id']}/undo", json={"reason": 5}, headers=headers(org.token))
    assert bad.status_code == 400
    bad = client.post(
        f"{base}/{reg['id']}/undo", data="x", headers={**headers(org.token), "Content-Type": "text/plain"}
    )
    assert bad.status_code == 415
    ok = client.post(f"{base}/{reg['id']}/undo", json={"reason": "scanned the wrong badge"}, headers=headers(org.token))
    assert ok.status_code == 200
    audit = app.extensions["checkin"].db["audit_log"].find_one({"registration_id": reg["id"]})
    assert audit["details"]["reason"] == "scanned the wrong badge"


def test_undo_needs_the_checkin_permission_the_organization_and_same_site(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "p@example.org")
    check_in(client, org.token, event["id"], registration_id=reg["id"])
    path = f"/api/v1/events/{event['id']}/checkins/{reg['id']}/undo"
    other = new_org(app, client, "Gamma")
    assert client.post(path, headers=headers(other.token)).status_code == 404
    viewer = browser(app, add_user(app, org.id, "viewer"))
    assert viewer.post(path, headers=SAME_SITE).status_code == 403
    assert client.post(path).status_code == 401
    staff = browser(app, add_user(app, org.id, "door_staff"))
    cross_site = staff.post(path, headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403 and cross_site.get_json()["error"]["code"] == "cross_origin"
    assert staff.post(path).status_code == 403  # a cookie without Origin/Referer
    assert staff.post(path, headers=SAME_SITE).status_code == 200
    assert (
        app.extensions["checkin"].db["audit_log"].find_one({"registration_id": reg["id"]})["actor"]["role"]
        == "door_staff"
    )


def test_imports_page_for_managers(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token, title="Big import night")
    page = browser(app, org.owner_email).get(f"/events/{event['id']}/imports")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Import registrations" in text_of(page) and "Big import night" in text_of(page)
    assert 'type="file"' in html and "js/imports.js" in html and event["id"] in html
    script = app.test_client().get("/static/js/imports.js").get_data(as_text=True)
    assert '+ "/imports"' in script  # the upload goes to the imports API


def test_every_page_and_badge_route_is_documented(app: Flask, client: FlaskClient) -> None:
    from turnout_common.openapi import flask_rule_to_path

    doc = client.get("/openapi.json").get_json()
    mine = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith(("pages.", "api_badges."))]
    assert len(mine) >= 15
    for rule in mine:
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            op = doc["paths"][flask_rule_to_path(rule.rule)][method.lower()]
            assert op["summary"] != "(undocumented)", rule.rule
    assert doc["paths"]["/events/{event_id}"]["get"]["responses"]["200"]["content"] == {"text/html": {}}
    assert (
        doc["paths"]["/api/v1/events/{event_id}/checkins/{registration_id}/undo"]["post"]["x-permission"] == "checkin"
    )
