"""Recurring events (a series of shifts) as pure rules: when each occurrence happens.

An occurrence keeps the first one's *local* wall-clock time in the event's time
zone, so a 6 pm shift stays 6 pm across a daylight-saving change (its UTC time
moves instead). Monthly series repeat by day of month ("the 15th"; a month
without that day is skipped, as in RFC 5545) or by weekday of month ("the 2nd
Tuesday"; a 5th weekday means "the last" one of each month).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from checkin.domain.model import RuleBroken

MAX_OCCURRENCES = 104
FREQUENCIES = ("weekly", "monthly")
MONTHLY_BY = ("day_of_month", "weekday")
SCOPES = ("this", "following")


@dataclass(frozen=True, slots=True)
class Recurrence:
    """How a series repeats: every ``interval`` weeks or months, until a date or ``count`` times."""

    frequency: str
    interval: int = 1
    count: int | None = None
    until: date | None = None
    monthly_by: str = "day_of_month"

    def as_doc(self) -> dict[str, Any]:
        return {
            "frequency": self.frequency,
            "interval": self.interval,
            "count": self.count,
            "until": self.until.isoformat() if self.until else None,
            "monthly_by": self.monthly_by if self.frequency == "monthly" else None,
        }


def recurrence_from(body: dict[str, Any]) -> Recurrence:
    """Check a recurrence as the API or form gives it; a clear ``RuleBroken`` names what is wrong."""
    frequency = body.get("frequency")
    if frequency not in FREQUENCIES:
        raise RuleBroken("invalid_field", "recurrence.frequency: weekly or monthly", "recurrence.frequency")
    interval = body.get("interval", 1)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 12:
        raise RuleBroken("invalid_field", "recurrence.interval: a whole number from 1 to 12", "recurrence.interval")
    count, until_text = body.get("count"), body.get("until")
    if (count is None) == (until_text is None):
        raise RuleBroken("invalid_field", "recurrence: give either count or until (not both)", "recurrence")
    until = None
    if count is not None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise RuleBroken("invalid_field", "recurrence.count: a whole number from 1", "recurrence.count")
        if count > MAX_OCCURRENCES:
            raise RuleBroken(
                "too_many_occurrences",
                f"recurrence.count: at most {MAX_OCCURRENCES} occurrences in one series",
                "recurrence.count",
            )
    else:
        try:
            until = date.fromisoformat(str(until_text))
        except ValueError as exc:
            raise RuleBroken("invalid_field", "recurrence.until: a date like 2026-12-31", "recurrence.until") from exc
    monthly_by = body.get("monthly_by") or "day_of_month"
    if monthly_by not in MONTHLY_BY:
        raise RuleBroken("invalid_field", "recurrence.monthly_by: day_of_month or weekday", "recurrence.monthly_by")
    return Recurrence(str(frequency), interval, count, until, str(monthly_by))


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    """The ``nth`` (1-4, or 5 = last) ``weekday`` of a month."""
    days = [d for d in calendar.Calendar().itermonthdates(year, month) if d.month == month and d.weekday() == weekday]
    return days[-1] if nth >= 5 else days[nth - 1]


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def occurrence_dates(first: date, rule: Recurrence) -> list[date]:
    """The local dates of a series, the first included; more than the cap is refused."""
    dates: list[date] = []
    step = 0
    limit = rule.count if rule.count is not None else MAX_OCCURRENCES + 1
    while len(dates) < limit:
        if rule.frequency == "weekly":
            day: date | None = first + timedelta(weeks=step * rule.interval)
        else:
            year, month = _add_months(first.year, first.month, step * rule.interval)
            if rule.monthly_by == "weekday":
                day = _nth_weekday(year, month, first.weekday(), (first.day - 1) // 7 + 1)
            else:
                day = date(year, month, first.day) if first.day <= calendar.monthrange(year, month)[1] else None
        step += 1
        if step > 10 * MAX_OCCURRENCES:  # monthly on the 31st skips months; never loop forever
            break
        if day is None:
            continue
        if rule.until is not None and day > rule.until:
            break
        dates.append(day)
    if len(dates) > MAX_OCCURRENCES:
        raise RuleBroken(
            "too_many_occurrences",
            f"recurrence.until: that makes more than {MAX_OCCURRENCES} occurrences; choose an earlier end date",
            "recurrence.until",
        )
    if not dates:
        raise RuleBroken(
            "invalid_field", "recurrence.until: must not be before the first occurrence", "recurrence.until"
        )
    return dates


def occurrence_times(
    starts_at: datetime, ends_at: datetime, timezone: str, rule: Recurrence
) -> list[tuple[datetime, datetime]]:
    """(starts_at, ends_at) in UTC of each occurrence, keeping the first's local wall-clock times."""
    zone = ZoneInfo(timezone)
    local_start = starts_at.astimezone(zone)
    local_end = ends_at.astimezone(zone)
    span_days = (local_end.date() - local_start.date()).days
    times = []
    for day in occurrence_dates(local_start.date(), rule):
        start = datetime.combine(day, local_start.time().replace(tzinfo=None), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=span_days), local_end.time().replace(tzinfo=None), tzinfo=zone)
        times.append((start.astimezone(UTC), end.astimezone(UTC)))
    return times


