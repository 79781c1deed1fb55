"""Signing in and out of the organizer pages."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from checkin.domain.model import RuleBroken
from checkin.entrypoints.abuse import SIGN_IN_BY_ADDRESS, SIGN_IN_FORM_BY_ACCOUNT, sign_in_refused
from checkin.entrypoints.pages_common import (
    HTML,
    bp,
    check_same_origin,
    ctx,
    next_target,
    render,
    session_principal,
)
from checkin.service_layer import access, organizations
from turnout_common.auth import SESSION_COOKIE, SESSION_MAX_AGE
from turnout_common.limits import rate_limited
from turnout_common.web import operation

# -- sign in and out ---------------------------------------------------------------------------------


@bp.get("/")
@operation("Home: the events page when signed in, else the sign-in page (HTML)", content=HTML, tags=["pages"])
def home() -> Any:
    if session_principal() is not None:
        return redirect(url_for("pages.events_page"))
    return render("login.html", next_url="", email="", error=None)


@bp.get("/login")
@operation("Sign-in page (HTML)", content=HTML, query={"next": "a path on this site to go to after"}, tags=["pages"])
def login() -> Any:
    next_url = next_target(request.args.get("next"))
    if session_principal() is not None:
        return redirect(next_url)
    return render("login.html", next_url=request.args.get("next", ""), email="", error=None)


@bp.post("/login")
@operation(
    "Sign in with the form (email, password, next); sets the turnout_session cookie",
    content=HTML,
    responses={
        303: "signed in: to next or /events",
        400: "missing fields",
        401: "wrong email or password",
        403: "the form was not sent from this site's sign-in page",
        429: "too many attempts: the form says when to try again (Retry-After)",
    },
    tags=["pages"],
)
@rate_limited(SIGN_IN_BY_ADDRESS, SIGN_IN_FORM_BY_ACCOUNT, page=sign_in_refused)
def login_submit() -> Any:
    check_same_origin()
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    if not email or not password or len(email) > 254 or len(password) > 256:
        return render("login.html", 400, next_url=next_url, email=email[:254], error="Enter your email and password.")
    try:
        token, _user = organizations.sign_in(ctx(), email, password)
    except RuleBroken:
        return render(
            "login.html", 401, next_url=next_url, email=email, error="That email and password don't match. Try again."
        )
    response = redirect(next_target(next_url), code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_MAX_AGE, httponly=True, samesite="Lax", secure=request.is_secure
    )
    return response


@bp.post("/logout")
@operation(
    "Sign out: ends the session on all three services and clears the session cookie",
    content=HTML,
    responses={303: "to /login"},
    tags=["pages"],
)
def logout() -> Any:
    check_same_origin()
    principal = session_principal()
    if principal is not None:
        access.sign_out(ctx(), principal)
    response = redirect(url_for("pages.login"), code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Lax", secure=request.is_secure)
    return response
