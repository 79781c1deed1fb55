"""When a nudge may go out: after the gathering plus a delay, inside the
daytime window of the gathering's time zone (no 3 a.m. emails)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class InvalidWindow(ValueError):
    """A daytime window that cannot be used (bad times, or start not before end)."""


def parse_clock(text: str) -> int:
    """``"09:30"`` -> minutes after midnight; ``"24:00"`` is allowed (end of day)."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise InvalidWindow(f"{text!r} is not a time of day like 09:00")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise InvalidWindow(f"{text!r} is not a time of day like 09:00")
    return value


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or UTC when the name is unknown (checkin validated it already)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class DaytimeWindow:
    """Local minutes-after-midnight ``[start, end)`` during which email may be sent."""

    start: int = 9 * 60
    end: int = 20 * 60

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= 24 * 60:
            raise InvalidWindow("the window must start before it ends, within one day")

    @classmethod
    def parse(cls, start: str, end: str) -> DaytimeWindow:
        return cls(parse_clock(start), parse_clock(end))

    @property
    def always(self) -> bool:
        return self.start == 0 and self.end == 24 * 60

    def contains(self, moment: datetime, tz: ZoneInfo) -> bool:
        local = moment.astimezone(tz)
        minute = local.hour * 60 + local.minute
        return self.start <= minute < self.end

    def _opening(self, day: date, tz: ZoneInfo) -> datetime:
        """The first instant of ``day``'s window, in UTC.

        A start time that does not exist that day (skipped by a DST change)
        moves forward by the length of the gap (09:30 -> 10:30); an
        ambiguous one (repeated by a DST change) means its first occurrence.
        """
        wall = datetime.combine(day, time(self.start // 60, self.start % 60), tzinfo=tz)
        return wall.astimezone(UTC)

    def next_allowed(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """``moment`` if it is inside the window, else the next opening of the window (UTC)."""
        moment = moment.astimezone(UTC)
        if self.contains(moment, tz):
            return moment
        local_day = moment.astimezone(tz).date()
        for offset in range(0, 3):
            opening = self._opening(local_day + timedelta(days=offset), tz)
            if opening >= moment and self.contains(opening, tz):
                return opening
        # A window so short that DST swallowed it entirely: send at the next opening anyway.
        return self._opening(local_day + timedelta(days=1), tz)


def first_send_time(
    ended_at: datetime, delay: timedelta, window: DaytimeWindow, tz: ZoneInfo, now: datetime
) -> datetime:
    """When an ended gathering's nudges go out: ended + delay (never in the past), in the window."""
    due = max(ended_at + delay, now)
    return window.next_allowed(due, tz)
