"""A Meetup RSVP export without any email column through the imports page, in a real
browser: every Yes row is registered by name only, the Waitlist rows go on the waitlist,
and the page counts them ("Name only (no email)", "Waitlisted")."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import create_event
from tests.browser.test_organizer_pages import Organizer, organizer  # noqa: F401  (the fixture)
from tests.e2e.stack import RunningStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MEETUP = REPO / "tests" / "fixtures" / "imports" / "meetup_rsvps_no_email.csv"
SCREENSHOTS = REPO / "docs" / "screenshots"


def test_a_meetup_export_without_emails_imports_by_name_on_the_imports_page(
    organizer: Organizer,  # noqa: F811
    running_stack: RunningStack,
) -> None:
    event = create_event(running_stack, "Civic hack night")
    page = organizer.open(f"/events/{event['id']}/imports")
    page.set_input_files("#file", str(MEETUP))
    expect(page.locator("#detected")).to_contain_text("10 rows")
    page.click("#import-button")
    expect(page.locator("#import-message")).to_contain_text("Import finished", timeout=30_000)
    expect(page.locator("#import-message")).to_contain_text("9 by name only, without an email")
    expect(page.locator("#n-created")).to_have_text("9")
    expect(page.locator("#n-failed")).to_have_text("0")
    expect(page.locator("#n-skipped")).to_have_text("1")
    expect(page.locator("#n-name-only")).to_have_text("9")
    expect(page.locator("#n-waitlisted")).to_have_text("3")
    expect(page.locator("#report")).to_contain_text("skipped: RSVP is 'No'")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "imports-meetup-name-only.png"), full_page=True)
    organizer.check("imports")
    assert organizer.problems == []
