"""Accessibility in a real browser (Chromium via Playwright) on the launched stack.

An automated WCAG 2.2 AA audit: axe-core (from the root package.json's
lockfile, ``node_modules/axe-core``; nothing from a CDN) runs with the tags
wcag2a, wcag2aa, wcag21a, wcag21aa and wcag22aa over the kiosk's screens,
checkin's organizer and public pages, followup's organizer pages and the
pages behind its email links, and the analytics dashboard. Any serious or
critical violation fails the test (each printed with its rule, impact,
elements and help page); the counts per impact, minor and moderate too, go to
test-artifacts/accessibility.json for the README.

axe is put into each page with ``page.evaluate``: that runs through the
DevTools protocol, which the pages' Content-Security-Policy (``script-src
'self'``, no eval) does not apply to, so the pages are audited under their
real policy and no context bypasses it. It runs with ``iframes: false``: the
one frame (followup's sandboxed email preview) runs no script, so axe could
not reach into it.

Beyond the audit: the kiosk used with the keyboard alone (Tab, Shift+Tab,
Enter, Space, Escape; no click), the focus always visible and never dropped to
<body>; every focusable element of the kiosk named for a screen reader, and
the check-in result announced through a live region; every dashboard chart
with a table of the same figures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from checkin.entrypoints.cli import DEMO_ORG
from checkin.service_layer.organizations import slugify
from tests.browser.conftest import Kiosk
from tests.browser.helpers import create_event, create_kiosk, register, registrations, wait_for_checked_in
from tests.e2e.stack import RunningStack
from tests.security.links import hours_link, mint_link, statement_link
from tests.security.world import stack_secret
from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
IMPACTS = ("critical", "serious", "moderate", "minor")
BLOCKING = {"critical", "serious"}
# What axe leaves undecided ("incomplete") counts as a violation too, but for contrast over a
# gradient or an image, which it cannot measure: those are counted as needing review.
BY_EYE = {"color-contrast"}
HUMAN_KEY_DELAY_MS = 60  # slower than a badge scanner's burst (scanner.js), as a person types

RUN_AXE = """async (tags) => {
  // Audit what stays on screen: let a screen's short entrance animation end (colours mid-fade are not the page's).
  const settling = document.getAnimations().filter((animation) => {
    const timing = animation.effect ? animation.effect.getComputedTiming() : null;
    return timing && Number.isFinite(timing.endTime) && timing.endTime < 2000;
  });
  await Promise.all(settling.map((animation) => animation.finished.catch(() => null)));
  const result = await axe.run(document, {
    runOnly: { type: "tag", values: tags },
    resultTypes: ["violations", "incomplete"],
    iframes: false,
  });
  const brief = (items) => items.map((item) => ({
    id: item.id,
    impact: item.impact,
    help: item.help,
    help_url: item.helpUrl,
    targets: item.nodes.map((node) => node.target.join(" ")),
    summaries: item.nodes.map((node) => node.failureSummary || ""),
  }));
  return { violations: brief(result.violations), incomplete: brief(result.incomplete), passes: result.passes.length };
}"""

# What has keyboard focus and whether it shows: a non-none outline or a box-shadow
# on the element (or, for a visually hidden native checkbox, on the box drawn beside it).
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return { lost: true };
  let shown = el;
  const style = getComputedStyle(el);
  if (el.matches("input[type=checkbox], input[type=radio]") && Number(style.opacity) === 0 && el.nextElementSibling) {
    shown = el.nextElementSibling;
  }
  const look = getComputedStyle(shown);
  const rect = shown.getBoundingClientRect();
  const outline = look.outlineStyle !== "none" && parseFloat(look.outlineWidth) > 0;
  const shadow = look.boxShadow !== "none";
  const first = el.className ? "." + String(el.className).split(" ")[0] : "";
  const label = el.id ? "#" + el.id : el.tagName.toLowerCase() + first;
  return {
    lost: false,
    label,
    visible: (outline || shadow) && rect.width > 2 && rect.height > 2 && Number(look.opacity) > 0,
    indicator: outline ? "outline " + look.outlineStyle : shadow ? "box-shadow" : "none",
  };
}"""


# -- the audit and its record --------------------------------------------------------------------------


