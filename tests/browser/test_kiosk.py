"""The kiosk page in a real browser (Chromium via Playwright) against the whole
launched stack: pairing, the three ways in (keyboard scanner, find my name,
walk-in), offline queueing and exactly-once sync, two kiosks, volunteer
check-out, the staff PIN, the service worker and the camera fallback."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, Playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, TABLET, Kiosk
from tests.browser.fake_camera import qr_video
from tests.browser.helpers import (
    STAFF_PIN,
    create_event,
    create_kiosk,
    get_event,
    kiosks,
    register,
    registrations,
    wait_for_checked_in,
)
from tests.e2e.stack import RunningStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Screenshots go to test-artifacts/; TURNOUT_UPDATE_SCREENSHOTS=1 also refreshes
# the ones the README links (tests never change tracked files by default).
SCREENSHOTS = REPO / ("docs/screenshots" if os.environ.get("TURNOUT_UPDATE_SCREENSHOTS") == "1" else "test-artifacts")
VENDOR_JSQR = REPO / "services/checkin/checkin/entrypoints/static/kiosk/vendor/jsQR.js"


def snap(page: Page, name: str) -> None:
    """kiosk-<name>.png at the tablet viewport, once the screen has settled."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(450)
    page.screenshot(path=str(SCREENSHOTS / f"kiosk-{name}.png"))


# -- the page itself -------------------------------------------------------------------------


def test_the_page_its_worker_and_assets_are_served_by_the_app(running_stack: RunningStack) -> None:
    shell = requests.get(running_stack.url("checkin", "/kiosk"), timeout=10)
    assert shell.status_code == 200
    assert shell.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in shell.headers["Content-Security-Policy"]
    assert "/kiosk/static/main.js" in shell.text
    assert "<a " not in shell.text  # no links out of the kiosk
    assert "http://" not in shell.text and "https://" not in shell.text  # no CDN

    worker = requests.get(running_stack.url("checkin", "/kiosk/sw.js"), timeout=10)
    assert worker.status_code == 200
    assert "javascript" in worker.headers["Content-Type"]
    assert worker.headers["Service-Worker-Allowed"] == "/kiosk"
    manifest = re.search(r'const MANIFEST = \{"build": "([0-9a-f]{16})", "assets": (\[.*?\])\}', worker.text)
    assert manifest, worker.text[:600]
    assets = re.findall(r'"(/kiosk/static/[^"]+)"', manifest.group(2))
    assert "/kiosk/static/main.js" in assets and "/kiosk/static/kiosk.css" in assets
    assert "/kiosk/static/screens.js" in assets and "/kiosk/static/staff-menu.js" in assets  # the imported modules too
    # Every module main.js pulls in is preloaded by the shell (and nothing else is).
    preloaded = set(re.findall(r'<link rel="modulepreload" href="(/kiosk/static/[^"]+)">', shell.text))
    modules = {asset for asset in assets if asset.endswith(".js") and "/vendor/" not in asset}
    assert preloaded == modules - {"/kiosk/static/main.js"}
    for asset in assets:
        answer = requests.get(running_stack.url("checkin", asset), timeout=10)
        assert answer.status_code == 200, asset
        if asset.endswith(".js"):
            assert answer.headers["Content-Type"].startswith("text/javascript"), asset

    spec = requests.get(running_stack.url("checkin", "/openapi.json"), timeout=10).json()
    assert spec["paths"]["/kiosk"]["get"]["responses"]["200"]["content"] == {"text/html": {}}
    assert "/kiosk/sw.js" in spec["paths"]


# -- pairing and the three ways in ------------------------------------------------------------


