"""The web layer every service shares: JSON errors, auth, bodies, request ids, OpenAPI."""

import json
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from turnout_common.auth import Principal, TokenSigner
from turnout_common.web import init_web, operation

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 50},
        "size": {"type": "integer", "minimum": 1},
        "meta": {"type": "object"},
    },
}

SIGNER = TokenSigner("k")


def _token(role: str, org: str = "o1") -> str:
    return SIGNER.issue(Principal(kind="user", subject_id="u1", org_id=org, role=role, name="N"))


def _build(max_body: int | None = 4096) -> Flask:
    app = Flask("web-test")
    if max_body is not None:
        app.config["MAX_CONTENT_LENGTH"] = max_body
    init_web(app, service="t", version="0", signer=SIGNER, readiness=[])

    @app.post("/things")
    @operation("x", body=SCHEMA, auth="manage", responses={201: "made"})
    def make_thing() -> Any:
        return {"name": g.body["name"], "by": g.principal.role}, 201

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
def client() -> FlaskClient:
    return _build().test_client()


def _post(client: FlaskClient, data: Any, *, role: str | None = "owner", **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {_token(role)}"} if role else {}
    headers.update(kwargs.pop("headers", {}))
    if not isinstance(data, str | bytes):
        data = json.dumps(data)
    kwargs.setdefault("content_type", "application/json")
    return client.post("/things", data=data, headers=headers, **kwargs)


def _error(response: Any) -> dict[str, Any]:
    assert response.is_json, response.data[:200]
    return response.get_json()["error"]


def test_a_good_request_passes(client: FlaskClient) -> None:
    response = _post(client, {"name": "chair"})
    assert response.status_code == 201
    assert response.get_json() == {"name": "chair", "by": "owner"}


def test_no_token_is_401(client: FlaskClient) -> None:
    response = _post(client, {"name": "chair"}, role=None)
    assert response.status_code == 401
    error = _error(response)
    assert error["code"] == "unauthenticated"
    assert error["message"]


def test_bad_token_is_401_invalid_token(client: FlaskClient) -> None:
    response = _post(client, {"name": "c"}, role=None, headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_token"
    other = TokenSigner("other").issue(Principal("user", "u", "o", "owner", "n"))
    response = _post(client, {"name": "c"}, role=None, headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 401


def test_session_cookie_works_like_bearer_from_our_own_pages(client: FlaskClient) -> None:
    client.set_cookie("turnout_session", _token("organizer"))
    response = client.post("/things", json={"name": "c"}, headers={"Origin": "http://localhost"})
    assert response.status_code == 201
    assert response.get_json()["by"] == "organizer"


@pytest.mark.parametrize("origin", [None, "https://evil.example", "null"])
def test_cookie_signed_state_changes_from_elsewhere_are_refused(client: FlaskClient, origin: str | None) -> None:
    client.set_cookie("turnout_session", _token("organizer"))
    headers = {"Origin": origin} if origin else {}
    response = client.post("/things", json={"name": "c"}, headers=headers)
    assert response.status_code == 403
    assert _error(response)["code"] == "cross_origin"


@pytest.mark.parametrize("role", ["viewer", "door_staff"])
def test_role_without_permission_is_403(client: FlaskClient, role: str) -> None:
    response = _post(client, {"name": "chair"}, role=role)
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "forbidden"
    assert role in error["message"]


def test_auth_is_checked_before_the_body(client: FlaskClient) -> None:
    # An anonymous caller learns nothing about the body's shape.
    assert _post(client, "{not json", role=None).status_code == 401


def test_bad_json_is_400_invalid_json(client: FlaskClient) -> None:
    response = _post(client, '{"name": "chair",}')
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid_json"
    assert "line 1" in error["message"]


def test_invalid_utf8_is_400_bad_encoding(client: FlaskClient) -> None:
    response = _post(client, b'{"name": "caf\xe9"}')
    assert response.status_code == 400
    assert _error(response)["code"] == "bad_encoding"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": {"$gt": ""}}, "name.$gt"),
        ({"$where": "1", "name": "x"}, "$where"),
        ({"name": "x", "meta": {"a.b": 1}}, "meta.a.b"),
        ({"name": "x", "meta": {"list": [{"ok": 1}, {"$ne": 1}]}}, "meta.list.1.$ne"),
        ({"name": "x", "meta": {"nul\u0000": 1}}, "meta.nul\u0000"),
    ],
)
def test_operator_and_path_keys_are_400_forbidden_key(client: FlaskClient, body: Any, field: str) -> None:
    response = _post(client, body)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "forbidden_key"
    assert error["field"] == field


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(client: FlaskClient, content_type: str) -> None:
    response = _post(client, '{"name": "chair"}', content_type=content_type)
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"


def test_json_with_charset_is_accepted(client: FlaskClient) -> None:
    response = _post(client, {"name": "chair"}, content_type="application/json; charset=utf-8")
    assert response.status_code == 201


def test_missing_required_is_400_missing_field(client: FlaskClient) -> None:
    response = _post(client, {"size": 3})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "missing_field"
    assert error["field"] == "name"
    assert "name" in error["message"]


@pytest.mark.parametrize("body", ["", "null"])
def test_empty_body_is_400(client: FlaskClient, body: str) -> None:
    response = _post(client, body)
    assert response.status_code == 400
    assert _error(response)["code"] == "missing_body"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"name": "x", "size": 0}, "invalid_field", "size"),
        ({"name": "x", "size": "3"}, "invalid_field", "size"),
        ({"name": ""}, "invalid_field", "name"),
        ({"name": "x", "colour": "red"}, "unknown_field", None),
        (["name"], "invalid_field", None),
    ],
)
def test_schema_errors_are_400_naming_the_field(client: FlaskClient, body: Any, code: str, field: str | None) -> None:
    response = _post(client, body)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == code
    assert error["field"] == field


