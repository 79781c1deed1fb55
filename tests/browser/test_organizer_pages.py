"""The organizer pages (sign-in, events, event, door staff view, imports,
badges, an error page) in a real browser under a Content-Security-Policy that
allows scripts and styles from the page's own origin only: every page loads
without a console error, a JavaScript error or a CSP violation ("Refused to
..."), and the pages' scripts work (check in and undo, pair and revoke a kiosk,
import a CSV, print a badge).

When a page arrives without a policy of its own, the test adds the default one
that every HTML response of the services carries, so the scripts are held to
it either way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, expect

from tests.browser.helpers import create_event, register
from tests.e2e.stack import RunningStack
from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts"
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Collected in the page (an init script is not subject to the page's policy).
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
    " at " + event.sourceFile + ":" + event.lineNumber);
});
"""


@dataclass
class Organizer:
    """A signed-in organizer's browser tab, with everything that went wrong on it."""

    stack: RunningStack
    context: BrowserContext
    page: Page
    problems: list[str] = field(default_factory=list)
    policies: dict[str, str] = field(default_factory=dict)  # path -> the policy the page was held to

    def url(self, path: str) -> str:
        return self.stack.url("checkin", path)

    def open(self, path: str) -> Page:
        self.page.goto(self.url(path))
        self.page.wait_for_load_state("load")
        return self.page

    def check(self, where: str) -> None:
        """Record the page's CSP violations (console errors are recorded as they come)."""
        violations = self.page.evaluate("window.__cspViolations || []")
        self.problems.extend(f"{where}: CSP violation: {text}" for text in violations)

    def snap(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(SCREENSHOTS / f"organizer-{name}.png"), full_page=True)


def _with_policy(organizer: Organizer) -> Any:
    def handle(route: Route) -> None:
        request = route.request
        if request.resource_type != "document" or request.method != "GET":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        headers = dict(response.headers)
        if "text/html" in headers.get("content-type", ""):
            if "content-security-policy" not in {name.lower() for name in headers}:
                headers["content-security-policy"] = PAGE_POLICY
            policy = next(value for name, value in headers.items() if name.lower() == "content-security-policy")
            organizer.policies[re.sub(r"^https?://[^/]+", "", request.url)] = policy
        route.fulfill(response=response, headers=headers)

    return handle


