"""Server-rendered organizer pages: sign-in, events, an event, the door staff view,
CSV imports and printable badges.

Every page is scoped to the signed-in organization (another organization's
event or registration is a 404 page). Not signed in: a redirect to
``/login?next=<where you were going>``.

CSRF: the session cookie is ``SameSite=Lax`` (browsers don't send it on
cross-site POSTs), and every POST here also checks that its ``Origin`` header
(or, without one, its ``Referer``) is this site: a POST carrying neither, or
another site's, is refused with 403. No token is needed in the forms.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from checkin.bootstrap import context_of
from checkin.domain.model import EventKind, RuleBroken, check_timezone, plan_schedule
from checkin.service_layer import badges, events, organizations, registrations
from checkin.service_layer.context import Context
from turnout_common.auth import SESSION_COOKIE, SESSION_MAX_AGE, Principal
from turnout_common.clock import as_utc, to_rfc3339, utcnow
from turnout_common.web import cookie_principal, operation, same_origin_request

bp = Blueprint("pages", __name__)

PER_PAGE = 50
PAST_PER_PAGE = 20
BADGES_PER_PAGE = 48
BADGES_PER_SHEET = 6
MAX_PAGE = 100_000
ARRIVALS_SHOWN = 30

ROLE_LABELS = {"owner": "Owner", "organizer": "Organizer", "door_staff": "Door staff", "viewer": "Viewer"}
KIND_LABELS = {
    EventKind.VOLUNTEER_SHIFT.value: "Volunteer shift",
    EventKind.NETWORKING.value: "Networking",
    EventKind.WORKSHOP.value: "Workshop",
    EventKind.MEETING.value: "Meeting",
    EventKind.OTHER.value: "Other",
}
METHOD_LABELS = {"qr": "QR badge", "search": "Name search", "walk-in": "Walk-in", "staff": "Staff"}
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
HTML = "text/html"
PAGE_RESPONSES = {200: "the page", 302: "not signed in: to /login?next=", 403: "your role cannot see this"}


class PageError(Exception):
    """Show an error page with this status."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class SignInRequired(Exception):
    """No valid session cookie: send the browser to the sign-in page."""


def ctx() -> Context:
    return context_of(current_app)


# -- sessions and CSRF -------------------------------------------------------------------------------


def is_same_origin() -> bool:
    """Whether a state-changing browser request came from one of this site's pages."""
    return same_origin_request()


def _check_same_origin() -> None:
    if not is_same_origin():
        raise PageError(
            403,
            "Form refused",
            "This form was not sent from a Turnout page, so it was refused. Go back, reload the page and try again.",
        )


def session_principal() -> Principal | None:
    """The organizer user signed in by the session cookie, if any."""
    return cookie_principal()


def _require(permission: str = "view") -> Principal:
    principal = session_principal()
    if principal is None:
        raise SignInRequired
    g.principal = principal
    if not principal.can(permission):
        raise PageError(
            403,
            "Not allowed",
            f"Your role ({ROLE_LABELS.get(principal.role, principal.role)}) can't do this. "
            "Ask an owner or organizer of your organization.",
        )
    return principal


def _safe_next(target: str | None) -> str:
    """Only a path on this site, or a page of the analytics service (one sign-in
    serves all three): never another host ("//evil", "/\\evil", "https://...")."""
    for name, default in (
        ("TURNOUT_PUBLIC_URL_ANALYTICS", "http://127.0.0.1:8003"),
        ("TURNOUT_PUBLIC_URL_FOLLOWUP", "http://127.0.0.1:8002"),
    ):
        base = os.environ.get(name, default).rstrip("/") + "/"
        if target and target.startswith(base) and not any(ord(ch) < 32 or ch == "\\" for ch in target):
            return target
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(ord(ch) < 32 or ch == "\\" for ch in target)
    ):
        return url_for("pages.events_page")
    return target


def _me(principal: Principal) -> dict[str, Any]:
    org_name = organizations.organization_name(ctx(), principal.org_id)
    return {
        "name": principal.name,
        "role": principal.role,
        "role_label": ROLE_LABELS.get(principal.role, principal.role),
        "org_name": org_name or "Your organization",
        "can_manage": principal.can("manage"),
        "can_checkin": principal.can("checkin"),
    }


