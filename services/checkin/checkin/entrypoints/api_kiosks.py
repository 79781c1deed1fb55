"""Kiosk pairing and fleet (organizer side) and the kiosk's own API (device side).

A kiosk token can do exactly this, for its one event: check people in and
out, search names (first name and last initial), register walk-ins, read the
roster for offline use, and send heartbeats. See docs/kiosk-api.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from flask import Blueprint, Flask, current_app, g, request

from checkin.bootstrap import context_of
from checkin.domain.audit import actor_of
from checkin.domain.model import RuleBroken
from checkin.entrypoints.abuse import KIOSK_ROSTER, KIOSK_SEARCH
from checkin.entrypoints.api import (
    CHECKIN_BODY,
    REGISTRATION_BODY,
    TIMESTAMP,
    _timestamp,
    checkin_response,
    public_event,
)
from checkin.service_layer import checkins, kiosks, people, registrations
from checkin.service_layer.context import Context
from turnout_common.auth import Principal
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.limits import rate_limited
from turnout_common.revocations import refusal, role_changed, session_ended
from turnout_common.web import ApiError, operation

bp = Blueprint("api_kiosks", __name__, url_prefix="/api/v1")

KIOSK_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "staff_pin"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 80},
        "staff_pin": {"type": "string", "pattern": "^[0-9]{4,8}$", "description": "a staff PIN of 4 to 8 digits"},
    },
}
PAIR_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code"],
    "properties": {"code": {"type": "string", "minLength": 4, "maxLength": 20}},
}
CLIENT_KEY = CHECKIN_BODY["properties"]["client_key"]  # type: ignore[index]
KIOSK_CHECKIN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["client_key"],
    "oneOf": [{"required": ["badge_code"]}, {"required": ["registration_id"]}],
    "properties": {
        "client_key": CLIENT_KEY,
        "badge_code": {"type": "string", "minLength": 1, "maxLength": 200},
        "registration_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "method": {"enum": ["qr", "search"]},
        "scanned_at": TIMESTAMP,
    },
}
GROUP_OF = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "check in together with this registration of the same party (not a waitlisted member)",
}
KIOSK_GROUP_CHECKIN_BODY = {
    **KIOSK_CHECKIN_BODY,
    "properties": {**KIOSK_CHECKIN_BODY["properties"], "group_of": GROUP_OF},  # type: ignore[dict-item]
}
WALK_IN_BODY = {
    **REGISTRATION_BODY,
    "required": ["client_key", "first_name", "email", "consent_email"],
    "properties": {**REGISTRATION_BODY["properties"], "client_key": CLIENT_KEY, "scanned_at": TIMESTAMP},  # type: ignore[dict-item]
}
KIOSK_EMAIL_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {
        "email": {"type": "string", "minLength": 1, "maxLength": 254, "description": "the address the person typed"},
        "consent_email": {
            "type": "boolean",
            "description": "the consent box (unticked unless the person ticked it); default false",
        },
    },
}
HEARTBEAT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"queue_length": {"type": "integer", "minimum": 0, "maximum": 1_000_000}},
}


def ctx() -> Context:
    return context_of(current_app)


def kiosk() -> Principal:
    principal: Principal = g.principal
    return principal


# -- organizer side --------------------------------------------------------------


@bp.post("/events/<event_id>/kiosks")
@operation(
    "Create a kiosk for an event; returns a one-time pairing code",
    body=KIOSK_BODY,
    auth="manage",
    responses={201: "created, with its pairing code", 404: "no such event"},
    tags=["kiosks"],
)
def create_kiosk(event_id: str) -> Any:
    created = kiosks.create_kiosk(ctx(), g.principal.org_id, event_id, g.body["name"], g.body["staff_pin"])
    return kiosks.public_kiosk(created), 201


@bp.get("/events/<event_id>/kiosks")
@operation("The event's kiosks: status, last seen, check-ins today, offline queue", auth="view", tags=["kiosks"])
def list_kiosks(event_id: str) -> Any:
    if ctx().events.get(g.principal.org_id, event_id) is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    found = kiosks.list_kiosks(ctx(), g.principal.org_id, event_id)
    return {"kiosks": [kiosks.public_kiosk(k) for k in found]}


@bp.post("/kiosks/<kiosk_id>/revoke")
@operation(
    "Revoke a kiosk: its token stops working at once (audited as kiosk.revoked)",
    auth="manage",
    responses={200: "revoked", 404: "no such kiosk"},
    tags=["kiosks"],
)
def revoke_kiosk(kiosk_id: str) -> Any:
    return kiosks.public_kiosk(kiosks.revoke(ctx(), g.principal.org_id, kiosk_id, actor_of(g.principal)))


@bp.post("/kiosks/<kiosk_id>/pairing-code")
@operation(
    "A fresh one-time pairing code (re-pairs the kiosk to a new tablet)",
    auth="manage",
    responses={200: "new code", 404: "no such kiosk"},
    tags=["kiosks"],
)
def new_pairing_code(kiosk_id: str) -> Any:
    return kiosks.public_kiosk(kiosks.new_code(ctx(), g.principal.org_id, kiosk_id))


# -- kiosk side ------------------------------------------------------------------


@bp.post("/kiosk/pair")
@operation(
    "Pair a tablet with a one-time code; returns its device token",
    body=PAIR_BODY,
    responses={200: "paired", 404: "wrong or used code", 410: "expired code"},
    tags=["kiosk"],
)
def pair() -> Any:
    token, paired, event = kiosks.pair(ctx(), g.body["code"])
    return {
        "token": token,
        "kiosk": {"id": paired["_id"], "name": paired["name"]},
        "event": public_event(event),
        "staff_pin_sha256": paired["staff_pin_sha256"],
    }


@bp.get("/kiosk/roster")
@operation(
    "The kiosk event's roster for offline badge checks and name search",
    auth="kiosk",
    responses={200: "OK", 429: "too many roster downloads from this kiosk: see Retry-After"},
    tags=["kiosk"],
)
@rate_limited(KIOSK_ROSTER)
def roster() -> Any:
    principal = kiosk()
    event = ctx().events.get(principal.org_id, principal.event_id or "")
    if event is None:
        raise RuleBroken("event_not_found", "the kiosk's event no longer exists")
    return {
        "event": public_event(event),
        "generated_at": to_rfc3339(utcnow()),
        "people": kiosks.roster(ctx(), principal.org_id, event["_id"]),
    }


@bp.get("/kiosk/search")
@operation(
    "Find a name (typo- and accent-tolerant; first name and last initial only)",
    auth="kiosk",
    query={"q": "what the attendee typed (1-80 characters)"},
    responses={200: "OK", 429: "too many searches from this kiosk: see Retry-After"},
    tags=["kiosk"],
)
@rate_limited(KIOSK_SEARCH)
def search() -> Any:
    query = request.args.get("q", "")
    if not 1 <= len(query) <= 80:
        raise ApiError(400, "invalid_query", "q must be 1-80 characters", field="q")
    principal = kiosk()
    return {"results": kiosks.search(ctx(), principal.org_id, principal.event_id or "", query)}


def _scanned_at(body: dict[str, Any]) -> datetime | None:
    return _timestamp(body, "scanned_at") if "scanned_at" in body else None


class Scan(TypedDict):
    """What a kiosk's check-in and check-out have in common: its event, the
    client key, which badge or registration, and when it was scanned."""

    org_id: str
    event_id: str
    client_key: str
    method: str
    badge_code: str | None
    registration_id: str | None
    kiosk_id: str
    scanned_at: datetime | None


def _scan(body: dict[str, Any], principal: Principal) -> Scan:
    return Scan(
        org_id=principal.org_id,
        event_id=principal.event_id or "",
        client_key=body["client_key"],
        method=body.get("method", "qr" if "badge_code" in body else "search"),
        badge_code=body.get("badge_code"),
        registration_id=body.get("registration_id"),
        kiosk_id=principal.subject_id,
        scanned_at=_scanned_at(body),
    )


@bp.post("/kiosk/checkins")
@operation(
    "Check someone in at this kiosk (idempotent by client_key); the answer lists the others of "
    "their group (group) and carries their name label (label) when the event prints labels",
    body=KIOSK_GROUP_CHECKIN_BODY,
    auth="kiosk",
    responses={
        201: "checked in",
        200: "already checked in, or a replay",
        404: "unknown badge",
        409: "wrong event, cancelled, outside the check-in window, or not of that group / waitlisted (group_of)",
    },
    tags=["kiosk"],
)
def kiosk_checkin() -> Any:
    body, principal = g.body, kiosk()
    command = checkins.CheckinCommand(**_scan(body, principal), group_of=body.get("group_of"))
    return with_door_extras(principal.org_id, command.event_id, checkins.record_checkin(ctx(), command))


def with_door_extras(org_id: str, event_id: str, answer: checkins.CheckinAnswer) -> tuple[dict[str, Any], int]:
    """The door's answer plus the person's group and name label (``checkins.door_extras``)."""
    body, status = checkin_response(answer)
    return {**body, **checkins.door_extras(ctx(), org_id, event_id, body, answer.registration)}, status


@bp.post("/kiosk/checkouts")
@operation(
    "Check someone out (volunteer hours)",
    body=KIOSK_CHECKIN_BODY,
    auth="kiosk",
    responses={200: "checked out (or already)", 409: "not checked in"},
    tags=["kiosk"],
)
def kiosk_checkout() -> Any:
    body = g.body
    answer = checkins.record_checkout(ctx(), checkins.CheckoutCommand(**_scan(body, kiosk())))
    return checkin_response(answer)


@bp.post("/kiosk/walk-ins")
@operation(
    "Register a walk-in and check them in",
    body=WALK_IN_BODY,
    auth="kiosk",
    responses={201: "registered and checked in", 200: "a replay, or already in"},
    tags=["kiosk"],
)
def walk_in() -> Any:
    body, principal = g.body, kiosk()
    event_id = principal.event_id or ""
    registration, _ = registrations.register(
        ctx(),
        principal.org_id,
        event_id,
        first_name=body["first_name"],
        last_name=body.get("last_name", ""),
        email=body["email"],
        consent_email=body["consent_email"],
        offers=body.get("offers"),
        seeks=body.get("seeks"),
        source="walk-in",
    )
    answer = checkins.record_checkin(
        ctx(),
        checkins.CheckinCommand(
            org_id=principal.org_id,
            event_id=event_id,
            client_key=body["client_key"],
            method="walk-in",
            registration_id=registration["_id"],
            kiosk_id=principal.subject_id,
            scanned_at=_scanned_at(body),
        ),
    )
    return with_door_extras(principal.org_id, event_id, answer)


@bp.post("/kiosk/registrations/<registration_id>/email")
@operation(
    "A name-only person who just checked in here gives their email (and, if they tick it, consent)",
    body=KIOSK_EMAIL_BODY,
    auth="kiosk",
    responses={
        200: "saved: they are a normal contact now (person.updated published)",
        400: "not an email address",
        404: "no such registration at this kiosk's event",
        409: "not checked in, already has an email (email_already_set), or the address is someone else's (email_taken)",
    },
    tags=["kiosk"],
)
def give_email(registration_id: str) -> Any:
    body, principal = g.body, kiosk()
    registration = people.give_email_at_kiosk(
        ctx(),
        principal.org_id,
        principal.event_id or "",
        registration_id,
        body["email"],
        bool(body.get("consent_email", False)),
        actor_of(principal),
    )
    return {
        "registration_id": registration["_id"],
        "has_email": True,
        "consent_email": bool(registration["consent_email"]),
    }


@bp.post("/kiosk/heartbeat")
@operation("The kiosk is alive; reports its offline queue length", body=HEARTBEAT_BODY, auth="kiosk", tags=["kiosk"])
def heartbeat() -> Any:
    kiosks.heartbeat(ctx(), kiosk().subject_id, int(g.body.get("queue_length", 0)))
    return {"ok": True, "server_time": to_rfc3339(utcnow())}


def check_kiosk_session(principal: Principal) -> None:
    """Revocable tokens: a kiosk's pairing must still be current, an API token
    not revoked, a user not deactivated, a session not signed out of nor begun
    before its user's role changed."""
    context = context_of(current_app)
    if principal.kind == "kiosk":
        current = context.kiosk_sessions.current_session(principal.subject_id)
        if current is None or current != principal.session_id:
            raise ApiError(
                401, "kiosk_revoked", "this kiosk was revoked or re-paired; ask the organizer to pair it again"
            )
    elif principal.kind == "api":
        if not context.access.api_token_valid(principal.session_id or ""):
            raise refusal(principal)
    elif not context.access.user_active(principal):
        raise refusal(principal)
    elif principal.session_id and not context.access.session_live(principal.session_id):
        raise session_ended()
    elif not context.access.role_current(principal):
        raise role_changed()


def init_app(app: Flask) -> None:
    app.extensions["turnout"].principal_check = check_kiosk_session
    app.register_blueprint(bp)