@dataclass
class Audit:
    """Every page audited in this module's run, with what axe said about it."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    def run(self, page: Page, group: str, name: str) -> dict[str, Any]:
        page.wait_for_load_state("load")
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(self.source)
        result = page.evaluate(RUN_AXE, TAGS)
        counts = dict.fromkeys(IMPACTS, 0)
        for violation in result["violations"]:
            counts[violation["impact"]] += len(violation["targets"])
        undecided = [
            {**item, "id": f"{item['id']} (needs review)"} for item in result["incomplete"] if item["id"] not in BY_EYE
        ]
        entry = {
            "group": group,
            "page": name,
            "path": re.sub(r"^https?://[^/]+", "", page.url),
            "violations": counts,
            "rules": [
                {"id": v["id"], "impact": v["impact"], "elements": len(v["targets"]), "help_url": v["help_url"]}
                for v in result["violations"]
            ],
            "needs_review": sum(len(item["targets"]) for item in result["incomplete"]),
            "needs_review_rules": {item["id"]: len(item["targets"]) for item in result["incomplete"]},
            "rules_passed": result["passes"],
            "details": result["violations"] + undecided,
        }
        self.pages.append(entry)
        return entry

    def blocking(self, group: str) -> list[str]:
        """Each serious or critical violation of the group's pages (and each such finding axe could not
        decide, contrast aside), one line per element."""
        lines = []
        for entry in self.pages:
            if entry["group"] != group:
                continue
            for violation in entry["details"]:
                if violation["impact"] not in BLOCKING:
                    continue
                for target, summary in zip(violation["targets"], violation["summaries"], strict=True):
                    lines.append(
                        f"{group} / {entry['page']} ({entry['path']}): {violation['id']} [{violation['impact']}] "
                        f"at {target}: {violation['help']} ({violation['help_url']})\n    {summary}".rstrip()
                    )
        return lines

    def assert_clean(self, group: str) -> None:
        audited = [entry for entry in self.pages if entry["group"] == group]
        assert audited, f"no page of {group} was audited"
        problems = self.blocking(group)
        assert not problems, f"{len(problems)} serious or critical WCAG violations:\n" + "\n".join(problems)

    def report(self) -> dict[str, Any]:
        totals = dict.fromkeys(IMPACTS, 0)
        groups: dict[str, dict[str, Any]] = {}
        for entry in self.pages:
            group = groups.setdefault(entry["group"], {"pages": 0, "violations": dict.fromkeys(IMPACTS, 0)})
            group["pages"] += 1
            for impact, count in entry["violations"].items():
                group["violations"][impact] += count
                totals[impact] += count
        return {
            "axe_core": json.loads((AXE.parent / "package.json").read_text(encoding="utf-8"))["version"],
            "tags": TAGS,
            "counted": "elements failing a rule, per impact",
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "pages_audited": len(self.pages),
            "totals": totals,
            "groups": groups,
            "pages": [{key: value for key, value in entry.items() if key != "details"} for entry in self.pages],
        }


@pytest.fixture(scope="module")
def audit() -> Iterator[Audit]:
    if not AXE.is_file():
        pytest.fail(
            f"{AXE.relative_to(REPO)} is missing: install the root package.json's packages (npm ci, or make lint-js)",
            pytrace=False,
        )
    found = Audit(source=AXE.read_text(encoding="utf-8"))
    yield found
    if found.pages:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "accessibility.json").write_text(json.dumps(found.report(), indent=2) + "\n", encoding="utf-8")


# -- helpers ----------------------------------------------------------------------------------------------


def _context(browser: Browser, **options: Any) -> BrowserContext:
    settings: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US"}
    settings.update(options)
    context = browser.new_context(**settings)
    context.set_default_timeout(15_000)
    return context


def _sign_in(page: Page, stack: RunningStack) -> None:
    """Through checkin's form, as a person does; the session cookie is the host's, for all three services."""
    page.goto(stack.url("checkin", "/login"))
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/events"))


def _api(stack: RunningStack, method: str, service: str, path: str, expect_status: int = 200, **kwargs: Any) -> Any:
    answer = requests.request(method, stack.url(service, path), headers=stack.headers, timeout=15, **kwargs)
    assert answer.status_code == expect_status, (method, path, answer.status_code, answer.text[:300])
    return answer.json()


def _wait(what: str, ready: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not there after {timeout:.0f}s"
        time.sleep(0.3)


def _focus(page: Page) -> dict[str, Any]:
    return dict(page.evaluate(FOCUS))


def _press(page: Page, key: str, trail: list[str]) -> dict[str, Any]:
    """Press a key; the focus after it must be on an element and visible. ``trail`` records where it went."""
    page.keyboard.press(key)
    page.wait_for_timeout(120)
    focus = _focus(page)
    assert not focus["lost"], f"focus dropped to <body> after {key} (so far: {trail})"
    trail.append(f"{key}->{focus['label']}")
    assert focus["visible"], f"{focus['label']} has keyboard focus but shows no focus indicator ({focus})"
    return focus


def _tab_to(page: Page, selector: str, trail: list[str], key: str = "Tab", limit: int = 12) -> None:
    for _ in range(limit):
        _press(page, key, trail)
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
    raise AssertionError(f"{selector} not reached with {key} ({trail})")


def _type(page: Page, text: str) -> None:
    page.keyboard.type(text, delay=HUMAN_KEY_DELAY_MS)
    page.wait_for_timeout(250)  # a person's pause, longer than a scanner's gap before its Enter


def _on_screen(page: Page, screen: str, timeout: float = 15_000) -> None:
    page.locator(f"#screen-{screen}").wait_for(state="visible", timeout=timeout)
    page.wait_for_timeout(150)
    focus = _focus(page)
    assert not focus["lost"], f"focus dropped to <body> on the {screen} screen"


def _unnamed_focusables(page: Page) -> list[str]:
    """Focusable elements of the accessibility tree (what a screen reader reads) that have no name."""
    session = page.context.new_cdp_session(page)
    try:
        nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        session.detach()
    unnamed = []
    for node in nodes:
        if node.get("ignored"):
            continue
        role = node.get("role", {}).get("value", "")
        if role in {"RootWebArea", "WebArea"}:
            continue
        props = {prop["name"]: prop.get("value", {}).get("value") for prop in node.get("properties", [])}
        if props.get("focusable") and not str(node.get("name", {}).get("value", "")).strip():
            unnamed.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return unnamed


# -- the kiosk --------------------------------------------------------------------------------------------


def test_the_kiosk_screens_pass_the_audit_and_name_everything_for_a_screen_reader(
    running_stack: RunningStack, kiosk_factory: Any, audit: Audit
) -> None:
    event = create_event(running_stack, "Accessible welcome", kind="volunteer_shift")
    grace = register(running_stack, event["id"], "Grace", "Hopper")
    register(running_stack, event["id"], "Amber", "Nguyen")
    register(running_stack, event["id"], "Amber", "Nguyen")
    pairing = create_kiosk(running_stack, event["id"])
    kiosk: Kiosk = kiosk_factory()
    page = kiosk.page
    screens: dict[str, list[str]] = {}

    def audit_screen(name: str) -> None:
        audit.run(page, "kiosk", name)
        screens[name] = _unnamed_focusables(page)

    page.locator("#screen-pair").wait_for(state="visible")
    audit_screen("pairing")
    page.fill("#pair-code", "WRONG234")
    page.click("#pair-submit")
    expect(page.locator("#pair-error")).to_contain_text("isn't valid")
    audit_screen("pairing, with a wrong code")
    kiosk.pair(pairing["pairing_code"])
    kiosk.wait_for_roster(3)
    audit_screen("idle (scan your badge)")

    page.click("#find-button")
    page.keyboard.type("amber")
    expect(page.locator("#search-results .match")).to_have_count(2)
    audit_screen("find my name, with results")
    page.click("[data-go=idle] >> visible=true")

    page.click("#walkin-button")
    audit_screen("walk-in form")
    page.click("#walkin-submit")
    expect(page.locator("#walkin-first-error")).to_have_text("Please fill this in.")
    audit_screen("walk-in form, with errors")
    page.click("[data-go=idle] >> visible=true")

    # The check-in confirmation, and what a screen reader hears of it.
    assert page.get_attribute("#live-polite", "aria-live") == "polite"
    assert page.get_attribute("#live-assertive", "aria-live") == "assertive"
    assert page.get_attribute("#search-status", "aria-live") == "polite"
    result = kiosk.scan_and_read(grace["badge_code"])
    assert result["title"] == "Welcome, Grace!"
    expect(page.locator("#live-polite")).to_have_text("Welcome, Grace! First time here.")
    audit_screen("check-in confirmation")
    page.wait_for_timeout(3100)  # past the double-read guard
    assert kiosk.scan_and_read(grace["badge_code"])["tone"] == "info"
    expect(page.locator("#result-checkout")).to_be_visible()  # a volunteer already in is offered the check-out
    audit_screen("already checked in, with the check-out offer")
    unknown = kiosk.scan_and_read("NOT-A-BADGE-4242")
    assert unknown["tone"] == "warning"
    expect(page.locator("#live-assertive")).to_contain_text("We don't recognize this badge")  # a refusal interrupts
    audit_screen("refusal")
    kiosk.back_to_idle()

    page.click("#staff-button")
    expect(page.locator("#pin-dialog")).to_be_visible()
    audit_screen("staff PIN dialog")
    page.keyboard.press("Escape")
    expect(page.locator("#pin-dialog")).to_be_hidden()

    audit.assert_clean("kiosk")
    unnamed = {name: found for name, found in screens.items() if found}
    assert not unnamed, f"focusable elements without an accessible name: {unnamed}"
    assert len(screens) == 10


def test_the_kiosk_works_with_the_keyboard_alone(running_stack: RunningStack, kiosk_factory: Any) -> None:
    """Pair, find a name, check in, back to idle; then a walk-in: Tab, Shift+Tab, Enter, Space and
    Escape only. After every key the focus is on an element that shows it; it never falls to
    <body> when the screen changes. (On the idle and confirmation screens the focus rests on the
    invisible field a badge scanner types into: the one element Tab never reaches.)"""
    event = create_event(running_stack, "Keyboard night")
    ada = register(running_stack, event["id"], "Adaline", "Keyes")
    pairing = create_kiosk(running_stack, event["id"])
    kiosk: Kiosk = kiosk_factory()
    page = kiosk.page
    trail: list[str] = []

    _on_screen(page, "pair")
    assert _focus(page)["label"] == "#pair-code"
    assert _focus(page)["visible"]
    _type(page, pairing["pairing_code"])
    page.keyboard.press("Enter")
    _on_screen(page, "idle")
    assert _focus(page)["label"] == "#scanner-sink"
    kiosk.wait_for_roster(1)

    # Find my name: Tab to the button, Enter; the search field has the focus.
    _tab_to(page, "#find-button", trail)
    page.keyboard.press("Enter")
    _on_screen(page, "search")
    assert _focus(page)["label"] == "#search-input" and _focus(page)["visible"]
    _press(page, "Shift+Tab", trail)
    assert _focus(page)["label"].startswith("button.btn"), trail  # the Back button
    _press(page, "Tab", trail)
    assert _focus(page)["label"] == "#search-input"
    _type(page, "adaline")
    expect(page.locator("#search-results .match")).to_have_count(1)
    _tab_to(page, "#search-results .match", trail)
    page.keyboard.press("Enter")
    _on_screen(page, "result")
    assert page.inner_text("#result-title") == "Welcome, Adaline!"
    expect(page.locator("#live-polite")).to_have_text("Welcome, Adaline! First time here.")
    assert _focus(page)["label"] == "#scanner-sink"  # ready for the next badge
    page.keyboard.press("Escape")
    _on_screen(page, "idle", timeout=1000)  # at once, not the confirmation's own return after 5 s
    assert registrations(running_stack, event["id"])[ada["id"]]["checked_in_at"]

    # A walk-in: every field with Tab, the consent box with Space, Enter to send.
    _tab_to(page, "#walkin-button", trail)
    page.keyboard.press("Enter")
    _on_screen(page, "walkin")
    assert _focus(page)["label"] == "#walkin-first" and _focus(page)["visible"]
    for key, text in (("", "Pat"), ("Tab", "Lee"), ("Tab", "pat.keys@example.org"), ("Tab", "design"), ("Tab", "")):
        if key:
            _press(page, key, trail)
        if text:
            _type(page, text)
    _press(page, "Tab", trail)
    assert _focus(page)["label"] == "#walkin-consent", trail
    page.keyboard.press("Space")
    assert page.is_checked("#walkin-consent")
    _press(page, "Tab", trail)
    assert _focus(page)["label"] == "#walkin-submit", trail
    page.keyboard.press("Enter")
    _on_screen(page, "result")
    assert page.inner_text("#result-title") == "Welcome, Pat!"
    page.keyboard.press("Escape")
    _on_screen(page, "idle", timeout=1000)  # at once, not the confirmation's own return after 5 s

    # Escape also leaves a form half filled, as the Back button does.
    _tab_to(page, "#find-button", trail)
    page.keyboard.press("Enter")
    _on_screen(page, "search")
    page.keyboard.press("Escape")
    _on_screen(page, "idle", timeout=1000)  # at once, not after the form's idle minute

    assert wait_for_checked_in(running_stack, event["id"], 2) == 2
    pat = next(reg for reg in registrations(running_stack, event["id"]).values() if reg["first_name"] == "Pat")
    assert (pat["last_name"], pat["source"], pat["consent_email"], pat["offers"]) == (
        "Lee",
        "walk-in",
        True,
        ["design"],
    )

    # Where the keyboard went, for the record, and a picture of the focus ring.
    _tab_to(page, "#find-button", trail)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "kiosk-keyboard-focus.png"))
    assert "Shift+Tab" in " ".join(trail)


# -- checkin's pages ----------------------------------------------------------------------------------------


def test_every_checkin_page_passes_the_audit(browser: Browser, running_stack: RunningStack, audit: Audit) -> None:
    event = create_event(running_stack, "Audited evening")
    person = register(running_stack, event["id"], "Ada", "Lovelace")
    register(running_stack, event["id"], "Alan", "Turing")
    _api(
        running_stack,
        "POST",
        "checkin",
        f"/api/v1/events/{event['id']}/checkins",
        201,
        json={"badge_code": person["badge_code"], "client_key": f"a11y-{uuid.uuid4().hex}"},
    )
    create_kiosk(running_stack, event["id"], "Side door")
    exported = _api(running_stack, "POST", "checkin", f"/api/v1/people/{person['person_id']}/export", 201)
    greeters = f"/api/v1/events/{event['id']}/greeters"
    rosa = {"name": "Rosa", "email": "rosa@example.org"}
    volunteer = _api(running_stack, "POST", "checkin", greeters, 201, json=rosa)
    me = _api(running_stack, "GET", "checkin", "/api/v1/me")
    _api(running_stack, "POST", "checkin", greeters, 201, json={"user_id": me["id"]})
    context = _context(browser)
    page = context.new_page()

    # Signed out: the sign-in page and the public ones.
    page.goto(running_stack.url("checkin", "/login"))
    audit.run(page, "checkin public", "sign-in")
    page.click("button[type=submit]")  # empty: the form says what is missing
    audit.run(page, "checkin public", "sign-in, with errors")
    page.goto(running_stack.url("checkin", f"/privacy/{slugify(DEMO_ORG)}"))
    audit.run(page, "checkin public", "privacy requests form")
    page.goto(running_stack.url("checkin", "/privacy/requests/not-a-real-link"))
    audit.run(page, "checkin public", "privacy link, invalid")
    # The volunteer's signed hours page (an off-site entry logged, then a form with errors) and a
    # statement's verification page.
    org_id = str(_api(running_stack, "GET", "checkin", "/api/v1/me")["org_id"])
    mine = hours_link(stack_secret(running_stack), org_id, person["person_id"])
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    logged = requests.post(
        running_stack.url("checkin", mine),
        data={"date": yesterday, "hours": "2", "note": "Sorted donations at home"},
        allow_redirects=False,
        timeout=10,
    )
    assert logged.status_code == 303, logged.text[:300]
    page.goto(running_stack.url("checkin", mine))
    audit.run(page, "checkin public", "volunteer hours")
    page.click("form.log-form button[type=submit]")
    expect(page.locator(".log-form .error").first).to_be_visible()
    audit.run(page, "checkin public", "volunteer hours, with errors")
    page.goto(running_stack.url("checkin", statement_link(stack_secret(running_stack), org_id, person["person_id"])))
    audit.run(page, "checkin public", "hour statement verification")
    page.goto(running_stack.url("checkin", re.sub(r"^https?://[^/]+", "", volunteer["link"])))
    expect(page.locator("#first-timers li")).to_have_count(1)  # Ada, a first-timer
    audit.run(page, "checkin public", "greeter page (signed link), a first-timer to welcome")
    page.get_by_role("button", name="Welcomed Ada").click()
    expect(page.locator("#first-timers li.welcomed")).to_have_count(1)
    audit.run(page, "checkin public", "greeter page, welcomed")
    page.goto(running_stack.url("checkin", "/greet/not-a-real-link"))
    audit.run(page, "checkin public", "greeter link, invalid")

    _sign_in(page, running_stack)
    page.goto(running_stack.url("checkin", f"/events/{event['id']}"))
    found = re.search(r"/r/([A-Za-z0-9_-]{8,40})", page.content())
    assert found, "the event page shows no public registration link"
    pages = {
        "events": "/events",
        "event": f"/events/{event['id']}",
        "door staff view": f"/events/{event['id']}/staff",
        "imports": f"/events/{event['id']}/imports",
        "badges": f"/events/{event['id']}/badges",
        "badge": f"/badges/{person['id']}",
        "name label": f"/events/{event['id']}/registrations/{person['id']}/label",
        "not found": "/events/no-such-event",
        "people": "/people?q=lovelace",
        "person": f"/people/{person['person_id']}",
        "data requests": "/data-requests",
        "data request": f"/data-requests/{exported['id']}",
        "audit trail": "/audit",
        "retention": "/retention",
        "volunteer hours": f"/events/{event['id']}/hours",
        "off-site hours to review": "/hours",
        "greeter page (signed in)": f"/events/{event['id']}/greet",
    }
    for name, path in pages.items():
        page.goto(running_stack.url("checkin", path))
        expect(page.locator("main h1")).to_be_visible()
        if name in {"door staff view", "imports"}:
            page.wait_for_timeout(1500)  # the first poll, the imports list's first load
        audit.run(page, "checkin", name)
    page.goto(running_stack.url("checkin", f"/events/{event['id']}/staff"))
    page.fill("#search", "alan")
    page.click("#results button[data-checkin]")
    expect(page.locator("#checkin-message")).to_have_class(re.compile(r"\bok\b"))
    audit.run(page, "checkin", "door staff view, after a check-in")

    # The public registration form, signed out again.
    context.clear_cookies()
    page.goto(running_stack.url("checkin", f"/r/{found.group(1)}"))
    audit.run(page, "checkin public", "registration form")
    page.click("form button[type=submit]")
    expect(page.locator(".field-error").first).to_be_visible()
    audit.run(page, "checkin public", "registration form, with errors")
    page.fill("#first_name", "Grace")
    page.fill("#email", "grace.hopper@example.org")
    page.click("form button[type=submit]")
    expect(page.get_by_role("link", name=re.compile("Add to calendar"))).to_be_visible()
    audit.run(page, "checkin public", "registered, with its calendar link")
    shots = REPO / ("docs/screenshots" if os.environ.get("TURNOUT_UPDATE_SCREENSHOTS") == "1" else "test-artifacts")
    page.screenshot(path=str(shots / "public-registered.png"), full_page=True)
    context.close()
    audit.assert_clean("checkin")
    audit.assert_clean("checkin public")


# -- followup's pages ---------------------------------------------------------------------------------------

MATCH_INTRODUCTIONS = """
import json, sys
from followup.bootstrap import build_services
from followup.config import Settings
from followup.service_layer.scheduling import match_introductions
from turnout_common.clock import utcnow

