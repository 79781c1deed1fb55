"""The organization's events: happening now, upcoming and past; scheduling one."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from flask import redirect, request, url_for

from checkin.domain.model import RuleBroken, check_timezone, plan_schedule
from checkin.entrypoints.pages_common import (
    HTML,
    KIND_LABELS,
    PAGE_RESPONSES,
    PAST_PER_PAGE,
    bp,
    check_same_origin,
    ctx,
    int_arg,
    page_count,
    render,
    require,
)
from checkin.service_layer import events
from turnout_common.auth import Principal
from turnout_common.web import operation

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
        "past_pages": page_count(past_total, PAST_PER_PAGE),
        "counts": events.attendance_counts(ctx(), ids),
    }


def _default_timezone(org_id: str) -> str:
    return events.default_timezone(ctx(), org_id)


def _events_page(principal: Principal, status: int = 200, **form: Any) -> tuple[str, int]:
    page = int_arg("page", 1)
    form.setdefault("values", {"timezone": _default_timezone(principal.org_id), "kind": "volunteer_shift"})
    form.setdefault("errors", {})
    return render(
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
    return _events_page(require("view"))


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
    values["name_labels"] = "yes" if form.get("name_labels") == "yes" else ""
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
        "name_labels": bool(values["name_labels"]),
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
    check_same_origin()
    principal = require("manage")
    values, errors, arguments = _event_form()
    if errors:
        return _events_page(principal, 400, values=values, errors=errors, form_open=True)
    event = events.schedule_event(ctx(), principal.org_id, **arguments)
    return redirect(url_for("pages.event_page", event_id=event["_id"], created=1), code=303)
