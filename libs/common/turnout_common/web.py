"""What every Turnout web app shares: JSON errors, request ids and JSON access
logs, validated JSON bodies, auth checks, and the operations endpoints
(``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json``).

``init_web`` composes three parts an app may also install one by one:
``install_request_hooks`` (request ids, access logs, metrics, security
headers), ``install_error_handlers`` (JSON errors) and ``ops_blueprint``."""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, g, request
from jsonschema import Draft202012Validator
from werkzeug.exceptions import HTTPException

from turnout_common.auth import SESSION_COOKIE, InvalidToken, Principal, TokenSigner
from turnout_common.config import DEFAULT_MAX_BODY_BYTES, PublicUrls, ServiceSettings
from turnout_common.errors import ECHO_LIMIT
from turnout_common.errors import ApiError as ApiError  # re-exported: the services import it from here
from turnout_common.errors import clip as clip
from turnout_common.logs import request_id_var
from turnout_common.types import Doc

if TYPE_CHECKING:
    from pymongo import MongoClient

log = logging.getLogger("turnout.web")

F = TypeVar("F", bound=Callable[..., Any])


# -- request bodies ------------------------------------------------------------


def _forbidden_key(value: Any, path: str = "") -> str | None:
    """Find a key that MongoDB would read as an operator or a path."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str) or key.startswith("$") or "." in key or "\x00" in key:
                return f"{path}{key}"
            found = _forbidden_key(inner, f"{path}{key}.")
            if found:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = _forbidden_key(inner, f"{path}{index}.")
            if found:
                return found
    return None


def parse_json_body() -> Any:
    """The request body as JSON, or a 4xx saying precisely what is wrong with it."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_encoding", f"body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        body = json.loads(text) if text.strip() else None
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "body is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "invalid_json", f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    bad = _forbidden_key(body)
    if bad is not None:
        raise ApiError(400, "forbidden_key", "keys may not start with '$' or contain '.'", field=bad)
    return body


