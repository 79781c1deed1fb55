"""Checkin's JSON API (``/api/v1``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

import checkin
from checkin.bootstrap import context_of
from checkin.domain.admission import CheckinOutcome
from checkin.domain.model import CheckinMethod, EventKind, RuleBroken, check_timezone
from checkin.domain.series import MAX_OCCURRENCES, recurrence_from
from checkin.entrypoints.abuse import SIGN_IN_BY_ACCOUNT, SIGN_IN_BY_ADDRESS
from checkin.service_layer import checkins, events, organizations, registrations, series
from checkin.service_layer.context import Context
from turnout_common.auth import SESSION_COOKIE, SESSION_MAX_AGE
from turnout_common.clock import parse_rfc3339, to_rfc3339
from turnout_common.limits import rate_limited
from turnout_common.metrics import MongoFiguresCollector
from turnout_common.web import ApiError, clip, init_service_web, operation, page_args

bp = Blueprint("api", __name__, url_prefix="/api/v1")

STATUS_BY_CODE = {
    "user_not_found": 404,
    "token_not_found": 404,
    "forbidden_role": 403,
    "invalid_field": 400,
    "pairing_code_expired": 410,
    "invalid_pairing_code": 404,
    "kiosk_not_found": 404,
    "event_not_found": 404,
    "series_not_found": 404,
    "too_many_occurrences": 400,
    "unknown_badge": 404,
    "registration_not_found": 404,
    "invalid_credentials": 401,
    "invalid_timezone": 400,
    "invalid_schedule": 400,
    "invalid_timestamp": 400,
    "invalid_role": 400,
    "weak_password": 400,
    "missing_field": 400,
    "greeter_not_found": 404,
}

TIMESTAMP = {
    "type": "string",
    "maxLength": 40,
    "description": "an RFC 3339 timestamp with a time zone, e.g. 2026-05-01T18:00:00Z",
}
TAGS = {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 60}}

LOGIN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email", "password"],
    "properties": {
        "email": {"type": "string", "minLength": 3, "maxLength": 254},
        "password": {"type": "string", "minLength": 1, "maxLength": 256},
    },
}

EVENT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "kind", "starts_at", "ends_at", "timezone"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "kind": {"enum": [kind.value for kind in EventKind]},
        "starts_at": TIMESTAMP,
        "ends_at": TIMESTAMP,
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
        "venue": {"type": ["string", "null"], "maxLength": 500},
        "capacity": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000},
        "description": {"type": ["string", "null"], "maxLength": 5000},
        "checkin_opens_minutes_before": {"type": "integer", "minimum": 0, "maximum": 1440},
        "checkin_closes_minutes_after": {"type": "integer", "minimum": 0, "maximum": 1440},
        "name_labels": {"type": "boolean", "description": "print a name label at check-in (default false)"},
    },
}

REGISTRATION_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["first_name", "email", "consent_email"],
    "properties": {
        "first_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "last_name": {"type": "string", "maxLength": 100},
        "email": {
            "type": "string",
            "format": "email",
            "maxLength": 254,
            "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            "description": "a valid email address",
        },
        "consent_email": {"type": "boolean", "description": "consent to follow-up email, never assumed"},
        "offers": TAGS,
        "seeks": TAGS,
        "party": {
            "type": ["string", "null"],
            "maxLength": 100,
            "description": "a group/order key: registrations of the event with the same party came together",
        },
    },
}

CHECKIN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["client_key"],
    "oneOf": [{"required": ["badge_code"]}, {"required": ["registration_id"]}],
    "properties": {
        "client_key": {
            "type": "string",
            "minLength": 8,
            "maxLength": 100,
            "pattern": "^[A-Za-z0-9_.:-]+$",
            "description": "a client-generated idempotency key (8-100 of A-Z a-z 0-9 _ . : -)",
        },
        "badge_code": {"type": "string", "minLength": 1, "maxLength": 200},
        "registration_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "method": {"enum": [method.value for method in CheckinMethod]},
        "scanned_at": TIMESTAMP,
        "kiosk_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64},
        "override": {"type": "boolean"},
        "group_of": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "check in together with this registration of the same party (not a waitlisted member)",
        },
    },
}


def ctx() -> Context:
    return context_of(current_app)


# Years accepted in timestamps: schedule arithmetic (a day either way) stays in
# range, and every timestamp renders with the four-digit year the contracts need.
MIN_YEAR, MAX_YEAR = 1970, 9998
MAX_OFFSET = 1_000_000_000


def _timestamp(body: dict[str, Any], name: str) -> datetime:
    try:
        value = parse_rfc3339(body[name])
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, "invalid_timestamp", f"{name}: {exc}", field=name) from exc
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ApiError(
            400, "invalid_timestamp", f"{name}: the year must be between {MIN_YEAR} and {MAX_YEAR}", field=name
        )
    return value


def _timezone(name: str) -> str:
    try:
        check_timezone(name)
    except OSError as exc:  # e.g. "America": a directory of zones, not a zone
        raise ApiError(400, "invalid_timezone", f"{clip(name)!r} is not an IANA time zone", field="timezone") from exc
    return name


def _body() -> dict[str, Any]:
    """The validated body (``g.body``), refusing text that cannot be stored."""
    body: dict[str, Any] = g.body  # validated, lone surrogates refused (turnout_common.web)
    return body


def public_event(event: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
    counts = counts or {}
    return {
        "id": event["_id"],
        "title": event["title"],
        "kind": event["kind"],
        "starts_at": to_rfc3339(event["starts_at"]),
        "ends_at": to_rfc3339(event["ends_at"]),
        "timezone": event["timezone"],
        "venue": event.get("venue"),
        "capacity": event.get("capacity"),
        "description": event.get("description"),
        "name_labels": bool(event.get("name_labels", False)),
        "series_id": event.get("series_id"),
        "occurrence": event.get("occurrence"),
        "status": event["status"],
        "checkin_opens_at": to_rfc3339(event["checkin_opens_at"]),
        "checkin_closes_at": to_rfc3339(event["checkin_closes_at"]),
        "registered_count": counts.get("registered", 0),
        "waitlisted_count": counts.get("waitlisted", 0),
        "checked_in_count": counts.get("checked_in", 0),
    }


def public_registration(reg: dict[str, Any]) -> dict[str, Any]:
    checkin = reg.get("checkin")
    return {
        "id": reg["_id"],
        "event_id": reg["event_id"],
        "person_id": reg["person_id"],
        "first_name": reg["first_name"],
        "last_name": reg["last_name"],
        "status": reg["status"],
        "badge_code": reg["badge_code"],
        "consent_email": reg["consent_email"],
        "offers": reg["offers"],
        "seeks": reg["seeks"],
        "source": reg["source"],
        "party": reg.get("party"),
        "registered_at": to_rfc3339(reg["registered_at"]),
        "checked_in_at": to_rfc3339(checkin["received_at"]) if checkin else None,
    }


def _page_args() -> tuple[int, int]:
    return page_args(default_limit=100, max_limit=1000, max_offset=MAX_OFFSET)


@bp.post("/auth/login")
@operation(
    "Sign in; returns a session token valid on all three services",
    body=LOGIN_BODY,
    responses={200: "signed in", 401: "wrong email or password", 429: "too many attempts: see Retry-After"},
    tags=["auth"],
)
@rate_limited(SIGN_IN_BY_ADDRESS, SIGN_IN_BY_ACCOUNT)
def login() -> Response:
    body = _body()
    token, user = organizations.sign_in(ctx(), body["email"], body["password"])
    response = jsonify({"token": token, "user": user, "expires_in": SESSION_MAX_AGE})
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_MAX_AGE, httponly=True, samesite="Lax", secure=request.is_secure
    )
    return response


@bp.get("/me")
@operation("Who am I", auth="view", tags=["auth"])
def me() -> Any:
    principal = g.principal
    return {"id": principal.subject_id, "name": principal.name, "role": principal.role, "org_id": principal.org_id}


@bp.post("/events")
@operation("Schedule an event", body=EVENT_BODY, auth="manage", responses={201: "scheduled"}, tags=["events"])
def create_event() -> Any:
    body = _body()
    if not body["title"].strip():
        raise ApiError(400, "invalid_field", "title: must not be blank", field="title")
    event = events.schedule_event(
        ctx(),
        g.principal.org_id,
        title=body["title"],
        kind=body["kind"],
        starts_at=_timestamp(body, "starts_at"),
        ends_at=_timestamp(body, "ends_at"),
        timezone=_timezone(body["timezone"]),
        venue=body.get("venue"),
        capacity=body.get("capacity"),
        description=body.get("description"),
        checkin_opens_minutes_before=body.get("checkin_opens_minutes_before", 60),
        checkin_closes_minutes_after=body.get("checkin_closes_minutes_after", 60),
        name_labels=body.get("name_labels", False),
    )
    return public_event(event), 201


@bp.get("/events")
@operation(
    "List your organization's events, newest first",
    auth="view",
    query={"limit": "1-1000, default 100", "offset": "default 0"},
    tags=["events"],
)
def list_events() -> Any:
    limit, skip = _page_args()
    page = events.list_events(ctx(), g.principal.org_id, skip, limit)
    counts = events.attendance_counts(ctx(), [event["_id"] for event in page])
    return {"events": [public_event(event, counts[event["_id"]]) for event in page]}


@bp.get("/events/<event_id>")
@operation("One event", auth="view", responses={200: "the event", 404: "not in your organization"}, tags=["events"])
def get_event(event_id: str) -> Any:
    event = events.get_event(ctx(), g.principal.org_id, event_id)
    return public_event(event, events.attendance_counts(ctx(), [event_id])[event_id])


@bp.post("/events/<event_id>/end")
@operation(
    "End an event now (publishes event.ended once)",
    auth="manage",
    responses={200: "ended", 404: "not in your organization", 409: "cancelled"},
    tags=["events"],
)
def end_event(event_id: str) -> Any:
    event = events.end_event(ctx(), g.principal.org_id, event_id, "organizer")
    return public_event(event, events.attendance_counts(ctx(), [event_id])[event_id])


@bp.post("/events/<event_id>/registrations")
@operation(
    "Register a person for an event",
    body=REGISTRATION_BODY,
    auth="manage",
    responses={201: "registered (or waitlisted)", 200: "already registered", 404: "no such event", 409: "event closed"},
    tags=["registrations"],
)
def create_registration(event_id: str) -> Any:
    body = _body()
    registration, created = registrations.register(
        ctx(),
        g.principal.org_id,
        event_id,
        first_name=body["first_name"],
        last_name=body.get("last_name", ""),
        email=body["email"],
        consent_email=body["consent_email"],
        offers=body.get("offers"),
        seeks=body.get("seeks"),
        source="api",
        party=body.get("party"),
    )
    return public_registration(registration), 201 if created else 200


@bp.get("/events/<event_id>/registrations")
@operation(
    "List an event's registrations",
    auth="view",
    query={"limit": "1-1000, default 100", "offset": "default 0"},
    tags=["registrations"],
)
def list_registrations(event_id: str) -> Any:
    events.get_event(ctx(), g.principal.org_id, event_id)
    limit, skip = _page_args()
    found = registrations.list_registrations(ctx(), g.principal.org_id, event_id, limit, skip)
    return {"registrations": [public_registration(reg) for reg in found]}


@bp.post("/events/<event_id>/checkins")
@operation(
    "Check a person in by badge code or registration id (idempotent by client_key)",
    body=CHECKIN_BODY,
    auth="checkin",
    responses={
        201: "checked in",
        200: "already checked in (nothing new recorded), or a replay of an earlier answer",
        404: "unknown badge or event",
        409: "wrong event, cancelled registration, outside the check-in window, "
        "or not of that group / waitlisted (group_of)",
    },
    tags=["checkins"],
)
def create_checkin(event_id: str) -> Any:
    body = _body()
    principal = g.principal
    override = bool(body.get("override", False))
    if override and not principal.can("checkin"):
        raise ApiError(403, "forbidden", "only door staff and organizers may override the check-in window")
    answer = checkins.record_checkin(
        ctx(),
        checkins.CheckinCommand(
            org_id=principal.org_id,
            event_id=event_id,
            client_key=body["client_key"],
            method=body.get("method", "qr" if "badge_code" in body else "staff"),
            badge_code=body.get("badge_code"),
            registration_id=body.get("registration_id"),
            kiosk_id=body.get("kiosk_id"),
            scanned_at=_timestamp(body, "scanned_at") if "scanned_at" in body else None,
            override=override,
            actor_id=principal.subject_id,
            group_of=body.get("group_of"),
        ),
    )
    answer_body, status = checkin_response(answer)
    extras = checkins.door_extras(ctx(), principal.org_id, event_id, answer_body, answer.registration)
    return {**answer_body, **extras}, status


@bp.get("/events/<event_id>/registrations/<registration_id>/group")
@operation(
    "The others of a registration's group (same party at the event, cancelled ones left out): "
    "first name and last initial, checked in or not, waitlisted or not",
    auth="view",
    responses={200: "OK (members is empty without a party)", 404: "no such registration at this event"},
    tags=["checkins"],
)
def registration_group(event_id: str, registration_id: str) -> Any:
    return {"members": checkins.group_of(ctx(), g.principal.org_id, event_id, registration_id)}


# What each door outcome answers over HTTP: only a new check-in creates something.
STATUS_BY_OUTCOME = {
    CheckinOutcome.CHECKED_IN: 201,
    CheckinOutcome.ALREADY_CHECKED_IN: 200,
    CheckinOutcome.CHECKED_OUT: 200,
    CheckinOutcome.ALREADY_CHECKED_OUT: 200,
}


def checkin_response(answer: checkins.CheckinAnswer) -> tuple[dict[str, Any], int]:
    return answer.body, STATUS_BY_OUTCOME[answer.outcome]


EVENT_PATCH_BODY = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        name: schema
        for name, schema in EVENT_BODY["properties"].items()  # type: ignore[attr-defined]
    },
}
CANCEL_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"reason": {"type": ["string", "null"], "maxLength": 1000}},
}


@bp.patch("/events/<event_id>")
@operation(
    "Edit a scheduled event (publishes event.updated); ?scope=following also edits the later "
    "occurrences of its series still to come",
    body=EVENT_PATCH_BODY,
    auth="manage",
    responses={200: "updated", 404: "not in your organization", 409: "ended or cancelled"},
    tags=["events"],
)
def update_event(event_id: str) -> Any:
    body = dict(_body())
    if "title" in body and not str(body["title"]).strip():
        raise ApiError(400, "invalid_field", "title: must not be blank", field="title")
    for name in ("starts_at", "ends_at"):
        if name in body:
            body[name] = _timestamp(body, name)
    if "timezone" in body:
        _timezone(body["timezone"])
    edited = series.update_occurrences(ctx(), g.principal.org_id, event_id, body, _scope())
    event = edited[0]
    answer = public_event(event, events.attendance_counts(ctx(), [event_id])[event_id])
    return {**answer, "also_updated": [doc["_id"] for doc in edited[1:]]}


@bp.post("/events/<event_id>/cancel")
@operation(
    "Cancel an event (publishes event.cancelled; the door closes); ?scope=following also cancels "
    "the later occurrences of its series still to come",
    body=CANCEL_BODY,
    auth="manage",
    responses={200: "cancelled", 404: "not in your organization", 409: "already ended"},
    tags=["events"],
)
def cancel_event(event_id: str) -> Any:
    done = series.cancel_occurrences(ctx(), g.principal.org_id, event_id, _body().get("reason"), _scope())
    event = done[0] if done else events.get_event(ctx(), g.principal.org_id, event_id)
    answer = public_event(event, events.attendance_counts(ctx(), [event_id])[event_id])
    return {**answer, "also_cancelled": [doc["_id"] for doc in done if doc["_id"] != event_id]}


def _scope() -> str:
    scope = request.args.get("scope", "this")
    if scope not in ("this", "following"):
        raise ApiError(400, "invalid_field", "scope: this or following", field="scope")
    return scope


SERIES_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": [*EVENT_BODY["required"], "recurrence"],  # type: ignore[misc]
    "properties": {
        **EVENT_BODY["properties"],  # type: ignore[dict-item]
        "recurrence": {
            "type": "object",
            "additionalProperties": False,
            "required": ["frequency"],
            "properties": {
                "frequency": {"enum": ["weekly", "monthly"]},
                "interval": {"type": "integer", "minimum": 1, "maximum": 12},
                "count": {"type": "integer", "minimum": 1, "description": f"at most {MAX_OCCURRENCES}"},
                "until": {"type": "string", "format": "date", "description": "last local date, e.g. 2026-12-31"},
                "monthly_by": {"enum": ["day_of_month", "weekday"]},
            },
        },
    },
}


@bp.post("/series")
@operation(
    "Schedule a recurring series in one step: every occurrence is an event of its own "
    f"(weekly or monthly, until a date or a count, at most {MAX_OCCURRENCES})",
    body=SERIES_BODY,
    auth="manage",
    responses={201: "scheduled, all occurrences", 400: "bad recurrence or too many occurrences"},
    tags=["events"],
)
def create_series() -> Any:
    body = _body()
    if not body["title"].strip():
        raise ApiError(400, "invalid_field", "title: must not be blank", field="title")
    rule = recurrence_from(body["recurrence"])
    created = series.schedule_series(
        ctx(),
        g.principal.org_id,
        rule,
        title=body["title"],
        kind=body["kind"],
        starts_at=_timestamp(body, "starts_at"),
        ends_at=_timestamp(body, "ends_at"),
        timezone=_timezone(body["timezone"]),
        venue=body.get("venue"),
        capacity=body.get("capacity"),
        description=body.get("description"),
        checkin_opens_minutes_before=body.get("checkin_opens_minutes_before", 60),
        checkin_closes_minutes_after=body.get("checkin_closes_minutes_after", 60),
        name_labels=body.get("name_labels", False),
    )
    return {"series_id": created[0]["series_id"], "occurrences": [public_event(doc) for doc in created]}, 201


@bp.get("/series/<series_id>")
@operation(
    "A series' occurrences, first to last, with their counts",
    auth="view",
    responses={200: "the occurrences", 404: "no such series in your organization"},
    tags=["events"],
)
def get_series(series_id: str) -> Any:
    found = series.occurrences(ctx(), g.principal.org_id, series_id)
    counts = events.attendance_counts(ctx(), [doc["_id"] for doc in found])
    return {
        "series_id": series_id,
        "recurrence": found[0].get("recurrence"),
        "occurrences": [public_event(doc, counts[doc["_id"]]) for doc in found],
    }


@bp.post("/registrations/<registration_id>/cancel")
@operation(
    "Cancel a registration; the first on the waitlist takes the place",
    body=CANCEL_BODY,
    auth="manage",
    responses={200: "cancelled", 404: "not in your organization", 409: "already checked in"},
    tags=["registrations"],
)
def cancel_registration(registration_id: str) -> Any:
    cancelled, promoted = registrations.cancel_registration(
        ctx(), g.principal.org_id, registration_id, _body().get("reason")
    )
    return {
        "registration": public_registration(cancelled),
        "promoted_from_waitlist": public_registration(promoted) if promoted else None,
    }


def _rule_broken(error: RuleBroken) -> Any:
    status = STATUS_BY_CODE.get(error.code, 409)
    return ApiError(status, error.code, error.message, error.field).to_response()


def init_app(app: Flask) -> None:
    context = context_of(app)
    settings = context.settings
    init_service_web(
        app,
        settings,
        version=checkin.__version__,
        signer=context.signer,
        client=context.client,
        metrics_collector=MongoFiguresCollector("checkin", context.db),
        description="Organizations, events, registrations, badges, kiosks and check-ins.",
    )
    app.register_error_handler(RuleBroken, _rule_broken)
    app.register_blueprint(bp)