def moved_to(moment: datetime, zone: str, template_day: date, day: date) -> datetime:
    """``moment``'s local wall-clock time (in ``zone``) carried from the occurrence on local date
    ``template_day`` to the one on ``day`` (same days apart, same local time), as UTC."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    target = day + (local.date() - template_day)
    return datetime.combine(target, local.time().replace(tzinfo=None), tzinfo=tz).astimezone(UTC)


def local_date(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "last"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def day_of_month_label(first: date) -> str:
    """``the 15th``: how a monthly-by-day series names its day."""
    suffix = "th" if 10 <= first.day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(first.day % 10, "th")
    return f"the {first.day}{suffix}"


def weekday_of_month_label(first: date) -> str:
    """``the 2nd Tuesday`` (a 5th weekday repeats as ``the last Tuesday``)."""
    return f"the {ORDINALS[(first.day - 1) // 7 + 1]} {WEEKDAYS[first.weekday()]}"


def describe(rule: dict[str, Any], first: date) -> str:
    """A series' rule in words, from its stored document and first local date:
    ``Every 2 weeks on Saturday``, ``Monthly on the 2nd Tuesday``."""
    interval = int(rule.get("interval") or 1)
    if rule.get("frequency") == "weekly":
        every = "Weekly" if interval == 1 else f"Every {interval} weeks"
        return f"{every} on {WEEKDAYS[first.weekday()]}"
    every = "Monthly" if interval == 1 else f"Every {interval} months"
    on = weekday_of_month_label(first) if rule.get("monthly_by") == "weekday" else day_of_month_label(first)
    return f"{every} on {on}"


@dataclass(frozen=True, slots=True)
class SeriesEntry:
    """One line of an events list: a lone event (``rest`` empty), or the first listed occurrence of a
    series standing for the series, with its other occurrences of the same list in ``rest``."""

    event: dict[str, Any]
    rest: tuple[dict[str, Any], ...] = ()

    @property
    def size(self) -> int:
        """How many events of the list the entry stands for."""
        return 1 + len(self.rest)


def group_series(events: list[dict[str, Any]]) -> list[SeriesEntry]:
    """Collapse the occurrences of each series in a list into one entry at the place of its first,
    keeping the list's order otherwise (8 weekly shifts are one line, not 8 unrelated rows)."""
    entries: list[SeriesEntry] = []
    at: dict[str, int] = {}
    for event in events:
        series_id = event.get("series_id")
        if not series_id:
            entries.append(SeriesEntry(event))
        elif series_id in at:
            index = at[series_id]
            entries[index] = SeriesEntry(entries[index].event, (*entries[index].rest, event))
        else:
            at[series_id] = len(entries)
            entries.append(SeriesEntry(event))
    return entries


def neighbours(occurrences: list[dict[str, Any]], event_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The occurrences just before and just after ``event_id`` in its series (ordered by number)."""
    ordered = sorted(occurrences, key=lambda doc: int(doc["occurrence"]))
    ids = [doc["_id"] for doc in ordered]
    if event_id not in ids:
        return None, None
    index = ids.index(event_id)
    return (ordered[index - 1] if index > 0 else None), (ordered[index + 1] if index + 1 < len(ordered) else None)
