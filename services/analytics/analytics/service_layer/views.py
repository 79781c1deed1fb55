"""The dashboard's read use cases: small indexed queries on the projections,
turned into plain JSON-ready answers by the domain's report rules. Every query
is scoped to one organization."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from analytics.domain import reports
from analytics.domain.facts import month_index, month_of
from analytics.domain.series import series_figures
from analytics.service_layer.ports import DashboardQueries
from turnout_common.clock import to_rfc3339_or_none as _t
from turnout_common.regulars import RiskRule
from turnout_common.types import Doc

MAX_EVENTS = 2000
MAX_PEOPLE_PAGE = 500
MAX_AT_RISK_SCAN = 2000
AT_RISK_FIRST_WINDOW_DAYS = 7
AT_RISK_MAX_WINDOW_DAYS = 120
HISTORY_OF_KIND = 20


def _hours(centihours: Any) -> float:
    return round(int(centihours or 0) / 100, 2)


# -- events -----------------------------------------------------------------------------------------


def event_summary(doc: Mapping[str, Any]) -> Doc:
    """One event's figures as the API and the pages show them."""
    counts = {
        name: int(doc.get(name, 0) or 0)
        for name in (
            "registered",
            "waitlisted",
            "walk_ins",
            "cancelled",
            "checked_in",
            "first_timers",
            "first_timers_welcomed",
            "returning",
            "checked_out",
        )
    }
    ended = doc.get("status") == "ended"
    return {
        "event_id": doc["_id"],
        "title": doc.get("title"),
        "kind": doc.get("kind"),
        "starts_at": _t(doc.get("starts_at")),
        "ends_at": _t(doc.get("ends_at")),
        "timezone": doc.get("timezone"),
        "status": doc.get("status"),
        "capacity": doc.get("capacity"),
        "series_id": doc.get("series_id"),
        "occurrence": doc.get("occurrence"),
        **counts,
        "no_shows": int(doc.get("not_arrived", 0) or 0) if ended else None,
        "show_rate": reports.show_rate(counts["registered"], counts["checked_in"]),
        "welcomed_share": reports.share(counts["first_timers_welcomed"], counts["first_timers"]),
        "volunteer_hours": _hours(doc.get("volunteer_centihours")),
        "methods": {key: value for key, value in (doc.get("methods") or {}).items() if value},
    }


def list_events(
    queries: DashboardQueries,
    org_id: str,
    date_range: reports.DateRange = reports.DateRange(),
    kind: str | None = None,
) -> list[Doc]:
    """The organization's events in the range (newest first), with their figures."""
    return [event_summary(doc) for doc in queries.events(org_id, date_range, kind, MAX_EVENTS)]


def event_figures(queries: DashboardQueries, org_id: str, event_id: str) -> Doc | None:
    doc = queries.event(org_id, event_id)
    return event_summary(doc) if doc is not None else None


def _curve(arrivals: Mapping[str, int]) -> list[Doc]:
    return [
        {
            "minutes": point.minutes,
            "label": reports.bucket_label(point.minutes),
            "arrivals": point.arrivals,
            "cumulative": point.cumulative,
        }
        for point in reports.arrival_curve(arrivals)
    ]


def _lanes(queries: DashboardQueries, org_id: str, event_id: str) -> list[reports.LaneThroughput]:
    docs = queries.lanes(org_id, event_id)
    return reports.lane_throughput(
        {doc["lane"]: doc.get("arrivals") or {} for doc in docs},
        {doc["lane"]: int(doc.get("checked_in", 0)) for doc in docs},
    )


def _lane_rows(lanes: Iterable[reports.LaneThroughput]) -> list[Doc]:
    return [
        {
            "kiosk_id": lane.kiosk_id,
            "label": lane.kiosk_id or "No kiosk (staff or import)",
            "checked_in": lane.checked_in,
            "peak_arrivals_5min": lane.peak_arrivals,
            "peak_per_minute": lane.peak_per_minute,
            "peak_window": reports.bucket_label(lane.peak_bucket) if lane.peak_bucket is not None else None,
        }
        for lane in lanes
        if lane.checked_in > 0
    ]


