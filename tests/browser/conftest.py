"""Browser tests of the kiosk page: Playwright (sync API) driving Debian's
Chromium against the whole launched stack (the e2e ``running_stack``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.stack import RunningStack

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "TABLET", "Kiosk", "kiosk_factory"]

TABLET: ViewportSize = {"width": 1024, "height": 768}


class Kiosk:
    """One tablet: a browser context (its own IndexedDB and service worker) with the page."""

    def __init__(self, stack: RunningStack, context: BrowserContext) -> None:
        self.stack = stack
        self.context = context
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        # Leaving on purpose (a reload in a test) gets past the kiosk's beforeunload
        # guard; a test that checks the guard itself sets this to False.
        self.accept_dialogs = True
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.type)
        if self.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    @property
    def url(self) -> str:
        return self.stack.url("checkin", "/kiosk")

    def open(self) -> Kiosk:
        self.page.goto(self.url)
        return self

    def pair(self, code: str) -> Kiosk:
        page = self.page
        page.locator("#screen-pair").wait_for(state="visible")
        page.fill("#pair-code", code)
        page.click("#pair-submit")
        page.locator("#screen-idle").wait_for(state="visible")
        return self

    def wait_until(self, expression: str, timeout: float = 15) -> None:
        """Poll a JS expression from here: the page's CSP (no eval) rules out wait_for_function."""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(f"Boolean({expression})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {expression}")
            self.page.wait_for_timeout(100)

    def wait_for_roster(self, size: int) -> None:
        self.wait_until(f"window.turnoutKiosk && window.turnoutKiosk.rosterSize >= {size}")

    def wait_until_synced(self) -> None:
        self.wait_until("window.turnoutKiosk.waiting === 0", timeout=30)

    def scan(self, badge_code: str) -> None:
        """Type the code and Enter as a USB/Bluetooth scanner does (into whatever has focus)."""
        self.page.keyboard.type(badge_code)
        self.page.keyboard.press("Enter")

    def scan_and_read(self, badge_code: str) -> dict[str, Any]:
        """Scan from the idle screen and read the confirmation that answers it."""
        if self.page.is_visible("#screen-result"):
            self.back_to_idle()
        self.scan(badge_code)
        return self.result()

    def result(self) -> dict[str, Any]:
        page = self.page
        page.locator("#screen-result").wait_for(state="visible")
        return {
            "tone": page.get_attribute("#result", "data-tone"),
            "title": page.inner_text("#result-title"),
            "detail": page.inner_text("#result-detail"),
            "note": page.inner_text("#result-note") if page.is_visible("#result-note") else "",
        }

    def back_to_idle(self) -> None:
        self.page.click("#screen-result", position={"x": 20, "y": 20})
        self.page.locator("#screen-idle").wait_for(state="visible")

    def waiting(self) -> int:
        return int(self.page.evaluate("window.turnoutKiosk.waiting"))


@pytest.fixture
def kiosk_factory(browser: Browser, running_stack: RunningStack) -> Iterator[Any]:
    """Opens kiosk tablets (each in a fresh browser context); checks none threw a JS error."""
    opened: list[Kiosk] = []

    def open_kiosk(**context_options: Any) -> Kiosk:
        options: dict[str, Any] = {"viewport": TABLET, "locale": "en-US", "timezone_id": "Europe/Berlin"}
        options.update(context_options)
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        kiosk = Kiosk(running_stack, context)
        opened.append(kiosk)
        return kiosk.open()

    yield open_kiosk
    errors = [error for kiosk in opened for error in kiosk.errors]
    for kiosk in opened:
        kiosk.context.close()
    assert not errors, f"JavaScript errors on the kiosk page: {errors}"