def test_pair_then_check_in_with_a_keyboard_scanner(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Spring Community Meetup")
    amber = register(running_stack, event["id"], "Amber", "Nguyen")
    pairing = create_kiosk(running_stack, event["id"], "Front door")

    kiosk: Kiosk = kiosk_factory()
    kiosk.page.fill("#pair-code", "WRONG234")
    kiosk.page.click("#pair-submit")
    expect(kiosk.page.locator("#pair-error")).to_contain_text("isn't valid")

    kiosk.pair(pairing["pairing_code"].lower())  # typed in lower case: still fine
    kiosk.wait_for_roster(1)
    assert kiosk.page.inner_text("#event-title") == "Spring Community Meetup"
    assert kiosks(running_stack, event["id"])[pairing["id"]]["status"] == "paired"
    snap(kiosk.page, "idle")

    result = kiosk.scan_and_read(amber["badge_code"])
    assert result == {"tone": "success", "title": "Welcome, Amber!", "detail": "First time here", "note": ""}
    expect(kiosk.page.locator("#live-polite")).to_have_text("Welcome, Amber! First time here.")
    snap(kiosk.page, "confirmation")
    assert wait_for_checked_in(running_stack, event["id"], 1) == 1

    # The same badge again: already in, nothing new recorded.
    kiosk.page.wait_for_timeout(3100)  # past the double-read guard
    again = kiosk.scan_and_read(amber["badge_code"])
    assert again["tone"] == "info" and again["title"] == "You're already checked in, Amber N."
    unknown = kiosk.scan_and_read("NOT-A-REAL-BADGE-42")
    assert unknown["tone"] == "warning"
    assert unknown["detail"] == "We don't recognize this badge. Please see the front desk."
    assert int(get_event(running_stack, event["id"])["checked_in_count"]) == 1

    # The confirmation goes back to idle by itself after about 5 seconds.
    kiosk.page.locator("#screen-idle").wait_for(state="visible", timeout=8000)


def test_find_my_name_is_accent_and_typo_tolerant(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Name search night")
    zoe = register(running_stack, event["id"], "Zoë", "Álvarez")
    register(running_stack, event["id"], "José", "Núñez")
    ambers = [register(running_stack, event["id"], "Amber", "Nguyen") for _ in range(2)]
    ignored = register(running_stack, event["id"], "Bruno", "Keller")
    kiosk: Kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    kiosk.wait_for_roster(5)
    page = kiosk.page

    page.click("#find-button")
    page.keyboard.type("zoe alvarex")  # no accents, one typo
    matches = page.locator("#search-results .match")
    expect(matches).to_have_count(1)
    expect(matches.first.locator(".match-name")).to_have_text("Zoë Á.")
    matches.first.click()
    result = kiosk.result()
    assert result["title"] == "Welcome, Zoë!"
    assert registrations(running_stack, event["id"])[zoe["id"]]["checked_in_at"]

    # Two people called "Amber N.": told apart by the hint, never by email.
    kiosk.back_to_idle()
    page.click("#find-button")
    page.keyboard.type("AMBER")
    expect(matches).to_have_count(2)
    hints = matches.locator(".match-hint").all_inner_texts()
    assert len(hints) == 2 and all(hint for hint in hints)
    content = page.content()
    for person in ambers:
        assert person["email"] not in content

    # A scanner used while the search field has focus still checks in, and
    # leaves no code behind in the field.
    page.fill("#search-input", "")
    page.focus("#search-input")
    kiosk.scan(ignored["badge_code"])
    assert kiosk.result()["title"] == "Welcome, Bruno!"
    assert page.input_value("#search-input") == ""


def test_walk_in_checks_in_a_newcomer_and_welcomes_back_a_regular(
    running_stack: RunningStack, kiosk_factory: Any
) -> None:
    earlier = create_event(running_stack, "Last month")
    regular = register(running_stack, earlier["id"], "Rosa", "Díaz")
    answer = requests.post(
        running_stack.url("checkin", f"/api/v1/events/{earlier['id']}/checkins"),
        json={"badge_code": regular["badge_code"], "client_key": "walkin-test-earlier-visit"},
        headers=running_stack.headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text

    event = create_event(running_stack, "Walk-in night")
    kiosk: Kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    page = kiosk.page

    page.click("#walkin-button")
    assert not page.is_checked("#walkin-consent")  # consent is never assumed
    page.click("#walkin-submit")
    expect(page.locator("#walkin-first-error")).to_have_text("Please fill this in.")
    page.fill("#walkin-first", "Pat")
    page.fill("#walkin-last", "Lee")
    page.fill("#walkin-email", "not-an-email")
    page.click("#walkin-submit")
    expect(page.locator("#walkin-email-error")).to_have_text("Please enter a valid email address.")
    page.fill("#walkin-email", "pat.lee@example.org")
    page.fill("#walkin-offers", "design, mentoring")
    page.fill("#walkin-seeks", "a co-founder")
    page.click("#walkin-submit")
    result = kiosk.result()
    assert result["title"] == "Welcome, Pat!"
    assert result["detail"] == "First time here"

    regs = list(registrations(running_stack, event["id"]).values())
    assert len(regs) == 1
    pat = regs[0]
    assert (pat["first_name"], pat["source"], pat["consent_email"]) == ("Pat", "walk-in", False)
    assert pat["offers"] == ["design", "mentoring"] and pat["seeks"] == ["a co-founder"]
    assert pat["checked_in_at"]

    kiosk.back_to_idle()
    page.click("#walkin-button")
    page.fill("#walkin-first", "Rosa")
    page.fill("#walkin-email", regular["email"])
    page.check("#walkin-consent")
    page.click("#walkin-submit")
    result = kiosk.result()
    assert result["title"] == "Welcome, Rosa!"
    assert result["detail"] == "Welcome back, 2nd visit"


def test_spanish_is_one_tap_away(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Noche bilingüe")
    ana = register(running_stack, event["id"], "Ana", "Ruiz")
    kiosk: Kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    kiosk.wait_for_roster(1)
    page = kiosk.page
    page.click("#lang-toggle")
    assert page.get_attribute("html", "lang") == "es"
    expect(page.locator("#idle-title")).to_have_text("¡Te damos la bienvenida!")
    expect(page.locator("#lang-toggle")).to_have_text("English")
    result = kiosk.scan_and_read(ana["badge_code"])
    assert result["title"] == "¡Hola, Ana!"
    assert result["detail"] == "Tu primera vez aquí"
    page.click("#lang-toggle")
    expect(page.locator("#lang-toggle")).to_have_text("Español")


# -- offline ------------------------------------------------------------------------------------


def test_offline_scans_wait_in_the_queue_and_sync_exactly_once(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Offline evening")
    people = [register(running_stack, event["id"], name, "Offline") for name in ("Ada", "Ben", "Cleo")]
    kiosk: Kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    kiosk.wait_for_roster(3)
    page = kiosk.page

    kiosk.context.set_offline(True)
    expect(page.locator("#offline-banner")).to_be_visible()
    for person in people:
        result = kiosk.scan_and_read(person["badge_code"])
        assert result["title"] == f"Welcome, {person['first_name']}!"
        assert result["note"].startswith("Saved on this tablet")
    expect(page.locator("#banner-queue")).to_have_text("3 waiting to sync")
    expect(page.locator("#status-queue")).to_have_text("3")

    # A badge the roster doesn't know can't be vouched for offline: not queued.
    unknown = kiosk.scan_and_read("UNKNOWN-OFFLINE-BADGE")
    assert unknown["detail"] == "We can't verify this badge right now; please see the front desk"
    assert kiosk.waiting() == 3
    # The same person again offline: already in (locally), not queued twice.
    kiosk.page.wait_for_timeout(3100)
    assert kiosk.scan_and_read(people[0]["badge_code"])["tone"] == "info"
    assert kiosk.waiting() == 3
    kiosk.back_to_idle()
    snap(page, "offline")
    assert int(get_event(running_stack, event["id"])["checked_in_count"]) == 0

    kiosk.context.set_offline(False)
    kiosk.wait_until_synced()
    expect(page.locator("#offline-banner")).to_be_hidden()
    expect(page.locator("#status-queue")).to_be_hidden()
    assert wait_for_checked_in(running_stack, event["id"], 3) == 3
    regs = registrations(running_stack, event["id"])
    assert all(regs[person["id"]]["checked_in_at"] for person in people)


def test_two_kiosks_scanning_one_badge_offline_check_in_once(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Two doors")
    dana = register(running_stack, event["id"], "Dana", "Twice")
    before = int(get_event(running_stack, event["id"])["checked_in_count"])
    doors: list[Kiosk] = []
    for name in ("North door", "South door"):
        kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"], name)["pairing_code"])
        kiosk.wait_for_roster(1)
        doors.append(kiosk)

    for kiosk in doors:
        kiosk.context.set_offline(True)
        assert kiosk.scan_and_read(dana["badge_code"])["title"] == "Welcome, Dana!"
        assert kiosk.waiting() == 1

    for kiosk in doors:
        kiosk.context.set_offline(False)
    for kiosk in doors:
        kiosk.wait_until_synced()
    assert wait_for_checked_in(running_stack, event["id"], before + 1) == before + 1
    assert registrations(running_stack, event["id"])[dana["id"]]["checked_in_at"]


def test_the_page_opens_offline_from_the_service_worker(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "No network at all")
    eve = register(running_stack, event["id"], "Eve", "Cached")
    kiosk: Kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    kiosk.wait_for_roster(1)
    page = kiosk.page
    kiosk.wait_until("navigator.serviceWorker.controller !== null")

    kiosk.context.set_offline(True)
    page.reload()
    page.locator("#screen-idle").wait_for(state="visible")
    assert page.inner_text("#event-title") == "No network at all"
    expect(page.locator("#offline-banner")).to_be_visible()
    kiosk.wait_for_roster(1)  # from IndexedDB
    assert kiosk.scan_and_read(eve["badge_code"])["title"] == "Welcome, Eve!"
    assert kiosk.waiting() == 1

    kiosk.context.set_offline(False)
    kiosk.wait_until_synced()
    assert wait_for_checked_in(running_stack, event["id"], 1) == 1


# -- volunteers, staff ---------------------------------------------------------------------------


def test_volunteers_check_out_and_see_their_hours(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Food bank shift", kind="volunteer_shift")
    vic = register(running_stack, event["id"], "Vic", "Helper")
    wren = register(running_stack, event["id"], "Wren", "Helper")
    kiosk: Kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    kiosk.wait_for_roster(2)
    page = kiosk.page
    expect(page.locator("#checkout-toggle")).to_be_visible()

    assert kiosk.scan_and_read(vic["badge_code"])["title"] == "Welcome, Vic!"
    kiosk.back_to_idle()
    page.click("#checkout-toggle")
    expect(page.locator("#idle-lead")).to_have_text("Leaving? Check out here")
    expect(page.locator("#walkin-button")).to_be_hidden()
    kiosk.scan(vic["badge_code"])
    result = kiosk.result()
    assert result["tone"] == "bye" and result["title"] == "Thank you, Vic!"
    assert "hours today" in result["detail"]

    # Someone already in finds their name again: offered a check-out right there.
    assert kiosk.scan_and_read(wren["badge_code"])["title"] == "Welcome, Wren!"
    kiosk.back_to_idle()
    page.click("#find-button")
    page.keyboard.type("wren")
    page.locator("#search-results .match").first.click()
    assert kiosk.result()["title"] == "You're already checked in, Wren H."
    page.click("#result-checkout")
    expect(page.locator("#result-title")).to_have_text("Thank you, Wren!")


def test_staff_pin_guards_leaving_and_unpairing(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Locked down")
    kiosk: Kiosk = kiosk_factory().pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    page = kiosk.page

    # No way away without the PIN: the beforeunload guard holds the page.
    kiosk.accept_dialogs = False
    page.click("#find-button")  # a user gesture, as on a real tablet
    page.click("[data-go=idle] >> visible=true")
    page.evaluate("setTimeout(() => { location.href = '/'; }, 0)")
    page.wait_for_timeout(1000)
    assert "beforeunload" in kiosk.dialogs
    assert page.url.endswith("/kiosk")
    kiosk.accept_dialogs = True

    page.click("#staff-button")
    page.fill("#pin-input", "1111")
    page.click("#pin-ok")
    expect(page.locator("#pin-error")).to_have_text("Wrong PIN.")
    for digit in STAFF_PIN:
        page.click(f"#keypad [data-key='{digit}']")
    page.click("#pin-ok")
    expect(page.locator("#staff-dialog")).to_be_visible()
    expect(page.locator("#staff-kiosk")).to_have_text("Front door")
    page.click("#staff-unpair")
    page.click("#confirm-yes")
    page.locator("#screen-pair").wait_for(state="visible")
    assert page.evaluate("window.turnoutKiosk.screen") == "pair"


def test_a_revoked_kiosk_says_so(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "Revoked door")
    fay = register(running_stack, event["id"], "Fay", "Revoked")
    pairing = create_kiosk(running_stack, event["id"])
    kiosk: Kiosk = kiosk_factory().pair(pairing["pairing_code"])
    answer = requests.post(
        running_stack.url("checkin", f"/api/v1/kiosks/{pairing['id']}/revoke"),
        headers=running_stack.headers,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    kiosk.page.wait_for_timeout(2500)  # the server caches kiosk sessions for a moment
    kiosk.scan(fay["badge_code"])
    kiosk.page.locator("#screen-revoked").wait_for(state="visible")
    assert int(get_event(running_stack, event["id"])["checked_in_count"]) == 0


# -- the camera --------------------------------------------------------------------------------


def test_without_the_qr_decoder_the_camera_is_just_unavailable(running_stack: RunningStack, kiosk_factory: Any) -> None:
    event = create_event(running_stack, "No decoder")
    gus = register(running_stack, event["id"], "Gus", "Scanner")
    kiosk: Kiosk = kiosk_factory()
    kiosk.context.route("**/kiosk/static/vendor/jsQR.js", lambda route: route.fulfill(status=404, body="missing"))
    kiosk.pair(create_kiosk(running_stack, event["id"])["pairing_code"])
    kiosk.wait_for_roster(1)
    page = kiosk.page
    page.click("#camera-button")
    expect(page.locator("#camera-status")).to_have_text(
        "The camera can't scan on this tablet. Please use the scanner or find your name."
    )
    page.locator("#screen-idle").wait_for(state="visible", timeout=8000)
    assert kiosk.scan_and_read(gus["badge_code"])["title"] == "Welcome, Gus!"


def test_the_camera_reads_a_badge_with_jsqr(running_stack: RunningStack, playwright: Playwright) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)", pytrace=False)
    if not VENDOR_JSQR.exists():
        pytest.fail(
            f"{VENDOR_JSQR.relative_to(REPO)} is missing: build it with `make frontend`",
            pytrace=False,
        )
    event = create_event(running_stack, "Camera check-in")
    hal = register(running_stack, event["id"], "Hal", "Camera")
    video = qr_video(hal["badge_code"], Path(tempfile.mkdtemp(prefix="kiosk-cam-")) / "badge.y4m")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = browser.new_context(viewport=TABLET, locale="en-US", permissions=["camera"])
        context.set_default_timeout(15_000)
        kiosk = Kiosk(running_stack, context).open()
        kiosk.pair(create_kiosk(running_stack, event["id"])["pairing_code"])
        kiosk.wait_for_roster(1)
        native = kiosk.page.evaluate("'BarcodeDetector' in window")  # not on Linux: jsQR does the work
        kiosk.page.click("#camera-button")
        result = kiosk.result()
        assert result["title"] == "Welcome, Hal!"
        if not native:
            assert kiosk.page.evaluate("typeof window.jsQR") == "function"
        assert not kiosk.errors, kiosk.errors
        assert wait_for_checked_in(running_stack, event["id"], 1) == 1
    finally:
        browser.close()