event_id = sys.argv[1]
svc = build_services(Settings.from_env(), "accessibility-test")
match_introductions(svc, svc.store.plans.get(event_id), utcnow())
event = svc.store.events.get(event_id)
people = [row["person_id"] for row in svc.store.attendance.of_event(event_id, checked_in=True)]
found = svc.store.introductions.of_people_in_org(event["org_id"], people)
print(json.dumps([{"id": doc["_id"], "people": doc["people"]} for doc in found if doc["event_id"] == event_id]))
"""


def _introductions(stack: RunningStack, event_id: str) -> list[dict[str, Any]]:
    """The introductions followup suggests for an ended gathering, matched now rather than at send time
    (hours after the end) by followup's own matching, run with the stack's settings."""
    env = {**stack.stack.service_env("followup")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", MATCH_INTRODUCTIONS, event_id],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_followup_pages_and_its_email_links_pass_the_audit(
    browser: Browser, running_stack: RunningStack, audit: Audit
) -> None:
    now = datetime.now(UTC)
    event = _api(
        running_stack,
        "POST",
        "checkin",
        "/api/v1/events",
        201,
        json={
            "title": "Accessible mixer",
            "kind": "networking",
            "starts_at": (now - timedelta(minutes=50)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "timezone": "Europe/Berlin",
        },
    )
    people = {}
    for name, offers, seeks in (
        ("Ines", ["grant writing"], ["web design"]),
        ("Omar", ["web design"], ["grant writing"]),
    ):
        body = {
            "first_name": name,
            "last_name": "Mixer",
            "email": f"{name.lower()}.{uuid.uuid4().hex[:8]}@example.org",
            "consent_email": True,
            "offers": offers,
            "seeks": seeks,
        }
        people[name] = _api(
            running_stack, "POST", "checkin", f"/api/v1/events/{event['id']}/registrations", 201, json=body
        )
        _api(
            running_stack,
            "POST",
            "checkin",
            f"/api/v1/events/{event['id']}/checkins",
            201,
            json={"badge_code": people[name]["badge_code"], "client_key": f"a11y-{uuid.uuid4().hex}"},
        )
    _api(running_stack, "POST", "checkin", f"/api/v1/events/{event['id']}/end")

    def planned() -> list[dict[str, Any]]:
        answer = requests.get(
            running_stack.url("followup", f"/api/v1/events/{event['id']}/messages"),
            headers=running_stack.headers,
            timeout=10,
        )
        messages = answer.json()["messages"] if answer.status_code == 200 else []
        return list(messages) if len(messages) >= 4 else []

    messages = _wait("followup's messages for the ended event", planned)
    thanks = [m for m in messages if m["kind"] == "thank_you"]
    assert len(thanks) == 2, messages
    introductions = _introductions(running_stack, event["id"])
    assert len(introductions) == 1, introductions
    secret = stack_secret(running_stack)

    context = _context(browser)
    page = context.new_page()
    # The pages behind an email's links: each before and after its button.
    page.goto(running_stack.url("followup", f"/u/{mint_link(secret, 'unsubscribe', thanks[0]['id'])}"))
    audit.run(page, "followup public", "unsubscribe")
    page.click("form button[type=submit]")
    expect(page.locator("h1")).to_have_text("You are unsubscribed")
    audit.run(page, "followup public", "unsubscribed")
    page.goto(running_stack.url("followup", f"/f/{mint_link(secret, 'feedback', thanks[1]['id'])}?rating=5"))
    expect(page.locator("input[name=rating][value='5']")).to_be_checked()  # preselected; nothing recorded yet
    audit.run(page, "followup public", "feedback rating, with the comment form")
    page.fill("#comment", "Lovely evening")
    page.click("form button[type=submit]")
    expect(page.locator("body")).to_contain_text("We read every comment.")
    audit.run(page, "followup public", "feedback, comment sent")
    introduction = introductions[0]
    link = mint_link(secret, "introduction", introduction["id"], person=introduction["people"][0])
    page.goto(running_stack.url("followup", f"/i/{link}"))
    expect(page.locator("h1")).to_have_text("Would you like this introduction?")
    audit.run(page, "followup public", "introduction")
    page.click("form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Thanks, noted")
    audit.run(page, "followup public", "introduction, accepted")

    _sign_in(page, running_stack)
    for name, path in {
        "home": "/",
        "messages": f"/events/{event['id']}/messages",
        "message": f"/messages/{thanks[0]['id']}",
        "win-back drafts": "/winback",
    }.items():
        page.goto(running_stack.url("followup", path))
        expect(page.locator("h1").first).to_be_visible()
        audit.run(page, "followup", name)
    context.close()
    audit.assert_clean("followup")
    audit.assert_clean("followup public")


# -- the dashboard -------------------------------------------------------------------------------------------

CHARTS = """() => [...document.querySelectorAll("canvas, svg")].filter((node) => !node.closest("[aria-hidden=true]"))
  .filter((node) => node.tagName === "CANVAS" || node.getAttribute("role") === "img").map((node) => {
    const chart = window.Chart && node.tagName === "CANVAS" ? window.Chart.getChart(node) : null;
    const section = node.closest("section, .card");
    const tables = section ? [...section.querySelectorAll("table")] : [];
    return {
      id: node.id,
      role: node.getAttribute("role"),
      label: node.getAttribute("aria-label") || "",
      drawn: Boolean(chart),
      values: chart ? chart.data.datasets.flatMap((set) => set.data) : [],
      tables: tables.length,
      cells: tables.flatMap((table) => [...table.querySelectorAll("th, td")].map((cell) => cell.textContent)),
    };
  })"""


def _numbers(text: str) -> set[float]:
    return {float(found.replace(",", "")) for found in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


def _analytics_counted(stack: RunningStack, event_id: str, checked_in: int) -> bool:
    answer = requests.get(
        stack.url("analytics", f"/api/v1/events/{event_id}/attendance"), headers=stack.headers, timeout=10
    )
    return answer.status_code == 200 and int(answer.json().get("checked_in", -1)) >= checked_in


def test_the_dashboard_passes_the_audit_and_every_chart_has_its_table(
    browser: Browser, running_stack: RunningStack, audit: Audit
) -> None:
    event = create_event(running_stack, "Dashboard evening", kind="workshop")
    for first in ("Lin", "Mo", "Nia"):
        reg = register(running_stack, event["id"], first, "Charted")
        if first != "Nia":
            _api(
                running_stack,
                "POST",
                "checkin",
                f"/api/v1/events/{event['id']}/checkins",
                201,
                json={"badge_code": reg["badge_code"], "client_key": f"a11y-{uuid.uuid4().hex}"},
            )
    _wait("analytics' count of the event", lambda: _analytics_counted(running_stack, event["id"], 2))
    context = _context(browser)
    page = context.new_page()
    page.goto(running_stack.url("analytics", "/dashboard"))
    expect(page.locator("main h1")).to_be_visible()
    audit.run(page, "dashboard", "sign-in needed")
    _sign_in(page, running_stack)

    pages = {
        "overview": "/dashboard",
        "event report": f"/dashboard/events/{event['id']}",
        "live": f"/dashboard/events/{event['id']}/live",
        "retention": "/dashboard/retention",
        "funnel": "/dashboard/funnel",
        "people": "/dashboard/people",
        "at risk": "/dashboard/at-risk",
        "not found": "/dashboard/events/no-such-event",
    }
    charts: dict[str, list[dict[str, Any]]] = {}
    for name, path in pages.items():
        page.goto(running_stack.url("analytics", path))
        expect(page.locator("main h1")).to_be_visible()
        if name == "live":
            expect(page.locator("#live-status")).to_have_text("Live")
        audit.run(page, "dashboard", name)
        charts[name] = page.evaluate(CHARTS)
    audit.assert_clean("dashboard")

    # Each chart: an image with a name that points to the table, the table in its section,
    # and every figure the chart draws in that table.
    drawn = {name: [chart["id"] for chart in found] for name, found in charts.items() if found}
    assert {"overview", "event report", "live", "retention"} <= set(drawn), drawn
    for name, found in charts.items():
        for chart in found:
            where = f"{name}: {chart['id']}"
            assert chart["role"] == "img" and "table" in chart["label"], where
            assert chart["drawn"], f"{where}: Chart.js drew nothing (is static/vendor built? make frontend)"
            assert chart["tables"] >= 1, f"{where}: no table beside the chart"
            shown = {number for cell in chart["cells"] for number in _numbers(cell)}
            missing = [value for value in chart["values"] if value not in (None, 0) and float(value) not in shown]
            assert not missing, f"{where}: figures drawn but not in its table: {missing}"

    # The focus ring on the dashboard, with the keyboard: from the skip link or the brand, through the nav.
    page.goto(running_stack.url("analytics", "/dashboard"))
    trail: list[str] = []
    for _ in range(4):
        _press(page, "Tab", trail)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-keyboard-focus.png"))
    context.close()


# -- a recurring series: the new-event form's Repeats fields, an occurrence's page, the series view ------

SEED_SERIES = """
import json, random, sys
from datetime import timedelta
from checkin.bootstrap import build_context
from checkin.config import Settings
from checkin.domain.series import Recurrence
from checkin.service_layer import checkins, events, organizations, registrations, series
from turnout_common.clock import utcnow

