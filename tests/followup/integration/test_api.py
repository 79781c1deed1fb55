"""Follow-up's HTTP side on the real database: organizer API and pages, the
links in the emails, the bounce webhook. Every bad input is a 4xx JSON error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from followup import create_app
from followup.adapters.mongo import NUDGES
from followup.config import Settings
from followup.service_layer.context import Services
from followup.service_layer.scheduling import run_scheduler_once
from followup.service_layer.sending import send_due_nudges
from tests.followup.helpers import Gathering, SmtpServer
from tests.followup.integration.conftest import apply
from turnout_common.auth import Principal, TokenSigner
from turnout_common.config import secret_key
from turnout_common.outbox import OUTBOX

pytestmark = pytest.mark.integration

SECRET = "hook-secret-for-tests"


@pytest.fixture
def app(settings: Settings, svc: Services) -> Flask:
    return create_app(replace(settings, webhook_secret=SECRET))


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


def auth(org_id: str, role: str = "organizer") -> dict[str, str]:
    token = TokenSigner(secret_key()).issue(Principal("user", f"u-{role}", org_id, role, "Someone"))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def sent(svc: Services, smtp: SmtpServer, org_id: str) -> Gathering:
    g = Gathering(org_id, kind="networking", title="API evening")
    apply(
        svc,
        [
            g.scheduled(),
            g.registered("a-ann", "Ann", "ann@api.example.org", offers=["mentoring"], seeks=["web design"]),
            g.registered("a-ben", "Ben", "ben@api.example.org", offers=["Web-Design"], seeks=["mentoring"]),
            g.registered("a-cat", "Cat", "cat@api.example.org"),
            g.checked_in("a-ann", first_time=True),
            g.checked_in("a-ben"),
            g.ended(),
        ],
    )
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    return g


def nudge_of(svc: Services, person: str, kind: str) -> dict[str, Any]:
    doc = svc.db[NUDGES].find_one({"person_id": person, "kind": kind})
    assert doc is not None
    return doc


def test_openapi_documents_every_route(app: Flask, client: FlaskClient) -> None:
    from turnout_common.openapi import flask_rule_to_path

    doc = client.get("/openapi.json").get_json()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path = flask_rule_to_path(rule.rule)
        assert path in doc["paths"], rule.rule
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = doc["paths"][path][method.lower()]
            assert operation["summary"] != "(undocumented)", (method, rule.rule)
            checked += 1
    assert checked >= 25


def test_messages_list_and_the_message_exactly_as_sent(
    client: FlaskClient, svc: Services, smtp: SmtpServer, sent: Gathering, org_id: str
) -> None:
    answer = client.get(f"/api/v1/events/{sent.event_id}/messages", headers=auth(org_id, "viewer"))
    assert answer.status_code == 200
    body = answer.get_json()
    kinds = sorted((m["name"], m["kind"], m["status"]) for m in body["messages"])
    assert kinds == [
        ("Ann Tester", "first_timer_welcome", "sent"),
        ("Ann Tester", "introduction_request", "sent"),
        ("Ann Tester", "thank_you", "sent"),
        ("Ben Tester", "introduction_request", "sent"),
        ("Ben Tester", "thank_you", "sent"),
        ("Cat Tester", "we_missed_you", "sent"),
    ]
    assert body["counts"] == {"sent": 6}
    only = client.get(f"/api/v1/events/{sent.event_id}/messages?kind=thank_you", headers=auth(org_id))
    assert len(only.get_json()["messages"]) == 2
    thank_you = nudge_of(svc, "a-ann", "thank_you")
    detail = client.get(f"/api/v1/messages/{thank_you['_id']}", headers=auth(org_id)).get_json()
    received = next(r for r in smtp.handler.received if r.followup_id == thank_you["_id"])
    assert detail["rendered"]["raw"].replace("\r\n", "\n") == received.raw.decode().replace("\r\n", "\n")
    assert detail["rendered"]["subject"] == "Thank you for coming to API evening"
    assert "API evening" in detail["rendered"]["text"] and "<html" in detail["rendered"]["html"]
    headers = {h["name"]: h["value"] for h in detail["rendered"]["headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The organizer pages render the same.
    page = client.get(f"/events/{sent.event_id}/messages", headers=auth(org_id))
    assert page.status_code == 200 and b"we missed you" in page.data
    one = client.get(f"/messages/{thank_you['_id']}", headers=auth(org_id))
    assert one.status_code == 200 and b"<script" not in one.data
    assert f'src="/messages/{thank_you["_id"]}/preview"'.encode() in one.data
    # Opens and clicks show in the status.
    token = svc.links.open(thank_you["_id"])
    pixel = client.get(f"/o/{token}.gif")
    assert pixel.status_code == 200 and pixel.mimetype == "image/gif"
    opened = client.get(f"/api/v1/events/{sent.event_id}/messages?status=opened", headers=auth(org_id)).get_json()
    assert [m["id"] for m in opened["messages"]] == [thank_you["_id"]]


def test_every_page_links_a_stylesheet_that_is_served(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    links = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.get_data(as_text=True))
    assert links == ["/static/followup.css"]
    sheet = client.get(links[0])
    assert sheet.status_code == 200 and sheet.mimetype == "text/css"
    assert b"iframe" in sheet.data


def test_the_message_page_frames_the_email_with_its_own_policy(
    client: FlaskClient, svc: Services, sent: Gathering, org_id: str
) -> None:
    """The email's HTML is served on its own, with a policy that lets its inline
    styles apply (the pages' default policy would block them) and nothing else."""
    thank_you = nudge_of(svc, "a-ann", "thank_you")
    path = f"/messages/{thank_you['_id']}/preview"
    page = client.get(f"/messages/{thank_you['_id']}", headers=auth(org_id, "viewer"))
    assert page.status_code == 200
    frame = re.search(r"<iframe [^>]*>", page.get_data(as_text=True))
    assert frame is not None and 'sandbox=""' in frame[0] and f'src="{path}"' in frame[0] and "srcdoc" not in frame[0]
    assert "style-src 'self'" in page.headers["Content-Security-Policy"]
    preview = client.get(path, headers=auth(org_id, "viewer"))
    assert preview.status_code == 200 and preview.mimetype == "text/html"
    assert preview.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-ancestors 'self'; sandbox"
    )
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert preview.headers["X-Content-Type-Options"] == "nosniff"
    detail = client.get(f"/api/v1/messages/{thank_you['_id']}", headers=auth(org_id)).get_json()
    html = preview.get_data(as_text=True)
    assert html == detail["rendered"]["html"]
    assert "API evening" in html and 'style="' in html
    # Another organization's organizer: no such message; signed out: to sign in on checkin.
    assert client.get(path, headers=auth("another-org")).status_code == 404
    assert client.get("/messages/nothing/preview", headers=auth(org_id)).status_code == 404
    signed_out = client.get(path)
    assert signed_out.status_code == 302 and "/login?next=" in signed_out.headers["Location"]
    assert client.get(path, headers={"Authorization": "Bearer forged"}).status_code == 302