# -- rendering helpers -------------------------------------------------------------------------------


def _at(moment: datetime | None, timezone: str, fmt: str = "%H:%M") -> str:
    if moment is None:
        return ""
    return badges.local(moment, timezone).strftime(fmt)


def _ago(moment: datetime | None) -> str:
    if not isinstance(moment, datetime):
        return "never"
    seconds = int((utcnow() - as_utc(moment)).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _page_url(number: int) -> str:
    args = {**request.args.to_dict(), **(request.view_args or {}), "page": number}
    return url_for(str(request.endpoint), **args)


def _render(template: str, status: int = 200, **data: Any) -> tuple[str, int]:
    principal: Principal | None = g.get("principal")
    return (
        render_template(
            template,
            me=_me(principal) if principal is not None else None,
            at=_at,
            ago=_ago,
            when=badges.format_when,
            rfc3339=to_rfc3339,
            kind_label=lambda kind: KIND_LABELS.get(kind, kind),
            method_label=lambda method: METHOD_LABELS.get(method, method or ""),
            page_url=_page_url,
            **data,
        ),
        status,
    )


def _int_arg(name: str, default: int, high: int = MAX_PAGE) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise PageError(400, "Bad address", f"“{name}” must be a whole number from 1 to {high}.")
    return int(raw)


def _yes_no_arg(name: str) -> bool | None:
    raw = request.args.get(name, "")
    if raw in ("", "any"):
        return None
    if raw not in ("yes", "no"):
        raise PageError(400, "Bad address", f"“{name}” must be yes, no or any.")
    return raw == "yes"


def _pages(total: int, per_page: int) -> int:
    return max(1, (total + per_page - 1) // per_page)


def _event_or_404(org_id: str, event_id: str) -> dict[str, Any]:
    try:
        return events.get_event(ctx(), org_id, event_id)
    except RuleBroken as exc:
        raise PageError(404, "Event not found", "There is no such event in your organization.") from exc


# -- errors ------------------------------------------------------------------------------------------


@bp.errorhandler(SignInRequired)
def _to_sign_in(_: SignInRequired) -> Response:
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("pages.login", next=target))


@bp.errorhandler(PageError)
def _page_error(error: PageError) -> tuple[str, int]:
    return _render("error.html", error.status, title=error.title, message=error.message, status_code=error.status)


@bp.errorhandler(RuleBroken)
def _rule_broken(error: RuleBroken) -> tuple[str, int]:
    status = 404 if error.code.endswith("_not_found") else 400 if error.code.startswith("invalid") else 409
    return _render("error.html", status, title="That didn't work", message=error.message, status_code=status)


# -- sign in and out ---------------------------------------------------------------------------------


@bp.get("/")
@operation("Home: the events page when signed in, else the sign-in page (HTML)", content=HTML, tags=["pages"])
def home() -> Any:
    if session_principal() is not None:
        return redirect(url_for("pages.events_page"))
    return _render("login.html", next_url="", email="", error=None)


@bp.get("/login")
@operation("Sign-in page (HTML)", content=HTML, query={"next": "a path on this site to go to after"}, tags=["pages"])
def login() -> Any:
    next_url = _safe_next(request.args.get("next"))
    if session_principal() is not None:
        return redirect(next_url)
    return _render("login.html", next_url=request.args.get("next", ""), email="", error=None)


@bp.post("/login")
@operation(
    "Sign in with the form (email, password, next); sets the turnout_session cookie",
    content=HTML,
    responses={303: "signed in: to next or /events", 400: "missing fields", 401: "wrong email or password"},
    tags=["pages"],
)
def login_submit() -> Any:
    _check_same_origin()
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    if not email or not password or len(email) > 254 or len(password) > 256:
        return _render("login.html", 400, next_url=next_url, email=email[:254], error="Enter your email and password.")
    try:
        token, _user = organizations.sign_in(ctx(), email, password)
    except RuleBroken:
        return _render(
            "login.html", 401, next_url=next_url, email=email, error="That email and password don't match. Try again."
        )
    response = redirect(_safe_next(next_url), code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_MAX_AGE, httponly=True, samesite="Lax", secure=request.is_secure
    )
    return response


@bp.post("/logout")
@operation("Sign out (clears the session cookie)", content=HTML, responses={303: "to /login"}, tags=["pages"])
def logout() -> Any:
    _check_same_origin()
    response = redirect(url_for("pages.login"), code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


# -- events ------------------------------------------------------------------------------------------


@cache
def _timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _events_overview(org_id: str, page: int) -> dict[str, Any]:
    """Happening now, upcoming and past: each event in exactly one group."""
    found = events.overview(ctx(), org_id, (page - 1) * PAST_PER_PAGE, PAST_PER_PAGE)
    happening, upcoming, past, past_total = found.happening, found.upcoming, found.past, found.past_total
    ids = [event["_id"] for event in happening + upcoming + past]
    return {
        "happening": happening,
        "upcoming": upcoming,
        "past": past,
        "past_total": past_total,
        "past_pages": _pages(past_total, PAST_PER_PAGE),
        "counts": events.attendance_counts(ctx(), ids),
    }


def _default_timezone(org_id: str) -> str:
    return events.default_timezone(ctx(), org_id)


def _events_page(principal: Principal, status: int = 200, **form: Any) -> tuple[str, int]:
    page = _int_arg("page", 1)
    form.setdefault("values", {"timezone": _default_timezone(principal.org_id), "kind": "volunteer_shift"})
    form.setdefault("errors", {})
    return _render(
        "events.html",
        status,
        page=page,
        kinds=KIND_LABELS,
        timezones=_timezones(),
        **_events_overview(principal.org_id, page),
        **form,
    )


@bp.get("/events")
@operation(
    "Your organization's events: happening now, upcoming, past (HTML)",
    content=HTML,
    query={"page": "page of past events, default 1"},
    responses=PAGE_RESPONSES,
    tags=["pages"],
)
def events_page() -> Any:
    return _events_page(_require("view"))


def _local_datetime(value: str, timezone: ZoneInfo, name: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        errors[name] = "Required."
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors[name] = "Enter a date and time, like 2026-05-02 17:00."
        return None
    if not 1970 <= moment.year <= 9998:
        errors[name] = "The year must be between 1970 and 9998."
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone)
    return moment.astimezone(UTC)


def _event_form() -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """The new-event form: (what was typed, errors by field, arguments for schedule_event)."""
    form = request.form
    names = ("title", "kind", "starts_at", "ends_at", "timezone", "venue", "capacity", "description")
    values = {name: form.get(name, "").strip() for name in names}
    errors: dict[str, str] = {}
    limits = {"title": 200, "venue": 500, "description": 5000, "timezone": 64}
    for name, limit in limits.items():
        if len(values[name]) > limit:
            errors[name] = f"At most {limit} characters."
    if not values["title"]:
        errors["title"] = "Give the event a title."
    if values["kind"] not in KIND_LABELS:
        errors["kind"] = "Choose what kind of event this is."
    zone: ZoneInfo | None = None
    if not values["timezone"]:
        errors["timezone"] = "Choose the event's time zone."
    elif "timezone" not in errors:
        try:
            zone = check_timezone(values["timezone"])
        except RuleBroken:
            errors["timezone"] = "Not a time zone we know; pick one from the list, like America/Chicago."
    starts_at = ends_at = None
    if zone is not None:
        starts_at = _local_datetime(values["starts_at"], zone, "starts_at", errors)
        ends_at = _local_datetime(values["ends_at"], zone, "ends_at", errors)
    capacity = None
    if values["capacity"]:
        if values["capacity"].isdigit() and 1 <= int(values["capacity"]) <= 1_000_000:
            capacity = int(values["capacity"])
        else:
            errors["capacity"] = "A whole number from 1 to 1,000,000, or leave it empty for no limit."
    if starts_at is not None and ends_at is not None and "starts_at" not in errors and "ends_at" not in errors:
        try:
            plan_schedule(starts_at, ends_at, 60, 60)
        except RuleBroken as exc:
            errors[exc.field or "ends_at"] = exc.message[0].upper() + exc.message[1:] + "."
    arguments = {
        "title": values["title"],
        "kind": values["kind"],
        "starts_at": starts_at,
        "ends_at": ends_at,
        "timezone": values["timezone"],
        "venue": values["venue"] or None,
        "capacity": capacity,
        "description": values["description"] or None,
    }
    return values, errors, arguments


@bp.post("/events")
@operation(
    "Schedule an event from the form (HTML)",
    content=HTML,
    responses={303: "scheduled: to the event", 400: "the form again, with what to fix", 403: "not allowed"},
    tags=["pages"],
)
def create_event() -> Any:
    _check_same_origin()
    principal = _require("manage")
    values, errors, arguments = _event_form()
    if errors:
        return _events_page(principal, 400, values=values, errors=errors, form_open=True)
    event = events.schedule_event(ctx(), principal.org_id, **arguments)
    return redirect(url_for("pages.event_page", event_id=event["_id"], created=1), code=303)


# -- one event ---------------------------------------------------------------------------------------


def _filter_from_args() -> badges.RegistrationFilter:
    status = request.args.get("status", "")
    if status not in ("", "any", *badges.STATUSES):
        raise PageError(400, "Bad address", "“status” must be registered, waitlisted, cancelled or any.")
    text = request.args.get("q", "")
    if len(text) > badges.MAX_QUERY_LENGTH:
        raise PageError(400, "Bad address", f"Search text is limited to {badges.MAX_QUERY_LENGTH} characters.")
    return badges.RegistrationFilter(
        text=text,
        status=status if status in badges.STATUSES else None,
        checked_in=_yes_no_arg("checked_in"),
        consent=_yes_no_arg("consent"),
    )


def _event_page(principal: Principal, event_id: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    event = _event_or_404(principal.org_id, event_id)
    wanted = _filter_from_args()
    page = _int_arg("page", 1)
    rows, total = badges.search_registrations(
        ctx(), principal.org_id, event_id, wanted, skip=(page - 1) * PER_PAGE, limit=PER_PAGE
    )
    counts = events.attendance_counts(ctx(), [event_id])[event_id]
    notice = None
    registered_id = request.args.get("registered")
    if registered_id and status == 200:
        found = registrations.get_registration(ctx(), principal.org_id, registered_id)
        if found is not None and found["event_id"] == event_id:
            notice = {"registration": found, "existing": request.args.get("existing") == "1"}
    extra.setdefault("reg_values", {"consent_email": ""})
    extra.setdefault("reg_errors", {})
    return _render(
        "event.html",
        status,
        event=event,
        counts=counts,
        rows=rows,
        total=total,
        page=page,
        pages=_pages(total, PER_PAGE),
        wanted=wanted,
        statuses=badges.STATUSES,
        kiosks=badges.event_kiosks(ctx(), principal.org_id, event_id),
        notice=notice,
        created=request.args.get("created") == "1",
        now=utcnow(),
        **extra,
    )


@bp.get("/events/<event_id>")
@operation(
    "One event: figures, registrations (search, filters, pages), kiosks (HTML)",
    content=HTML,
    query={
        "q": "name or email prefix, accent-insensitive",
        "status": "registered, waitlisted or cancelled",
        "checked_in": "yes or no",
        "consent": "yes or no",
        "page": "default 1",
    },
    responses={**PAGE_RESPONSES, 400: "bad search or page", 404: "no such event in your organization"},
    tags=["pages"],
)
def event_page(event_id: str) -> Any:
    return _event_page(_require("view"), event_id)


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


@bp.post("/events/<event_id>/registrations")
@operation(
    "Register someone from the form (HTML)",
    content=HTML,
    responses={303: "registered: back to the event", 400: "the form again, with what to fix", 403: "not allowed"},
    tags=["pages"],
)
def register_someone(event_id: str) -> Any:
    _check_same_origin()
    principal = _require("manage")
    _event_or_404(principal.org_id, event_id)
    form = request.form
    values = {name: form.get(name, "").strip() for name in ("first_name", "last_name", "email", "offers", "seeks")}
    values["consent_email"] = "yes" if form.get("consent_email") == "yes" else ""
    errors: dict[str, str] = {}
    if not values["first_name"]:
        errors["first_name"] = "Required."
    for name in ("first_name", "last_name"):
        if len(values[name]) > 100:
            errors[name] = "At most 100 characters."
    if not EMAIL_PATTERN.match(values["email"]) or len(values["email"]) > 254:
        errors["email"] = "Enter an email address, like ada@example.org."
    offers, seeks = _tags(values["offers"]), _tags(values["seeks"])
    for name, tags in (("offers", offers), ("seeks", seeks)):
        if len(tags) > 20 or any(len(tag) > 60 for tag in tags):
            errors[name] = "Up to 20 tags of at most 60 characters, separated by commas."
    if not errors:
        try:
            registration, created = registrations.register(
                ctx(),
                principal.org_id,
                event_id,
                first_name=values["first_name"],
                last_name=values["last_name"],
                email=values["email"],
                consent_email=bool(values["consent_email"]),
                offers=offers,
                seeks=seeks,
                source="api",  # the contract's sources: the form is the API's twin
            )
        except RuleBroken as exc:
            errors[exc.field or "form"] = exc.message[0].upper() + exc.message[1:] + "."
        else:
            target = url_for(
                "pages.event_page", event_id=event_id, registered=registration["_id"], existing=0 if created else 1
            )
            return redirect(target + "#notice", code=303)
    return _event_page(principal, event_id, 400, reg_values=values, reg_errors=errors, reg_open=True)


@bp.get("/events/<event_id>/staff")
@operation(
    "Door staff view: live arrivals, check-in by search, undo (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such event in your organization"},
    tags=["pages"],
)
def staff_page(event_id: str) -> Any:
    principal = _require("view")
    event = _event_or_404(principal.org_id, event_id)
    latest = badges.arrivals(ctx(), principal.org_id, event_id, since=None, limit=ARRIVALS_SHOWN)
    names = badges.kiosk_names(ctx(), event_id, [reg["checkin"].get("kiosk_id") for reg in latest])
    counts = events.attendance_counts(ctx(), [event_id])[event_id]
    return _render("staff.html", event=event, counts=counts, arrivals=latest, kiosk_names=names, now=utcnow())


@bp.get("/events/<event_id>/imports")
@operation(
    "Import registrations from a CSV file, with progress and a per-row report (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such event in your organization"},
    tags=["pages"],
)
def imports_page(event_id: str) -> Any:
    principal = _require("manage")
    event = _event_or_404(principal.org_id, event_id)
    return _render("imports.html", event=event)


# -- badges ------------------------------------------------------------------------------------------


def _badge_markup(badge: badges.Badge) -> Markup:
    return Markup(badge.qr_svg)  # segno's own markup: no user text in it


@bp.get("/badges/<registration_id>")
@operation(
    "A printable 4x3 in badge: name, event, time, venue and the QR code (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such registration in your organization"},
    tags=["pages"],
)
def badge_page(registration_id: str) -> Any:
    principal = _require("view")
    try:
        registration = badges.get_registration(ctx(), principal.org_id, registration_id)
    except RuleBroken as exc:
        raise PageError(404, "Badge not found", "There is no such registration in your organization.") from exc
    event = _event_or_404(principal.org_id, registration["event_id"])
    badge = badges.badge_of(registration, event)
    return _render("badge.html", badge=badge, qr=_badge_markup(badge), event=event)


@bp.get("/events/<event_id>/badges")
@operation(
    "All badges of an event, two per row, six per sheet, for A4 or Letter (HTML)",
    content=HTML,
    query={"page": f"{BADGES_PER_PAGE} badges a page, default 1"},
    responses={**PAGE_RESPONSES, 400: "bad page", 404: "no such event in your organization"},
    tags=["pages"],
)
def badges_page(event_id: str) -> Any:
    principal = _require("view")
    event = _event_or_404(principal.org_id, event_id)
    page = _int_arg("page", 1)
    found, total = badges.event_badges(
        ctx(), principal.org_id, event_id, skip=(page - 1) * BADGES_PER_PAGE, limit=BADGES_PER_PAGE
    )
    cards = [(badge, _badge_markup(badge)) for badge in (badges.badge_of(reg, event) for reg in found)]
    sheets = [cards[index : index + BADGES_PER_SHEET] for index in range(0, len(cards), BADGES_PER_SHEET)]
    return _render(
        "badges.html",
        event=event,
        sheets=sheets,
        total=total,
        page=page,
        pages=_pages(total, BADGES_PER_PAGE),
        first=(page - 1) * BADGES_PER_PAGE + 1,
        shown=len(cards),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
