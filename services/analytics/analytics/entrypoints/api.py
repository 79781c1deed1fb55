"""Analytics' JSON API (``/api/v1``): the figures behind every chart and table
of the dashboard, CSV exports of every table (``?format=csv``), and the live
view's Server-Sent Events stream. Every answer is scoped to the caller's
organization."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g

import analytics
from analytics.bootstrap import Context, context_of, dashboard
from analytics.domain.events import KINDS
from analytics.entrypoints import csv_export
from analytics.entrypoints.filters import check_id, filters, integer, wants_csv
from analytics.service_layer import views
from turnout_common.clock import utcnow
from turnout_common.metrics import MongoFiguresCollector
from turnout_common.revocations import RevokedSubjects
from turnout_common.web import ApiError, QueryArg, init_service_web, operation

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Query arguments with examples of what they take, the calendar's ends included
# (schemathesis sends every documented example).
_DAYS = ["2026-03-31", "0001-01-01", "9999-12-31", ""]
FILTERS: dict[str, str | QueryArg] = {
    "from": QueryArg("first day (YYYY-MM-DD, inclusive)", {"type": "string", "examples": _DAYS}),
    "to": QueryArg("last day (YYYY-MM-DD, inclusive)", {"type": "string", "examples": _DAYS}),
    "kind": QueryArg(
        "event kind: volunteer_shift, networking, workshop, meeting or other",
        {"type": "string", "examples": [*KINDS, ""]},
    ),
}
FORMAT: dict[str, str | QueryArg] = {
    "format": QueryArg(
        "json (default) or csv: the table as a spreadsheet-safe CSV file",
        {"type": "string", "examples": ["json", "csv"]},
    )
}
# A table's answer: JSON, or CSV with ?format=csv.
JSON_OR_CSV = ("application/json", "text/csv")
NOT_FOUND = {404: "no such event in your organization"}
BAD_INPUT = {400: "a filter is not valid (the error names it)"}

EVENT_COLUMNS = [
    ("event_id", "event_id"),
    ("title", "title"),
    ("kind", "kind"),
    ("starts_at", "starts_at"),
    ("status", "status"),
    ("registered", "registered"),
    ("checked_in", "checked_in"),
    ("show_rate", "show_rate"),
    ("walk_ins", "walk_ins"),
    ("first_timers", "first_timers"),
    ("first_timers_welcomed", "first_timers_welcomed"),
    ("returning", "returning"),
    ("no_shows", "no_shows"),
    ("checked_out", "checked_out"),
    ("volunteer_hours", "volunteer_hours"),
]
ARRIVAL_COLUMNS = [
    ("minutes", "minutes_from_start"),
    ("label", "window"),
    ("arrivals", "arrivals"),
    ("cumulative", "cumulative"),
]
LANE_COLUMNS = [
    ("label", "kiosk"),
    ("checked_in", "checked_in"),
    ("peak_arrivals_5min", "peak_arrivals_in_5_min"),
    ("peak_per_minute", "peak_per_minute"),
    ("peak_window", "peak_window"),
]
TREND_COLUMNS = [
    ("month", "month"),
    ("kind", "kind"),
    ("events", "events"),
    ("registered", "registered"),
    ("checked_in", "checked_in"),
    ("average_attendance", "average_attendance"),
]
PERSON_COLUMNS = [
    ("person_id", "person_id"),
    ("name", "name"),
    ("events_attended", "events_attended"),
    ("first_seen", "first_seen"),
    ("last_seen", "last_seen"),
    ("current_streak_months", "current_streak_months"),
    ("longest_streak_months", "longest_streak_months"),
    ("volunteer_hours", "volunteer_hours"),
    ("followups_received", "followups_received"),
    ("followups_acted_on", "followups_acted_on"),
    ("unsubscribed", "unsubscribed"),
]
RISK_COLUMNS = [
    *PERSON_COLUMNS[:5],
    ("days_since_last_visit", "days_since_last_visit"),
    ("usual_gap_days", "usual_gap_days"),
    ("events_missed_since", "events_missed_since"),
    *PERSON_COLUMNS[7:],
]
LOYALTY_COLUMNS = [("events_attended", "events_attended"), ("people", "people"), ("share", "share")]
FUNNEL_COLUMNS = [
    ("nudge_kind", "nudge_kind"),
    ("sent", "sent"),
    ("opened", "opened"),
    ("clicked", "clicked"),
    ("came_back", "came_to_a_later_event"),
    ("bounced", "bounced"),
    ("machine_opened", "opened_only_by_image_proxies"),
    ("machine_clicked", "clicked_only_by_link_scanners"),
    ("open_rate", "open_rate"),
    ("click_rate", "click_rate"),
    ("return_rate", "return_rate"),
]
RETENTION_OFFSETS = 12


def ctx() -> Context:
    return context_of(current_app)


def org() -> str:
    return str(g.principal.org_id)


def _event_or_404(event_id: str) -> str:
    return check_id(event_id, "event")


# -- events -----------------------------------------------------------------------------------------


@bp.get("/events")
@operation(
    "Attendance figures of every event of your organization, newest first",
    auth="view",
    query={**FILTERS, **FORMAT},
    responses={200: "the events", **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["attendance"],
)
def list_events() -> Any:
    chosen, as_csv = filters(), wants_csv()
    events = views.list_events(dashboard(), org(), chosen.date_range, chosen.kind)
    if as_csv:
        return csv_export.csv_response(events, EVENT_COLUMNS, "events")
    return {"events": events}


@bp.get("/events/<event_id>/attendance")
@operation(
    "Attendance figures of one event",
    auth="view",
    responses={200: "the figures", **NOT_FOUND},
    tags=["attendance"],
)
def event_attendance(event_id: str) -> Any:
    figures = views.event_figures(dashboard(), org(), _event_or_404(event_id))
    if figures is None:
        raise ApiError(404, "event_not_found", "no figures for this event in your organization")
    return figures


def _report(event_id: str) -> dict[str, Any]:
    report = views.event_report(dashboard(), org(), _event_or_404(event_id), utcnow())
    if report is None:
        raise ApiError(404, "event_not_found", "no figures for this event in your organization")
    return report


@bp.get("/events/<event_id>/report")
@operation(
    "Event report: figures, arrival curve, lane throughput, first-timers who came back, staffing hint",
    auth="view",
    responses={200: "the report", **NOT_FOUND},
    tags=["attendance"],
)
def event_report(event_id: str) -> Any:
    return _report(event_id)


@bp.get("/series/<series_id>")
@operation(
    "A recurring series: attendance per occurrence, totals, returners and regulars across it",
    auth="view",
    responses={200: "the series report", 404: "no such series in your organization"},
    tags=["attendance"],
)
def series_report(series_id: str) -> Any:
    found = views.series_report(dashboard(), org(), check_id(series_id, "series"))
    if found is None:
        raise ApiError(404, "series_not_found", "no such series in your organization")
    return found


@bp.get("/events/<event_id>/arrivals")
@operation(
    "Arrival curve of one event: check-ins per 5 minutes relative to its start",
    auth="view",
    query=FORMAT,
    responses={200: "the curve", **NOT_FOUND, **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["attendance"],
)
def event_arrivals(event_id: str) -> Any:
    as_csv = wants_csv()
    report = _report(event_id)
    if as_csv:
        return csv_export.csv_response(report["arrivals"], ARRIVAL_COLUMNS, f"arrivals-{event_id}")
    return {"event_id": event_id, "peak": report["peak"], "arrivals": report["arrivals"]}


@bp.get("/events/<event_id>/lanes")
@operation(
    "Per-kiosk throughput of one event (busiest 5 minutes per lane) and the staffing hint",
    auth="view",
    query=FORMAT,
    responses={200: "the lanes", **NOT_FOUND, **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["attendance"],
)
def event_lanes(event_id: str) -> Any:
    as_csv = wants_csv()
    report = _report(event_id)
    if as_csv:
        return csv_export.csv_response(report["lanes"], LANE_COLUMNS, f"lanes-{event_id}")
    return {"event_id": event_id, "lanes": report["lanes"], "staffing_hint": report["staffing_hint"]}


def _sse(event: str, payload: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


@bp.get("/events/<event_id>/live")
@operation(
    "Live figures of an event as Server-Sent Events (event 'figures' on every change; "
    "the stream ends after a few minutes with event 'reconnect' and the browser reconnects)",
    auth="view",
    content="text/event-stream",
    responses={200: "the stream", **NOT_FOUND},
    tags=["attendance"],
)
def event_live(event_id: str) -> Response:
    context, org_id = ctx(), org()
    settings = context.settings
    event_id = _event_or_404(event_id)
    queries = context.dashboard()
    first = views.live_snapshot(queries, org_id, event_id)
    if first is None:
        raise ApiError(404, "event_not_found", "no figures for this event in your organization")

    def stream() -> Iterator[str]:
        # One cheap indexed read per poll; a keep-alive comment now and then
        # notices a browser that went away (the write fails) and frees the thread.
        yield "retry: 1000\n\n"
        started = last_sent = last_names = time.monotonic()
        current = queries
        snapshot: dict[str, Any] | None = first
        previous = ""
        while True:
            if snapshot is not None:
                payload = json.dumps(snapshot, sort_keys=True)
                if payload != previous:
                    previous = payload
                    last_sent = time.monotonic()
                    yield _sse("figures", snapshot)
            now = time.monotonic()
            if now - started >= settings.live_max_seconds:
                yield _sse("reconnect", {"after_seconds": round(now - started)})
                return
            if now - last_sent >= 5:
                last_sent = now
                yield ": keep-alive\n\n"
            time.sleep(settings.live_poll_seconds)
            if time.monotonic() - last_names >= 5:  # a rebuild may have switched generations
                current, last_names = context.dashboard(), time.monotonic()
            snapshot = views.live_snapshot(current, org_id, event_id)

    return Response(
        stream(),
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"},
    )


# -- across events ----------------------------------------------------------------------------------


@bp.get("/overview")
@operation(
    "Headline figures of your organization in the date range and kind",
    auth="view",
    query=FILTERS,
    responses={200: "the figures", **BAD_INPUT},
    tags=["trends"],
)
def overview() -> Any:
    chosen = filters()
    return views.overview(dashboard(), org(), utcnow(), chosen.date_range, chosen.kind)


@bp.get("/trends")
@operation(
    "Attendance trend: events, registrations and check-ins per month and event kind",
    auth="view",
    query={**FILTERS, **FORMAT},
    responses={200: "the trend", **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["trends"],
)
def trends() -> Any:
    chosen, as_csv = filters(), wants_csv()
    points = views.trends(dashboard(), org(), chosen.date_range, chosen.kind)
    if as_csv:
        return csv_export.csv_response(points, TREND_COLUMNS, "attendance-trend")
    return {"trend": points}


@bp.get("/retention")
@operation(
    "Cohort retention (month of first attendance x months since: share who came) "
    "and the first-timer return rate; the date range selects cohort months",
    auth="view",
    query={"from": FILTERS["from"], "to": FILTERS["to"], **FORMAT},
    responses={200: "the cohorts", **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["trends"],
)
def retention() -> Any:
    chosen, as_csv = filters(), wants_csv()
    answer = views.retention(dashboard(), org(), utcnow(), chosen.date_range)
    if as_csv:
        rows = []
        for row in answer["cohorts"]:
            flat = {"cohort": row["cohort"], "size": row["size"], "returned": row["returned"]}
            for offset, value in enumerate(row["retention"]):
                flat[f"m{offset}"] = value
            rows.append(flat)
        columns = [("cohort", "cohort"), ("size", "people"), ("returned", "came_back_at_least_once")] + [
            (f"m{k}", f"share_in_month_{k}") for k in range(RETENTION_OFFSETS + 1)
        ]
        return csv_export.csv_response(rows, columns, "retention")
    return answer


@bp.get("/funnel")
@operation(
    "Follow-up funnel per nudge kind: sent, opened, clicked, came to a later event "
    "(the date range selects the months the follow-ups were sent)",
    auth="view",
    query={"from": FILTERS["from"], "to": FILTERS["to"], **FORMAT},
    responses={200: "the funnel", **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["followups"],
)
def funnel() -> Any:
    chosen, as_csv = filters(), wants_csv()
    answer = views.followup_funnel(dashboard(), org(), chosen.date_range)
    if as_csv:
        return csv_export.csv_response(answer["kinds"], FUNNEL_COLUMNS, "followup-funnel")
    return answer


# -- people -----------------------------------------------------------------------------------------


@bp.get("/people")
@operation(
    "People who came, most events first: events attended, first and last seen, streaks, "
    "volunteer hours, follow-ups received and acted on",
    auth="view",
    query={
        "limit": QueryArg("1-500 (default 100)", {"type": "string", "examples": ["1", "500"]}),
        "offset": QueryArg("rows to skip (default 0)", {"type": "string", "examples": ["0", "1000000"]}),
        **FORMAT,
    },
    responses={200: "the people", **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["people"],
)
def list_people() -> Any:
    limit = integer("limit", 100, 1, views.MAX_PEOPLE_PAGE)
    offset = integer("offset", 0, 0, 1_000_000)
    as_csv = wants_csv()
    page = views.people_page(dashboard(), org(), utcnow(), limit, offset)
    if as_csv:
        return csv_export.csv_response(page["people"], PERSON_COLUMNS, "people")
    return {"people": page["people"], "total": page["total"], "limit": limit, "offset": offset}


@bp.get("/people/loyalty")
@operation(
    "How often people come: how many people came to exactly n events, and in bands "
    "(once, twice, 3 to 5, 6 to 10, 11 or more)",
    auth="view",
    query=FORMAT,
    responses={200: "the distribution", **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["people"],
)
def loyalty() -> Any:
    as_csv = wants_csv()
    answer = views.loyalty_report(dashboard(), org())
    if as_csv:
        return csv_export.csv_response(answer["counts"], LOYALTY_COLUMNS, "people-by-events-attended")
    return answer


@bp.get("/people/at-risk")
@operation(
    "People at risk: regulars (3+ events) quiet for 45+ days and twice their usual gap",
    auth="view",
    query={"limit": QueryArg("1-500 (default 200)", {"type": "string", "examples": ["1", "500"]}), **FORMAT},
    responses={200: "the people", **BAD_INPUT},
    content=JSON_OR_CSV,
    tags=["people"],
)
def at_risk() -> Any:
    limit = integer("limit", 200, 1, views.MAX_PEOPLE_PAGE)
    as_csv = wants_csv()
    rows = views.people_at_risk(dashboard(), org(), utcnow(), limit)
    if as_csv:
        return csv_export.csv_response(rows, RISK_COLUMNS, "people-at-risk")
    return {"people": rows}


@bp.get("/people/<person_id>")
@operation(
    "One person: their visits and follow-ups",
    auth="view",
    responses={200: "the person", 404: "no such person in your organization"},
    tags=["people"],
)
def get_person(person_id: str) -> Any:
    found = views.person(dashboard(), org(), check_id(person_id, "person"), utcnow())
    if found is None:
        raise ApiError(404, "person_not_found", "no such person in your organization")
    return found


def init_app(app: Flask) -> None:
    context = context_of(app)
    init_service_web(
        app,
        context.settings,
        version=analytics.__version__,
        signer=context.signer,
        client=context.client,
        metrics_collector=MongoFiguresCollector("analytics", context.db),
        principal_check=RevokedSubjects(context.db).check,
        description="Attendance projections and the organizer dashboard.",
    )
    app.register_blueprint(bp)