def test_body_over_limit_is_413_json(client: FlaskClient) -> None:
    response = _post(client, json.dumps({"name": "x", "meta": {"pad": "a" * 5000}}))
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "body_too_large"
    assert "4096" in error["message"]


def test_init_web_limits_bodies_to_one_mebibyte_by_default() -> None:
    client = _build(max_body=None).test_client()
    response = _post(client, json.dumps({"name": "x", "meta": {"pad": "a" * (2 * 1024 * 1024)}}))
    assert response.status_code == 413


def test_deeply_nested_body_is_a_4xx(client: FlaskClient) -> None:
    depth = 1500
    response = _post(client, '{"name": "x", "meta": {"a": ' + "[" * depth + "]" * depth + "}}")
    assert 400 <= response.status_code < 500


def test_unknown_route_is_404_json(client: FlaskClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.delete("/things")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_unexpected_error_is_500_json_without_internals(client: FlaskClient) -> None:
    response = client.get("/boom", headers={"X-Request-Id": "trace-me-123"})
    assert response.status_code == 500
    error = _error(response)
    assert error["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "trace-me-123" in error["message"]


def test_openapi_lists_the_route_with_its_body_schema(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"] == "3.1.0"
    op = doc["paths"]["/things"]["post"]
    assert op["summary"] == "x"
    assert op["requestBody"]["content"]["application/json"]["schema"] == SCHEMA
    assert op["x-permission"] == "manage"
    assert op["security"] == [{"bearer": []}]
    assert {"201", "400", "401", "403"} <= set(op["responses"])
    for ops_path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert ops_path in doc["paths"]
    assert doc["paths"]["/boom"]["get"]["summary"] == "(undocumented)"


def test_ops_endpoints(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok", "service": "t"}
    assert client.get("/readyz").status_code == 200


def test_readyz_reports_every_failing_check() -> None:
    app = Flask("ready-test")
    init_web(app, service="t", version="0", signer=SIGNER, readiness=[lambda: None, lambda: "kafka down"])
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == ["kafka down"]


@pytest.mark.parametrize(
    "request_",
    [
        lambda c: c.get("/healthz"),
        lambda c: c.get("/nope"),
        lambda c: _post(c, {"name": "ok"}),
        lambda c: _post(c, "{bad"),
        lambda c: _post(c, {"name": "ok"}, role=None),
        lambda c: c.get("/boom"),
    ],
    ids=["200", "404", "201", "400", "401", "500"],
)
def test_every_response_carries_a_request_id(client: FlaskClient, request_: Any) -> None:
    response = request_(client)
    assert len(response.headers.get("X-Request-Id", "")) >= 16


def test_request_ids_are_fresh_per_request(client: FlaskClient) -> None:
    ids = {client.get("/healthz").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_incoming_request_id_is_echoed(client: FlaskClient) -> None:
    response = _post(client, {"name": "ok"}, headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    response = client.get("/nope", headers={"X-Request-Id": "abc-404"})
    assert response.headers["X-Request-Id"] == "abc-404"


@pytest.mark.parametrize("incoming", ["x" * 65, "héllo"])
def test_unusable_incoming_request_id_is_replaced(client: FlaskClient, incoming: str) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": incoming})
    assert response.headers["X-Request-Id"] not in ("", incoming)
