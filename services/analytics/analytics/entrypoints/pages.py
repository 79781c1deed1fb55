"""The organizer dashboard: server-rendered pages over the same read use cases
as the JSON API. Sign-in is checkin's: the ``turnout_session`` cookie it sets
is verified here with the shared key; without it, a page links to checkin's
sign-in page and back.

Charts are drawn in the browser by Chart.js (vendored from npm into
``static/vendor``) from JSON embedded in the page; every chart has a table
beside it, which is all a page shows when the vendor file is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Flask, Response, current_app, g, redirect, render_template, request, url_for

from analytics.bootstrap import Context, context_of, dashboard
from analytics.domain.events import KINDS
from analytics.domain.reports import NUDGE_KINDS, bucket_label
from analytics.entrypoints.filters import Filters, check_id, filters, integer
from analytics.service_layer import views
from turnout_common.auth import Principal
from turnout_common.clock import utcnow
from turnout_common.pages import PageError, SignInRequired, signed_in_principal
from turnout_common.types import Doc
from turnout_common.web import ApiError, cookie_principal, operation

bp = Blueprint("pages", __name__)

HTML = "text/html"
PAGE = {200: "the page", 401: "not signed in: a link to checkin's sign-in page"}
VENDOR = os.path.join(os.path.dirname(__file__), "static", "vendor", "chart.umd.js")
KIND_LABELS = {
    "volunteer_shift": "Volunteer shift",
    "networking": "Networking",
    "workshop": "Workshop",
    "meeting": "Meeting",
    "other": "Other",
}
NUDGE_LABELS = {
    "thank_you": "Thank you",
    "we_missed_you": "We missed you",
    "first_timer_welcome": "First-timer welcome",
    "introduction_request": "Introduction request",
    "introduction": "Introduction",
    "win_back": "Win-back",
    "volunteer_hours": "Volunteer hours",
}


def ctx() -> Context:
    return context_of(current_app)


def _refused(who: Principal) -> str:
    return f"Your role ({who.role}) cannot see the dashboard."


def principal() -> Principal:
    return signed_in_principal("view", _refused)


def _filters() -> Filters:
    try:
        return filters()
    except ApiError as error:
        raise PageError(400, "That filter didn't work", error.message) from error


def _render(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    """A page (with the default Content-Security-Policy of every HTML response: see ``turnout_common.web``)."""
    values.setdefault("me", g.get("principal") or cookie_principal())
    values.setdefault("charts", os.path.isfile(VENDOR))
    values.setdefault("kinds", KINDS)
    values.setdefault("kind_labels", KIND_LABELS)
    values.setdefault("nudge_labels", NUDGE_LABELS)
    return render_template(template, **values), status


@bp.errorhandler(SignInRequired)
def _sign_in(_: SignInRequired) -> tuple[str, int]:
    login = f"{ctx().settings.public_urls.checkin}/login?next={quote(request.url, safe='')}"
    return _render("signin.html", 401, login_url=login, me=None)


@bp.errorhandler(PageError)
def _page_error(error: PageError) -> tuple[str, int]:
    return _render("error.html", error.status, title=error.title, message=error.message)


# -- template helpers -------------------------------------------------------------------------------


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def local_time(value: str | None, timezone: str | None = None, pattern: str = "%a %d %b %Y, %H:%M") -> str:
    moment = _parse(value)
    if moment is None:
        return "—"
    try:
        zone = ZoneInfo(timezone) if timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is not None:
        return moment.astimezone(zone).strftime(pattern)
    return moment.strftime(pattern) + " UTC"


def month_label(month: str) -> str:
    """``2026-03`` -> ``Mar 2026``."""
    try:
        return datetime.strptime(month, "%Y-%m").strftime("%b %Y")
    except ValueError:
        return month


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def number(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def with_query(endpoint: str, extra: dict[str, str] | None = None, **values: Any) -> str:
    """A URL keeping the current filters (plus ``extra`` query parameters)."""
    params = {key: request.args[key] for key in ("from", "to", "kind") if request.args.get(key)}
    params.update(extra or {})
    base = url_for(endpoint, **values)
    return f"{base}?{urlencode(params)}" if params else base


# -- pages ------------------------------------------------------------------------------------------


@bp.get("/")
@operation(
    "Home: the dashboard when signed in, else a link to sign in on checkin (HTML)",
    content=HTML,
    responses={302: "signed in: to the dashboard", 401: "not signed in: a page with the link to sign in"},
    tags=["pages"],
)
def home() -> Any:
    if cookie_principal() is None:
        raise SignInRequired
    return redirect(url_for("pages.overview"))


@bp.get("/dashboard")
@operation(
    "Organization overview: headline figures, attendance trend by kind, events (HTML)",
    content=HTML,
    query={"from": "first day", "to": "last day", "kind": "event kind"},
    responses={**PAGE, 400: "a filter is not valid"},
    tags=["pages"],
)
def overview() -> Any:
    who = principal()
    chosen = _filters()
    now = utcnow()
    queries = dashboard()
    return _render(
        "overview.html",
        filters=chosen,
        figures=views.overview(queries, who.org_id, now, chosen.date_range, chosen.kind),
        trend=views.trends(queries, who.org_id, chosen.date_range, chosen.kind),
        events=views.list_events(queries, who.org_id, chosen.date_range, chosen.kind),
        now=now,
    )


@bp.get("/dashboard/events/<event_id>")
@operation(
    "Event report: figures, arrival curve, lanes and staffing hint (HTML)",
    content=HTML,
    responses={**PAGE, 404: "no such event"},
    tags=["pages"],
)
def event_report(event_id: str) -> Any:
    who = principal()
    report = _event_or_404(lambda: views.event_report(dashboard(), who.org_id, check_id(event_id, "event"), utcnow()))
    return _render("event_report.html", report=report, event=report["event"])


@bp.get("/dashboard/series/<series_id>")
@operation(
    "A recurring series: attendance per occurrence, returners and regulars (HTML)",
    content=HTML,
    responses={**PAGE, 404: "no such series"},
    tags=["pages"],
)
def series_report(series_id: str) -> Any:
    who = principal()
    try:
        found = views.series_report(dashboard(), who.org_id, check_id(series_id, "series"))
    except ApiError:
        found = None
    if found is None:
        raise PageError(404, "Series not found", "There is no such series in your organization.")
    chart = {
        "labels": [local_time(row["starts_at"], row["timezone"], "%d %b") for row in found["occurrences"]],
        "checked_in": [row["checked_in"] for row in found["occurrences"]],
        "registered": [row["registered"] for row in found["occurrences"]],
    }
    return _render("series.html", series=found, chart=chart)


@bp.get("/dashboard/events/<event_id>/live")
@operation(
    "Live view of an event in progress: counter, arrival curve and lanes, updated by Server-Sent Events (HTML)",
    content=HTML,
    responses={**PAGE, 404: "no such event"},
    tags=["pages"],
)
def event_live(event_id: str) -> Any:
    who = principal()
    snapshot = _event_or_404(lambda: views.live_snapshot(dashboard(), who.org_id, check_id(event_id, "event")))
    event = views.event_figures(dashboard(), who.org_id, event_id)
    return _render("live.html", live=snapshot, event=event)


def _event_or_404(load: Callable[[], Doc | None]) -> Doc:
    try:
        found = load()
    except ApiError:
        found = None
    if found is None:
        raise PageError(404, "Event not found", "There is no such event in your organization (or nobody registered).")
    return found


@bp.get("/dashboard/retention")
@operation(
    "Cohort retention heatmap and first-timer return rate (HTML)",
    content=HTML,
    query={"from": "first cohort month's day", "to": "last cohort month's day"},
    responses={**PAGE, 400: "a filter is not valid"},
    tags=["pages"],
)
def retention() -> Any:
    who = principal()
    chosen = _filters()
    return _render(
        "retention.html",
        filters=chosen,
        retention=views.retention(dashboard(), who.org_id, utcnow(), chosen.date_range),
    )


@bp.get("/dashboard/at-risk")
@operation("People at risk: regulars who stopped coming (HTML)", content=HTML, responses=PAGE, tags=["pages"])
def at_risk() -> Any:
    who = principal()
    return _render("at_risk.html", people=views.people_at_risk(dashboard(), who.org_id, utcnow()))


@bp.get("/dashboard/people")
@operation(
    "People: events attended, first and last seen, streaks, hours, follow-ups (HTML)",
    content=HTML,
    query={"page": "page number, from 1"},
    responses={**PAGE, 400: "bad page number"},
    tags=["pages"],
)
def people() -> Any:
    who = principal()
    try:
        page = integer("page", 1, 1, 10_000)
    except ApiError as error:
        raise PageError(400, "That page doesn't exist", error.message) from error
    found = views.people_page(dashboard(), who.org_id, utcnow(), 100, (page - 1) * 100)
    pages = max(1, -(-found["total"] // 100))
    return _render(
        "people.html",
        people=found["people"],
        total=found["total"],
        page=page,
        pages=pages,
        more=page < pages,
        loyalty=views.loyalty_report(dashboard(), who.org_id),
    )


@bp.get("/dashboard/funnel")
@operation(
    "Follow-up funnel per nudge kind (HTML)",
    content=HTML,
    query={"from": "first day", "to": "last day"},
    responses={**PAGE, 400: "a filter is not valid"},
    tags=["pages"],
)
def funnel() -> Any:
    who = principal()
    chosen = _filters()
    return _render(
        "funnel.html", filters=chosen, funnel=views.followup_funnel(dashboard(), who.org_id, chosen.date_range)
    )


def _no_store(response: Response) -> Response:
    if request.blueprint == "pages" and response.mimetype == HTML:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        local_time=local_time, percent=percent, number=number, bucket_label=bucket_label, month_label=month_label
    )
    app.jinja_env.globals.update(with_query=with_query, NUDGE_KINDS=NUDGE_KINDS)
    app.after_request(_no_store)
    app.register_blueprint(bp)
