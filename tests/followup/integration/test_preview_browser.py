"""The organizer's view of one message in a real browser (Debian's Chromium):
the email's HTML shows in the page's sandboxed frame with its inline styles
applied, and nothing on the page or in the frame breaks its Content-Security-Policy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage
from werkzeug.serving import make_server

from followup import create_app
from followup.config import Settings
from followup.service_layer.context import Services
from followup.service_layer.scheduling import run_scheduler_once
from followup.service_layer.sending import send_due_nudges
from tests.followup.helpers import Gathering, SmtpServer
from tests.followup.integration.conftest import apply
from turnout_common.auth import SESSION_COOKIE, Principal, TokenSigner
from turnout_common.config import secret_key
from turnout_local.processes import free_port

pytestmark = pytest.mark.integration

SCREENSHOT = Path(__file__).resolve().parents[3] / "test-artifacts" / "followup-preview.png"
EMAIL_BACKGROUND = "rgb(244, 245, 247)"  # the email layout's inline style="background:#f4f5f7"


@pytest.fixture
def served(settings: Settings, svc: Services) -> Iterator[str]:
    """The follow-up app on a free local port, over real HTTP."""
    app: Flask = create_app(settings)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_the_email_preview_is_styled_without_a_policy_violation(
    browser: Browser, served: str, svc: Services, smtp: SmtpServer, org_id: str
) -> None:
    g = Gathering(org_id, kind="networking", title="Styled evening")
    ann = g.registered("s-ann", "Ann", "ann@styled.example.org")
    apply(svc, [g.scheduled(), ann, g.checked_in("s-ann"), g.ended()])
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    nudge = svc.store.nudges.in_org(org_id, next(m for m in smtp.handler.received).followup_id)
    assert nudge is not None
    token = TokenSigner(secret_key()).issue(Principal("user", "u-organizer", org_id, "organizer", "Someone"))

    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": served}])
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The email's images point at the links' public host (not served here) and
        # there is no favicon: a failed load is no problem, a refused one is.
        refused = "Content Security Policy" in message.text or "Refused to" in message.text
        failed_load = message.text.startswith("Failed to load resource")
        if refused or (message.type == "error" and not failed_load):
            problems.append(message.text)

    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        answer = page.goto(f"{served}/messages/{nudge['_id']}")
        assert answer is not None and answer.status == 200
        preview_url = f"{served}/messages/{nudge['_id']}/preview"
        page.wait_for_load_state("load")
        [frame] = page.main_frame.child_frames
        assert "Styled evening" in frame.inner_text("body")
        background = frame.eval_on_selector("body", "body => getComputedStyle(body).backgroundColor")
        assert background == EMAIL_BACKGROUND, "the email's inline styles were not applied"
        assert frame.url == preview_url
        # The page's own stylesheet applies too (served from /static).
        assert page.eval_on_selector("iframe", "f => getComputedStyle(f).width") != "300px"
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    finally:
        context.close()
    assert not problems, problems