ctx = build_context(Settings.from_env(), "accessibility-test")
org_id = organizations.find_by_slug(ctx, sys.argv[1])["_id"]
now = utcnow()
# Five shifts held, the sixth on now (it began an hour or two ago, on the hour), two to come.
first = now.replace(minute=0, second=0, microsecond=0) - timedelta(weeks=5, hours=1)
shifts = series.schedule_series(
    ctx, org_id, Recurrence("weekly", count=8), title="Weekly food bank shift", kind="volunteer_shift",
    starts_at=first, ends_at=first + timedelta(hours=3), timezone="America/Chicago",
    venue="Riverside warehouse", capacity=12,
)
names = [("Amara", "Okafor"), ("Bao", "Tran"), ("Carmen", "Diaz"), ("Dmitri", "Volkov"), ("Esi", "Mensah"),
         ("Farah", "Haddad"), ("Gus", "Lindqvist"), ("Hana", "Sato"), ("Ivo", "Petrov"), ("June", "Park")]
tag = sys.argv[2]
rng = random.Random(13)
for shift in shifts[:6]:
    held = shift["ends_at"] < now
    for index, (first_name, last_name) in enumerate(names):
        registration, _ = registrations.register(
            ctx, org_id, shift["_id"], first_name=first_name, last_name=last_name,
            email=f"{first_name}.{last_name}.{tag}@example.org".lower(), consent_email=False,
        )
        if rng.random() < (0.95 if index < 4 else 0.4 if held else 0.2):
            arrival = shift["starts_at"] + timedelta(minutes=rng.randint(-15, 25)) if held else None
            checkins.record_checkin(ctx, checkins.CheckinCommand(
                org_id=org_id, event_id=shift["_id"], client_key=f"series-{registration['_id']}", method="qr",
                registration_id=registration["_id"], scanned_at=arrival, override=True, recorded_at=arrival,
            ))
    if held:
        events.end_event(ctx, org_id, shift["_id"], "schedule", now=shift["ends_at"])