def _schema_error(error: Any) -> ApiError:
    path = ".".join(clip(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        field_name = f"{path}.{missing}" if path else missing
        return ApiError(400, "missing_field", f"{field_name} is required", field=field_name)
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = [key for key in error.instance if key not in allowed] if isinstance(error.instance, dict) else []
        names = ", ".join(repr(clip(key)) for key in extra[:5]) + (", …" if len(extra) > 5 else "")
        return ApiError(400, "unknown_field", f"unknown field(s): {names}", field=path or None)
    message = error.schema.get("description") if error.validator == "pattern" else None
    text = f"{path or 'body'}: {message or _clipped_message(error)}"
    return ApiError(400, "invalid_field", text, field=path or None)


def _clipped_message(error: Any) -> str:
    """jsonschema's message with the offending value (its repr) cut to a short prefix."""
    quoted = repr(error.instance)
    if len(quoted) <= ECHO_LIMIT + 2:
        return str(error.message)
    return str(error.message).replace(quoted, clip(quoted))


def validate_body(schema: dict[str, Any]) -> dict[str, Any]:
    body = parse_json_body()
    if body is None:
        raise ApiError(400, "missing_body", "a JSON object body is required")
    validator = _validators.setdefault(
        id(schema), Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise _schema_error(errors[0])
    bad = _unpaired_surrogate(body)
    if bad is not None:
        raise ApiError(400, "bad_encoding", "text contains an unpaired UTF-16 surrogate", field=bad)
    return cast(dict[str, Any], body)


def _unpaired_surrogate(value: Any, path: str = "") -> str | None:
    """Where a string holds a lone UTF-16 surrogate (a JSON "\\ud800" escape) that
    MongoDB and UTF-8 cannot store."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
    elif isinstance(value, dict):
        for key, inner in value.items():
            found = _unpaired_surrogate(inner, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = _unpaired_surrogate(inner, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


_validators: dict[int, Draft202012Validator] = {}


# -- query arguments -----------------------------------------------------------

MAX_PAGE_LIMIT = 1000
MAX_OFFSET = 1_000_000


def page_args(
    default_limit: int = 100, max_limit: int = MAX_PAGE_LIMIT, max_offset: int = MAX_OFFSET
) -> tuple[int, int]:
    """``limit`` and ``offset`` from the query string, or a 400 saying which range is allowed."""
    try:
        limit = int(request.args.get("limit", str(default_limit)))
        skip = int(request.args.get("offset", "0"))
    except ValueError as exc:
        raise ApiError(400, "invalid_query", "limit and offset must be integers") from exc
    if not 1 <= limit <= max_limit or not 0 <= skip <= max_offset:
        raise ApiError(400, "invalid_query", f"limit must be 1-{max_limit} and offset 0-{max_offset}")
    return limit, skip


# -- documented operations -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryArg:
    """A query argument documented with the JSON schema of the values the route
    accepts (a plain description documents any string)."""

    description: str
    schema: dict[str, Any]


@dataclass(slots=True)
class OperationDoc:
    summary: str
    body: dict[str, Any] | None = None
    responses: dict[int, str] = field(default_factory=dict)
    auth: str | None = None  # the permission needed, "kiosk", or None for public
    query: dict[str, str | QueryArg] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    content: str | tuple[str, ...] = "application/json"  # the success answer's type(s)


def operation(
    summary: str,
    *,
    body: dict[str, Any] | None = None,
    responses: dict[int, str] | None = None,
    auth: str | None = None,
    query: dict[str, str | QueryArg] | None = None,
    tags: Iterable[str] = (),
    content: str | tuple[str, ...] = "application/json",
) -> Callable[[F], F]:
    """Document a route for ``/openapi.json`` and, with ``body``, validate its JSON body.

    The validated body is in ``g.body``. With ``auth``, the caller must hold
    that permission; the principal is in ``g.principal``.
    """
    doc = OperationDoc(
        summary=summary,
        body=body,
        responses=responses or {200: "OK"},
        auth=auth,
        query=query or {},
        tags=list(tags),
        content=content,
    )

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if auth is not None:
                g.principal = require_principal(auth)
            if body is not None:
                g.body = validate_body(body)
            return fn(*args, **kwargs)

        wrapper.__dict__["openapi"] = doc
        return cast(F, wrapper)

    return decorate


# -- auth ----------------------------------------------------------------------

PrincipalCheck = Callable[[Principal], None]


def download(body: Any, mimetype: str, filename: str) -> Response:
    """A file the browser saves under ``filename`` and nothing on the way keeps: every
    download here (exports, statements, error lists, calendar files) is someone's data
    or reached through a link that is a credential (``Cache-Control: no-store``)."""
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def require_principal(permission: str) -> Principal:
    """The verified caller, who must hold ``permission`` (401/403 otherwise)."""
    app_state: WebState = current_app.extensions["turnout"]
    token = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header[7:].strip()
    elif SESSION_COOKIE in request.cookies:
        token = request.cookies[SESSION_COOKIE]
        # A cookie rides along on cross-site requests; a state change signed
        # in by cookie must come from one of our own pages.
        if request.method not in ("GET", "HEAD", "OPTIONS") and not same_origin_request():
            raise ApiError(403, "cross_origin", "this request came from another site")
    if not token:
        raise ApiError(401, "unauthenticated", "sign in first (Authorization: Bearer <token>)")
    try:
        principal = app_state.signer.verify(token)
    except InvalidToken as exc:
        raise ApiError(401, "invalid_token", str(exc)) from exc
    if app_state.principal_check is not None:
        app_state.principal_check(principal)
    if not principal.can(permission):
        raise ApiError(403, "forbidden", f"your role ({principal.role}) cannot do this")
    return principal


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin_request() -> bool:
    """Whether a browser request came from a page of this site (or another Turnout service)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    allowed = {_origin_of(request.host_url)} | web_settings(current_app).trusted_origins
    return _origin_of(source) in allowed


def cookie_principal() -> Principal | None:
    """The organizer user signed in by the session cookie, for server-rendered
    pages (None if absent, forged, expired or revoked)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    app_state: WebState = current_app.extensions["turnout"]
    try:
        principal = app_state.signer.verify(token)
        if app_state.principal_check is not None:
            app_state.principal_check(principal)
    except (InvalidToken, ApiError):
        return None
    return principal if principal.kind == "user" else None


@dataclass(slots=True)
class WebState:
    service: str
    signer: TokenSigner
    principal_check: PrincipalCheck | None = None
    readiness: list[Callable[[], str | None]] = field(default_factory=list)


# -- settings, read once ------------------------------------------------------

# Every HTML page gets this policy unless it sets its own (the kiosk page does):
# scripts and styles only from this site's files, no framing, forms post here.
DEFAULT_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
WEB_SETTINGS = "TURNOUT_WEB"


@dataclass(frozen=True, slots=True)
class WebSettings:
    """What the request hooks and checks need, read when the app is built (never per request)."""

    # Origins of the other Turnout services a signed-in browser request may come from.
    trusted_origins: frozenset[str] = frozenset()
    # Behind a reverse proxy: take the client's scheme and host from X-Forwarded-*.
    trust_proxy: bool = False
    # The default policy of HTML responses that set none (None: add none).
    content_security_policy: str | None = DEFAULT_CONTENT_SECURITY_POLICY

    @classmethod
    def of(cls, public_urls: PublicUrls, trust_proxy: bool) -> WebSettings:
        return cls(frozenset(_origin_of(url) for url in public_urls.configured), trust_proxy)

    @classmethod
    def from_env(cls) -> WebSettings:
        return cls.of(PublicUrls.from_env(), os.environ.get("TURNOUT_TRUST_PROXY") == "1")


def web_settings(app: Flask) -> WebSettings:
    """The app's web settings (defaults, trusting no other origin, if none were installed)."""
    found = app.config.get(WEB_SETTINGS)
    return found if isinstance(found, WebSettings) else WebSettings()


# -- the three parts of a Turnout web app ----------------------------------------


def install_request_hooks(app: Flask, *, service: str, settings: WebSettings) -> None:
    """Request ids, JSON access logs, latency metrics and the security headers
    (``nosniff``, ``Referrer-Policy``, a default Content-Security-Policy on HTML);
    behind a trusted proxy, the forwarded scheme and host."""
    from turnout_common import metrics

    app.config[WEB_SETTINGS] = settings
    latency = metrics.request_latency()
    csp = settings.content_security_policy

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex
        g.request_id = rid
        g.started = time.perf_counter()
        request_id_var.set(rid)

    @app.after_request
    def _finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if csp is not None and response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", csp)
        if route not in {"/metrics", "/healthz"}:
            latency.labels(service, request.method, route, str(response.status_code)).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 2),
                },
            )
        return response

    if settings.trust_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]


