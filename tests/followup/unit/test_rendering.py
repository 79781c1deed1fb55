"""What each email says and how it is built: both alternatives, the footer,
the headers, escaping. No server needed: the facts are built by hand."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from followup.adapters.rendering import JinjaRenderer
from followup.config import Settings
from followup.domain.links import LinkTokens
from followup.domain.nudges import ALL_KINDS, followup_id, message_id, nudge_key
from followup.domain.settings import Branding, FollowupSettings
from followup.service_layer.content import BatchFacts, draft_for
from followup.service_layer.context import Services
from tests.followup.unit.fakes import FakeStore, FakeTransactions

NOW = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def svc(monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setenv("TURNOUT_PUBLIC_URL_FOLLOWUP", "https://followup.example.org")
    monkeypatch.setenv("FOLLOWUP_UNSUBSCRIBE_MAILTO", "unsubscribe@mail.example.org")
    monkeypatch.setenv("MAIL_FROM", "Turnout <hello@mail.example.org>")
    settings = Settings.from_env()
    store = FakeStore()
    return Services(
        store=store,
        transactions=FakeTransactions(store),
        settings=settings,
        links=LinkTokens("unit-secret"),
        renderer=JinjaRenderer(),
    )


def facts_for(kind: str, first_name: str = "Ada") -> tuple[BatchFacts, dict[str, Any]]:
    event_id = "e1"
    key = nudge_key(None if kind == "win_back" else event_id, "p1", kind)
    fid = followup_id(key)
    nudge = {
        "_id": fid,
        "org_id": "o1",
        "event_id": None if kind == "win_back" else event_id,
        "anchor_event_id": event_id,
        "person_id": "p1",
        "kind": kind,
        "introduction_id": "i1" if kind == "introduction" else None,
        "send_at": NOW,
        "message_id": message_id(fid, "mail.example.org"),
    }
    settings = FollowupSettings(
        branding=Branding(
            name="Riverside <Pantry>",
            primary_color="#123456",
            accent_color="#654321",
            postal_address="12 Dock St\nSpringfield",
            website_url="https://riverside.example.org",
        ),
        note="Thanks for sorting 2 tons of food!",
        photos_url="https://photos.example.org/1",
    )
    event = {
        "_id": event_id,
        "title": "Saturday sorting shift",
        "kind": "volunteer_shift",
        "starts_at": datetime(2026, 5, 1, 15, 0, tzinfo=UTC),
        "timezone": "America/Chicago",
        "venue": "Warehouse",
    }
    upcoming = {
        "_id": "e2",
        "title": "Next sorting shift",
        "kind": "volunteer_shift",
        "starts_at": NOW + timedelta(days=7),
        "timezone": "America/Chicago",
        "venue": None,
    }
    intro = {
        "_id": "i1",
        "people": ["p1", "p2"],
        "offers": {"p1": ["grant writing"], "p2": ["web design"]},
        "accepted_by": [],
        "state": "agreed" if kind == "introduction" else "suggested",
    }
    facts = BatchFacts(
        now=NOW,
        events={event_id: event},
        contacts={
            "p1": {"_id": "p1", "first_name": first_name, "last_name": "Lovelace", "email": "ada@example.org"},
            "p2": {"_id": "p2", "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.org"},
        },
        attendance={(event_id, "p1"): {"person_id": "p1", "checked_in_at": NOW, "hours": 2.5}},
        settings={("o1", nudge["event_id"]): settings},
        hours_total={"p1": 12.75},
        suggestions={(event_id, "p1"): [intro]},
        introductions={"i1": intro},
        upcoming={"o1": [upcoming]},
    )
    return facts, nudge


def render(svc: Services, kind: str, first_name: str = "Ada") -> EmailMessage:
    facts, nudge = facts_for(kind, first_name)
    mail = svc.renderer.render(draft_for(svc, facts, nudge))
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("kind", [kind.value for kind in ALL_KINDS])
def test_every_kind_has_both_alternatives_footer_and_headers(svc: Services, kind: str) -> None:
    message = render(svc, kind)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith("Hi Ada,") and "Hi Ada," in html
    assert "Riverside <Pantry>" in text and "Riverside &lt;Pantry&gt;" in html
    assert "12 Dock St" in text and "12 Dock St, Springfield" in html
    assert "#123456" in html and "#654321" in html
    assert "https://followup.example.org/u/" in text and "https://followup.example.org/u/" in html
    assert "https://followup.example.org/o/" in html and "/o/" not in text  # the pixel only in HTML
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://followup.example.org/u/")
    assert "<mailto:unsubscribe@mail.example.org?subject=unsubscribe%20" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    _, nudge = facts_for(kind)
    assert message["Message-ID"] == nudge["message_id"]
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Riverside <Pantry>", "hello@mail.example.org")
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    token = unsubscribe.split(">")[0].rsplit("/", 1)[1]
    assert svc.links.check_unsubscribe(token) == nudge["_id"]


def test_what_each_kind_says(svc: Services) -> None:
    thank_you = render(svc, "thank_you")
    assert thank_you["Subject"] == "Thank you for coming to Saturday sorting shift"
    text = thank_you.get_body(("plain",)).get_content()
    assert "Friday 1 May 2026, 10:00" in text  # local time of the gathering (Chicago)
    assert "Thanks for sorting 2 tons of food!" in text
    assert "rating=5" in text and "Next sorting shift" in text
    assert "https://followup.example.org/c/" in text  # the photos link goes through the signed redirect
    missed = render(svc, "we_missed_you").get_body(("plain",)).get_content()
    assert "The next one is Next sorting shift" in missed
    hours = render(svc, "volunteer_hours").get_body(("plain",)).get_content()
    assert "2.5 hours" in hours and "12.75 hours" in hours
    request = render(svc, "introduction_request").get_body(("plain",)).get_content()
    assert "Grace H." in request and "Hopper" not in request and "grace@example.org" not in request
    assert "https://followup.example.org/i/" in request
    intro = render(svc, "introduction").get_body(("plain",)).get_content()
    assert "Grace Hopper <grace@example.org>" in intro
    win_back = render(svc, "win_back")
    assert win_back["Subject"] == "It's been a while, Ada"


def test_html_escapes_what_people_typed(svc: Services) -> None:
    message = render(svc, "thank_you", first_name="<script>alert(1)</script>")
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script>" in message.get_body(("plain",)).get_content()


def test_non_ascii_names_and_subjects_are_encoded(svc: Services) -> None:
    facts, nudge = facts_for("first_timer_welcome", first_name="Zoë")
    facts.settings[("o1", "e1")] = FollowupSettings(branding=Branding(name="Café Ünïon"))
    mail = svc.renderer.render(draft_for(svc, facts, nudge))
    assert mail.raw.isascii()
    assert all(len(line) <= 998 for line in mail.raw.split(b"\r\n"))
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert parsed["Subject"] == "Welcome to Café Ünïon, Zoë!"
    assert parsed["To"].addresses[0].display_name == "Zoë Lovelace"
    assert parsed["From"].addresses[0].display_name == "Café Ünïon"
    assert "Hi Zoë," in parsed.get_body(("plain",)).get_content()
    assert b"\r\n" in mail.raw and b"\n" not in mail.raw.replace(b"\r\n", b"")


def test_the_volunteer_hours_email_links_to_the_persons_hours_page_when_checkin_sent_one(svc: Services) -> None:
    facts, nudge = facts_for("volunteer_hours")
    link = "https://checkin.example.org/hours/me/eyJvIjoibzEifQ.c2ln"
    facts.attendance[("e1", "p1")]["hours_link"] = link
    mail = svc.renderer.render(draft_for(svc, facts, nudge))
    parsed = email.message_from_bytes(mail.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert link in text and f'href="{link}"' in html and "hour statement" in html
    assert "Reply to this email" not in text
    # Without a link (an older check-out), the email offers a reply as before.
    assert "Reply to this email" in render(svc, "volunteer_hours").get_body(("plain",)).get_content()
