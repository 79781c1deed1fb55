"""What the server-rendered organizer pages of every service share: the error
page and sign-in exceptions, the signed-in organizer, the same-origin check on
forms, and where a sign-in may send the browser back to.

One sign-in serves all three services: checkin sets the ``turnout_session``
cookie, and every service's pages verify it with the shared key. How a
service answers ``SignInRequired`` (checkin: its sign-in page; the others: a
link to it) and renders a ``PageError`` is its own (its blueprint's error
handlers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import g

from turnout_common.auth import Principal
from turnout_common.web import cookie_principal, same_origin_request


class PageError(Exception):
    """Show an error page with this status, title and message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class SignInRequired(Exception):
    """No valid session cookie: send the browser to sign in."""


def not_allowed_message(principal: Principal) -> str:
    return f"Your role ({principal.role}) cannot see this."


def signed_in_principal(
    permission: str = "view", refused: Callable[[Principal], str] = not_allowed_message
) -> Principal:
    """The organizer signed in by the session cookie, who must hold ``permission``
    (also in ``g.principal``): ``SignInRequired`` without a valid session,
    ``PageError`` 403 saying ``refused(principal)`` without the permission."""
    principal = cookie_principal()
    if principal is None:
        raise SignInRequired
    g.principal = principal
    if not principal.can(permission):
        raise PageError(403, "Not allowed", refused(principal))
    return principal


def require_same_origin_form() -> None:
    """A form post signed in by cookie must come from a Turnout page (a ``PageError`` 403 otherwise)."""
    if not same_origin_request():
        raise PageError(
            403,
            "Form refused",
            "This form was not sent from a Turnout page, so it was refused. Go back, reload the page and try again.",
        )


def _unsafe(target: str) -> bool:
    return any(ord(ch) < 32 or ch == "\\" for ch in target)


def safe_next(target: str | None, other_sites: Iterable[str], fallback: str) -> str:
    """Where to send the browser after signing in: a path on this site, or a page
    under one of ``other_sites`` (the other services' public URLs); never
    another host (``//evil``, ``/\\evil``, ``https://...``): else ``fallback``."""
    if not target or _unsafe(target):
        return fallback
    if any(target.startswith(site.rstrip("/") + "/") for site in other_sites):
        return target
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return fallback
    return target
