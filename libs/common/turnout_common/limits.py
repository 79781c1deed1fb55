"""Abuse limits (Flask-Limiter): how often one account, address or kiosk may
repeat what an attacker repeats, and the 429 that says when to come back.

A service installs a limiter once (``init_rate_limits``, from its
``RateLimitSettings``) and marks routes with ``rate_limited(rule, ...)``
beneath ``operation``, so the body is validated and the caller verified by
the time a rule's key is read::

    @bp.post("/auth/login")
    @operation(..., body=LOGIN_BODY)
    @rate_limited(SIGN_IN_BY_ADDRESS, SIGN_IN_BY_ACCOUNT)
    def login(): ...

A refusal is ``429`` with ``Retry-After`` (seconds) and the house error body
``{"error": {"code": "rate_limited", "message": ..., "field": null}}``; a route
given ``page=`` answers with that page instead (an HTML form).

Counters live in the process (``memory://``: with N gunicorn workers a client
may get up to N times a limit, as each worker counts alone) or in MongoDB
(``mongodb://``, shared by every process).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded

from turnout_common.config import RateLimitSettings
from turnout_common.emails import normalize_email

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION = "turnout_limits"
PAGE_ATTRIBUTE = "rate_limit_page"


# -- what a limit counts by ------------------------------------------------------------------------


def client_address() -> str:
    """The caller's address (behind a trusted proxy, the forwarded one: ``ProxyFix``
    rewrites ``remote_addr`` when ``TURNOUT_TRUST_PROXY=1``)."""
    return f"address:{request.remote_addr or 'unknown'}"


def account_of(email: object) -> str:
    """An account's key: a digest of the normalized email (bounded in size, and
    no address stored in the counters)."""
    text = normalize_email(email) if isinstance(email, str) else ""
    return f"account:{hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()[:32]}"


def principal_subject() -> str:
    """The verified caller (``g.principal``: a kiosk's id, a user's id), else the address."""
    principal = g.get("principal")
    if principal is None:
        return client_address()
    return f"{principal.kind}:{principal.subject_id}"


def refused_credentials(response: Response) -> bool:
    """For ``deduct_when``: the answer was a wrong email or password (401)."""
    return response.status_code == 401


@dataclass(frozen=True, slots=True)
class Rule:
    """One limit: which setting holds its rate, what it counts by, and what the
    refusal says. ``shared``: one counter across every route carrying the rule
    (the API sign-in and the sign-in form); otherwise one per route.
    ``deduct_when``: count only answers it accepts (failed sign-ins); the check
    before the call still refuses once the count is reached."""

    setting: str
    key: Callable[[], str]
    message: str
    shared: bool = False
    deduct_when: Callable[[Response], bool] | None = None

    def rate(self, settings: RateLimitSettings) -> str:
        rate = getattr(settings, self.setting)
        assert isinstance(rate, str), self.setting
        return rate


# -- the refusal ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a page needs to say no: the sentence and the seconds to wait."""

    message: str
    retry_after: int


RefusalPage = Callable[[Refusal], ResponseReturnValue]


def wait_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def _retry_after(limiter: Limiter) -> int:
    breached = limiter.current_limit
    if breached is None:
        return 60
    return max(1, math.ceil(breached.window[0] - time.time()))


def _refused(error: RateLimitExceeded) -> ResponseReturnValue:
    state = limits_of(current_app)
    seconds = _retry_after(state.limiter)
    refusal = Refusal(f"{error.description} Try again in {wait_text(seconds)}.", seconds)
    view = current_app.view_functions.get(request.endpoint or "")
    page: RefusalPage | None = getattr(view, PAGE_ATTRIBUTE, None)
    response = current_app.make_response(page(refusal) if page is not None else _json(refusal))
    response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


def _json(refusal: Refusal) -> Response:
    return jsonify({"error": {"code": "rate_limited", "message": refusal.message, "field": None}})


# -- installing and applying ------------------------------------------------------------------------------


class RateLimits:
    """An app's limiter and its rules applied to views (built on a view's first call)."""

    def __init__(self, limiter: Limiter, settings: RateLimitSettings) -> None:
        self.limiter = limiter
        self.settings = settings
        self._views: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def view(self, fn: Callable[..., Any], rules: tuple[Rule, ...]) -> Callable[..., Any]:
        """``fn`` under Flask-Limiter's limits for ``rules`` (made once per app: limits
        registered twice would count twice)."""
        with self._lock:
            limited = self._views.get(fn)
            if limited is None:
                limited = fn
                for rule in rules:
                    rate = rule.rate(self.settings)
                    if rule.shared:
                        limit = self.limiter.shared_limit(
                            rate,
                            rule.setting,
                            key_func=rule.key,
                            deduct_when=rule.deduct_when,
                            error_message=rule.message,
                        )
                    else:
                        limit = self.limiter.limit(
                            rate,
                            scope=rule.setting,
                            key_func=rule.key,
                            deduct_when=rule.deduct_when,
                            error_message=rule.message,
                        )
                    limited = limit(limited)
                self._views[fn] = limited
        return limited


def init_rate_limits(app: Flask, settings: RateLimitSettings, *, service: str) -> RateLimits:
    """The app's limiter: counters in ``settings.storage_uri``, moving windows (a
    limit holds over any stretch of its length), and the 429 answer."""
    shared = settings.storage_uri.startswith("mongodb")
    limiter = Limiter(
        key_func=client_address,
        app=app,
        storage_uri=settings.storage_uri,
        storage_options={"database_name": "turnout_rate_limits"} if shared else {},
        strategy="moving-window",
        key_prefix=service,
        headers_enabled=False,
        # MongoDB unreachable: count in the process until it is back (logged),
        # rather than refuse every sign-in with a 500.
        in_memory_fallback_enabled=shared,
        swallow_errors=shared,
    )
    state = RateLimits(limiter, settings)
    app.extensions[EXTENSION] = state
    app.register_error_handler(RateLimitExceeded, _refused)
    return state


def limits_of(app: Flask) -> RateLimits:
    state = app.extensions.get(EXTENSION)
    if not isinstance(state, RateLimits):
        raise RuntimeError("rate-limited route in an app without init_rate_limits")
    return state


def rate_limited(*rules: Rule, page: RefusalPage | None = None) -> Callable[[F], F]:
    """Apply ``rules`` to a route (put it beneath ``operation``); ``page`` renders the
    refusal of an HTML form (status and ``Retry-After`` are set for it)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return limits_of(current_app).view(fn, rules)(*args, **kwargs)

        if page is not None:
            wrapper.__dict__[PAGE_ATTRIBUTE] = page
        wrapper.__dict__["rate_limits"] = rules
        return cast(F, wrapper)

    return decorate
