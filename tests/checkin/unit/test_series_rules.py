"""When a series' occurrences happen: weekly/monthly, until/count, the cap, DST-correct local times."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from checkin.domain.model import RuleBroken
from checkin.domain.series import (
    MAX_OCCURRENCES,
    Recurrence,
    day_of_month_label,
    describe,
    group_series,
    neighbours,
    occurrence_dates,
    occurrence_times,
    recurrence_from,
)

CHICAGO = ZoneInfo("America/Chicago")


def test_a_6pm_weekly_shift_stays_6pm_local_across_the_dst_change() -> None:
    # 2026-10-27 18:00 CDT (UTC-5) ... 2026-11-03 18:00 CST (UTC-6): DST ends on 1 November.
    start = datetime(2026, 10, 27, 18, 0, tzinfo=CHICAGO).astimezone(UTC)
    end = datetime(2026, 10, 27, 21, 0, tzinfo=CHICAGO).astimezone(UTC)
    times = occurrence_times(start, end, "America/Chicago", Recurrence("weekly", count=3))
    assert [s.astimezone(CHICAGO).strftime("%Y-%m-%d %H:%M") for s, _ in times] == [
        "2026-10-27 18:00",
        "2026-11-03 18:00",
        "2026-11-10 18:00",
    ]
    assert [s.hour for s, _ in times] == [23, 0, 0]  # UTC moves by an hour instead
    assert all((e - s).total_seconds() == 3 * 3600 for s, e in times)


def test_every_other_week_until_a_date_includes_the_last_day() -> None:
    dates = occurrence_dates(date(2026, 3, 3), Recurrence("weekly", interval=2, until=date(2026, 3, 31)))
    assert dates == [date(2026, 3, 3), date(2026, 3, 17), date(2026, 3, 31)]


def test_monthly_by_day_skips_months_without_that_day() -> None:
    dates = occurrence_dates(date(2026, 1, 31), Recurrence("monthly", count=4))
    assert dates == [date(2026, 1, 31), date(2026, 3, 31), date(2026, 5, 31), date(2026, 7, 31)]


def test_monthly_by_weekday_is_the_2nd_tuesday() -> None:
    dates = occurrence_dates(date(2026, 1, 13), Recurrence("monthly", count=3, monthly_by="weekday"))
    assert dates == [date(2026, 1, 13), date(2026, 2, 10), date(2026, 3, 10)]
    assert all(d.weekday() == 1 for d in dates)


def test_more_than_the_cap_is_refused_by_count_and_by_until() -> None:
    with pytest.raises(RuleBroken) as by_count:
        recurrence_from({"frequency": "weekly", "count": MAX_OCCURRENCES + 1})
    assert by_count.value.code == "too_many_occurrences"
    with pytest.raises(RuleBroken) as by_until:
        occurrence_dates(date(2026, 1, 1), Recurrence("weekly", until=date(2030, 1, 1)))
    assert by_until.value.code == "too_many_occurrences" and by_until.value.field == "recurrence.until"
    assert len(occurrence_dates(date(2026, 1, 1), Recurrence("weekly", count=MAX_OCCURRENCES))) == MAX_OCCURRENCES


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"frequency": "daily", "count": 3}, "recurrence.frequency"),
        ({"frequency": "weekly"}, "recurrence"),
        ({"frequency": "weekly", "count": 3, "until": "2026-12-01"}, "recurrence"),
        ({"frequency": "weekly", "until": "next year"}, "recurrence.until"),
        ({"frequency": "weekly", "count": 3, "interval": 0}, "recurrence.interval"),
        ({"frequency": "monthly", "count": 3, "monthly_by": "moon"}, "recurrence.monthly_by"),
    ],
)
def test_bad_recurrences_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        recurrence_from(body)
    assert refused.value.field == field


def test_until_before_the_first_occurrence_is_refused() -> None:
    with pytest.raises(RuleBroken):
        occurrence_dates(date(2026, 5, 1), Recurrence("weekly", until=date(2026, 4, 1)))


def test_a_series_rule_in_words() -> None:
    saturday, tuesday, fifth_friday = date(2027, 3, 6), date(2027, 3, 9), date(2027, 4, 30)
    assert describe({"frequency": "weekly", "interval": 1}, saturday) == "Weekly on Saturday"
    assert describe({"frequency": "weekly", "interval": 2}, saturday) == "Every 2 weeks on Saturday"
    assert describe({"frequency": "monthly", "monthly_by": "weekday"}, tuesday) == "Monthly on the 2nd Tuesday"
    assert describe({"frequency": "monthly", "monthly_by": "weekday"}, fifth_friday) == "Monthly on the last Friday"
    monthly = {"frequency": "monthly", "interval": 3, "monthly_by": "day_of_month"}
    assert describe(monthly, date(2027, 3, 11)) == "Every 3 months on the 11th"
    assert [day_of_month_label(date(2027, 1, d)) for d in (1, 2, 3, 12, 22, 31)] == [
        "the 1st",
        "the 2nd",
        "the 3rd",
        "the 12th",
        "the 22nd",
        "the 31st",
    ]


def test_a_list_shows_each_series_once_where_its_first_listed_occurrence_is() -> None:
    listed = [
        {"_id": "a1", "series_id": "a", "occurrence": 1},
        {"_id": "x"},
        {"_id": "a2", "series_id": "a", "occurrence": 2},
        {"_id": "b4", "series_id": "b", "occurrence": 4},
        {"_id": "a3", "series_id": "a", "occurrence": 3},
    ]
    entries = group_series(listed)
    assert [(entry.event["_id"], [doc["_id"] for doc in entry.rest]) for entry in entries] == [
        ("a1", ["a2", "a3"]),
        ("x", []),
        ("b4", []),
    ]
    assert sum(entry.size for entry in entries) == len(listed)


def test_an_occurrence_s_neighbours_are_the_numbers_either_side() -> None:
    series = [{"_id": f"e{n}", "occurrence": n} for n in (3, 1, 2)]
    assert neighbours(series, "e1") == (None, series[2])
    assert neighbours(series, "e2") == (series[1], series[0])
    assert neighbours(series, "e3") == (series[2], None)
    assert neighbours(series, "elsewhere") == (None, None)
