"""People or machines behind a link or pixel fetch (``followup.domain.engagement``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from followup.domain.engagement import (
    BOT_AGENT,
    BURST,
    HEAD,
    HUMAN,
    IMAGE_PROXY,
    SCANNER_AGENT,
    TOO_SOON,
    Fetch,
    LastClick,
    Thresholds,
    Verdict,
    classify_click,
    classify_open,
)

SENT = datetime(2026, 5, 4, 18, 0, tzinfo=UTC)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
URL = "https://riverside.example.org/photos"


def later(seconds: float) -> datetime:
    return SENT + timedelta(seconds=seconds)


def click(agent: str = FIREFOX, at: float = 3600, method: str = "GET", last: LastClick | None = None) -> Verdict:
    return classify_click(Fetch(method, agent, later(at)), URL, delivered_at=SENT, last_click=last)


def test_a_person_reading_the_email_later_is_a_person() -> None:
    assert click() == HUMAN
    assert click(IPHONE, at=11) == HUMAN
    assert classify_open(Fetch("GET", IPHONE, later(60))) == HUMAN


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; SafeLinks/1.0)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
        "Microsoft Office Existence Discovery",
        "Proofpoint URL Defense",
        "Mimecast-LinkProtect/2.0",
        "Barracuda Sentinel (EE)",
        "IronPort/14.0",
    ],
)
def test_known_link_scanners_are_machines_by_their_user_agent(agent: str) -> None:
    assert click(agent) == Verdict(True, SCANNER_AGENT)


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "Mozilla/5.0",  # Apple Mail Privacy Protection's pre-fetch
    ],
)
def test_image_proxies_opening_the_pixel_are_machines(agent: str) -> None:
    assert classify_open(Fetch("GET", agent, later(3600))) == Verdict(True, IMAGE_PROXY)


@pytest.mark.parametrize("agent", ["python-requests/2.32.3", "curl/8.5.0", "", "   ", "Go-http-client/1.1"])
def test_scripts_crawlers_and_no_user_agent_are_machines(agent: str) -> None:
    assert click(agent) == Verdict(True, BOT_AGENT)
    assert classify_open(Fetch("GET", agent, later(3600))).reason == BOT_AGENT


def test_a_head_request_is_a_machine_whatever_it_claims_to_be() -> None:
    assert click(method="HEAD") == Verdict(True, HEAD)
    assert classify_open(Fetch("HEAD", FIREFOX, later(3600))) == Verdict(True, HEAD)


def test_a_click_seconds_after_delivery_is_a_scanner_even_with_a_browser_agent() -> None:
    assert click(at=0.4) == Verdict(True, TOO_SOON)
    assert click(at=9.9) == Verdict(True, TOO_SOON)
    assert click(at=10.0) == HUMAN
    # Configurable; and with no delivery time known the rule does not apply.
    fetch = Fetch("GET", FIREFOX, later(20))
    slower = Thresholds(soon_seconds=30, burst_seconds=2)
    assert classify_click(fetch, URL, delivered_at=SENT, last_click=None, thresholds=slower).reason == TOO_SOON
    assert classify_click(Fetch("GET", FIREFOX, later(1)), URL, delivered_at=None, last_click=None) == HUMAN


def test_several_links_within_a_second_or_two_are_a_scanner() -> None:
    other = LastClick("https://riverside.example.org/donate", later(600))
    assert click(at=601.5, last=other) == Verdict(True, BURST)
    assert click(at=603, last=other) == HUMAN
    # The same link again (a double click, a reload) is not a burst.
    assert click(at=600.5, last=LastClick(URL, later(600))) == HUMAN


def test_a_very_long_user_agent_is_judged_on_its_start() -> None:
    assert click(FIREFOX + " x" * 5000) == HUMAN
    assert click("Proofpoint" + " x" * 5000).reason == SCANNER_AGENT
