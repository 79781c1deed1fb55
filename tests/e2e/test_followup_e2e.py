"""Follow-up end to end on the launched stack (every web, relay and worker
process, as ``make run`` starts them), with a real SMTP server (aiosmtpd).

Gatherings are created, attended and ended through checkin's API; follow-up
learns everything from Kafka. The SMTP server must receive exactly the
expected messages (who got what), each with a plain-text and an HTML part,
the organization's footer and the RFC 8058 headers; a one-click unsubscribe
stops the next nudge; both sides accepting an introduction introduces them.
A link scanner fetching every link of a delivered message unsubscribes nobody,
rates nothing and counts as no click, in follow-up and in analytics' funnel.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from tests.e2e.stack import stack_with_mail
from tests.followup.helpers import Received, SmtpServer
from turnout_local.stack import Stack

pytestmark = pytest.mark.e2e

PASSWORD = "followup-e2e-password"
ORG_NAME = "Riverside Mutual Aid"
POSTAL = "12 Dock Street, Springfield"
# A person's browser (a script's own user agent is a machine's, see followup.domain.engagement).
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@dataclass
class FollowupStack:
    stack: Stack
    smtp: SmtpServer
    token: str

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.config.url_of(service)}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def followup_stack() -> Iterator[FollowupStack]:
    with stack_with_mail("turnout-e2e-followup-", ORG_NAME, PASSWORD, scheduler_interval="0.2") as (stack, smtp, token):
        yield FollowupStack(stack, smtp, token)


def call(fs: FollowupStack, method: str, service: str, path: str, **kwargs: Any) -> Any:
    answer = requests.request(method, fs.url(service, path), headers=fs.headers, timeout=30, **kwargs)
    assert answer.status_code < 300, (path, answer.status_code, answer.text)
    return answer.json()


def open_event(fs: FollowupStack, title: str, kind: str, starts_in: timedelta = timedelta(minutes=-10)) -> str:
    now = datetime.now(UTC)
    event = call(
        fs,
        "POST",
        "checkin",
        "/api/v1/events",
        json={
            "title": title,
            "kind": kind,
            "starts_at": (now + starts_in).isoformat(),
            "ends_at": (now + starts_in + timedelta(hours=3)).isoformat(),
            "timezone": "America/New_York",
        },
    )
    return str(event["id"])


def register(fs: FollowupStack, event_id: str, name: str, *, consent: bool = True, **tags: list[str]) -> dict[str, Any]:
    body = {
        "first_name": name,
        "last_name": "Example",
        "email": f"{name.lower()}@example.org",
        "consent_email": consent,
    }
    return dict(call(fs, "POST", "checkin", f"/api/v1/events/{event_id}/registrations", json={**body, **tags}))


def check_in(fs: FollowupStack, event_id: str, registration: dict[str, Any]) -> None:
    call(
        fs,
        "POST",
        "checkin",
        f"/api/v1/events/{event_id}/checkins",
        json={"badge_code": registration["badge_code"], "client_key": f"k-{uuid.uuid4().hex}"},
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def messages_of(fs: FollowupStack, event_id: str) -> list[dict[str, Any]]:
    answer = requests.get(fs.url("followup", f"/api/v1/events/{event_id}/messages"), headers=fs.headers, timeout=10)
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return list(answer.json()["messages"])


def received_for(fs: FollowupStack, followup_ids: set[str]) -> list[Received]:
    return [r for r in fs.smtp.handler.received if r.followup_id in followup_ids]


def settled(fs: FollowupStack, event_id: str, expected: int) -> list[dict[str, Any]]:
    """Wait until the gathering's messages are all decided and delivered, then a bit more (no late doubles)."""

    def done() -> bool:
        listed = messages_of(fs, event_id)
        sent = {m["id"] for m in listed if m["state"] == "sent"}
        return len(sent) >= expected and len(received_for(fs, sent)) >= expected

    wait_for(done, 90, f"{expected} messages for {event_id}")
    time.sleep(2.0)
    return messages_of(fs, event_id)


def who_got_what(fs: FollowupStack, listed: list[dict[str, Any]]) -> dict[str, set[str]]:
    got: dict[str, set[str]] = {}
    for item in received_for(fs, {m["id"] for m in listed}):
        got.setdefault(item.to.split("@")[0], set()).add(item.kind)
    return got


def link(item: Received, prefix: str) -> str:
    text = item.message.get_body(("plain",)).get_content()
    found = re.search(rf"(http://127\.0\.0\.1:\d+/{prefix}/\S+)", text)
    assert found, f"no /{prefix}/ link"
    return found.group(1)


def check_message(fs: FollowupStack, item: Received, listed: dict[str, dict[str, Any]]) -> None:
    message = item.message
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert ORG_NAME in body and POSTAL in body
    assert "#0b6e4f" in html
    unsubscribe = message["List-Unsubscribe"]
    assert re.fullmatch(r"<http://127\.0\.0\.1:\d+/u/[0-9a-f]{32}\.[A-Za-z0-9_-]+>", unsubscribe), unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["From"] == f"{ORG_NAME} <hello@mail.example.org>"
    entry = listed[item.followup_id]
    assert message["Message-ID"] == entry["message_id"]
    assert entry["status"] in ("sent", "opened", "clicked")


