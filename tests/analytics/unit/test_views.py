"""The dashboard's read use cases on an in-memory ``DashboardQueries``: which
reads each makes (as many as on MongoDB: the dashboard is benchmarked by its
round trips) and how the answers are put together."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from analytics.domain.reports import DateRange, RiskRule
from analytics.service_layer import views
from tests.analytics.unit.fakes import FakeDashboard
from turnout_common.types import Doc

NOW = datetime(2026, 3, 15, 18, 0, tzinfo=UTC)
ORG = "o1"


def _event(event_id: str, days_ago: float, **fields: object) -> Doc:
    starts = NOW - timedelta(days=days_ago)
    return {
        "_id": event_id,
        "org_id": ORG,
        "title": f"Event {event_id}",
        "kind": "workshop",
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=2),
        "timezone": "UTC",
        "status": "ended",
        **fields,
    }


def _person(person_id: str, attended: int, **fields: object) -> Doc:
    return {"_id": person_id, "org_id": ORG, "first_name": person_id.upper(), "events_attended": attended, **fields}


def _people(fake: FakeDashboard, counts: dict[str, int]) -> None:
    fake.summaries = [_person(person_id, attended) for person_id, attended in counts.items()]
    per_count: dict[int, int] = {}
    for attended in counts.values():
        per_count[attended] = per_count.get(attended, 0) + 1
    fake.loyalty = [{"org_id": ORG, "events_attended": n, "people": people} for n, people in per_count.items()]
    # Another organization's people are never seen.
    fake.summaries.append({**_person("x", 9), "org_id": "o2"})
    fake.loyalty.append({"org_id": "o2", "events_attended": 9, "people": 1})


def test_a_people_page_reads_only_the_attendance_range_it_falls_in() -> None:
    fake = FakeDashboard()
    _people(fake, {"a": 5, "b": 3, "c": 3, "d": 2, "e": 1})
    page = views.people_page(fake, ORG, NOW, limit=2, offset=1)
    assert [row["person_id"] for row in page["people"]] == ["b", "c"]
    assert page["total"] == 5
    assert fake.queries == [("loyalty_cells",), ("people_by_events_attended", 3, 3, 0, 2)]
    fake.queries.clear()
    assert [row["person_id"] for row in views.people_page(fake, ORG, NOW, limit=2, offset=3)["people"]] == ["d", "e"]
    assert fake.queries[-1] == ("people_by_events_attended", 1, 2, 0, 2)


def test_a_page_past_the_end_reads_no_people() -> None:
    fake = FakeDashboard()
    _people(fake, {"a": 2})
    assert views.people_page(fake, ORG, NOW, limit=10, offset=1) == {"people": [], "total": 1}
    assert fake.queries == [("loyalty_cells",)]


def test_at_risk_reads_risk_from_windows_newest_first_down_to_a_year() -> None:
    fake = FakeDashboard()
    assert views.people_at_risk(fake, ORG, NOW) == []
    windows = [query[1:3] for query in fake.queries if query[0] == "risk_from_between"]
    assert windows[0] == (NOW - timedelta(days=views.AT_RISK_FIRST_WINDOW_DAYS), NOW)
    # Contiguous, widening while few are found, never wider than the maximum, ending at the horizon.
    assert all(upper == previous_lower for (previous_lower, _), (_, upper) in itertools.pairwise(windows))
    assert all(upper - lower <= timedelta(days=views.AT_RISK_MAX_WINDOW_DAYS) for lower, upper in windows)
    assert windows[1][1] - windows[1][0] == 2 * (windows[0][1] - windows[0][0])
    assert windows[-1][0] == NOW - timedelta(days=RiskRule().lost_after_days)


def test_at_risk_lists_regulars_gone_quiet_with_the_events_they_missed() -> None:
    fake = FakeDashboard()
    last_seen = NOW - timedelta(days=100)
    fake.event_docs = [_event("e1", 101), _event("e2", 50), _event("e3", 10), _event("e4", 5, status="cancelled")]
    fake.summaries = [
        _person("regular", 6, last_seen=last_seen, typical_gap_days=10.0, risk_from=NOW - timedelta(days=80)),
        # Quiet, but not yet for twice their usual gap: the rule has the last word.
        _person("slow", 6, last_seen=last_seen, typical_gap_days=60.0, risk_from=NOW - timedelta(days=20)),
    ]
    rows = views.people_at_risk(fake, ORG, NOW)
    assert [(row["person_id"], row["days_since_last_visit"], row["events_missed_since"]) for row in rows] == [
        ("regular", 100, 2)
    ]
    assert rows[0]["usual_gap_days"] == 10.0


def test_an_event_report_makes_the_same_five_reads_as_on_mongodb() -> None:
    fake = FakeDashboard()
    arrivals = {"-5": 4, "0": 10, "5": 2}
    fake.event_docs = [
        _event("e1", 1, registered=20, checked_in=16, first_timers=2, arrivals=arrivals),
        _event("e0", 30, registered=10, checked_in=10, arrivals={"0": 5, "5": 5}),
        _event("next", -7, status="scheduled", registered=30),
        _event("other-kind", -3, status="scheduled", kind="meeting", registered=99),
    ]
    fake.lane_docs = [
        {"org_id": ORG, "event_id": "e1", "lane": "door-a", "arrivals": {"0": 8}, "checked_in": 12},
        {"org_id": ORG, "event_id": "e1", "lane": "door-b", "arrivals": {"0": 2}, "checked_in": 4},
    ]
    fake.summaries = [
        _person("p1", 1, first_event="e1"),
        _person("p2", 3, first_event="e1"),
        _person("p3", 4, first_event="e0"),
    ]
    report = views.event_report(fake, ORG, "e1", NOW)
    assert report is not None
    assert [query[0] for query in fake.queries] == [
        "event",
        "lanes",
        "ended_events",
        "next_scheduled",
        "first_timers_attended",
    ]
    assert report["event"]["show_rate"] == 0.8
    assert report["peak"] == {"window": "0 to +5 min", "arrivals": 10, "per_minute": 2.0}
    assert [lane["kiosk_id"] for lane in report["lanes"]] == ["door-a", "door-b"]
    assert report["first_timers_returned"] == {
        "first_timers": 2,
        "came_back": 1,
        "rate": 0.5,
        "welcomed": {"first_timers": 0, "came_back": 0, "rate": None},  # nobody welcomed: not even asked
        "not_welcomed": {"first_timers": 2, "came_back": 1, "rate": 0.5},
    }
    hint = report["staffing_hint"]
    assert hint["based_on_events"] == 2 and hint["lane_capacity_5min"] == 8
    assert hint["next_event"]["event_id"] == "next" and hint["next_event"]["registered"] == 30
    assert views.event_report(fake, ORG, "nope", NOW) is None


def test_a_person_with_visit_titles_and_followups() -> None:
    fake = FakeDashboard()
    fake.event_docs = [_event("e1", 40), _event("e2", 10)]
    fake.summaries = [_person("p1", 2, first_name="Ada", last_name="L", centihours=150)]
    fake.facts = [
        {
            "_id": "p1",
            "org_id": ORG,
            "visits": [
                {"event_id": "e2", "checkin_at": NOW - timedelta(days=10), "starts_at": NOW - timedelta(days=10)},
                {"event_id": "e1", "checkin_at": NOW - timedelta(days=40), "first_time": True},
                {"event_id": "gone", "checkin_at": NOW - timedelta(days=50)},
                {"event_id": "e3"},  # registered, never came
            ],
            "followups": [{"followup_id": "f1", "nudge_kind": "thank_you", "sent_at": NOW - timedelta(days=9)}],
        }
    ]
    found = views.person(fake, ORG, "p1", NOW)
    assert found is not None
    assert found["name"] == "Ada L" and found["volunteer_hours"] == 1.5
    assert [(v["event_id"], v["title"], v["first_time"]) for v in found["visits"]] == [
        ("gone", None, False),
        ("e1", "Event e1", True),
        ("e2", "Event e2", False),
    ]
    assert found["followups"][0]["sent_at"] == "2026-03-06T18:00:00.000Z"
    assert [query[0] for query in fake.queries] == ["person_summary", "person_facts", "event_titles"]
    assert views.person(fake, ORG, "nobody", NOW) is None


def test_the_overview_counts_held_events_in_the_range() -> None:
    fake = FakeDashboard()
    fake.event_docs = [
        _event("e1", 20, registered=10, checked_in=8, walk_ins=1, first_timers=3, not_arrived=2),
        _event("e2", 12, registered=5, checked_in=5, status="cancelled"),
        _event("old", 400, registered=50, checked_in=50),
        _event("now", 0.02, status="scheduled", registered=4, checked_in=1),
    ]
    fake.cohorts = [{"org_id": ORG, "cohort": "2026-02", "size": 3, "m0": 3, "m1": 1}]
    chosen = DateRange(start=(NOW - timedelta(days=60)).date(), end=NOW.date())
    figures = views.overview(fake, ORG, NOW, chosen)
    assert figures["events"] == 2
    assert (figures["registered"], figures["checked_in"], figures["no_shows"]) == (14, 9, 2)
    assert [event["event_id"] for event in figures["live_events"]] == ["now"]
    assert [query[0] for query in fake.queries] == ["events", "cohort_cells"]


def test_an_event_report_splits_the_first_timers_who_came_back_by_welcomed() -> None:
    fake = FakeDashboard()
    fake.event_docs = [_event("e1", 1, registered=5, checked_in=4, first_timers=4, first_timers_welcomed=2)]
    fake.summaries = [
        _person("p1", 2, first_event="e1"),  # welcomed, came back
        _person("p2", 1, first_event="e1"),  # welcomed, not yet
        _person("p3", 1, first_event="e1"),  # not welcomed, not back
        _person("p4", 1, first_event="e1"),
    ]
    fake.registration_facts = [
        {"_id": "r1", "org_id": ORG, "person_id": "p1", "welcomed_event": "e1"},
        {"_id": "r2", "org_id": ORG, "person_id": "p2", "welcomed_event": "e1"},
        {"_id": "r9", "org_id": "another-org", "person_id": "p3", "welcomed_event": "e1"},  # never another's
    ]
    report = views.event_report(fake, ORG, "e1", NOW)
    assert report is not None
    assert report["event"]["first_timers_welcomed"] == 2 and report["event"]["welcomed_share"] == 0.5
    back = report["first_timers_returned"]
    assert back["welcomed"] == {"first_timers": 2, "came_back": 1, "rate": 0.5}
    assert back["not_welcomed"] == {"first_timers": 2, "came_back": 0, "rate": 0.0}
    assert (back["first_timers"], back["came_back"]) == (4, 1)