def _api_error(error: ApiError) -> tuple[Response, int]:
    return error.to_response()


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    codes = {
        404: ("not_found", "no such resource"),
        405: ("method_not_allowed", f"{request.method} is not allowed here"),
        413: ("body_too_large", f"request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes"),
    }
    code, message = codes.get(status, (error.name.lower().replace(" ", "_"), error.description or error.name))
    response, status = ApiError(status, code, message).to_response()
    # A 405 names the methods the route allows (RFC 9110 requires the Allow header).
    for name, value in error.get_headers():
        if name.lower() == "allow":
            response.headers["Allow"] = value
    return response, status


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unhandled error")
    return ApiError(
        500, "internal_error", f"something went wrong on our side (request {g.get('request_id', '?')})"
    ).to_response()


def install_error_handlers(app: Flask) -> None:
    """Every error as the JSON ``{"error": {code, message, field}}``: ``ApiError``
    as raised, HTTP errors (404, 405, 413 ...) by name, anything else a 500
    that names the request id and nothing of the internals."""
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def ops_blueprint(
    *,
    service: str,
    version: str,
    readiness: Sequence[Callable[[], str | None]],
    metrics_collector: Any | None = None,
    description: str = "",
) -> Blueprint:
    """``/healthz``, ``/readyz`` (every readiness check: None or what is wrong),
    ``/metrics`` and ``/openapi.json``."""
    from turnout_common import metrics

    ops = Blueprint("ops", __name__)

    @ops.get("/healthz")
    @operation("Liveness: the process answers", tags=["operations"])
    def healthz() -> Any:
        return {"status": "ok", "service": service}

    @ops.get("/readyz")
    @operation(
        "Readiness: MongoDB and Kafka reachable",
        responses={200: "ready", 503: "not ready, with the reason"},
        tags=["operations"],
    )
    def readyz() -> Any:
        problems = [problem for check in readiness if (problem := check())]
        if problems:
            return {"status": "unavailable", "service": service, "reasons": problems}, 503
        return {"status": "ready", "service": service}

    @ops.get("/metrics")
    @operation("Prometheus metrics", tags=["operations"], content="text/plain")
    def metrics_view() -> Response:
        body, content_type = metrics.render(metrics_collector)
        return Response(body, content_type=content_type)

    @ops.get("/openapi.json")
    @operation("This OpenAPI 3.1 document", tags=["operations"])
    def openapi() -> Any:
        from turnout_common.openapi import build_openapi

        return build_openapi(current_app, title=f"Turnout {service}", version=version, description=description)

    return ops


