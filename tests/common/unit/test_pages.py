"""The organizer pages' shared pieces: the signed-in organizer and the sign-in's way back."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g

from turnout_common.auth import SESSION_COOKIE, Principal, TokenSigner
from turnout_common.pages import (
    PageError,
    SignInRequired,
    require_same_origin_form,
    safe_next,
    signed_in_principal,
)
from turnout_common.web import init_web

SIGNER = TokenSigner("k")


def _app() -> Flask:
    app = Flask("pages-test")
    init_web(app, service="t", version="0", signer=SIGNER, readiness=[])

    @app.errorhandler(SignInRequired)
    def _sign_in(_: SignInRequired) -> Any:
        return "sign in", 401

    @app.errorhandler(PageError)
    def _page_error(error: PageError) -> Any:
        return f"{error.title}: {error.message}", error.status

    @app.get("/view")
    def view() -> Any:
        who = signed_in_principal("view")
        return f"{who.name} {g.principal.role}"

    @app.get("/manage")
    def manage() -> Any:
        return signed_in_principal("manage", lambda who: f"{who.role} may not").name

    @app.post("/form")
    def form() -> Any:
        require_same_origin_form()
        return "ok"

    return app


def _cookie(role: str, kind: str = "user") -> str:
    return SIGNER.issue(Principal(kind=kind, subject_id="u1", org_id="o1", role=role, name="Ada"))


def test_pages_need_a_signed_in_organizer() -> None:
    client = _app().test_client()
    assert client.get("/view").status_code == 401
    client.set_cookie(SESSION_COOKIE, "forged")
    assert client.get("/view").status_code == 401
    client.set_cookie(SESSION_COOKIE, _cookie("viewer", kind="kiosk"))
    assert client.get("/view").status_code == 401  # a kiosk session is not an organizer


def test_the_organizer_must_hold_the_permission() -> None:
    client = _app().test_client()
    client.set_cookie(SESSION_COOKIE, _cookie("viewer"))
    assert client.get("/view").get_data(as_text=True) == "Ada viewer"
    refused = client.get("/manage")
    assert refused.status_code == 403
    assert refused.get_data(as_text=True) == "Not allowed: viewer may not"


def test_forms_must_come_from_a_turnout_page() -> None:
    client = _app().test_client()
    assert client.post("/form", headers={"Origin": "http://localhost"}).status_code == 200
    refused = client.post("/form", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "Form refused" in refused.get_data(as_text=True)


SITES = ["https://analytics.example.org", "https://followup.example.org/"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/events/e1?tab=people", "/events/e1?tab=people"),
        ("https://analytics.example.org/dashboard", "https://analytics.example.org/dashboard"),
        ("https://followup.example.org/contacts", "https://followup.example.org/contacts"),
        (None, "/home"),
        ("", "/home"),
        ("//evil.example", "/home"),
        ("/\\evil.example", "/home"),
        ("https://evil.example/", "/home"),
        ("https://analytics.example.org.evil.example/", "/home"),
        ("https://analytics.example.org", "/home"),  # not a page under it
        ("https://analytics.example.org/\\evil", "/home"),
        ("/events\n/x", "/home"),
        ("events", "/home"),
    ],
)
def test_a_sign_in_sends_back_only_to_turnout_pages(target: str | None, expected: str) -> None:
    assert safe_next(target, SITES, "/home") == expected
