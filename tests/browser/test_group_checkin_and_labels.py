"""Group check-in, name labels and a name-only person's email in a real browser
(Chromium) on the whole launched stack: a scan at the kiosk offers the others of
the person's order, one tap checks them in (each counted once), each check-in
prints a name label through the print dialog; someone imported from a Meetup
roster without an email is asked for one (consent unticked) and becomes a
contact; the staff view offers the same group; the label page renders at the
label printer's size (a PDF of it has that page size)."""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, expect

from tests.browser.helpers import create_kiosk, get_event, registrations, wait_for_checked_in
from tests.browser.test_accessibility import AXE, Audit
from tests.e2e.stack import RunningStack
from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / ("docs/screenshots" if os.environ.get("TURNOUT_UPDATE_SCREENSHOTS") == "1" else "test-artifacts")
# window.print() opens a dialog a headless browser cannot show: count the calls instead.
COUNT_PRINTS = (
    "window.__prints = [];"
    "window.print = () => window.__prints.push(document.querySelector('#print-labels').textContent); true"
)
MM_TO_PT = 72 / 25.4


def _post(stack: RunningStack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(stack.url("checkin", path), json=body, headers=stack.headers, timeout=10)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


def _registered(stack: RunningStack, event_id: str, first: str, last: str, party: str, **more: Any) -> dict[str, Any]:
    body = {"first_name": first, "last_name": last, "email": f"{uuid.uuid4().hex[:10]}@example.org"}
    return _post(
        stack, f"/api/v1/events/{event_id}/registrations", {**body, "consent_email": False, "party": party, **more}
    )


def _imported_name_only(stack: RunningStack, event_id: str, name: str) -> None:
    """One Meetup RSVP row (no email column), imported by the worker."""
    header = (
        "Name,User ID,Title,Event Host,RSVPed on,Last Attended,Guests,RSVP,Phone,Joined Group on,URL of Member Profile"
    )
    row = f"{name},user 4{uuid.uuid4().int % 10**8:08d},,No,2026-04-01 18:03:00,,0,Yes,,2024-09-10,"
    answer = requests.post(
        stack.url("checkin", f"/api/v1/events/{event_id}/imports"),
        files={"file": ("Meetup RSVPs.csv", f"{header}\n{row}\n".encode())},
        headers=stack.headers,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = requests.get(stack.url("checkin", f"/api/v1/imports/{job}"), headers=stack.headers, timeout=10).json()
        if done["status"] == "done":
            assert done["created"] == 1 and done["name_only"] == 1, done
            return
        time.sleep(0.25)
    raise AssertionError(f"the import {job} did not finish")


def test_a_group_checks_in_together_and_each_gets_a_name_label(
    running_stack: RunningStack, kiosk_factory: Any, browser: Browser
) -> None:
    stack = running_stack
    now = datetime.now(UTC)
    event = _post(
        stack,
        "/api/v1/events",
        {
            "title": "Founders & Friends",
            "kind": "networking",
            "starts_at": (now - timedelta(minutes=10)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "timezone": "Europe/Berlin",
            "venue": "Community Hall",
            "name_labels": True,
        },
    )
    eid = event["id"]
    order = f"Order {uuid.uuid4().hex[:6]}"
    ada = _registered(stack, eid, "Ada", "Lovelace", order, offers=["python", "mentoring"], seeks=["a co-founder"])
    _registered(stack, eid, "Bob", "Byron", order)
    _registered(stack, eid, "Cy", "Chen", order)
    family = f"Family {uuid.uuid4().hex[:6]}"
    dee = _registered(stack, eid, "Dee", "Dunn", family)
    _registered(stack, eid, "Eli", "Dunn", family)
    _imported_name_only(stack, eid, "Pat Quinn")

    audit = Audit(source=AXE.read_text(encoding="utf-8"))  # WCAG 2.2 AA with axe-core, as test_accessibility
    kiosk = kiosk_factory()
    kiosk.pair(create_kiosk(stack, eid)["pairing_code"])
    kiosk.wait_for_roster(6)
    page = kiosk.page
    page.evaluate(COUNT_PRINTS)

    # Ada's badge: welcome, her label printed, the others of her order offered (both ticked).
    kiosk.scan(ada["badge_code"])
    assert kiosk.result()["title"] == "Welcome, Ada!"
    offer = page.locator("#group-offer")
    expect(offer).to_be_visible()
    expect(offer.locator("#group-title")).to_have_text("Check in the others in your group too?")
    expect(offer.locator("input[type=checkbox]:checked")).to_have_count(2)
    expect(offer.locator("#group-submit")).to_have_text("Check in 2 more")
    kiosk.wait_until("window.__prints.length === 1")
    printed = page.evaluate("window.__prints[0]")
    assert "Ada" in printed and "Lovelace" in printed and "python, mentoring" in printed and "a co-founder" in printed
    page.wait_for_timeout(450)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "kiosk-group-checkin.png"))
    audit.run(page, "door", "kiosk group offer")

    # What the print dialog gets: only the label, at the kiosk's label size.
    page.emulate_media(media="print")
    expect(page.locator("#print-labels .name-label")).to_be_visible()
    expect(page.locator("#screen-result")).to_be_hidden()
    page.emulate_media(media="screen")

    # One tap: Bob and Cy in, their two labels printed in one go.
    page.click("#group-submit")
    expect(page.locator("#result-title")).to_have_text("Welcome, everyone!")
    expect(page.locator("#result-detail")).to_have_text("Checked in: Bob, Cy.")
    kiosk.wait_until("window.__prints.length === 2")
    assert page.locator("#print-labels .name-label").count() == 2
    assert wait_for_checked_in(stack, eid, 3) == 3

    # Ada again: she and her group are in; nothing more is offered or printed, nothing counted twice.
    kiosk.back_to_idle()
    kiosk.scan(ada["badge_code"])
    assert kiosk.result()["title"].startswith("You're already checked in")
    expect(offer).to_be_hidden()
    assert get_event(stack, eid)["checked_in_count"] == 3
    assert page.evaluate("window.__prints.length") == 2

    # Pat, from the Meetup roster, finds her name: checked in, then asked once for an email (box unticked).
    kiosk.back_to_idle()
    page.click("#find-button")
    page.fill("#search-input", "Pat")
    page.locator("#search-results button").first.click()
    expect(page.locator("#result-title")).to_have_text("Welcome, Pat!")
    prompt = page.locator("#email-prompt")
    expect(prompt).to_be_visible()
    expect(page.locator("#email-prompt-consent")).not_to_be_checked()
    page.fill("#email-prompt-input", "pat.quinn@")
    page.click("#email-prompt-save")
    expect(page.locator("#email-prompt-error")).to_have_text("Please enter a valid email address.")
    page.fill("#email-prompt-input", "pat.quinn@example.org")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "kiosk-email-prompt.png"))
    audit.run(page, "door", "kiosk email question")
    page.click("#email-prompt-save")
    expect(page.locator("#result-title")).to_have_text("Thank you!")
    expect(page.locator("#result-detail")).to_have_text("Your email is saved.")
    pat = next(r for r in registrations(stack, eid).values() if r["first_name"] == "Pat")
    assert pat["consent_email"] is False
    person = requests.get(stack.url("checkin", f"/api/v1/people/{pat['person_id']}"), headers=stack.headers, timeout=10)
    assert person.json()["email"] == "pat.quinn@example.org", person.text
    assert page.evaluate("window.__prints.length") == 3  # Pat's label too

    # The door staff view: Dee checked in from the search offers Eli.
    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    staff.set_default_timeout(15_000)
    tab = staff.new_page()
    tab.goto(stack.url("checkin", "/login"))
    tab.fill("#email", DEMO_EMAIL)
    tab.fill("#password", DEMO_PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r"/events"))
    tab.goto(stack.url("checkin", f"/events/{eid}/staff"))
    tab.fill("#search", "Dee")
    tab.click("#results button[data-checkin]")
    expect(tab.locator("#group-offer")).to_be_visible()
    expect(tab.locator("#group-title")).to_have_text("Check in the others in Dee Dunn's group too?")
    expect(tab.locator("#checkin-message a", has_text="name label")).to_be_visible()
    audit.run(tab, "door", "staff view group offer")
    tab.click("#group-submit")
    expect(tab.locator("#checkin-message")).to_contain_text("Checked in: Eli D.")
    assert wait_for_checked_in(stack, eid, 6) == 6

    # The label page: Ada's label at 62 mm x 100 mm; its PDF has that page size.
    tab.goto(stack.url("checkin", f"/events/{eid}/registrations/{ada['id']}/label"))
    label = tab.locator(".label-stage .name-label")
    expect(label).to_be_visible()
    expect(label.locator(".name-label-first")).to_have_text("Ada")
    expect(label).to_contain_text("First time here")
    box = label.bounding_box()
    assert box is not None and abs(box["width"] - 100 * 96 / 25.4) < 2 and abs(box["height"] - 62 * 96 / 25.4) < 2
    tab.wait_for_timeout(200)
    tab.screenshot(path=str(SCREENSHOTS / "name-label.png"), full_page=True)
    tab.emulate_media(media="print")
    pdf = tab.pdf(prefer_css_page_size=True, print_background=True)
    sizes = {
        tuple(round(float(v)) for v in found)
        for found in re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    }
    assert sizes == {(round(100 * MM_TO_PT), round(62 * MM_TO_PT))}, sizes
    tab.goto(stack.url("checkin", f"/events/{eid}/registrations/{ada['id']}/label?size=4x3in"))
    tab.emulate_media(media="print")
    pdf = tab.pdf(prefer_css_page_size=True)
    sizes = {
        tuple(round(float(v)) for v in found)
        for found in re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    }
    assert sizes == {(288, 216)}, sizes  # 4 x 3 in
    staff.close()
    audit.assert_clean("door")
    assert dee["party"] == family