print(json.dumps({"series_id": shifts[0]["series_id"], "ids": [shift["_id"] for shift in shifts]}))
"""


def _seed_series(stack: RunningStack) -> subprocess.Popen[str]:
    """A weekly shift of the demo organization, five held with check-ins (regulars among them), the sixth
    happening now, two to come: seeded through checkin's own use cases with the stack's settings, in the
    background while the browser works (``_seeding_series``). checkin's worker is paused meanwhile:
    it would end the past shifts at once, before their history is in (the script ends them itself)."""
    stack.stack.children["checkin-worker"].pause()
    env = {**stack.stack.service_env("checkin")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.Popen(
        [sys.executable, "-c", SEED_SERIES, slugify(DEMO_ORG), uuid.uuid4().hex[:6]],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def _seeding_series(stack: RunningStack) -> Iterator[Callable[[], dict[str, Any]]]:
    """Seed the series in the background; the block gets a function that waits for it. Whatever
    happens in the block, checkin's worker runs again afterwards and the script is gone."""
    seeding = _seed_series(stack)

    def seeded() -> dict[str, Any]:
        out, err = seeding.communicate(timeout=60)
        stack.stack.children["checkin-worker"].resume()
        assert seeding.returncode == 0, err[-2000:]
        return dict(json.loads(out.strip().splitlines()[-1]))

    try:
        yield seeded
    finally:
        if seeding.poll() is None:
            seeding.kill()
            seeding.wait()
        stack.stack.children["checkin-worker"].resume()