@pytest.fixture
def organizer(browser: Browser, running_stack: RunningStack) -> Iterator[Organizer]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    organizer = Organizer(running_stack, context, page)
    context.route("**/*", _with_policy(organizer))

    def on_console(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # The error page is itself a 404: Chromium logs that one response.
        if message.text.startswith("Failed to load resource") and "/no-such-event" in message.location.get("url", ""):
            return
        organizer.problems.append(f"{page.url}: console error: {message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: organizer.problems.append(f"{page.url}: JavaScript error: {error}"))
    page.on("dialog", lambda dialog: dialog.accept())

    # Sign in through the form, as a person does.
    organizer.open("/login")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/events"))
    yield organizer
    context.close()
    assert not organizer.problems, "\n".join(organizer.problems)


def test_every_organizer_page_loads_under_the_policy_without_an_error(
    organizer: Organizer, running_stack: RunningStack
) -> None:
    event = create_event(running_stack, "Policy night")
    person = register(running_stack, event["id"], "Ada", "Lovelace")
    register(running_stack, event["id"], "Alan", "Turing")
    answer = requests.post(
        running_stack.url("checkin", f"/api/v1/events/{event['id']}/checkins"),
        json={"badge_code": person["badge_code"], "client_key": f"policy-{event['id']}"},
        headers=running_stack.headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    pages = {
        "events": "/events",
        "event": f"/events/{event['id']}",
        "staff": f"/events/{event['id']}/staff",
        "imports": f"/events/{event['id']}/imports",
        "badges": f"/events/{event['id']}/badges",
        "badge": f"/badges/{person['id']}",
        "not-found": "/events/no-such-event",
    }
    for name, path in pages.items():
        page = organizer.open(path)
        expect(page.locator("main h1")).to_be_visible()
        # The stylesheet applied (a blocked or missing one leaves the browser's defaults).
        assert page.evaluate("getComputedStyle(document.querySelector('.skip-link')).position") == "absolute", path
        if name == "event":  # the check-in meter: an SVG rect's width, no style attribute
            assert page.get_attribute(".meter rect", "width") == "50.0"
        if name in {"staff", "imports"}:
            page.wait_for_timeout(2500)  # the staff view's first poll; the imports list's first load
        organizer.check(path)
        organizer.snap(name)
    assert all("script-src 'self'" in policy for policy in organizer.policies.values()), organizer.policies
    assert f"/events/{event['id']}/staff" in organizer.policies


def test_the_door_staff_view_checks_in_and_undoes(organizer: Organizer, running_stack: RunningStack) -> None:
    event = create_event(running_stack, "Door night")
    register(running_stack, event["id"], "Grace", "Hopper")
    page = organizer.open(f"/events/{event['id']}/staff")
    page.fill("#search", "grace")
    page.click("#results button[data-checkin]")
    expect(page.locator("#checkin-message")).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#count-in")).to_have_text("1")
    expect(page.locator("#arrivals li")).to_have_count(1)
    expect(page.locator("#arrivals .who-line")).to_contain_text("Grace")
    organizer.snap("staff-checked-in")
    page.press("#search", "Enter")  # the search form never submits (no page load)
    assert page.url.endswith("/staff")
    page.click("#arrivals button[data-undo]")  # confirmed by the dialog handler
    expect(page.locator("#arrivals li")).to_have_count(0)
    expect(page.locator("#count-in")).to_have_text("0")
    expect(page.locator("#no-arrivals")).to_be_visible()
    organizer.check("staff")


def test_the_event_page_pairs_and_revokes_a_kiosk(organizer: Organizer, running_stack: RunningStack) -> None:
    event = create_event(running_stack, "Kiosk night")
    page = organizer.open(f"/events/{event['id']}")
    page.fill("#kiosk-name", "Side door")
    page.fill("#kiosk-pin", "12")
    page.click("#pair-form button[type=submit]")
    expect(page.locator("#pair-message")).to_contain_text("4 to 8 digits")
    page.fill("#kiosk-pin", "2468")
    page.click("#pair-form button[type=submit]")
    expect(page.locator("#pair-code")).to_have_text(re.compile(r"^[A-Z0-9]{8}$"))
    expect(page.locator("#kiosk-table")).to_contain_text("Side door")
    organizer.snap("event-paired")
    page = organizer.open(f"/events/{event['id']}")
    page.click("#kiosk-table button[data-action=code]")
    expect(page.locator("#pair-message")).to_contain_text("fresh pairing code")
    page.click("#kiosk-table button[data-action=revoke]")
    expect(page.locator("#kiosk-table .kiosk-status")).to_have_text("Revoked")
    organizer.check("event")


def test_the_imports_page_previews_and_imports_a_csv(
    organizer: Organizer, running_stack: RunningStack, tmp_path: Path
) -> None:
    event = create_event(running_stack, "Import night")
    csv = tmp_path / "people.csv"
    csv.write_text(
        "First Name,Last Name,Email\nKatherine,Johnson,kj@example.org\nDorothy,Vaughan,dv@example.org\n,,broken\n",
        encoding="utf-8",
    )
    page = organizer.open(f"/events/{event['id']}/imports")
    expect(page.locator("#earlier")).to_contain_text("None yet.")
    page.set_input_files("#file", str(csv))
    expect(page.locator("#detected")).to_contain_text("3 rows")
    expect(page.locator("#sample tbody tr")).to_have_count(3)
    page.click("#import-button")
    expect(page.locator("#import-message")).to_contain_text("Import finished", timeout=30_000)
    expect(page.locator("#n-created")).to_have_text("2")
    expect(page.locator("#report-card")).to_be_visible()
    expect(page.locator("#earlier li")).to_have_count(1)
    organizer.snap("imports-done")
    organizer.check("imports")


def test_the_events_page_and_the_print_buttons(organizer: Organizer, running_stack: RunningStack) -> None:
    page = organizer.open("/events")
    page.click("summary#new-event-title")
    assert page.input_value("#f-timezone")  # the organization's last zone, or this device's (events.js)
    event = create_event(running_stack, "Print night")
    person = register(running_stack, event["id"], "Mary", "Jackson")
    for path in (f"/badges/{person['id']}", f"/events/{event['id']}/badges"):
        page = organizer.open(path)
        page.evaluate("() => { window.print = () => { window.__printed = (window.__printed || 0) + 1; }; }")
        page.click("button[data-print]")
        assert page.evaluate("window.__printed") == 1, path
        organizer.check(path)
