"""The three parts ``init_web`` composes, each on its own: the request hooks,
the JSON error handlers and the operations blueprint; and the web settings,
read once when the app is built."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response

from turnout_common.config import PublicUrls
from turnout_common.web import (
    DEFAULT_CONTENT_SECURITY_POLICY,
    ApiError,
    WebSettings,
    install_error_handlers,
    install_request_hooks,
    ops_blueprint,
    same_origin_request,
    web_settings,
)

OWN_POLICY = "default-src 'none'"


def _pages(app: Flask) -> None:
    @app.get("/page")
    def page() -> Any:
        return "<p>hello</p>"

    @app.get("/own-policy")
    def own_policy() -> Any:
        return "<p>kiosk</p>", 200, {"Content-Security-Policy": OWN_POLICY}

    @app.get("/data")
    def data() -> Any:
        return {"ok": True}

    @app.post("/origin")
    def origin() -> Any:
        return {"same_origin": same_origin_request()}


def _hooked(settings: WebSettings | None = None) -> Flask:
    app = Flask("hooks-test")
    install_request_hooks(app, service="t", settings=settings or WebSettings())
    _pages(app)
    return app


def test_html_responses_get_the_default_content_security_policy() -> None:
    client = _hooked().test_client()
    assert client.get("/page").headers["Content-Security-Policy"] == DEFAULT_CONTENT_SECURITY_POLICY


def test_a_page_that_sets_its_own_policy_keeps_it() -> None:
    client = _hooked().test_client()
    assert client.get("/own-policy").headers["Content-Security-Policy"] == OWN_POLICY


def test_json_responses_get_no_content_security_policy() -> None:
    response = _hooked().test_client().get("/data")
    assert "Content-Security-Policy" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_default_policy_can_be_switched_off() -> None:
    client = _hooked(WebSettings(content_security_policy=None)).test_client()
    assert "Content-Security-Policy" not in client.get("/page").headers


def test_the_hooks_give_every_response_a_request_id() -> None:
    client = _hooked().test_client()
    assert client.get("/data", headers={"X-Request-Id": "abc"}).headers["X-Request-Id"] == "abc"
    assert len(client.get("/nowhere").headers["X-Request-Id"]) == 32


def test_trusted_origins_are_the_configured_public_urls_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_PUBLIC_URL_ANALYTICS", "https://Analytics.example.org/")
    monkeypatch.delenv("TURNOUT_PUBLIC_URL_FOLLOWUP", raising=False)
    monkeypatch.setenv("TURNOUT_PUBLIC_URL_CHECKIN", "")
    app = _hooked(WebSettings.from_env())
    assert web_settings(app).trusted_origins == frozenset({"https://analytics.example.org"})
    # A change to the environment after the app was built changes nothing.
    monkeypatch.setenv("TURNOUT_PUBLIC_URL_FOLLOWUP", "https://followup.example.org")
    client = app.test_client()
    assert client.post("/origin", headers={"Origin": "https://analytics.example.org"}).get_json()["same_origin"]
    assert not client.post("/origin", headers={"Origin": "https://followup.example.org"}).get_json()["same_origin"]
    assert client.post("/origin", headers={"Origin": "http://localhost"}).get_json()["same_origin"]  # its own host
    assert not client.post("/origin").get_json()["same_origin"]


def test_web_settings_from_the_service_settings() -> None:
    urls = PublicUrls(configured=("https://checkin.example.org", "http://127.0.0.1:8003"))
    settings = WebSettings.of(urls, trust_proxy=True)
    assert settings.trusted_origins == frozenset({"https://checkin.example.org", "http://127.0.0.1:8003"})
    assert settings.trust_proxy


def test_behind_a_trusted_proxy_the_forwarded_host_counts() -> None:
    app = _hooked(WebSettings(trust_proxy=True))

    @app.get("/where")
    def where() -> Any:
        from flask import request

        return {"url": request.host_url}

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "turnout.example.org"}
    assert app.test_client().get("/where", headers=forwarded).get_json()["url"] == "https://turnout.example.org/"
    plain = _hooked()

    @plain.get("/where")
    def where_plain() -> Any:
        from flask import request

        return {"url": request.host_url}

    assert plain.test_client().get("/where", headers=forwarded).get_json()["url"] == "http://localhost/"


def test_an_app_without_hooks_trusts_only_its_own_host() -> None:
    app = Flask("bare")
    _pages(app)
    client = app.test_client()
    assert web_settings(app) == WebSettings()
    assert not client.post("/origin", headers={"Origin": "https://analytics.example.org"}).get_json()["same_origin"]


# -- error handlers ----------------------------------------------------------------------------


def _erring() -> Flask:
    app = Flask("errors-test")
    app.config["MAX_CONTENT_LENGTH"] = 10
    install_error_handlers(app)

    @app.get("/refused")
    def refused() -> Any:
        raise ApiError(409, "taken", "already taken", field="name")

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("secret internals")

    @app.post("/upload")
    def upload() -> Any:
        from flask import request

        return {"size": len(request.get_data())}

    return app


def test_api_errors_are_json_as_raised() -> None:
    response = _erring().test_client().get("/refused")
    assert response.status_code == 409
    assert response.get_json() == {"error": {"code": "taken", "message": "already taken", "field": "name"}}


def test_http_errors_are_json_by_name() -> None:
    client = _erring().test_client()
    assert client.get("/nowhere").get_json()["error"]["code"] == "not_found"
    assert client.post("/refused").get_json()["error"]["code"] == "method_not_allowed"
    too_big = client.post("/upload", data=b"x" * 100)
    assert too_big.status_code == 413
    assert too_big.get_json()["error"] == {
        "code": "body_too_large",
        "message": "request body is larger than 10 bytes",
        "field": None,
    }


def test_unexpected_errors_are_a_500_without_internals() -> None:
    response = _erring().test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True)


# -- the operations blueprint ------------------------------------------------------------------


def _with_ops(checks: list[Any]) -> Flask:
    app = Flask("ops-test")
    app.register_blueprint(
        ops_blueprint(service="t", version="9.9", readiness=checks, metrics_collector=None, description="A test.")
    )
    return app


def test_the_ops_blueprint_answers_health_and_readiness() -> None:
    checks: list[Any] = [lambda: None]
    client = _with_ops(checks).test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "service": "t"}
    assert client.get("/readyz").get_json() == {"status": "ready", "service": "t"}
    checks.append(lambda: "kafka down")  # checks added later count too
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == ["kafka down"]


def test_the_ops_blueprint_serves_metrics_and_its_openapi_document() -> None:
    client = _with_ops([]).test_client()
    metrics: Response = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.mimetype == "text/plain"
    document = client.get("/openapi.json").get_json()
    assert document["info"]["title"] == "Turnout t" and document["info"]["version"] == "9.9"
    assert "/healthz" in document["paths"] and "/readyz" in document["paths"]


def test_a_service_web_app_from_its_settings_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pymongo import MongoClient

    from turnout_common import config
    from turnout_common.auth import TokenSigner
    from turnout_common.web import init_service_web

    monkeypatch.setenv("TURNOUT_PUBLIC_URL_CHECKIN", "https://from-the-environment.example")
    values = config.service_values("followup", max_body_bytes=2048)
    values["public_urls"] = PublicUrls(configured=("https://checkin.example.org",))
    settings = config.ServiceSettings(**values)
    client: MongoClient[dict[str, Any]] = MongoClient("mongodb://127.0.0.1:9", connect=False)
    app = Flask("service-test")
    init_service_web(app, settings, version="1", signer=TokenSigner("k"), client=client, description="d")
    assert app.config["MAX_CONTENT_LENGTH"] == 2048
    assert web_settings(app).trusted_origins == frozenset({"https://checkin.example.org"})
    assert len(app.extensions["turnout"].readiness) == 2  # MongoDB and Kafka
    assert app.test_client().get("/healthz").get_json() == {"status": "ok", "service": "followup"}
    client.close()
