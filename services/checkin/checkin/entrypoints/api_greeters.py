"""Greeters: the organizer names them per event (manage permission); each
greeter's phone page reads the first-timers arriving and marks them welcomed
through their signed link (the link is the credential, no sign-in).
See docs/greeters.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, current_app, g, request

from checkin.bootstrap import context_of
from checkin.domain import greeters as rules
from checkin.service_layer import greeters
from checkin.service_layer.context import Context
from turnout_common.clock import parse_rfc3339, to_rfc3339, to_rfc3339_or_none, utcnow
from turnout_common.types import Doc
from turnout_common.web import ApiError, operation

bp = Blueprint("api_greeters", __name__, url_prefix="/api/v1")

ID = {"type": "string", "minLength": 1, "maxLength": 64}
GREETER_BODY = {
    "type": "object",
    "additionalProperties": False,
    "description": "either a user of your organization (user_id) or a volunteer (name and email)",
    "oneOf": [{"required": ["user_id"]}, {"required": ["name", "email"]}],
    "properties": {
        "user_id": {**ID, "description": "a user of your organization"},
        "name": {"type": "string", "minLength": 1, "maxLength": rules.MAX_NAME, "description": "a volunteer's name"},
        "email": {
            "type": "string",
            "minLength": 3,
            "maxLength": rules.MAX_EMAIL,
            "description": "a volunteer's email (their signed link goes to them)",
        },
    },
}
WELCOME_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["registration_id"],
    "properties": {"registration_id": {**ID, "description": "the first-timer's registration"}},
}
LINK_REFUSED = {404: "not a valid greeter link, or its greeter was removed"}


def ctx() -> Context:
    return context_of(current_app)


def public_greeter(greeter: Doc, with_link: bool = True) -> Doc:
    out: Doc = {
        "id": greeter["_id"],
        "event_id": greeter["event_id"],
        "kind": greeter["kind"],
        "name": greeter["name"],
        "user_id": greeter.get("user_id"),
        "email": greeter.get("email"),
        "created_at": to_rfc3339(greeter["created_at"]),
    }
    if with_link:
        out["link"] = greeters.link_url(ctx(), greeter)
    return out


def public_first_timer(view: Doc) -> Doc:
    return {
        **view,
        "checked_in_at": to_rfc3339(view["checked_in_at"]),
        "welcomed_at": to_rfc3339_or_none(view["welcomed_at"]),
    }


def public_welcome(welcome: Doc) -> Doc:
    return {
        "registration_id": welcome["registration_id"],
        "welcomed": True,
        "welcomed_by": welcome["greeter_name"],
        "welcomed_at": to_rfc3339(welcome["welcomed_at"]),
    }


def _access(token: str) -> greeters.GreeterAccess:
    try:
        return greeters.greeter_for_token(ctx(), token)
    except rules.LinkRefused as refused:
        raise ApiError(404, "greeter_link_refused", refused.message) from refused


def _since() -> datetime | None:
    raw = request.args.get("since", "")
    if not raw:
        return None
    try:
        if len(raw) > 40:
            raise ValueError(raw)
        return parse_rfc3339(raw)
    except (ValueError, OverflowError) as exc:
        raise ApiError(
            400, "invalid_field", "since: an RFC 3339 timestamp with a time zone, e.g. 2026-05-01T18:00:00Z", "since"
        ) from exc


# -- the organizer's side ----------------------------------------------------------------------------


@bp.get("/events/<event_id>/greeters")
@operation(
    "The event's greeters, each with their signed page link",
    auth="manage",
    responses={200: "the greeters", 404: "no such event"},
    tags=["greeters"],
)
def list_greeters(event_id: str) -> Any:
    found = greeters.of_event(ctx(), g.principal.org_id, event_id)
    return {"greeters": [public_greeter(greeter) for greeter in found]}


@bp.post("/events/<event_id>/greeters")
@operation(
    "Name a greeter for the event: a user of your organization, or a volunteer by name and email",
    body=GREETER_BODY,
    auth="manage",
    responses={
        201: "named, with their signed page link",
        200: "already named (the same user or email): the first naming",
        400: "a blank name or a bad email",
        404: "no such event or user",
        409: "too many greeters",
    },
    tags=["greeters"],
)
def name_greeter(event_id: str) -> Any:
    body = g.body
    by = g.principal.subject_id
    if "user_id" in body:
        if "name" in body or "email" in body:
            raise ApiError(400, "invalid_field", "give either user_id or name and email, not both", "user_id")
        greeter, created = greeters.name_user(ctx(), g.principal.org_id, event_id, body["user_id"], by)
    else:
        greeter, created = greeters.name_volunteer(ctx(), g.principal.org_id, event_id, body["name"], body["email"], by)
    return public_greeter(greeter), 201 if created else 200


@bp.delete("/events/<event_id>/greeters/<greeter_id>")
@operation(
    "Remove a greeter: their link stops working at once",
    auth="manage",
    responses={200: "removed", 404: "no such event or greeter"},
    tags=["greeters"],
)
def remove_greeter(event_id: str, greeter_id: str) -> Any:
    removed = greeters.remove(ctx(), g.principal.org_id, event_id, greeter_id)
    return {"removed": public_greeter(removed, with_link=False)}


# -- the greeter's side (the signed link is the credential) ------------------------------------------------


@bp.get("/greet/<token>/arrivals")
@operation(
    "First-timers who checked in (after `since`), newest first, with whether they were welcomed",
    query={"since": "only check-ins received after this RFC 3339 moment (default: the latest 50)"},
    responses={200: "the first-timers", 400: "bad since", **LINK_REFUSED},
    tags=["greeters"],
)
def greet_arrivals(token: str) -> Any:
    access = _access(token)
    since = _since()
    found = greeters.arrivals(ctx(), access, since)
    return {
        "event": {"id": access.event["_id"], "title": access.event["title"], "timezone": access.event["timezone"]},
        "greeter": {"name": access.greeter["name"]},
        "server_time": to_rfc3339(utcnow()),
        "first_timers": [public_first_timer(view) for view in found],
    }


@bp.post("/greet/<token>/welcomes")
@operation(
    "Mark a first-timer welcomed (idempotent: a second tap, or another greeter's, answers the first welcome)",
    body=WELCOME_BODY,
    responses={
        201: "welcomed",
        200: "welcomed before: the first welcome",
        404: "no such registration at this event, or not a valid greeter link",
        409: "not a first-timer who checked in, or the event is over",
    },
    tags=["greeters"],
)
def greet_welcome(token: str) -> Any:
    access = _access(token)
    record, created = greeters.welcome(ctx(), access, g.body["registration_id"])
    return public_welcome(record), 201 if created else 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
