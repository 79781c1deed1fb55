"""The daytime window: no 3 a.m. emails, in the gathering's own time zone, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from followup.domain.schedule import DaytimeWindow, InvalidWindow, first_send_time, parse_clock, zone

WINDOW = DaytimeWindow.parse("09:00", "20:00")


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


@pytest.mark.parametrize(
    ("utc", "tz", "expected_local"),
    [
        # 14:00 in Berlin (winter, UTC+1): inside, unchanged.
        (datetime(2026, 1, 15, 13, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 1, 15, 14, 0)),
        # 03:00 in Berlin: wait for 09:00 the same morning.
        (datetime(2026, 1, 15, 2, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 1, 15, 9, 0)),
        # 21:30 in Berlin: the next morning.
        (datetime(2026, 1, 15, 20, 30, tzinfo=UTC), "Europe/Berlin", datetime(2026, 1, 16, 9, 0)),
        # The same instant is daytime in Los Angeles.
        (datetime(2026, 1, 15, 20, 30, tzinfo=UTC), "America/Los_Angeles", datetime(2026, 1, 15, 12, 30)),
        # ... and night in Auckland (UTC+13 in January): next morning there.
        (datetime(2026, 1, 15, 10, 0, tzinfo=UTC), "Pacific/Auckland", datetime(2026, 1, 16, 9, 0)),
        # Half-hour zone.
        (datetime(2026, 1, 15, 1, 0, tzinfo=UTC), "Asia/Kolkata", datetime(2026, 1, 15, 9, 0)),
        # 20:00 sharp is outside ([start, end)).
        (datetime(2026, 7, 1, 18, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 7, 2, 9, 0)),
    ],
)
def test_moves_into_the_local_daytime_window(utc: datetime, tz: str, expected_local: datetime) -> None:
    allowed = WINDOW.next_allowed(utc, ZoneInfo(tz))
    assert local(allowed, tz).replace(tzinfo=None) == expected_local
    assert allowed >= utc


def test_across_the_spring_dst_change() -> None:
    # Europe/Berlin jumps 02:00 -> 03:00 on 29 March 2026. An event ending at
    # 23:00 on the 28th is followed up at 09:00 CEST (07:00 UTC), not 08:00 UTC.
    ended = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    allowed = WINDOW.next_allowed(ended, ZoneInfo("Europe/Berlin"))
    assert allowed == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_across_the_autumn_dst_change() -> None:
    # New York falls back 02:00 -> 01:00 on 1 November 2026: 09:00 EST is 14:00 UTC.
    ended = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    allowed = WINDOW.next_allowed(ended, ZoneInfo("America/New_York"))
    assert allowed == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_a_window_start_inside_a_dst_gap_moves_forward() -> None:
    # Havana skips 00:00-01:00 on 8 March 2026: a window opening at 00:30 opens at 01:30.
    window = DaytimeWindow.parse("00:30", "20:00")
    before = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)  # 22:00 on the 7th, local
    allowed = window.next_allowed(before, ZoneInfo("America/Havana"))
    assert local(allowed, "America/Havana").replace(tzinfo=None) == datetime(2026, 3, 8, 1, 30)


def test_first_send_time_adds_the_delay_and_never_looks_back() -> None:
    tz = ZoneInfo("Europe/Berlin")
    ended = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)  # 18:00 local
    now = ended + timedelta(minutes=1)
    assert first_send_time(ended, timedelta(hours=1), WINDOW, tz, now) == ended + timedelta(hours=1)
    # Delay pushes past 20:00: next morning.
    late = first_send_time(ended, timedelta(hours=3), WINDOW, tz, now)
    assert local(late, "Europe/Berlin").replace(tzinfo=None) == datetime(2026, 1, 16, 9, 0)
    # A worker that was down: never in the past.
    much_later = ended + timedelta(hours=20)  # 14:00 next day
    assert first_send_time(ended, timedelta(hours=1), WINDOW, tz, much_later) == much_later


def test_always_open_window_and_parsing() -> None:
    always = DaytimeWindow.parse("00:00", "24:00")
    moment = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    assert always.always and always.next_allowed(moment, ZoneInfo("Europe/Berlin")) == moment
    assert parse_clock("9:05") == 545
    for bad in ("25:00", "9", "09:60", "ab:cd", "24:01"):
        with pytest.raises(InvalidWindow):
            parse_clock(bad)
    with pytest.raises(InvalidWindow):
        DaytimeWindow.parse("20:00", "09:00")
    assert zone("Not/AZone") == ZoneInfo("UTC")
