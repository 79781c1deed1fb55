"""The analytics dashboard in Chromium on the launched stack, with its demo data:
the live counter moves within a second of a check-in made through checkin's
API, and the live view, an event report and the retention heatmap render (the
screenshots go to test-artifacts/, and to docs/screenshots/ with
TURNOUT_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.stack import RunningStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LIVE_EVENT = "Community supper volunteer shift"


def _shots() -> list[Path]:
    places = [REPO / "test-artifacts"]
    if os.environ.get("TURNOUT_UPDATE_SCREENSHOTS") == "1":
        places.append(REPO / "docs" / "screenshots")
    for place in places:
        place.mkdir(parents=True, exist_ok=True)
    return places


def _analytics_events(stack: RunningStack) -> list[dict[str, Any]]:
    answer = requests.get(stack.url("analytics", "/api/v1/events"), headers=stack.headers, timeout=10)
    answer.raise_for_status()
    return list(answer.json()["events"])


def _demo_projected(stack: RunningStack, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until the analytics worker has projected the demo's past events."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = _analytics_events(stack)
        past = [e for e in events if e["status"] == "ended" and e["checked_in"] > 0]
        if len(past) >= 6 and any(e["title"] == LIVE_EVENT for e in events):
            return events
        time.sleep(0.5)
    raise AssertionError(f"analytics did not project the demo data in time: {events}")


def _check_in(stack: RunningStack, event_id: str, registration: dict[str, Any], **extra: Any) -> float:
    started = time.monotonic()
    answer = requests.post(
        stack.url("checkin", f"/api/v1/events/{event_id}/checkins"),
        json={"registration_id": registration["id"], "client_key": f"e2e-{uuid.uuid4().hex}", **extra},
        headers=stack.headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return started


def test_live_counter_moves_within_a_second_and_the_pages_render(running_stack: RunningStack, browser: Any) -> None:
    events = _demo_projected(running_stack)
    live_event = next(e for e in events if e["title"] == LIVE_EVENT)
    event_id = live_event["event_id"]
    registrations = requests.get(
        running_stack.url("checkin", f"/api/v1/events/{event_id}/registrations?limit=100"),
        headers=running_stack.headers,
        timeout=10,
    ).json()["registrations"]
    waiting = [r for r in registrations if r["checked_in_at"] is None]
    assert len(waiting) >= 16

    # The door has been open half an hour: arrivals at two kiosks, as their offline queues report them.
    starts = datetime.fromisoformat(live_event["starts_at"].replace("Z", "+00:00"))
    spread = [-14, -9, -6, -4, -2, -1, 0, 1, 3, 4, 8, 12, 17, 22]
    for minutes, registration in zip(spread, waiting, strict=False):
        scanned = min(starts + timedelta(minutes=minutes, seconds=13), datetime.now(UTC) - timedelta(seconds=5))
        kiosk = "front-door" if minutes % 3 else "side-door"
        _check_in(running_stack, event_id, registration, scanned_at=scanned.isoformat(), kiosk_id=kiosk, method="qr")
    remaining = waiting[len(spread) :]

    # bypass_csp: the page forbids eval, which Playwright needs for its waits (the page itself never evals).
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    analytics = running_stack.config.url_of("analytics")
    context.add_cookies([{"name": "turnout_session", "value": running_stack.token, "url": analytics}])
    page = context.new_page()
    page.goto(f"{analytics}/dashboard/events/{event_id}/live")
    page.wait_for_function("document.getElementById('live-status').textContent === 'Live'", timeout=15_000)
    page.wait_for_function(f"document.getElementById('live-count').textContent === '{len(spread)}'", timeout=15_000)

    latencies = []
    for offset, registration in enumerate(remaining[:3], start=1):
        expected = len(spread) + offset
        started = _check_in(running_stack, event_id, registration, kiosk_id="front-door")
        page.wait_for_function(
            f"document.getElementById('live-count').textContent === '{expected}'", timeout=5_000, polling=20
        )
        latencies.append(time.monotonic() - started)
    assert max(latencies) < 1.0, f"live counter took {latencies} s after the check-in"

    page.wait_for_timeout(300)  # let the chart settle
    places = _shots()
    for place in places:
        page.screenshot(path=str(place / "analytics-live.png"), full_page=True)

    past = [e for e in events if e["status"] == "ended" and e["checked_in"] > 0]
    busiest = max(past, key=lambda e: (e["checked_in"], e["title"]))
    page.goto(f"{analytics}/dashboard/events/{busiest['event_id']}")
    assert page.locator("h1").inner_text() == busiest["title"]
    assert page.locator("canvas#chart-arrivals").is_visible()
    page.wait_for_timeout(300)
    for place in places:
        page.screenshot(path=str(place / "analytics-report.png"), full_page=True)

    page.goto(f"{analytics}/dashboard/retention")
    assert page.locator("table.heatmap tbody tr").count() >= 2
    page.wait_for_timeout(300)
    for place in places:
        page.screenshot(path=str(place / "analytics-retention.png"), full_page=True)

    # How often people come, and everyone who came, most events first, with the total.
    page.goto(f"{analytics}/dashboard/people")
    bands = page.locator("table").first.locator("tbody tr")
    assert bands.nth(0).locator("td").first.inner_text() == "once"
    heading = page.locator("h2", has_text="page 1 of").inner_text()
    listed = page.locator("table").nth(1).locator("tbody tr").count()
    total = int(heading.split()[0].replace(",", ""))
    assert total >= 1 and listed == min(total, 100)
    for place in places:
        page.screenshot(path=str(place / "analytics-people.png"), full_page=True)

    # Readable on a tablet: nothing wider than the screen but the tables' own scrollers.
    tablet = browser.new_context(viewport={"width": 820, "height": 1180}, bypass_csp=True)
    tablet.add_cookies([{"name": "turnout_session", "value": running_stack.token, "url": analytics}])
    tablet_page = tablet.new_page()
    for path in ("/dashboard", f"/dashboard/events/{busiest['event_id']}", "/dashboard/retention", "/dashboard/people"):
        tablet_page.goto(f"{analytics}{path}")
        width = tablet_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 820, (path, width)
    tablet_page.goto(f"{analytics}/dashboard")
    for place in places:
        tablet_page.screenshot(path=str(place / "analytics-overview-tablet.png"), full_page=True)
    tablet.close()
    context.close()


def test_the_dashboard_without_a_session_links_to_the_checkin_sign_in(running_stack: RunningStack) -> None:
    answer = requests.get(running_stack.url("analytics", "/dashboard"), timeout=10)
    assert answer.status_code == 401
    assert f"{running_stack.config.url_of('checkin')}/login?next=" in answer.text