def test_a_message_not_yet_sent_previews_as_a_note(client: FlaskClient, svc: Services, org_id: str) -> None:
    g = Gathering(org_id, kind="meeting", title="Not yet")
    apply(svc, [g.scheduled(), g.registered("n-dan", "Dan", "dan@api.example.org"), g.checked_in("n-dan"), g.ended()])
    run_scheduler_once(svc, "test")
    waiting = nudge_of(svc, "n-dan", "thank_you")
    preview = client.get(f"/messages/{waiting['_id']}/preview", headers=auth(org_id))
    assert preview.status_code == 200 and "Not rendered yet" in preview.get_data(as_text=True)
    assert preview.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_scoping_and_permissions(client: FlaskClient, svc: Services, sent: Gathering, org_id: str) -> None:
    other = auth("another-org")
    assert client.get(f"/api/v1/events/{sent.event_id}/messages", headers=other).status_code == 404
    some = nudge_of(svc, "a-cat", "we_missed_you")
    assert client.get(f"/api/v1/messages/{some['_id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/events/{sent.event_id}/messages").status_code == 401
    # A signed-out organizer opening a page is sent to sign in on checkin, and back.
    page = client.get(f"/events/{sent.event_id}/messages")
    assert page.status_code == 302
    assert "/login?next=" in page.headers["Location"] and "messages" in page.headers["Location"]
    assert client.get("/api/v1/settings", headers={"Authorization": "Bearer forged"}).status_code == 401
    viewer = auth(org_id, "viewer")
    answer = client.patch("/api/v1/settings", json={"nudges": {"win_back": False}}, headers=viewer)
    assert answer.status_code == 403
    assert client.get("/api/v1/suppressions", headers=viewer).status_code == 403