def live_snapshot(queries: DashboardQueries, org_id: str, event_id: str) -> Doc | None:
    """What the live view shows: the counters, the arrival curve and the lanes."""
    doc = queries.event(org_id, event_id)
    if doc is None:
        return None
    summary = event_summary(doc)
    return {
        "event_id": event_id,
        "title": summary["title"],
        "status": summary["status"],
        "registered": summary["registered"],
        "checked_in": summary["checked_in"],
        "checked_out": summary["checked_out"],
        "first_timers": summary["first_timers"],
        "returning": summary["returning"],
        "walk_ins": summary["walk_ins"],
        "not_arrived": int(doc.get("not_arrived", 0) or 0),
        "show_rate": summary["show_rate"],
        "arrivals": _curve(doc.get("arrivals") or {}),
        "lanes": _lane_rows(_lanes(queries, org_id, event_id)),
    }


def event_report(queries: DashboardQueries, org_id: str, event_id: str, now: datetime) -> Doc | None:
    """Everything about one event, plus a staffing hint for the next one of its kind."""
    doc = queries.event(org_id, event_id)
    if doc is None:
        return None
    summary = event_summary(doc)
    lanes = _lanes(queries, org_id, event_id)
    history = queries.ended_events(org_id, summary["kind"], HISTORY_OF_KIND)
    if doc.get("status") == "ended" and all(item["_id"] != event_id for item in history):
        history.append(doc)
    peaks = [
        reports.event_peak(item.get("arrivals") or {}, int(item.get("checked_in", 0)), int(item.get("registered", 0)))
        for item in history
    ]
    lane_peaks = [lane.peak_arrivals for lane in lanes if lane.kiosk_id is not None]
    upcoming = queries.next_scheduled(org_id, summary["kind"], now)
    hint = reports.staffing_hint(peaks, lane_peaks, int(upcoming.get("registered", 0)) if upcoming else None)
    top = reports.peak(doc.get("arrivals") or {})
    attended = queries.first_timers_attended(org_id, event_id)
    came_back = reports.first_timers_came_back(
        attended, queries.welcomed_people(org_id, event_id) if summary["first_timers_welcomed"] else set()
    )
    return {
        "event": summary,
        "arrivals": _curve(doc.get("arrivals") or {}),
        "peak": {"window": reports.bucket_label(top[0]), "arrivals": top[1], "per_minute": round(top[1] / 5, 2)}
        if top
        else None,
        "lanes": _lane_rows(lanes),
        "first_timers_returned": {
            **came_back["all"],
            # Welcomed by a greeter at this event, or not: who came to a later event.
            "welcomed": came_back["welcomed"],
            "not_welcomed": came_back["not_welcomed"],
        },
        "staffing_hint": None
        if hint is None
        else {
            "lanes": hint.lanes,
            "expected_arrivals": hint.expected_arrivals,
            "expected_peak_5min": hint.expected_peak,
            "lane_capacity_5min": hint.lane_capacity,
            "capacity_measured": hint.capacity_measured,
            "open_from_minutes": hint.open_from_minutes,
            "based_on_events": hint.based_on_events,
            "next_event": {
                "event_id": upcoming["_id"],
                "title": upcoming.get("title"),
                "starts_at": _t(upcoming.get("starts_at")),
                "registered": int(upcoming.get("registered", 0)),
            }
            if upcoming
            else None,
            "text": hint.text,
        },
    }


# -- across events ----------------------------------------------------------------------------------


def trends(
    queries: DashboardQueries,
    org_id: str,
    date_range: reports.DateRange = reports.DateRange(),
    kind: str | None = None,
) -> list[Doc]:
    docs = queries.events(org_id, date_range, kind, MAX_EVENTS)
    return [
        {
            "month": point.month,
            "kind": point.kind,
            "events": point.events,
            "registered": point.registered,
            "checked_in": point.checked_in,
            "average_attendance": point.average_attendance,
        }
        for point in reports.attendance_trend(docs)
    ]


