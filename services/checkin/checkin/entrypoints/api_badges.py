"""Badges as QR codes, and the door staff's JSON: live arrivals, quick search, undo a check-in."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from checkin.bootstrap import context_of
from checkin.domain.audit import actor_of
from checkin.domain.model import RuleBroken
from checkin.entrypoints.pages_common import is_same_origin
from checkin.service_layer import badges, events
from checkin.service_layer.context import Context
from turnout_common.clock import parse_rfc3339, to_rfc3339, utcnow
from turnout_common.web import ApiError, operation, validate_body

bp = Blueprint("api_badges", __name__, url_prefix="/api/v1")

UNDO_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"reason": {"type": ["string", "null"], "maxLength": 500}},
}


def ctx() -> Context:
    return context_of(current_app)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_query", f"{name} must be an integer", field=name) from exc
    if not low <= value <= high:
        raise ApiError(400, "invalid_query", f"{name} must be {low}-{high}", field=name)
    return value


def _image(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    # A badge code lets its holder in: keep it out of shared caches.
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


BADGE_RESPONSES = {200: "the QR code of the badge code", 404: "no such registration in your organization"}


@bp.get("/registrations/<registration_id>/badge.svg")
@operation(
    "A registration's badge QR code as SVG (encodes the badge code only)",
    auth="view",
    query={"scale": "pixels per module, 1-40, default 10"},
    responses=BADGE_RESPONSES,
    content="image/svg+xml",
    tags=["badges"],
)
def badge_svg(registration_id: str) -> Response:
    scale = _int_arg("scale", 10, 1, 40)
    registration = badges.get_registration(ctx(), g.principal.org_id, registration_id)
    svg = badges.badge_svg(registration["badge_code"], scale=scale)
    return _image(svg, "image/svg+xml", f"badge-{registration_id}.svg")


@bp.get("/registrations/<registration_id>/badge.png")
@operation(
    "A registration's badge QR code as PNG (encodes the badge code only)",
    auth="view",
    query={"scale": "pixels per module, 1-40, default 10"},
    responses=BADGE_RESPONSES,
    content="image/png",
    tags=["badges"],
)
def badge_png(registration_id: str) -> Response:
    scale = _int_arg("scale", 10, 1, 40)
    registration = badges.get_registration(ctx(), g.principal.org_id, registration_id)
    png = badges.badge_png(registration["badge_code"], scale=scale)
    return _image(png, "image/png", f"badge-{registration_id}.png")


def public_arrival(registration: dict[str, Any], kiosk_names: dict[str, str]) -> dict[str, Any]:
    checkin = registration["checkin"]
    kiosk_id = checkin.get("kiosk_id")
    return {
        "registration_id": registration["_id"],
        "first_name": registration["first_name"],
        "last_name": registration["last_name"],
        "name": f"{registration['first_name']} {registration['last_name']}".strip(),
        "checked_in_at": to_rfc3339(checkin["received_at"]),
        "scanned_at": to_rfc3339(checkin.get("scanned_at") or checkin["received_at"]),
        "method": checkin.get("method"),
        "kiosk_id": kiosk_id,
        "kiosk_name": kiosk_names.get(kiosk_id) if kiosk_id else None,
        "override": bool(checkin.get("override")),
    }


@bp.get("/events/<event_id>/arrivals")
@operation(
    "The event's latest check-ins, newest first; poll with since= for new ones",
    auth="view",
    query={
        "since": "RFC 3339; only check-ins the server received after it",
        "limit": "1-200, default 50",
    },
    responses={200: "arrivals, the event's counts and the server time", 404: "no such event in your organization"},
    tags=["checkins"],
)
def arrivals(event_id: str) -> Any:
    org_id = g.principal.org_id
    events.get_event(ctx(), org_id, event_id)
    limit = _int_arg("limit", 50, 1, 200)
    since = None
    if request.args.get("since"):
        try:
            since = parse_rfc3339(request.args["since"])
        except (ValueError, OverflowError) as exc:
            raise ApiError(400, "invalid_query", f"since: {exc}", field="since") from exc
    server_time = utcnow()
    found = badges.arrivals(ctx(), org_id, event_id, since=since, limit=limit)
    names = badges.kiosk_names(ctx(), event_id, [reg["checkin"].get("kiosk_id") for reg in found])
    counts = events.attendance_counts(ctx(), [event_id])[event_id]
    return {
        "event_id": event_id,
        "server_time": to_rfc3339(server_time),
        "counts": counts,
        "arrivals": [public_arrival(reg, names) for reg in found],
    }


@bp.get("/events/<event_id>/registrations/search")
@operation(
    "Find an event's registrations by name or email (accent-insensitive prefix of any word)",
    auth="view",
    query={"q": "1-100 characters", "limit": "1-50, default 10"},
    responses={200: "matches, by name", 404: "no such event in your organization"},
    tags=["registrations"],
)
def search(event_id: str) -> Any:
    org_id = g.principal.org_id
    events.get_event(ctx(), org_id, event_id)
    limit = _int_arg("limit", 10, 1, 50)
    text = request.args.get("q", "").strip()
    if len(text) > badges.MAX_QUERY_LENGTH:
        raise ApiError(400, "invalid_query", f"q is limited to {badges.MAX_QUERY_LENGTH} characters", field="q")
    if not text:
        return {"results": []}
    found, total = badges.search_registrations(
        ctx(), org_id, event_id, badges.RegistrationFilter(text=text), skip=0, limit=limit
    )
    return {
        "total": total,
        "results": [
            {
                "registration_id": reg["_id"],
                "first_name": reg["first_name"],
                "last_name": reg["last_name"],
                "name": f"{reg['first_name']} {reg['last_name']}".strip(),
                "email": reg["email"],
                "status": reg["status"],
                "checked_in": reg.get("checkin") is not None,
                "checked_in_at": to_rfc3339(reg["checkin"]["received_at"]) if reg.get("checkin") else None,
            }
            for reg in found
        ],
    }


@bp.post("/events/<event_id>/checkins/<registration_id>/undo")
@operation(
    "Undo a check-in: clears it, writes an audit entry (checkin.undone) and publishes "
    "attendee.checkin_undone (followup and analytics count the person as not attended again)",
    auth="checkin",
    responses={
        200: "undone; the person can be checked in again",
        403: "not allowed, or a browser request from another site",
        404: "no such event or registration",
        409: "not checked in",
    },
    tags=["checkins"],
)
def undo_checkin(event_id: str, registration_id: str) -> Any:
    principal = g.principal
    if "Authorization" not in request.headers and not is_same_origin():
        # Signed in by cookie: a browser must be on this site (see pages.py on CSRF).
        raise ApiError(403, "cross_origin", "this request came from another site")
    reason = None
    if request.get_data(cache=True):
        reason = validate_body(UNDO_BODY).get("reason")
    events.get_event(ctx(), principal.org_id, event_id)
    actor = actor_of(principal)
    try:
        registration, audit = badges.undo_checkin(ctx(), principal.org_id, event_id, registration_id, actor, reason)
    except RuleBroken as error:
        status = 404 if error.code == "registration_not_found" else 409
        raise ApiError(status, error.code, error.message, error.field) from error
    name = f"{registration['first_name']} {registration['last_name']}".strip()
    return {
        "status": "undone",
        "registration_id": registration_id,
        "name": name,
        "undone_at": to_rfc3339(audit["at"]),
        "audit_id": audit["_id"],
        "message": f"{name}'s check-in was undone; they can check in again",
    }


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