def test_preview_renders_any_nudge_for_any_attendee(client: FlaskClient, sent: Gathering, org_id: str) -> None:
    for kind in (
        "thank_you",
        "we_missed_you",
        "first_timer_welcome",
        "introduction_request",
        "introduction",
        "win_back",
        "volunteer_hours",
    ):
        answer = client.get(
            f"/api/v1/events/{sent.event_id}/preview?nudge={kind}&person_id=a-cat", headers=auth(org_id, "viewer")
        )
        assert answer.status_code == 200, (kind, answer.get_json())
        body = answer.get_json()
        assert body["subject"] and body["text"] and "<html" in body["html"]
    html = client.get(
        f"/api/v1/events/{sent.event_id}/preview?nudge=thank_you&person_id=a-ann&format=html", headers=auth(org_id)
    )
    assert html.mimetype == "text/html" and b"Ann" in html.data
    bad = [
        f"/api/v1/events/{sent.event_id}/preview?nudge=spam&person_id=a-ann",
        f"/api/v1/events/{sent.event_id}/preview?nudge=thank_you",
        f"/api/v1/events/{sent.event_id}/preview?nudge=thank_you&person_id=a-ann&format=pdf",
    ]
    for url in bad:
        assert client.get(url, headers=auth(org_id)).status_code == 400, url
    missing = f"/api/v1/events/{sent.event_id}/preview?nudge=thank_you&person_id=nobody"
    assert client.get(missing, headers=auth(org_id)).status_code == 404