def retention(
    queries: DashboardQueries, org_id: str, now: datetime, date_range: reports.DateRange = reports.DateRange()
) -> Doc:
    """The cohort heatmap: month of first attendance x months since, share who came."""
    docs = queries.cohort_cells(org_id, date_range)
    # As many month columns as the oldest cohort has lived through (at most a year).
    oldest = min((str(doc["cohort"]) for doc in docs if int(doc.get("size", 0)) > 0), default=None)
    reached = month_index(month_of(now)) - month_index(oldest) if oldest else 0
    rows = reports.retention_matrix(docs, now, max_offset=max(1, min(12, reached)))
    return {
        "first_timer_return_rate": reports.first_timer_return_rate(rows),
        "people": sum(row.size for row in rows),
        "average": reports.average_retention(rows),
        "cohorts": [
            {
                "cohort": row.cohort,
                "size": row.size,
                "returned": row.returned,
                "return_rate": reports.share(row.returned, row.size),
                "retention": row.retention,
                "counts": row.counts,
            }
            for row in rows
        ],
    }


def _person_row(doc: Mapping[str, Any], now: datetime) -> Doc:
    name = " ".join(part for part in (doc.get("first_name"), doc.get("last_name")) if part) or "(name unknown)"
    return {
        "person_id": doc["_id"],
        "name": name,
        "events_attended": int(doc.get("events_attended", 0)),
        "first_seen": _t(doc.get("first_seen")),
        "last_seen": _t(doc.get("last_seen")),
        "current_streak_months": reports.current_streak(
            int(doc.get("streak_last", 0)), doc.get("streak_last_month"), now
        ),
        "longest_streak_months": int(doc.get("streak_longest", 0)),
        "volunteer_hours": _hours(doc.get("centihours")),
        "followups_received": int(doc.get("followups_received", 0)),
        "followups_acted_on": int(doc.get("followups_acted", 0)),
        "unsubscribed": bool(doc.get("unsubscribed", False)),
    }


def people_at_risk(queries: DashboardQueries, org_id: str, now: datetime, limit: int = 200) -> list[Doc]:
    """Regulars who stopped coming: most loyal first, among the most recently drifted."""
    rule = RiskRule()
    starts = queries.held_event_starts(org_id, now, MAX_EVENTS)
    # Only people whose quiet spell passed their own threshold (``risk_from``)
    # within the last year, read a stretch of time at a time from the most
    # recently drifted back (a week first, then longer stretches while few are
    # found), until enough are found: each read is one indexed range, so no
    # query sorts the whole organization. (The rule below has the last word.)
    horizon = now - timedelta(days=rule.lost_after_days)
    docs: list[Doc] = []
    upper, window = now, timedelta(days=AT_RISK_FIRST_WINDOW_DAYS)
    while upper > horizon and len(docs) < MAX_AT_RISK_SCAN:
        lower = max(horizon, upper - window)
        before = len(docs)
        docs.extend(queries.risk_from_between(org_id, lower, upper, MAX_AT_RISK_SCAN - len(docs)))
        if len(docs) - before < MAX_AT_RISK_SCAN // 4:
            window = min(window * 2, timedelta(days=AT_RISK_MAX_WINDOW_DAYS))
        upper = lower
    rows = []
    for doc in docs:
        risk = reports.at_risk(
            int(doc.get("events_attended", 0)),
            doc.get("last_seen"),
            doc.get("typical_gap_days"),
            now,
            starts,
            rule,
            doc.get("last_event_at"),
        )
        if risk is None:
            continue
        rows.append(
            {
                **_person_row(doc, now),
                "days_since_last_visit": risk.days_quiet,
                "usual_gap_days": risk.usual_gap_days,
                "events_missed_since": risk.missed_events,
            }
        )
    rows.sort(key=lambda row: (-row["events_attended"], -row["days_since_last_visit"], row["name"]))
    return rows[:limit]


