"""The public privacy page and the person's signed link, against the real
database: the same answer whoever asks, an emailed link (person.data_link_requested)
only for a known address, a confirm button (never acting on a GET), the
request's progress and download through the same link, and clear 4xx pages
for tampered, expired and used-up links; the form is rate-limited per address."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, registered
from tests.checkin.integration.test_pages import text_of
from tests.checkin.integration.test_privacy_requests import deliver, erased, exported, traces
from turnout_common.clock import utcnow
from turnout_common.config import RateLimitSettings
from turnout_common.privacy import pseudonym

pytestmark = pytest.mark.integration

SENT = "If we hold data for this address, we have emailed it a link."


@pytest.fixture
def settings(settings: Any) -> Any:
    return replace(settings, rate_limits=RateLimitSettings(public_registration="6 per 15 minutes"))


@pytest.fixture
def person(client: FlaskClient, org: Org) -> dict[str, Any]:
    event = create_event(client, org.token, title="Harbour clean-up")
    email = f"wilhelmina.{uuid.uuid4().hex[:8]}@example.org"
    reg = registered(client, org.token, event["id"], email, first_name="Wilhelmina", last_name="Sturgeon")
    return {"person_id": reg["person_id"], "email": email, "event": event}


def slug_of(ctx: Any, org: Org) -> str:
    return str(ctx.db["organizations"].find_one({"_id": org.id})["slug"])


def links(ctx: Any) -> list[dict[str, Any]]:
    return [json.loads(doc["payload"])["data"] for doc in ctx.db["outbox"].find({"type": "person.data_link_requested"})]


def ask(client: FlaskClient, slug: str, email: str, purpose: str, address: str = "192.0.2.10") -> Any:
    return client.post(
        f"/privacy/{slug}", data={"email": email, "purpose": purpose}, environ_overrides={"REMOTE_ADDR": address}
    )


def path_of(link: str) -> str:
    return urlsplit(link).path


def test_the_page_answers_the_same_whoever_asks_and_emails_only_a_known_person(
    client: FlaskClient, org: Org, ctx: Any, person: dict[str, Any]
) -> None:
    slug = slug_of(ctx, org)
    form = client.get(f"/privacy/{slug}")
    assert form.status_code == 200
    assert "Send me my data" in text_of(form) and "Erase my data" in text_of(form)
    assert client.get("/privacy/no-such-organization").status_code == 404

    stranger = ask(client, slug, "nobody@example.org", "export")
    known = ask(client, slug, f"  {person['email'].upper()} ", "export")
    assert stranger.status_code == known.status_code == 200
    assert SENT in text_of(stranger) and text_of(stranger) == text_of(known)
    [sent] = links(ctx)
    assert sent["person_id"] == person["person_id"] and sent["email"] == person["email"]
    assert sent["purpose"] == "export" and sent["first_name"] == "Wilhelmina"
    assert sent["link"].startswith(ctx.settings.public_url + "/privacy/requests/")
    assert sent["organization_name"].startswith("Alpha")
    # Asking again at once sends no second email (someone typing her address cannot flood her inbox).
    assert SENT in text_of(ask(client, slug, person["email"], "export"))
    assert len(links(ctx)) == 1
    assert ask(client, slug, person["email"], "erasure").status_code == 200  # another purpose: its own link
    assert [s["purpose"] for s in links(ctx)] == ["export", "erasure"]

    bad = ask(client, slug, "not an address", "export")
    assert bad.status_code == 400 and "valid email address" in text_of(bad)
    assert ask(client, slug, person["email"], "delete").status_code == 400


def test_a_link_asks_to_confirm_then_shows_the_progress_and_the_download(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, person: dict[str, Any]
) -> None:
    ask(client, slug_of(ctx, org), person["email"], "export")
    [sent] = links(ctx)
    path = path_of(sent["link"])
    page = client.get(path)
    assert page.status_code == 200
    assert "Get a copy of your data" in text_of(page) and "Send me my data" in text_of(page)
    assert ctx.db["data_requests"].count_documents({}) == 0  # a GET does nothing
    confirmed = client.post(path)
    assert confirmed.status_code == 303 and confirmed.headers["Location"].endswith(path)
    again = client.post(path)  # a second click: the same request
    assert again.status_code == 303
    [request] = list(ctx.db["data_requests"].find())
    assert request["requested_by"] == {"kind": "person"} and request["person_id"] == person["person_id"]
    [entry] = list(ctx.db["audit_log"].find({"org_id": org.id, "action": "personal_data.exported"}))
    assert entry["actor"]["kind"] == "person" and "Wilhelmina" not in json.dumps(entry, default=str)

    progress = client.get(path)
    assert progress.status_code == 200 and "1 of 3 services have answered" in text_of(progress)
    assert '<meta http-equiv="refresh"' in progress.get_data(as_text=True)
    not_yet = client.get(f"{path}/archive.json")
    assert not_yet.status_code == 409 and "1 of 3" in not_yet.get_json()["error"]["message"]
    deliver(ctx, exported(org.id, request["_id"], "followup", {"messages": [{"nudge": "thank_you"}]}, 1000))
    deliver(ctx, exported(org.id, request["_id"], "analytics", {"visits": []}, 1000))
    ready = client.get(path)
    assert "Ready" in text_of(ready) and f"{path}/archive.json" in ready.get_data(as_text=True)
    archive = client.get(f"{path}/archive.json")
    assert archive.status_code == 200
    body = archive.get_json()
    assert body["checkin"]["person"]["email"] == person["email"]
    assert body["followup"] == {"messages": [{"nudge": "thank_you"}]}
    # The organizers see it too, asked by the person.
    listing = client.get("/api/v1/data-requests", headers=headers(org.token)).get_json()
    assert listing["data_requests"][0]["requested_by"] == {"kind": "person"}


def test_an_erasure_link_erases_after_the_confirmation_and_then_shows_the_progress(
    client: FlaskClient, org: Org, ctx: Any, person: dict[str, Any]
) -> None:
    ask(client, slug_of(ctx, org), person["email"], "erasure")
    [sent] = links(ctx)
    path = path_of(sent["link"])
    page = client.get(path)
    assert "Erase your data" in text_of(page) and "cannot be undone" in text_of(page)
    assert ctx.db["people"].find_one({"_id": person["person_id"]}) is not None
    assert client.post(path).status_code == 303
    assert ctx.db["people"].find_one({"_id": person["person_id"]}) is None
    [request] = list(ctx.db["data_requests"].find())
    assert request["person_id"] == pseudonym(org.id, person["person_id"])
    progress = client.get(path)
    assert progress.status_code == 200 and "Erasing your data" in text_of(progress)
    assert client.get(f"{path}/archive.json").status_code == 409
    deliver(ctx, [erased(org.id, request["_id"], "followup", {"contacts": 1})])
    deliver(ctx, [erased(org.id, request["_id"], "analytics", {"people": 1})])
    assert "every service has erased you" in text_of(client.get(path))
    assert traces(ctx, ["Wilhelmina", "Sturgeon", person["email"], person["person_id"]]) == []


def test_tampered_expired_and_used_up_links_get_a_clear_page(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, person: dict[str, Any]
) -> None:
    from checkin.domain import privacy as rules
    from checkin.service_layer import privacy

    ask(client, slug_of(ctx, org), person["email"], "export")
    [sent] = links(ctx)
    token = path_of(sent["link"]).rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for path in (f"/privacy/requests/{tampered}", "/privacy/requests/x", f"/privacy/requests/{'a' * 1500}"):
        answer = client.get(path)
        assert answer.status_code == 400 and "This link is not valid" in text_of(answer), path
        assert client.post(path).status_code == 400
        download = client.get(f"{path}/archive.json")
        assert download.status_code == 400 and download.get_json()["error"]["code"] == "link_refused"
    assert ctx.db["data_requests"].count_documents({}) == 0
    # Another organization's secret: not valid either.
    forged = privacy.link_token(
        replace(ctx, settings=replace(ctx.settings, secret_key="another-secret-key-0123456789")),
        rules.Link(org.id, person["person_id"], "erasure", "n1", utcnow() + timedelta(hours=1)),
    )
    assert client.post(f"/privacy/requests/{forged}").status_code == 400
    # A link made 25 hours ago has expired (the service's clock says so).
    old = privacy.link_token(
        ctx, rules.Link(org.id, person["person_id"], "erasure", "n2", utcnow() - timedelta(hours=1))
    )
    expired = client.get(f"/privacy/requests/{old}")
    assert expired.status_code == 410 and "expired" in text_of(expired)
    assert client.post(f"/privacy/requests/{old}").status_code == 410
    assert ctx.db["people"].find_one({"_id": person["person_id"]}) is not None
    # A link for a person erased since, which made no request: nothing left to act on.
    client.post(f"/api/v1/people/{person['person_id']}/erasure", headers=headers(org.token))
    used_up = client.get(path_of(sent["link"]))
    assert used_up.status_code == 410 and "no longer works" in text_of(used_up)
    assert client.post(path_of(sent["link"])).status_code == 410


def test_the_privacy_form_is_rate_limited_per_address(client: FlaskClient, org: Org, ctx: Any) -> None:
    slug = slug_of(ctx, org)
    answers = [ask(client, slug, f"n{i}@example.org", "export", address="198.51.100.7") for i in range(6)]
    assert [answer.status_code for answer in answers] == [200] * 6
    refused = ask(client, slug, "n7@example.org", "export", address="198.51.100.7")
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Too many requests from your network" in text_of(refused)
    assert ask(client, slug, "n8@example.org", "export", address="198.51.100.8").status_code == 200