def test_settings_switch_nudges_per_org_and_event(
    client: FlaskClient, svc: Services, smtp: SmtpServer, org_id: str
) -> None:
    current = client.get("/api/v1/settings", headers=auth(org_id)).get_json()
    assert all(current["nudges"].values())
    answer = client.patch(
        "/api/v1/settings",
        json={
            "nudges": {"first_timer_welcome": False},
            "branding": {"name": "Riverside Pantry", "primary_color": "#aa3300", "postal_address": "12 Dock St"},
        },
        headers=auth(org_id),
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["nudges"]["first_timer_welcome"] is False
    g = Gathering(org_id, kind="meeting", title="Settings meeting")
    apply(svc, [g.scheduled(), g.registered("s-dee", "Dee", "dee@settings.example.org")])
    event_answer = client.patch(
        f"/api/v1/events/{g.event_id}/settings",
        json={"nudges": {"first_timer_welcome": True, "thank_you": False}, "content": {"note": "Thanks!"}},
        headers=auth(org_id),
    )
    assert event_answer.status_code == 200
    assert event_answer.get_json()["nudges"]["thank_you"] is False
    apply(svc, [g.checked_in("s-dee", first_time=True), g.ended()])
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    (item,) = [r for r in smtp.handler.received if r.to == "dee@settings.example.org"]
    assert item.kind == "first_timer_welcome"
    html = item.message.get_body(("html",)).get_content()
    assert "Riverside Pantry" in html and "12 Dock St" in html and "#aa3300" in html
    assert item.message["From"].startswith("Riverside Pantry <")
    bad_bodies: list[Any] = [
        {"branding": {"primary_color": "red; background:url(x)"}},
        {"nudges": {"spam": True}},
        {"unknown": 1},
        {},
        {"win_back": {"quiet_days": 400}},
        {"$set": {"x": 1}},
    ]
    for body in bad_bodies:
        assert client.patch("/api/v1/settings", json=body, headers=auth(org_id)).status_code == 400, body
    raw = client.patch(
        "/api/v1/settings", data=b"{not json", headers={**auth(org_id), "Content-Type": "application/json"}
    )
    assert raw.status_code == 400
    assert client.get("/api/v1/events/nope/settings", headers=auth(org_id)).status_code == 404


def test_unsubscribe_links_rfc8058(client: FlaskClient, svc: Services, sent: Gathering, org_id: str) -> None:
    nudge = nudge_of(svc, "a-cat", "we_missed_you")
    token = svc.links.unsubscribe(nudge["_id"])
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and b'<form method="post">' in page.data
    one_click = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert svc.db["contacts"].find_one({"_id": "a-cat"})["unsubscribed"] is True
    events = [doc for doc in svc.db[OUTBOX].find({"type": "contact.unsubscribed"})]
    assert len(events) == 1 and b'"via":"one_click"' in bytes(events[0]["payload"])
    for bad in (f"/u/{token}x", "/u/nodot", f"/u/{'a' * 32}.{'b' * 22}"):
        answer = client.post(bad, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_link"
    listed = client.get("/api/v1/suppressions", headers=auth(org_id)).get_json()["suppressions"]
    assert [(s["email"], s["reason"]) for s in listed] == [("cat@api.example.org", "unsubscribed")]
    refused = client.delete("/api/v1/suppressions/cat@api.example.org", headers=auth(org_id))
    assert refused.status_code == 409


def test_click_feedback_and_introduction_links(client: FlaskClient, svc: Services, sent: Gathering) -> None:
    nudge = nudge_of(svc, "a-ann", "thank_you")
    target = "https://example.org/photos?id=1&x=2"
    token = svc.links.click(nudge["_id"], target)
    answer = client.get(f"/c/{token}?u={quote(target, safe='')}")
    assert answer.status_code == 302 and answer.headers["Location"] == target
    elsewhere = client.get(f"/c/{token}?u={quote('https://evil.example/', safe='')}")
    assert elsewhere.status_code == 400
    assert client.get(f"/c/{token}").status_code == 400
    assert client.get(f"/c/{token}?u=javascript:alert(1)").status_code == 400
    feedback = svc.links.feedback(nudge["_id"])
    # The rating link's GET shows the rating preselected and records nothing; the Send button does.
    page = client.get(f"/f/{feedback}?rating=4")
    assert page.status_code == 200 and b'value="4" checked' in page.data and b">Send</button>" in page.data
    for rating in ("0", "6", "x", ""):
        assert client.get(f"/f/{feedback}?rating={rating}").status_code == 400
    assert not list(svc.db[OUTBOX].find({"type": "feedback.submitted"}))
    comment = client.post(f"/f/{feedback}", data={"rating": "5", "comment": "Lovely evening"})
    assert comment.status_code == 200 and b"We read every comment" in comment.data
    ratings = [bytes(doc["payload"]) for doc in svc.db[OUTBOX].find({"type": "feedback.submitted"})]
    assert len(ratings) == 1 and b"Lovely evening" in ratings[0]
    request = nudge_of(svc, "a-ann", "introduction_request")
    raw = client.get(f"/api/v1/messages/{request['_id']}", headers=auth(sent.org_id)).get_json()["rendered"]["text"]
    accept = re.search(r"https://followup\.example\.org(/i/\S+)", raw)
    assert accept is not None
    assert client.get(accept.group(1)).status_code == 200
    assert b"Thanks, noted" in client.post(accept.group(1)).data
    assert client.post(accept.group(1) + "x").status_code == 400


def test_bounce_webhook_suppresses(client: FlaskClient, svc: Services, sent: Gathering, org_id: str) -> None:
    nudge = nudge_of(svc, "a-ben", "thank_you")
    body = {"email": "ben@api.example.org", "type": "hard", "reason": "550 5.1.1 user unknown"}
    assert client.post("/api/v1/webhooks/bounces", json=body).status_code == 401
    wrong = client.post("/api/v1/webhooks/bounces", json=body, headers={"X-Webhook-Secret": "nope"})
    assert wrong.status_code == 401
    with_id = {**body, "message_id": nudge["message_id"]}
    answer = client.post("/api/v1/webhooks/bounces", json=with_id, headers={"X-Webhook-Secret": SECRET})
    assert answer.status_code == 200 and answer.get_json() == {"matched": 1, "suppressed": 1}
    again = client.post("/api/v1/webhooks/bounces", json=with_id, headers={"X-Webhook-Secret": SECRET})
    assert again.get_json() == {"matched": 1, "suppressed": 0}
    assert svc.db[OUTBOX].count_documents({"type": "followup.bounced"}) == 1
    listing = client.get(f"/api/v1/events/{sent.event_id}/messages?status=bounced", headers=auth(org_id)).get_json()
    assert [m["id"] for m in listing["messages"]] == [nudge["_id"]]
    for bad in ({"email": "x"}, {"type": "hard"}, {**body, "type": "medium"}, {**body, "extra": 1}):
        answer = client.post("/api/v1/webhooks/bounces", json=bad, headers={"X-Webhook-Secret": SECRET})
        assert answer.status_code == 400, bad
    manual = client.post("/api/v1/suppressions", json={"email": "Someone@Else.org"}, headers=auth(org_id))
    assert manual.status_code == 201
    assert client.delete("/api/v1/suppressions/someone@else.org", headers=auth(org_id)).status_code == 204
    assert client.delete("/api/v1/suppressions/someone@else.org", headers=auth(org_id)).status_code == 404


def test_bad_input_is_never_a_500(client: FlaskClient, org_id: str) -> None:
    h = auth(org_id)
    probes = [
        ("get", "/api/v1/events/x/messages?limit=abc"),
        ("get", "/api/v1/events/x/messages?status=nope"),
        ("get", "/api/v1/events/x/messages?kind=nope"),
        ("get", "/api/v1/events/x/messages"),
        ("get", "/api/v1/messages/nothing"),
        ("post", "/api/v1/messages/nothing/resolution"),
        ("get", "/o/garbage.gif"),
        ("get", "/f/garbage?rating=3"),
        ("get", "/i/a.b.c"),
        ("get", "/u/%00"),
        ("post", "/api/v1/suppressions"),
        ("delete", "/api/v1/suppressions/" + "x" * 300),
        ("get", "/events/x/messages?status=nope"),
    ]
    for method, url in probes:
        answer = getattr(client, method)(url, headers=h)
        assert 400 <= answer.status_code < 500, (url, answer.status_code)
        assert answer.is_json and "error" in answer.get_json(), url


def test_a_contacts_consent_and_its_history(client: FlaskClient, svc: Services, sent: Gathering, org_id: str) -> None:
    thank_you = nudge_of(svc, "a-ann", "thank_you")
    client.post(f"/u/{svc.links.unsubscribe(thank_you['_id'])}", data={"List-Unsubscribe": "One-Click"})
    answer = client.get("/api/v1/contacts/a-ann/consent", headers=auth(org_id))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["consent"] == {"given": True, "unsubscribed": True, "suppressed": True, "may_email": False}
    assert [(h["change"], h["by"]) for h in body["history"]] == [
        ("granted", "registration"),
        ("withdrawn", "unsubscribe_link"),
    ]
    assert body["history"][1]["followup_id"] == thank_you["_id"] and body["history"][1]["detail"] == "one_click"
    cat = client.get("/api/v1/contacts/a-cat/consent", headers=auth(org_id)).get_json()
    assert cat["consent"]["may_email"] is True
    assert client.get("/api/v1/contacts/a-ann/consent", headers=auth("org-other")).status_code == 404
    assert client.get("/api/v1/contacts/a-ann/consent", headers=auth(org_id, "viewer")).status_code == 403
    assert client.get("/api/v1/contacts/a-ann/consent").status_code == 401
    long_id = "x" * 65
    assert client.get(f"/api/v1/contacts/{long_id}/consent", headers=auth(org_id)).status_code == 400
