"""Volunteer hours for coordinators (owners and organizers): an event's shifts, the
organization's pending off-site hours, and bulk review (approve, adjust with a
reason, reject), every decision audited."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, g

from checkin.bootstrap import context_of
from checkin.domain import hours as rules
from checkin.domain.audit import actor_of
from checkin.domain.model import RuleBroken
from checkin.entrypoints.api_audit import api_error
from checkin.service_layer import hours
from checkin.service_layer.context import Context
from turnout_common.clock import to_rfc3339
from turnout_common.web import operation

bp = Blueprint("api_hours", __name__, url_prefix="/api/v1")

_ID = {"type": "string", "minLength": 1, "maxLength": 64}
REVIEW_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": rules.MAX_BATCH,
            "description": "one decision per shift (registration_id) or off-site entry (entry_id)",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["action"],
                "properties": {
                    "registration_id": _ID,
                    "entry_id": _ID,
                    "action": {"type": "string", "enum": [action.value for action in rules.ReviewAction]},
                    "hours": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": rules.MAX_HOURS,
                        "description": "adjust only: the hours that count",
                    },
                    "reason": {
                        "type": "string",
                        "maxLength": rules.MAX_REASON,
                        "description": "required to adjust; optional otherwise",
                    },
                },
            },
        }
    },
}
REVIEW_RESPONSES = {
    200: "the decided shifts and entries",
    400: "a bad item (the field names it: items[i].hours, items[i].reason...)",
    403: "owners and organizers only",
    404: "no such event, registration or entry in your organization",
    409: "a registration without a check-out (no hours to review)",
}


def ctx() -> Context:
    return context_of(current_app)


def plain(value: Any) -> Any:
    """A row as JSON: moments as RFC 3339, days as YYYY-MM-DD."""
    if isinstance(value, datetime):
        return to_rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@bp.get("/events/<event_id>/hours")
@operation(
    "An event's volunteer shifts for review: everyone checked in, with the hours the door recorded, "
    "the review state, and the check-outs closed at the event's end flagged (needs_review) and listed first",
    auth="manage",
    responses={200: "the shifts", 403: "owners and organizers only", 404: "no such event in your organization"},
    tags=["hours"],
)
def event_hours(event_id: str) -> Any:
    try:
        event, rows = hours.event_hours(ctx(), g.principal.org_id, event_id)
    except RuleBroken as error:
        raise api_error(error) from error
    return {
        "event_id": event["_id"],
        "shifts": plain(rows),
        "needs_review": sum(1 for row in rows if row["needs_review"]),
        "pending": sum(1 for row in rows if row["state"] == rules.ReviewState.PENDING),
    }


@bp.post("/events/<event_id>/hours/review")
@operation(
    "Review volunteer hours in bulk: approve, adjust (hours and a reason) or reject each shift of the event "
    "(registration_id) or any off-site entry of the organization (entry_id); all or nothing, each decision "
    "audited (hours.reviewed)",
    body=REVIEW_BODY,
    auth="manage",
    responses=REVIEW_RESPONSES,
    tags=["hours"],
)
def review_event_hours(event_id: str) -> Any:
    principal = g.principal
    try:
        decided = hours.review(ctx(), principal.org_id, actor_of(principal), g.body["items"], event_id=event_id)
    except RuleBroken as error:
        raise api_error(error) from error
    return {"decided": plain(decided)}


@bp.get("/hours/pending")
@operation(
    "Off-site hours volunteers logged and no one has decided yet, oldest first (up to 200)",
    auth="manage",
    responses={200: "the pending entries", 403: "owners and organizers only"},
    tags=["hours"],
)
def pending_hours() -> Any:
    return {"entries": plain(hours.pending_entries(ctx(), g.principal.org_id))}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