def test_gatherings_end_and_exactly_the_right_people_hear_from_us(followup_stack: FollowupStack) -> None:
    fs = followup_stack
    call(
        fs,
        "PATCH",
        "followup",
        "/api/v1/settings",
        json={"branding": {"name": ORG_NAME, "postal_address": POSTAL, "primary_color": "#0b6e4f"}},
    )

    # A first gathering: Erin and Frank come for the first time.
    first = open_event(fs, "Spring sorting workshop", "workshop")
    erin = register(fs, first, "Erin")
    frank = register(fs, first, "Frank")
    for registration in (erin, frank):
        check_in(fs, first, registration)
    call(fs, "POST", "checkin", f"/api/v1/events/{first}/end")
    listed_first = settled(fs, first, 4)
    assert who_got_what(fs, listed_first) == {
        "erin": {"thank_you", "first_timer_welcome"},
        "frank": {"thank_you", "first_timer_welcome"},
    }
    by_id = {m["id"]: m for m in listed_first}
    for item in received_for(fs, set(by_id)):
        check_message(fs, item, by_id)

    # Frank unsubscribes with one click (RFC 8058), straight from the header.
    frank_mail = next(r for r in received_for(fs, set(by_id)) if r.to.startswith("frank@"))
    url = frank_mail.message["List-Unsubscribe"].strip("<>")
    answer = requests.post(
        url,
        data="List-Unsubscribe=One-Click",
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200

    # Coming up: the next networking evening (what a no-show is pointed to).
    upcoming = open_event(fs, "Autumn networking evening", "networking", starts_in=timedelta(days=7))
    assert upcoming

    # A networking evening: first-timers with matching offers and seeks, a no-show,
    # someone without consent, a regular, and Frank (unsubscribed).
    evening = open_event(fs, "Neighbours networking evening", "networking")
    alice = register(fs, evening, "Alice", offers=["Grant Writing"], seeks=["Design"])
    bob = register(fs, evening, "Bob", offers=["design"], seeks=["grant-writing"])
    register(fs, evening, "Carol")
    dan = register(fs, evening, "Dan", consent=False, offers=["design"], seeks=["grant writing"])
    erin_again = register(fs, evening, "Erin")
    frank_again = register(fs, evening, "Frank", offers=["design"])
    for registration in (alice, bob, dan, erin_again, frank_again):
        check_in(fs, evening, registration)
    call(fs, "POST", "checkin", f"/api/v1/events/{evening}/end")
    listed = settled(fs, evening, 8)
    assert who_got_what(fs, listed) == {
        "alice": {"thank_you", "first_timer_welcome", "introduction_request"},
        "bob": {"thank_you", "first_timer_welcome", "introduction_request"},
        "carol": {"we_missed_you"},
        "erin": {"thank_you"},
    }
    by_id = {m["id"]: m for m in listed}
    evening_mail = received_for(fs, set(by_id))
    assert len(evening_mail) == 8  # exactly once each
    for item in evening_mail:
        check_message(fs, item, by_id)
    carol = next(r for r in evening_mail if r.to.startswith("carol@"))
    assert "Autumn networking evening" in carol.message.get_body(("plain",)).get_content()

    # The message as the organizer sees it is the message as sent.
    alice_thanks = next(r for r in evening_mail if r.to.startswith("alice@") and r.kind == "thank_you")
    detail = call(fs, "GET", "followup", f"/api/v1/messages/{alice_thanks.followup_id}")
    assert detail["rendered"]["raw"].replace("\r\n", "\n") == alice_thanks.raw.decode().replace("\r\n", "\n")
    pixel = re.search(r'src="(http://[^"]+/o/[^"]+\.gif)"', alice_thanks.message.get_body(("html",)).get_content())
    assert pixel is not None
    assert requests.get(pixel.group(1), timeout=10, headers={"User-Agent": BROWSER}).status_code == 200
    wait_for(
        lambda: any(m["status"] == "opened" for m in messages_of(fs, evening) if m["id"] == alice_thanks.followup_id),
        10,
        "the open to show",
    )

    # Double opt-in: Alice, then Bob, say yes; both get the introduction with the other's address.
    for person in ("alice@", "bob@"):
        request = next(r for r in evening_mail if r.to.startswith(person) and r.kind == "introduction_request")
        assert requests.post(link(request, "i"), timeout=10).status_code == 200
    listed = settled(fs, evening, 10)
    introductions = {r.to: r for r in received_for(fs, {m["id"] for m in listed}) if r.kind == "introduction"}
    assert set(introductions) == {"alice@example.org", "bob@example.org"}
    assert "bob@example.org" in introductions["alice@example.org"].message.get_body(("plain",)).get_content()
    assert "alice@example.org" in introductions["bob@example.org"].message.get_body(("plain",)).get_content()

    # Nothing reached the server twice, and Frank heard nothing after unsubscribing.
    counts: dict[str, int] = {}
    for item in fs.smtp.handler.received:
        counts[item.followup_id] = counts.get(item.followup_id, 0) + 1
    assert max(counts.values()) == 1
    frank_got = sorted(r.kind for r in fs.smtp.handler.received if r.to.startswith("frank@"))
    assert frank_got == ["first_timer_welcome", "thank_you"]  # only from before the unsubscribe
    assert len(fs.smtp.handler.received) == 4 + 10


SCANNER = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"


def funnel_clicks(fs: FollowupStack) -> tuple[int, int]:
    """(people's clicks, follow-ups only link scanners clicked) over analytics' funnel."""
    kinds = call(fs, "GET", "analytics", "/api/v1/funnel")["kinds"]
    return sum(k["clicked"] for k in kinds), sum(k["machine_clicked"] for k in kinds)


def test_a_link_scanner_fetching_every_link_unsubscribes_nobody_and_clicks_nothing(
    followup_stack: FollowupStack,
) -> None:
    fs = followup_stack
    branding = {"name": ORG_NAME, "postal_address": POSTAL, "primary_color": "#0b6e4f"}
    call(
        fs,
        "PATCH",
        "followup",
        "/api/v1/settings",
        json={"branding": {**branding, "website_url": "https://riverside.example.org/"}},
    )
    workshop = open_event(fs, "Bike repair workshop", "workshop")
    gwen = register(fs, workshop, "Gwen")
    check_in(fs, workshop, gwen)
    call(fs, "POST", "checkin", f"/api/v1/events/{workshop}/end")

    def delivered() -> list[Received]:
        sent = {m["id"] for m in messages_of(fs, workshop) if m["sent_at"]}
        return received_for(fs, sent) if len(sent) == 2 else []

    wait_for(lambda: len(delivered()) == 2, 60, "gwen's thank-you and welcome")
    mail = delivered()
    clicks_before = funnel_clicks(fs)[0]

    # Seconds after delivery, the gateway fetches every link of both messages, HEAD then GET.
    links: set[str] = set()
    for item in mail:
        for part in ("plain", "html"):
            body = item.message.get_body((part,)).get_content().replace("&amp;", "&")
            links |= set(re.findall(r"http://127\.0\.0\.1:\d+/[cfuoi]/[^\s\"<>]+", body))
        links.add(item.message["List-Unsubscribe"].strip("<>"))
    assert {"/c/", "/f/", "/u/", "/o/"} <= {re.sub(r".*(/[a-z]/).*", r"\1", url) for url in links}
    for url in sorted(links):
        for method in ("HEAD", "GET"):
            answer = requests.request(method, url, headers={"User-Agent": SCANNER}, timeout=10, allow_redirects=False)
            assert answer.status_code in (200, 302), (method, url, answer.status_code)
    scanned = datetime.now(UTC)

    # Still subscribed, nothing rated, no click by a person: only the scanner's, apart.
    consent = call(fs, "GET", "followup", f"/api/v1/contacts/{gwen['person_id']}/consent")["consent"]
    assert consent["given"] and not consent["unsubscribed"]
    ids = {item.kind: item.followup_id for item in mail}
    welcome = call(fs, "GET", "followup", f"/api/v1/messages/{ids['first_timer_welcome']}")
    thanks = call(fs, "GET", "followup", f"/api/v1/messages/{ids['thank_you']}")
    assert thanks["feedback_rating"] is None and thanks["status"] == "sent" and welcome["status"] == "sent"
    assert welcome["click_count"] == 0 and welcome["machine_click_count"] >= 2  # HEAD and GET
    assert welcome["open_count"] + thanks["open_count"] == 0 and welcome["machine_open_count"] >= 2
    engagement = call(fs, "GET", "followup", f"/api/v1/events/{workshop}/messages")["engagement"]
    assert engagement["opened"] == 0 and engagement["clicked"] == 0 and engagement["machine_clicked"] >= 1
    wait_for(lambda: funnel_clicks(fs)[1] >= 1, 30, "analytics to count the scanner apart")
    assert funnel_clicks(fs)[0] == clicks_before

    # Later, Gwen herself follows the link in her browser: one click, in both services.
    website = next(url for url in links if "/c/" in url and "riverside.example.org" in unquote(url))
    # Past the stack's 3 s after delivery, and 2 s after the scanner's last fetch (a burst).
    earliest = max(
        datetime.fromisoformat(welcome["sent_at"]) + timedelta(seconds=3.5), scanned + timedelta(seconds=2.5)
    )
    wait_for(lambda: datetime.now(UTC) >= earliest, 10, "a person's pace")
    answer = requests.get(website, headers={"User-Agent": BROWSER}, timeout=10, allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"] == "https://riverside.example.org/"
    engagement = call(fs, "GET", "followup", f"/api/v1/events/{workshop}/messages")["engagement"]
    assert engagement["clicked"] == 1 and engagement["machine_clicked"] == 0
    wait_for(lambda: funnel_clicks(fs)[0] == clicks_before + 1, 30, "analytics to count her click")