def loyalty(queries: DashboardQueries, org_id: str) -> list[tuple[int, int]]:
    """(events attended, people) for every count someone reached, most events first."""
    docs = queries.loyalty_cells(org_id)
    counts = ((int(doc.get("events_attended", 0)), int(doc.get("people", 0) or 0)) for doc in docs)
    return sorted(((attended, n) for attended, n in counts if attended > 0 and n > 0), reverse=True)


def loyalty_report(queries: DashboardQueries, org_id: str) -> Doc:
    """How often people come: people per number of events attended, and in bands."""
    counts = loyalty(queries, org_id)
    total = sum(people for _, people in counts)
    return {
        "people": total,
        "bands": [
            {
                "label": band.label,
                "lowest": band.lowest,
                "highest": band.highest,
                "people": band.people,
                "share": band.share,
            }
            for band in reports.loyalty_bands(counts)
        ],
        "counts": [
            {"events_attended": attended, "people": people, "share": reports.share(people, total)}
            for attended, people in sorted(counts)
        ],
    }


def rank_window(counts: Sequence[tuple[int, int]], offset: int, limit: int) -> tuple[int, int, int] | None:
    """The events-attended range holding ranks ``offset .. offset+limit-1`` of the people list.

    ``counts`` is the loyalty distribution, most events first. Returns
    ``(lowest, highest, skip)``: the page is the people whose count lies in
    ``[lowest, highest]``, in list order, after skipping ``skip`` of them;
    None when the offset is past the end.
    """
    before = 0
    highest: int | None = None
    lowest = skip = 0
    for attended, people in counts:
        if highest is None and before + people > offset:
            highest, skip = attended, offset - before
        if highest is not None:
            lowest = attended
            if before + people >= offset + limit:
                break
        before += people
    return None if highest is None else (lowest, highest, skip)


def people_page(queries: DashboardQueries, org_id: str, now: datetime, limit: int = 100, offset: int = 0) -> Doc:
    """People who came at least once, most events first, one page, and how many there are.

    The loyalty distribution says which events-attended range the page falls
    in, so the query reads that range instead of sorting everyone.
    """
    counts = loyalty(queries, org_id)
    total = sum(people for _, people in counts)
    limit = min(limit, MAX_PEOPLE_PAGE)
    window = rank_window(counts, offset, limit)
    if window is None:
        return {"people": [], "total": total}
    lowest, highest, skip = window
    docs = queries.people_by_events_attended(org_id, lowest, highest, skip, limit)
    return {"people": [_person_row(doc, now) for doc in docs], "total": total}


def person(queries: DashboardQueries, org_id: str, person_id: str, now: datetime) -> Doc | None:
    summary = queries.person_summary(org_id, person_id)
    doc = queries.person_facts(org_id, person_id)
    if doc is None or summary is None:
        return None
    titles = queries.event_titles(org_id, [v["event_id"] for v in doc.get("visits", [])])
    visits = sorted(
        (v for v in doc.get("visits", []) if v.get("checkin_at") is not None),
        key=lambda v: v.get("starts_at") or v["checkin_at"],
    )
    return {
        **_person_row(summary, now),
        "visits": [
            {
                "event_id": v["event_id"],
                "title": titles.get(v["event_id"]),
                "kind": v.get("kind"),
                "starts_at": _t(v.get("starts_at")),
                "checked_in_at": _t(v.get("checkin_at")),
                "first_time": bool(v.get("first_time")),
                "volunteer_hours": _hours(v.get("centihours")),
            }
            for v in visits
        ],
        "followups": [
            {
                "followup_id": f["followup_id"],
                "nudge_kind": f.get("nudge_kind"),
                "event_id": f.get("event_id"),
                "sent_at": _t(f.get("sent_at")),
                "opened_at": _t(f.get("opened_at")),
                "clicked_at": _t(f.get("clicked_at")),
                "machine_opened_at": _t(f.get("machine_opened_at")),
                "machine_clicked_at": _t(f.get("machine_clicked_at")),
                "bounced": bool(f.get("bounced")),
            }
            for f in doc.get("followups", [])
        ],
    }


