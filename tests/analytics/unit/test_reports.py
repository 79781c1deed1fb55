"""The read-side rules: the arrival curve, the staffing hint, retention, the
funnel, trends, people at risk, and CSV escaping."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from analytics.domain import reports
from analytics.entrypoints.csv_export import escape_cell, to_csv

NOW = datetime(2026, 6, 15, tzinfo=UTC)


def test_arrival_curve_fills_empty_buckets_and_runs_a_total() -> None:
    points = reports.arrival_curve({"-10": 2, "5": 3, "0": 0})
    assert [(p.minutes, p.arrivals, p.cumulative) for p in points] == [(-10, 2, 2), (-5, 0, 2), (0, 0, 2), (5, 3, 5)]
    assert reports.bucket_label(-10) == "-10 to -5 min"
    assert reports.bucket_label(0) == "0 to +5 min"
    assert reports.peak({"-10": 3, "5": 3}) == (-10, 3)
    assert reports.arrival_curve({}) == []


def test_lane_throughput_orders_the_busiest_lane_first() -> None:
    lanes = reports.lane_throughput({"a": {"0": 2}, "": {"0": 1, "5": 4}}, {"a": 2, "": 5})
    assert [(lane.kiosk_id, lane.peak_arrivals, lane.peak_per_minute) for lane in lanes] == [
        (None, 4, 0.8),
        ("a", 2, 0.4),
    ]


def test_staffing_hint_scales_past_peaks_to_the_next_event() -> None:
    history = [
        reports.event_peak({"-10": 10, "-5": 30, "0": 20}, checked_in=60, registered=80),
        reports.event_peak({"-5": 25, "0": 25}, checked_in=50, registered=60),
    ]
    hint = reports.staffing_hint(history, lane_peaks=[12, 9], registered_next=120)
    assert hint is not None
    # median show rate 0.79 -> 95 arrivals; median peak share 0.5 -> 48 in the busiest 5 minutes; 12 a lane
    assert (hint.expected_arrivals, hint.expected_peak, hint.lane_capacity, hint.lanes) == (95, 48, 12, 4)
    assert hint.open_from_minutes == -15
    assert "Staff 4 check-in lanes from 15 minutes before the start" in hint.text
    unmeasured = reports.staffing_hint(history, lane_peaks=[])
    assert unmeasured is not None and not unmeasured.capacity_measured
    assert unmeasured.lane_capacity == reports.DEFAULT_LANE_PER_BUCKET
    assert reports.staffing_hint([], []) is None


def test_retention_matrix_marks_months_not_reached_yet() -> None:
    rows = reports.retention_matrix(
        [{"cohort": "2026-05", "size": 4, "returned": 2, "m0": 4, "m1": 1}, {"cohort": "2026-06", "size": 0}],
        NOW,
        max_offset=3,
    )
    assert len(rows) == 1
    assert rows[0].retention == [1.0, 0.25, None, None]
    assert reports.first_timer_return_rate(rows) == 0.5
    assert reports.average_retention(rows) == [1.0, 0.25, None, None]


def test_funnel_sums_months_per_kind_in_the_usual_order() -> None:
    cells = [
        {"kind": "win_back", "month": "2026-01", "sent": 2, "returned": 1},
        {"kind": "thank_you", "month": "2026-01", "sent": 3, "opened": 2, "clicked": 1},
        {"kind": "thank_you", "month": "2026-02", "sent": 1, "opened": 1},
    ]
    rows = reports.funnel(cells)
    assert [(r.nudge_kind, r.sent, r.opened, r.clicked, r.returned) for r in rows] == [
        ("thank_you", 4, 3, 1, 0),
        ("win_back", 2, 0, 0, 1),
    ]
    assert rows[0].rates() == {"open_rate": 0.75, "click_rate": 0.25, "return_rate": 0.0}


def test_trend_fills_months_and_leaves_out_cancelled_events() -> None:
    events = [
        {"starts_at": datetime(2026, 1, 5, tzinfo=UTC), "kind": "workshop", "registered": 10, "checked_in": 8},
        {"starts_at": datetime(2026, 3, 5, tzinfo=UTC), "kind": "workshop", "registered": 5, "checked_in": 5},
        {"starts_at": datetime(2026, 2, 5, tzinfo=UTC), "kind": "workshop", "status": "cancelled", "checked_in": 0},
    ]
    points = reports.attendance_trend(events)
    assert [(p.month, p.events, p.checked_in) for p in points] == [
        ("2026-01", 1, 8),
        ("2026-02", 0, 0),
        ("2026-03", 1, 5),
    ]


def test_at_risk_means_a_regular_quiet_for_twice_their_usual_gap() -> None:
    starts = [NOW - timedelta(days=d) for d in (100, 70, 40, 10)]
    last = NOW - timedelta(days=70)
    risk = reports.at_risk(5, last, 20.0, NOW, starts, last_event_at=last)
    assert risk is not None and (risk.days_quiet, risk.missed_events) == (70, 2)
    assert reports.at_risk(2, last, 20.0, NOW, starts) is None  # not a regular
    assert reports.at_risk(5, NOW - timedelta(days=50), 30.0, NOW, starts) is None  # within 2x their gap
    assert reports.at_risk(5, NOW - timedelta(days=400), 30.0, NOW, starts) is None  # gone, not at risk


def test_current_streak_counts_while_it_reaches_last_month() -> None:
    assert reports.current_streak(3, "2026-05", NOW) == 3
    assert reports.current_streak(3, "2026-04", NOW) == 0
    assert reports.current_streak(0, None, NOW) == 0


def test_csv_cells_that_look_like_formulas_are_defused() -> None:
    for dangerous in ('=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert escape_cell(dangerous) == "'" + dangerous
    assert escape_cell(-15) == -15  # a real number is no formula
    assert escape_cell("Ana") == "Ana"
    assert escape_cell(None) == ""
    assert escape_cell(True) == "yes"
    text = to_csv([{"name": "=cmd|' /C calc'!A0", "n": -5}], [("name", "name"), ("n", "minutes")])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["name", "minutes"], ["'=cmd|' /C calc'!A0", "-5"]]


def test_loyalty_bands_group_people_by_how_often_they_came() -> None:
    bands = reports.loyalty_bands([(1, 6), (2, 2), (4, 1), (12, 1)])
    assert [(b.label, b.people, b.share) for b in bands] == [
        ("once", 6, 0.6),
        ("twice", 2, 0.2),
        ("3 to 5 times", 1, 0.1),
        ("6 to 10 times", 0, 0.0),
        ("11 times or more", 1, 0.1),
    ]
    assert [b.share for b in reports.loyalty_bands([])] == [None] * 5


@pytest.mark.parametrize(
    ("offset", "limit", "window"),
    [
        (0, 2, (9, 9, 0)),  # the top 2 are both at 9 events
        (0, 4, (5, 9, 0)),  # 3 at 9, then into the 5s
        (2, 3, (5, 9, 2)),  # skip the first two 9s
        (3, 2, (5, 5, 0)),  # starts exactly at the 5s
        (5, 100, (1, 5, 2)),  # to the end
        (10, 5, None),  # past the end
    ],
)
def test_a_people_page_reads_only_the_events_attended_range_it_covers(
    offset: int, limit: int, window: tuple[int, int, int] | None
) -> None:
    from analytics.service_layer.views import rank_window

    # 3 people came 9 times, 4 came 5 times, 3 came once: ranks 0-2, 3-6, 7-9.
    assert rank_window([(9, 3), (5, 4), (1, 3)], offset, limit) == window
