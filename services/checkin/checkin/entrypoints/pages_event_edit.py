"""Editing and cancelling an event from its page. An occurrence of a series offers the API's
scopes: "this occurrence" or "this and following" (the later ones still to come), through the
same use cases as ``PATCH /api/v1/events/<id>`` and ``POST /api/v1/events/<id>/cancel``."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from checkin.domain.model import RuleBroken, check_timezone
from checkin.domain.series import SCOPES
from checkin.entrypoints.pages_common import HTML, bp, check_same_origin, ctx, event_or_404, require
from checkin.entrypoints.pages_event import _event_page, edit_values
from checkin.entrypoints.pages_events import _local_datetime
from checkin.service_layer import series
from turnout_common.pages import PageError
from turnout_common.web import operation

EDIT_RESPONSES = {
    303: "saved: back to the event, saying how many events changed",
    400: "the event page again, with what to fix in the form",
    403: "not allowed",
    404: "no such event in your organization",
    409: "ended or cancelled: the event page again, saying so",
}


EDITED = ("title", "starts_at", "ends_at", "venue", "capacity")


def _sentence(message: str) -> str:
    return message[0].upper() + message[1:] + "."


def _scope() -> str:
    scope = request.form.get("scope", "this")
    if scope not in SCOPES:
        raise PageError(400, "Bad form", "“scope” must be this (this occurrence) or following (this and following).")
    return scope


def _changes(event: dict[str, Any], values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """What the form changes, and only that: "this and following" must not copy the fields the
    organizer left alone onto later occurrences (one of them may have its own title or venue)."""
    current = edit_values(event)
    changes: dict[str, Any] = {}
    if not values["title"]:
        errors["title"] = "Give the event a title."
    elif len(values["title"]) > 200:
        errors["title"] = "At most 200 characters."
    elif values["title"] != current["title"]:
        changes["title"] = values["title"]
    if len(values["venue"]) > 500:
        errors["venue"] = "At most 500 characters."
    elif values["venue"] != current["venue"]:
        changes["venue"] = values["venue"] or None
    if values["capacity"] != current["capacity"]:
        if not values["capacity"]:
            changes["capacity"] = None
        elif values["capacity"].isdigit() and 1 <= int(values["capacity"]) <= 1_000_000:
            changes["capacity"] = int(values["capacity"])
        else:
            errors["capacity"] = "A whole number from 1 to 1,000,000, or leave it empty for no limit."
    zone = check_timezone(event["timezone"])
    for name in ("starts_at", "ends_at"):
        if values[name] != current[name]:
            moment = _local_datetime(values[name], zone, name, errors)
            if moment is not None:
                changes[name] = moment
    return changes


@bp.post("/events/<event_id>/edit")
@operation(
    "Edit an event from its page (HTML form; publishes event.updated); scope=following also edits "
    "the later occurrences of its series still to come",
    content=HTML,
    responses=EDIT_RESPONSES,
    tags=["pages"],
)
def edit_event(event_id: str) -> Any:
    check_same_origin()
    principal = require("manage")
    event = event_or_404(principal.org_id, event_id)
    scope = _scope()
    current = edit_values(event)  # a field the form leaves out stays as it is
    values = {name: request.form.get(name, current[name]).strip() for name in EDITED}
    values["scope"] = scope
    errors: dict[str, str] = {}
    changes = _changes(event, values, errors)
    status = 400
    if not errors and changes:
        try:
            edited = series.update_occurrences(ctx(), principal.org_id, event_id, changes, scope)
        except RuleBroken as exc:
            status = 400 if exc.code.startswith("invalid") else 409
            errors[exc.field if exc.field in values else "form"] = _sentence(exc.message)
        else:
            return redirect(url_for("pages.event_page", event_id=event_id, updated=len(edited)) + "#notice", code=303)
    if not errors:  # nothing changed
        return redirect(url_for("pages.event_page", event_id=event_id), code=303)
    return _event_page(principal, event_id, status, edit_values=values, edit_errors=errors, edit_open=True)


@bp.post("/events/<event_id>/cancel")
@operation(
    "Cancel an event from its page (HTML form; publishes event.cancelled, the door closes); "
    "scope=following also cancels the later occurrences of its series still to come",
    content=HTML,
    responses=EDIT_RESPONSES,
    tags=["pages"],
)
def cancel_event(event_id: str) -> Any:
    check_same_origin()
    principal = require("manage")
    event_or_404(principal.org_id, event_id)
    scope = _scope()
    reason = request.form.get("reason", "").strip()
    if len(reason) > 1000:
        values = {"reason": reason, "scope": scope}
        errors = {"reason": "At most 1,000 characters."}
        return _event_page(principal, event_id, 400, cancel_values=values, cancel_errors=errors, cancel_open=True)
    try:
        done = series.cancel_occurrences(ctx(), principal.org_id, event_id, reason or None, scope)
    except RuleBroken as exc:
        errors = {"form": _sentence(exc.message)}
        values = {"reason": reason, "scope": scope}
        return _event_page(principal, event_id, 409, cancel_values=values, cancel_errors=errors, cancel_open=True)
    return redirect(url_for("pages.event_page", event_id=event_id, cancelled=len(done)) + "#notice", code=303)