def followup_funnel(queries: DashboardQueries, org_id: str, date_range: reports.DateRange = reports.DateRange()) -> Doc:
    """Sent -> opened -> clicked -> came to a later event, per nudge kind (by the month sent)."""
    cells = queries.funnel_cells(org_id, date_range)
    rows = reports.funnel(cells)
    return {
        "kinds": [
            {
                "nudge_kind": row.nudge_kind,
                "sent": row.sent,
                "opened": row.opened,
                "clicked": row.clicked,
                "came_back": row.returned,
                "bounced": row.bounced,
                "machine_opened": row.machine_opened,
                "machine_clicked": row.machine_clicked,
                **row.rates(),
            }
            for row in rows
        ]
    }


def overview(
    queries: DashboardQueries,
    org_id: str,
    now: datetime,
    date_range: reports.DateRange = reports.DateRange(),
    kind: str | None = None,
) -> Doc:
    """Headline figures of the organization in the range."""
    events = list_events(queries, org_id, date_range, kind)
    held = [e for e in events if e["status"] != "cancelled"]
    registered = sum(e["registered"] for e in held)
    checked_in = sum(e["checked_in"] for e in held)
    ended = [e for e in held if e["status"] == "ended"]
    cohorts = retention(queries, org_id, now, date_range)
    return {
        "events": len(held),
        "registered": registered,
        "checked_in": checked_in,
        "show_rate": reports.show_rate(registered, checked_in),
        "first_timers": sum(e["first_timers"] for e in held),
        "first_timers_welcomed": sum(e["first_timers_welcomed"] for e in held),
        "welcomed_share": reports.share(
            sum(e["first_timers_welcomed"] for e in held), sum(e["first_timers"] for e in held)
        ),
        "returning": sum(e["returning"] for e in held),
        "walk_ins": sum(e["walk_ins"] for e in held),
        "no_shows": sum(e["no_shows"] or 0 for e in ended),
        "volunteer_hours": round(sum(e["volunteer_hours"] for e in held), 2),
        "first_timer_return_rate": cohorts["first_timer_return_rate"],
        "live_events": [e for e in held if e["status"] == "scheduled" and _in_progress(e, now)],
    }


def _in_progress(event: Mapping[str, Any], now: datetime) -> bool:
    starts, ends = event.get("starts_at"), event.get("ends_at")
    if not starts or not ends:
        return False
    start = datetime.fromisoformat(starts.replace("Z", "+00:00"))
    end = datetime.fromisoformat(ends.replace("Z", "+00:00"))
    return start - timedelta(hours=1) <= now <= end


def series_report(queries: DashboardQueries, org_id: str, series_id: str) -> Doc | None:
    """A recurring series: each occurrence's figures, totals, and its regulars and returners."""
    docs = queries.series_events(org_id, series_id)
    if not docs:
        return None
    rows = [{**event_summary(doc), "occurrence": doc.get("occurrence")} for doc in docs]
    held = [row for row in rows if row["status"] != "cancelled"]
    attendance = queries.series_attendance(org_id, [row["event_id"] for row in rows])
    checked_in = sum(row["checked_in"] for row in held)
    registered = sum(row["registered"] for row in held)
    ended = [row for row in held if row["status"] == "ended"]
    return {
        "series_id": series_id,
        "title": rows[-1]["title"],
        "kind": rows[-1]["kind"],
        "timezone": rows[-1]["timezone"],
        "occurrences": rows,
        "totals": {
            "occurrences": len(rows),
            "held": len(ended),
            "cancelled": len(rows) - len(held),
            "registered": registered,
            "checked_in": checked_in,
            "average_checked_in": round(sum(r["checked_in"] for r in ended) / len(ended), 1) if ended else None,
            "show_rate": reports.show_rate(registered, checked_in),
        },
        **series_figures(len(ended) or len(held), attendance),
    }