def _series_held(stack: RunningStack, series_id: str) -> bool:
    answer = requests.get(stack.url("analytics", f"/api/v1/series/{series_id}"), headers=stack.headers, timeout=10)
    return answer.status_code == 200 and answer.json()["totals"]["held"] == 5


def test_a_series_from_the_new_event_form_and_its_views_pass_the_audit(
    browser: Browser, running_stack: RunningStack, audit: Audit
) -> None:
    with _seeding_series(running_stack) as seeded_series:
        shots = REPO / ("docs/screenshots" if os.environ.get("TURNOUT_UPDATE_SCREENSHOTS") == "1" else "test-artifacts")
        shots.mkdir(parents=True, exist_ok=True)
        context = _context(browser)
        page = context.new_page()
        _sign_in(page, running_stack)

        # The new-event form, repeating monthly on a weekday 6 times; then a wrong count.
        page.goto(running_stack.url("checkin", "/events"))
        page.click("#new-event-title")
        day = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
        page.fill("#f-title", "Monthly networking evening")
        page.select_option("#f-kind", "networking")
        page.fill("#f-starts_at", f"{day}T18:00")
        page.fill("#f-ends_at", f"{day}T20:00")
        page.fill("#f-timezone", "America/Chicago")
        page.select_option("#f-repeat", "monthly")
        expect(page.locator("input[name=monthly_by][value=weekday]")).to_be_visible()
        expect(page.locator("#f-repeat_until")).to_be_hidden()
        page.check("input[name=monthly_by][value=weekday]")
        page.check("input[name=repeat_end][value=count]")
        page.fill("#f-repeat_count", "6")
        audit.run(page, "checkin", "new event form, repeating")
        page.locator("section[aria-labelledby=new-event-title]").screenshot(path=str(shots / "series-form.png"))
        page.fill("#f-repeat_count", "0")
        page.click("form[action='/events'] button[type=submit]")
        expect(page.locator("#f-repeat_count-error")).to_contain_text("from 1 to 104")
        audit.run(page, "checkin", "new event form, repeating, with errors")
        page.fill("#f-repeat_count", "6")
        page.click("form[action='/events'] button[type=submit]")
        expect(page.locator(".alert.ok")).to_contain_text("Series created: 6 events")
        seeded = seeded_series()

    # The events list with the seeded series, and an occurrence's page with its edit form open.
    page.goto(running_stack.url("checkin", "/events"))
    expect(page.get_by_text("Weekly on", exact=False).first).to_be_visible()
    page.get_by_text("5 more upcoming dates").click()
    audit.run(page, "checkin", "events, with series")
    page.screenshot(path=str(shots / "events-series.png"), full_page=True)
    page.goto(running_stack.url("checkin", f"/events/{seeded['ids'][5]}"))
    expect(page.locator("nav[aria-label=Series]")).to_contain_text("occurrence 6 of 8")
    page.click("#change summary >> text=Edit details")
    audit.run(page, "checkin", "event, an occurrence of a series")
    page.screenshot(path=str(shots / "series-occurrence.png"), full_page=True)

    # The dashboard's view of the series, once analytics has the five held shifts.
    _wait("analytics' series", lambda: _series_held(running_stack, seeded["series_id"]))
    page.goto(running_stack.url("analytics", f"/dashboard/series/{seeded['series_id']}"))
    expect(page.locator("main h1")).to_be_visible()
    audit.run(page, "dashboard", "series")
    page.screenshot(path=str(shots / "analytics-series.png"), full_page=True)
    context.close()
    audit.assert_clean("checkin")
    audit.assert_clean("dashboard")
