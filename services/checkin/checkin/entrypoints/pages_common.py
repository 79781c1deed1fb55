"""What every organizer page shares: the ``pages`` blueprint, the signed-in
organizer (and the same-origin check on POSTs), rendering helpers and the
error pages. The routes are in ``pages_auth``, ``pages_events``,
``pages_event`` and ``pages_badges``; ``pages.init_app`` registers them all.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from checkin.bootstrap import context_of
from checkin.domain.model import EventKind, RuleBroken
from checkin.domain.series import describe, local_date
from checkin.service_layer import badges, events, organizations
from checkin.service_layer.context import Context
from turnout_common.auth import Principal
from turnout_common.clock import as_utc, to_rfc3339, utcnow
from turnout_common.pages import PageError, SignInRequired, require_same_origin_form, safe_next, signed_in_principal
from turnout_common.web import cookie_principal, same_origin_request

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


def ctx() -> Context:
    return context_of(current_app)


# -- sessions and CSRF -------------------------------------------------------------------------------


def is_same_origin() -> bool:
    """Whether a state-changing browser request came from one of this site's pages."""
    return same_origin_request()


def check_same_origin() -> None:
    require_same_origin_form()


def session_principal() -> Principal | None:
    """The organizer user signed in by the session cookie, if any."""
    return cookie_principal()


def _refused(principal: Principal) -> str:
    role = ROLE_LABELS.get(principal.role, principal.role)
    return f"Your role ({role}) can't do this. Ask an owner or organizer of your organization."


def require(permission: str = "view") -> Principal:
    return signed_in_principal(permission, _refused)


def next_target(target: str | None) -> str:
    """Only a path on this site, or a page of the analytics or followup service
    (one sign-in serves all three): never another host."""
    urls = ctx().settings.public_urls
    return safe_next(target, (urls.analytics, urls.followup), url_for("pages.events_page"))


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


def _series_rule(event: dict[str, Any]) -> str:
    """``Weekly on Saturday``: how an occurrence's series repeats, in words."""
    return describe(event.get("recurrence") or {}, local_date(event["starts_at"], event["timezone"]))


def series_dashboard_url(series_id: str) -> str:
    """The analytics dashboard's view of a series (one sign-in serves both services)."""
    return f"{ctx().settings.public_urls.analytics}/dashboard/series/{series_id}"


def render(template: str, status: int = 200, **data: Any) -> tuple[str, int]:
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
            series_rule=_series_rule,
            series_dashboard_url=series_dashboard_url,
            **data,
        ),
        status,
    )


def int_arg(name: str, default: int, high: int = MAX_PAGE) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise PageError(400, "Bad address", f"“{name}” must be a whole number from 1 to {high}.")
    return int(raw)


def yes_no_arg(name: str) -> bool | None:
    raw = request.args.get(name, "")
    if raw in ("", "any"):
        return None
    if raw not in ("yes", "no"):
        raise PageError(400, "Bad address", f"“{name}” must be yes, no or any.")
    return raw == "yes"


def page_count(total: int, per_page: int) -> int:
    return max(1, (total + per_page - 1) // per_page)


def event_or_404(org_id: str, event_id: str) -> dict[str, Any]:
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
    return render("error.html", error.status, title=error.title, message=error.message, status_code=error.status)


@bp.errorhandler(RuleBroken)
def _rule_broken(error: RuleBroken) -> tuple[str, int]:
    status = 404 if error.code.endswith("_not_found") else 400 if error.code.startswith("invalid") else 409
    return render("error.html", status, title="That didn't work", message=error.message, status_code=status)
