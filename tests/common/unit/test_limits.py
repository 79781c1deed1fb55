"""The abuse-limit wiring (turnout_common.limits) on a small Flask app: the
429 with Retry-After and the house error body, failures-only counting, a
counter shared by two routes, a page for HTML forms, and the settings."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, g, request

from turnout_common import config
from turnout_common.config import RateLimitSettings, SettingError
from turnout_common.limits import (
    Refusal,
    Rule,
    account_of,
    client_address,
    init_rate_limits,
    principal_subject,
    rate_limited,
    refused_credentials,
    wait_text,
)
from turnout_common.web import install_error_handlers, operation

PASSWORD = "right"


def _account() -> str:
    return account_of(g.body["email"])


def _form_account() -> str:
    return account_of(request.form.get("email", ""))


BY_ADDRESS = Rule("sign_in_address", client_address, "Too many attempts from your network.", shared=True)
BY_ACCOUNT = Rule(
    "sign_in_account", _account, "Too many failed sign-ins.", shared=True, deduct_when=refused_credentials
)
FORM_BY_ACCOUNT = Rule(
    "sign_in_account", _form_account, "Too many failed sign-ins.", shared=True, deduct_when=refused_credentials
)
PER_ROUTE = Rule("links", client_address, "Too many requests.")
BODY = {"type": "object", "properties": {"email": {"type": "string"}, "password": {"type": "string"}}}


def _page(refusal: Refusal) -> Any:
    return f"<p>{refusal.message}</p>", 200, {"Content-Type": "text/html; charset=utf-8"}


def make_app(**limits: str) -> Flask:
    app = Flask(__name__)
    install_error_handlers(app)
    init_rate_limits(app, RateLimitSettings(**limits), service="test")

    @app.post("/login")
    @operation("sign in", body=BODY)
    @rate_limited(BY_ADDRESS, BY_ACCOUNT)
    def login() -> Any:
        return ({"ok": True}, 200) if g.body["password"] == PASSWORD else ({"ok": False}, 401)

    @app.post("/form")
    @operation("sign in with a form", content="text/html")
    @rate_limited(BY_ADDRESS, FORM_BY_ACCOUNT, page=_page)
    def form() -> Any:
        return ("welcome", 303) if request.form.get("password") == PASSWORD else ("wrong", 401)

    @app.get("/one")
    @rate_limited(PER_ROUTE)
    def one() -> Any:
        return {"route": "one"}

    @app.get("/two")
    @rate_limited(PER_ROUTE)
    def two() -> Any:
        return {"route": "two"}

    @app.get("/kiosk")
    @rate_limited(Rule("kiosk_search", principal_subject, "Too many searches."))
    def kiosk() -> Any:
        return {"ok": True}

    return app


def sign_in(client: Any, email: str, password: str = "wrong", address: str = "192.0.2.1") -> Any:
    return client.post(
        "/login", json={"email": email, "password": password}, environ_overrides={"REMOTE_ADDR": address}
    )


def assert_refused(answer: Any, message: str) -> None:
    assert answer.status_code == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 15 * 60
    error = answer.get_json()["error"]
    assert error["code"] == "rate_limited" and error["field"] is None
    assert error["message"].startswith(message) and "Try again in" in error["message"]


def test_the_attempt_after_the_limit_is_429_with_retry_after_and_the_house_error() -> None:
    client = make_app(sign_in_account="3 per 15 minutes").test_client()
    assert [sign_in(client, "ada@example.org").status_code for _ in range(3)] == [401, 401, 401]
    assert_refused(sign_in(client, "ada@example.org"), "Too many failed sign-ins.")
    # Even the right password waits: the account is what is protected.
    assert_refused(sign_in(client, "ada@example.org", PASSWORD), "Too many failed sign-ins.")


def test_the_account_is_its_normalized_email() -> None:
    client = make_app(sign_in_account="2 per 15 minutes").test_client()
    sign_in(client, "Ada@Example.org")
    sign_in(client, " ada@example.ORG ")
    assert sign_in(client, "ADA@example.org").status_code == 429
    assert account_of("Ada@Example.org") == account_of("ada@example.org") != account_of("bob@example.org")
    assert len(account_of("x" * 5_000_000)) < 50  # a digest, whatever was sent


def test_only_failures_count_for_an_account() -> None:
    client = make_app(sign_in_account="2 per 15 minutes").test_client()
    assert all(sign_in(client, "ada@example.org", PASSWORD).status_code == 200 for _ in range(6))
    assert sign_in(client, "ada@example.org").status_code == 401


def test_another_account_from_the_same_address_is_not_held_by_the_first() -> None:
    client = make_app(sign_in_account="2 per 15 minutes").test_client()
    sign_in(client, "ada@example.org")
    sign_in(client, "ada@example.org")
    assert sign_in(client, "ada@example.org").status_code == 429
    assert sign_in(client, "bob@example.org").status_code == 401
    assert sign_in(client, "bob@example.org", PASSWORD).status_code == 200


def test_every_attempt_counts_per_address_and_addresses_count_apart() -> None:
    client = make_app(sign_in_address="4 per 15 minutes").test_client()
    for index in range(4):
        sign_in(client, f"person{index}@example.org", PASSWORD)
    assert_refused(sign_in(client, "new@example.org", PASSWORD), "Too many attempts from your network.")
    assert sign_in(client, "new@example.org", PASSWORD, address="198.51.100.7").status_code == 200


def test_the_form_and_the_api_share_the_counters_and_the_form_gets_a_page() -> None:
    client = make_app(sign_in_account="3 per 15 minutes").test_client()
    sign_in(client, "ada@example.org")
    sign_in(client, "ada@example.org")
    form = {"email": "ADA@example.org", "password": "wrong"}
    assert client.post("/form", data=form).status_code == 401
    refused = client.post("/form", data=form)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins. Try again in" in refused.get_data(as_text=True)
    assert sign_in(client, "ada@example.org").status_code == 429


def test_a_limit_per_route_counts_each_route_apart() -> None:
    client = make_app(links="2 per minute").test_client()
    assert [client.get("/one").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/two").status_code == 200
    assert 1 <= int(client.get("/one").headers["Retry-After"]) <= 60


def test_the_verified_caller_is_the_key_else_the_address() -> None:
    app = make_app(kiosk_search="1 per minute")
    with app.test_request_context("/kiosk", environ_overrides={"REMOTE_ADDR": "192.0.2.9"}):
        assert principal_subject() == "address:192.0.2.9"

        class Kiosk:
            kind = "kiosk"
            subject_id = "k1"

        g.principal = Kiosk()
        assert principal_subject() == "kiosk:k1"


def test_a_route_without_an_installed_limiter_is_a_clear_error() -> None:
    app = Flask(__name__)

    @app.get("/x")
    @rate_limited(PER_ROUTE)
    def x() -> Any:
        return "x"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="init_rate_limits"):
        app.test_client().get("/x")


def test_refused_credentials_is_a_401() -> None:
    assert refused_credentials(Response(status=401))
    assert not refused_credentials(Response(status=200)) and not refused_credentials(Response(status=429))


def test_wait_text_reads_well() -> None:
    assert wait_text(1) == "1 second"
    assert wait_text(45) == "45 seconds"
    assert wait_text(600) == "10 minutes"
    assert wait_text(899) == "15 minutes"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RateLimitSettings.from_env() == RateLimitSettings()
    monkeypatch.setenv("TURNOUT_RATE_LIMIT_KIOSK_SEARCH", "1000 per second")
    monkeypatch.setenv("TURNOUT_RATE_LIMIT_STORAGE", "mongodb://db.example:27017/")
    settings = config.service_values("checkin")["rate_limits"]
    assert settings.kiosk_search == "1000 per second" and settings.storage_uri == "mongodb://db.example:27017/"
    assert settings.sign_in_account == "10 per 15 minutes"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TURNOUT_RATE_LIMIT_SIGN_IN_ACCOUNT", "ten a minute"),
        ("TURNOUT_RATE_LIMIT_LINKS", "5 per fortnight"),
        ("TURNOUT_RATE_LIMIT_STORAGE", "redis://cache:6379"),
    ],
)
def test_an_unusable_setting_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError, match=variable):
        RateLimitSettings.from_env()


def test_an_unreachable_mongodb_falls_back_to_counting_in_the_process() -> None:
    unreachable = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
    client = make_app(storage_uri=unreachable, links="2 per minute").test_client()
    assert [client.get("/one").status_code for _ in range(3)] == [200, 200, 429]