def init_web(
    app: Flask,
    *,
    service: str,
    version: str,
    signer: TokenSigner,
    readiness: Iterable[Callable[[], str | None]],
    metrics_collector: Any | None = None,
    principal_check: PrincipalCheck | None = None,
    description: str = "",
    settings: WebSettings | None = None,
) -> None:
    """A Turnout web app: token checks, request hooks, JSON errors and the ops
    endpoints. ``settings`` default to the environment's."""
    checks = list(readiness)
    app.extensions["turnout"] = WebState(service, signer, principal_check, checks)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: no limit
        app.config["MAX_CONTENT_LENGTH"] = DEFAULT_MAX_BODY_BYTES
    install_request_hooks(app, service=service, settings=settings if settings is not None else WebSettings.from_env())
    install_error_handlers(app)
    app.register_blueprint(
        ops_blueprint(
            service=service,
            version=version,
            readiness=checks,
            metrics_collector=metrics_collector,
            description=description,
        )
    )


def service_app(import_name: str, settings: ServiceSettings) -> Flask:
    """A service's Flask app before its parts are installed: templates and static
    files under ``entrypoints/``, its settings in ``app.config["SETTINGS"]``, its
    body limit, and JSON logs at its level."""
    from turnout_common import logs

    logs.configure_logging(settings.service, settings.log_level)
    app = Flask(import_name, template_folder="entrypoints/templates", static_folder="entrypoints/static")
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    return app


def init_service_web(
    app: Flask,
    settings: ServiceSettings,
    *,
    version: str,
    signer: TokenSigner,
    client: MongoClient[Doc],
    metrics_collector: Any | None = None,
    principal_check: PrincipalCheck | None = None,
    description: str = "",
) -> None:
    """``init_web`` for a Turnout service from its settings: ready when its MongoDB
    and Kafka answer, its body limit, the other services' origins and the proxy
    setting (nothing read from the environment)."""
    from turnout_common.contracts import ALL_TOPICS_FOR_READINESS
    from turnout_common.runtime import KafkaCheck, mongo_check

    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    init_web(
        app,
        service=settings.service,
        version=version,
        signer=signer,
        readiness=[mongo_check(client), KafkaCheck(settings.kafka_bootstrap_servers, ALL_TOPICS_FOR_READINESS)],
        metrics_collector=metrics_collector,
        principal_check=principal_check,
        description=description,
        settings=WebSettings.of(settings.public_urls, settings.trust_proxy),
    )
