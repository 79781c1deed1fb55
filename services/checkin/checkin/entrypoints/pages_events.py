"""The organization's events: happening now, upcoming and past; scheduling one."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from flask import redirect, request, url_for

from checkin.domain.model import RuleBroken, check_timezone, plan_schedule
from checkin.domain.series import (
    MAX_OCCURRENCES,
    Recurrence,
    group_series,
    occurrence_times,
    recurrence_from,
)
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
from checkin.service_layer import events, series
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
    listed = {event["series_id"] for event in happening + upcoming + past if event.get("series_id")}
    return {
        "happening": happening,
        "upcoming": group_series(upcoming),
        "series_sizes": series.sizes(ctx(), org_id, sorted(listed)),
        "past": group_series(past),
        "past_total": past_total,
        "past_pages": page_count(past_total, PAST_PER_PAGE),
        "counts": events.attendance_counts(ctx(), ids),
    }


def _default_timezone(org_id: str) -> str:
    return events.default_timezone(ctx(), org_id)


def _events_page(principal: Principal, status: int = 200, **form: Any) -> tuple[str, int]:
    page = int_arg("page", 1)
    defaults = {"timezone": _default_timezone(principal.org_id), "kind": "volunteer_shift", **REPEAT_DEFAULTS}
    form.setdefault("values", defaults)
    form.setdefault("errors", {})
    return render(
        "events.html",
        status,
        page=page,
        kinds=KIND_LABELS,
        timezones=_timezones(),
        max_occurrences=MAX_OCCURRENCES,
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


REPEAT_FIELDS = ("repeat", "repeat_interval", "monthly_by", "repeat_end", "repeat_count", "repeat_until")
REPEAT_DEFAULTS = {"repeat": "", "repeat_interval": "1", "monthly_by": "day_of_month", "repeat_end": "count"}
# The domain names a recurrence's fields as the API's body does; the form's own names.
RECURRENCE_FIELDS = {
    "recurrence.frequency": "repeat",
    "recurrence.interval": "repeat_interval",
    "recurrence.monthly_by": "monthly_by",
    "recurrence.count": "repeat_count",
    "recurrence.until": "repeat_until",
    "recurrence": "repeat_end",
}


def _sentence(message: str) -> str:
    """A rule's message (``recurrence.count: at most 104 ...``) as the form says it: ``At most 104 ...``."""
    text = message.split(": ", 1)[-1]
    return text[0].upper() + text[1:] + "."


def _recurrence_form(values: dict[str, str], found: dict[str, str], arguments: dict[str, Any]) -> Recurrence | None:
    """The form's "Repeats" fields: None for a single event; otherwise the recurrence, checked by the
    same rules as the API's (and its occurrences counted), or None with ``found`` saying what to fix."""
    errors: dict[str, str] = {}
    rule = _recurrence(values, errors, arguments) if values["repeat"] else None
    found.update(errors)
    return rule


def _recurrence(values: dict[str, str], errors: dict[str, str], arguments: dict[str, Any]) -> Recurrence | None:
    if values["repeat"] not in ("weekly", "monthly"):
        errors["repeat"] = "Choose how the event repeats."
        return None
    body: dict[str, Any] = {"frequency": values["repeat"], "monthly_by": values["monthly_by"] or "day_of_month"}
    interval = values["repeat_interval"] or "1"
    if not interval.isdigit() or not 1 <= int(interval) <= 12:
        errors["repeat_interval"] = "A whole number from 1 to 12."
    else:
        body["interval"] = int(interval)
    if values["repeat_end"] == "until":
        if not values["repeat_until"]:
            errors["repeat_until"] = "Choose the date of the last occurrence."
        body["until"] = values["repeat_until"]
    elif values["repeat_end"] == "count":
        count = values["repeat_count"]
        if not count.isdigit() or int(count) < 1:
            errors["repeat_count"] = f"How many times, from 1 to {MAX_OCCURRENCES}."
        elif len(count) > 6:
            errors["repeat_count"] = f"At most {MAX_OCCURRENCES} occurrences in one series."
        else:
            body["count"] = int(count)
    else:
        errors["repeat_end"] = "Choose when the series ends: after a number of times or on a date."
    if errors:
        return None
    try:
        rule = recurrence_from(body)
        if arguments["starts_at"] is not None and arguments["ends_at"] is not None:
            occurrence_times(arguments["starts_at"], arguments["ends_at"], arguments["timezone"], rule)
    except RuleBroken as exc:
        errors[RECURRENCE_FIELDS.get(exc.field or "", "repeat")] = _sentence(exc.message)
        return None
    return rule


def _event_form() -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """The new-event form: (what was typed, errors by field, arguments for schedule_event)."""
    form = request.form
    names = ("title", "kind", "starts_at", "ends_at", "timezone", "venue", "capacity", "description")
    values = {name: form.get(name, "").strip() for name in names + REPEAT_FIELDS}
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
    responses={
        303: "scheduled (with Repeats: the whole series, in one step): to the (first) event",
        400: "the form again, with what to fix",
        403: "not allowed",
    },
    tags=["pages"],
)
def create_event() -> Any:
    check_same_origin()
    principal = require("manage")
    values, errors, arguments = _event_form()
    rule = _recurrence_form(values, errors, arguments)
    if errors:
        return _events_page(principal, 400, values=values, errors=errors, form_open=True)
    if rule is None:
        event = events.schedule_event(ctx(), principal.org_id, **arguments)
        return redirect(url_for("pages.event_page", event_id=event["_id"], created=1), code=303)
    made = series.schedule_series(ctx(), principal.org_id, rule, **arguments)
    return redirect(url_for("pages.event_page", event_id=made[0]["_id"], created=len(made)), code=303)
