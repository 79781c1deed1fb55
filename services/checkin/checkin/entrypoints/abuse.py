"""Checkin's abuse limits: which routes count what (the rates are settings,
``TURNOUT_RATE_LIMIT_*``; see ``turnout_common.limits``).

- Sign-in, by the API and by the form together: failed attempts per account
  (the normalized email; a person signing in again and again is never
  refused), and every attempt per client address (one address trying many
  accounts).
- Kiosk name search, per kiosk: the kiosk's own roster answers names offline,
  so a search per keystroke at a busy door stays far below the limit, while a
  stolen kiosk token cannot walk the whole roster through the search.
- The kiosk roster download, per kiosk: the kiosk page fetches it once a
  minute (and when it starts, comes back online or staff ask), so a stolen
  kiosk token cannot pull it faster than a kiosk does.
- The public registration form, per client address.
"""

from __future__ import annotations

from flask import Flask, g, render_template, request
from flask.typing import ResponseReturnValue

from checkin.bootstrap import context_of
from turnout_common.limits import (
    Refusal,
    Rule,
    account_of,
    client_address,
    init_rate_limits,
    principal_subject,
    refused_credentials,
)


def _api_account() -> str:
    body = g.get("body")
    return account_of(body.get("email") if isinstance(body, dict) else None)


def _form_account() -> str:
    return account_of(request.form.get("email", ""))


SIGN_IN_BY_ADDRESS = Rule(
    "sign_in_address", client_address, "Too many sign-in attempts from your network.", shared=True
)
SIGN_IN_BY_ACCOUNT = Rule(
    "sign_in_account",
    _api_account,
    "Too many failed sign-ins for this account.",
    shared=True,
    deduct_when=refused_credentials,
)
# The form's attempts count on the same counters as the API's (same setting, shared).
SIGN_IN_FORM_BY_ACCOUNT = Rule(
    "sign_in_account",
    _form_account,
    "Too many failed sign-ins for this account.",
    shared=True,
    deduct_when=refused_credentials,
)
KIOSK_SEARCH = Rule("kiosk_search", principal_subject, "Too many name searches from this kiosk.")
KIOSK_ROSTER = Rule("kiosk_roster", principal_subject, "Too many roster downloads from this kiosk.")
PUBLIC_REGISTRATION = Rule("public_registration", client_address, "Too many registrations from your network.")


def sign_in_refused(refusal: Refusal) -> ResponseReturnValue:
    """The sign-in form again, saying why and for how long."""
    from checkin.entrypoints.pages_common import render

    email = request.form.get("email", "").strip()[:254]
    return render("login.html", 429, next_url=request.form.get("next", ""), email=email, error=refusal.message)


def registration_refused(refusal: Refusal) -> ResponseReturnValue:
    return render_template("public_register.html", event=None, closed=refusal.message), 429


def init_app(app: Flask) -> None:
    settings = context_of(app).settings.rate_limits
    init_rate_limits(app, settings, service="checkin")
