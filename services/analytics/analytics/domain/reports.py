"""Read-side rules: how the stored figures become the dashboard's numbers
(show rates, the arrival curve, the staffing hint, the retention matrix, the
follow-up funnel, trends, people at risk). Pure functions of plain values."""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from analytics.domain.facts import month_from_index, month_index, month_of
from analytics.domain.registrations import BUCKET_MINUTES, NO_KIOSK
from turnout_common.clock import as_utc
from turnout_common.regulars import RiskRule, days_quiet_at_risk

# A lane's capacity when no kiosk recorded any check-in: one check-in every 15 seconds.
DEFAULT_LANE_PER_BUCKET = 20
NUDGE_KINDS = (
    "thank_you",
    "we_missed_you",
    "first_timer_welcome",
    "introduction_request",
    "introduction",
    "win_back",
    "volunteer_hours",
)


def show_rate(registered: int, checked_in: int) -> float | None:
    """Share of registered people who came (walk-ins count as registered)."""
    if registered <= 0:
        return None
    return round(min(1.0, checked_in / registered), 4)


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


# -- how often people come ---------------------------------------------------------------------------

LOYALTY_BANDS = (
    (1, 1, "once"),
    (2, 2, "twice"),
    (3, 5, "3 to 5 times"),
    (6, 10, "6 to 10 times"),
    (11, None, "11 times or more"),
)


@dataclass(frozen=True, slots=True)
class LoyaltyBand:
    label: str
    lowest: int
    highest: int | None
    people: int
    share: float | None


def loyalty_bands(counts: Iterable[tuple[int, int]]) -> list[LoyaltyBand]:
    """People by how many events they came to, in bands (once, twice, 3-5, 6-10, 11+)."""
    counted = list(counts)
    total = sum(people for _, people in counted)
    bands = []
    for lowest, highest, label in LOYALTY_BANDS:
        people = sum(n for attended, n in counted if attended >= lowest and (highest is None or attended <= highest))
        bands.append(LoyaltyBand(label, lowest, highest, people, share(people, total)))
    return bands


# -- the arrival curve -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurvePoint:
    minutes: int  # start of the 5-minute bucket, relative to the event's start
    arrivals: int
    cumulative: int


def bucket_label(minutes: int) -> str:
    """``-15 to -10 min``, ``+5 to +10 min``: a bucket relative to the start."""
    end = minutes + BUCKET_MINUTES

    def signed(value: int) -> str:
        return f"+{value}" if value > 0 else str(value)

    return f"{signed(minutes)} to {signed(end)} min"


def arrival_curve(arrivals: Mapping[str, int]) -> list[CurvePoint]:
    """Every bucket from the first to the last arrival (empty buckets as zeros)."""
    counts = {int(key): value for key, value in arrivals.items() if value}
    if not counts:
        return []
    points: list[CurvePoint] = []
    total = 0
    for minutes in range(min(counts), max(counts) + BUCKET_MINUTES, BUCKET_MINUTES):
        total += counts.get(minutes, 0)
        points.append(CurvePoint(minutes, counts.get(minutes, 0), total))
    return points


def peak(arrivals: Mapping[str, int]) -> tuple[int, int] | None:
    """(bucket, arrivals) of the busiest bucket; the earliest wins a tie."""
    counts = [(value, -int(key)) for key, value in arrivals.items() if value > 0]
    if not counts:
        return None
    value, negative_minutes = max(counts)
    return -negative_minutes, value


@dataclass(frozen=True, slots=True)
class LaneThroughput:
    kiosk_id: str | None  # None: checked in without a kiosk (staff, imports)
    checked_in: int
    peak_bucket: int | None
    peak_arrivals: int

    @property
    def peak_per_minute(self) -> float:
        return round(self.peak_arrivals / BUCKET_MINUTES, 2)


def lane_throughput(lanes: Mapping[str, Mapping[str, int]], checked_in: Mapping[str, int]) -> list[LaneThroughput]:
    """Per kiosk: check-ins and the busiest 5 minutes, busiest lane first."""
    out = []
    for lane, arrivals in lanes.items():
        top = peak(arrivals)
        out.append(
            LaneThroughput(
                kiosk_id=None if lane == NO_KIOSK else lane,
                checked_in=int(checked_in.get(lane, 0)),
                peak_bucket=top[0] if top else None,
                peak_arrivals=top[1] if top else 0,
            )
        )
    return sorted(out, key=lambda lane: (-lane.peak_arrivals, -lane.checked_in, lane.kiosk_id or ""))


@dataclass(frozen=True, slots=True)
class EventPeak:
    """What one past event says about staffing: how peaked its arrivals were."""

    checked_in: int
    registered: int
    peak_arrivals: int
    first_busy_bucket: int | None  # first bucket with at least a tenth of the peak


def event_peak(arrivals: Mapping[str, int], checked_in: int, registered: int) -> EventPeak:
    top = peak(arrivals)
    if top is None:
        return EventPeak(checked_in, registered, 0, None)
    threshold = max(1, math.ceil(top[1] / 10))
    busy = sorted(int(key) for key, value in arrivals.items() if value >= threshold)
    return EventPeak(checked_in, registered, top[1], busy[0] if busy else None)


@dataclass(frozen=True, slots=True)
class StaffingHint:
    lanes: int
    expected_arrivals: int
    expected_peak: int  # arrivals in the busiest 5 minutes
    lane_capacity: int  # check-ins one lane handled in 5 minutes
    capacity_measured: bool  # False: no kiosk data, a default was assumed
    open_from_minutes: int  # lanes staffed from this many minutes relative to the start
    based_on_events: int
    text: str


def staffing_hint(
    history: Sequence[EventPeak],
    lane_peaks: Iterable[int],
    registered_next: int | None = None,
) -> StaffingHint | None:
    """How many check-in lanes to staff for the next event of the same kind, and from when.

    The busiest five minutes are taken as the same share of the arrivals as
    in past events of that kind (the median), arrivals as the median show rate
    of the registered (or as the median turnout if the next event's
    registrations are unknown), and one lane's capacity as the most any kiosk
    handled in five minutes (20, one every 15 seconds, if no kiosk was used).
    """
    past = [item for item in history if item.checked_in > 0 and item.peak_arrivals > 0]
    if not past:
        return None
    peak_share = statistics.median(item.peak_arrivals / item.checked_in for item in past)
    rates = [item.checked_in / item.registered for item in past if item.registered > 0]
    if registered_next is not None and rates:
        expected = round(registered_next * min(1.0, statistics.median(rates)))
    else:
        expected = round(statistics.median(item.checked_in for item in past))
    measured = [value for value in lane_peaks if value > 0]
    capacity = max(measured) if measured else DEFAULT_LANE_PER_BUCKET
    expected_peak = max(1, math.ceil(expected * peak_share)) if expected else 0
    lanes = max(1, math.ceil(expected_peak / capacity))
    starts = [item.first_busy_bucket for item in past if item.first_busy_bucket is not None]
    # One bucket before the median first busy bucket, on the 5-minute grid.
    open_from = -15
    if starts:
        grid = math.floor(statistics.median(starts) / BUCKET_MINUTES) * BUCKET_MINUTES
        open_from = min(0, grid - BUCKET_MINUTES)
    when = f"{-open_from} minutes before the start" if open_from < 0 else "the start"
    assumed = "" if measured else " (assumed: no kiosk recorded its scans)"
    text = (
        f"Staff {lanes} check-in lane{'s' if lanes != 1 else ''} from {when}: expect about {expected} arrivals, "
        f"{expected_peak} of them in the busiest 5 minutes; one lane handled up to {capacity} per 5 minutes"
        f"{assumed}. Based on {len(past)} past event{'s' if len(past) != 1 else ''} of this kind."
    )
    return StaffingHint(lanes, expected, expected_peak, capacity, bool(measured), open_from, len(past), text)


# -- people ------------------------------------------------------------------------------------------


def current_streak(streak_last: int, streak_last_month: str | None, now: datetime) -> int:
    """Months in a row up to now: the last run counts while it reaches this or last month."""
    if not streak_last_month:
        return 0
    gap = month_index(month_of(now)) - month_index(streak_last_month)
    return streak_last if gap <= 1 else 0


@dataclass(frozen=True, slots=True)
class Risk:
    days_quiet: int
    usual_gap_days: float | None
    missed_events: int


def at_risk(
    events_attended: int,
    last_seen: datetime | None,
    typical_gap_days: float | None,
    now: datetime,
    event_starts: Sequence[datetime],
    rule: RiskRule = RiskRule(),
    last_event_at: datetime | None = None,
) -> Risk | None:
    """A regular who stopped coming: enough visits, and quiet for much longer than usual.

    ``event_starts`` are the organization's held events, sorted, in UTC; those
    that started after the last event the person came to are reported as missed.
    """
    # The rule itself is shared with follow-up's win-back drafts (``turnout_common.regulars``).
    quiet = days_quiet_at_risk(events_attended, last_seen, typical_gap_days, now, rule)
    if quiet is None or last_seen is None:
        return None
    since = as_utc(last_event_at or last_seen)
    # ``event_starts`` is sorted: count the starts in (since, now] by bisection.
    missed = max(0, bisect_right(event_starts, as_utc(now)) - bisect_right(event_starts, since))
    return Risk(int(quiet), typical_gap_days, missed)


# -- cohorts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CohortRow:
    cohort: str
    size: int
    returned: int  # came to at least one more event, any time
    retention: list[float | None]  # index k: share who came in month cohort+k (None: not yet happened)
    counts: list[int | None]


def retention_matrix(cohorts: Iterable[Mapping[str, Any]], now: datetime, max_offset: int = 12) -> list[CohortRow]:
    """Rows of the heatmap, oldest cohort first; months after ``now`` are None."""
    current = month_index(month_of(now))
    rows = []
    for doc in sorted(cohorts, key=lambda d: str(d["cohort"])):
        size = int(doc.get("size", 0))
        if size <= 0:
            continue
        start = month_index(doc["cohort"])
        counts: list[int | None] = []
        shares: list[float | None] = []
        for offset in range(max_offset + 1):
            if start + offset > current:
                counts.append(None)
                shares.append(None)
            else:
                count = int(doc.get(f"m{offset}", 0))
                counts.append(count)
                shares.append(share(count, size))
        rows.append(CohortRow(doc["cohort"], size, int(doc.get("returned", 0)), shares, counts))
    return rows


def first_timer_return_rate(rows: Sequence[CohortRow]) -> float | None:
    """Of everyone whose first event falls in the range, the share who came back at least once."""
    return share(sum(row.returned for row in rows), sum(row.size for row in rows))


def average_retention(rows: Sequence[CohortRow]) -> list[float | None]:
    """Per month offset, the share over every cohort that has reached it (weighted by size)."""
    if not rows:
        return []
    width = max(len(row.retention) for row in rows)
    out: list[float | None] = []
    for offset in range(width):
        sizes = [row.size for row in rows if row.counts[offset] is not None]
        came = [row.counts[offset] or 0 for row in rows if row.counts[offset] is not None]
        out.append(share(sum(came), sum(sizes)))
    return out


# -- the follow-up funnel ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunnelRow:
    nudge_kind: str
    sent: int
    opened: int
    clicked: int
    returned: int
    bounced: int
    # Follow-ups only machines opened (image proxies) or clicked (link scanners): shown, never in the rates.
    machine_opened: int = 0
    machine_clicked: int = 0

    def rates(self) -> dict[str, float | None]:
        return {
            "open_rate": share(self.opened, self.sent),
            "click_rate": share(self.clicked, self.sent),
            "return_rate": share(self.returned, self.sent),
        }


FUNNEL_STAGES = ("sent", "opened", "clicked", "returned", "bounced", "machine_opened", "machine_clicked")


def funnel(cells: Iterable[Mapping[str, Any]]) -> list[FunnelRow]:
    """Sum the monthly cells per nudge kind (kinds in their usual order)."""
    totals: dict[str, dict[str, int]] = {}
    for cell in cells:
        target = totals.setdefault(str(cell["kind"]), {})
        for name in FUNNEL_STAGES:
            target[name] = target.get(name, 0) + int(cell.get(name, 0))
    order = {kind: index for index, kind in enumerate(NUDGE_KINDS)}
    return [
        FunnelRow(kind, **{name: values.get(name, 0) for name in FUNNEL_STAGES})
        for kind, values in sorted(totals.items(), key=lambda item: (order.get(item[0], 99), item[0]))
        if values.get("sent", 0) > 0
    ]


# -- trends ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrendPoint:
    month: str
    kind: str
    events: int
    registered: int
    checked_in: int

    @property
    def average_attendance(self) -> float:
        return round(self.checked_in / self.events, 1) if self.events else 0.0


def attendance_trend(events: Iterable[Mapping[str, Any]]) -> list[TrendPoint]:
    """Check-ins per month and event kind (cancelled events left out), every month in between filled."""
    cells: dict[tuple[str, str], list[int]] = {}
    for event in events:
        if event.get("status") == "cancelled" or event.get("starts_at") is None:
            continue
        key = (month_of(event["starts_at"]), str(event.get("kind") or "other"))
        cell = cells.setdefault(key, [0, 0, 0])
        cell[0] += 1
        cell[1] += int(event.get("registered", 0))
        cell[2] += int(event.get("checked_in", 0))
    if not cells:
        return []
    months = [month_index(month) for month, _ in cells]
    kinds = sorted({kind for _, kind in cells})
    out = []
    for index in range(min(months), max(months) + 1):
        month = month_from_index(index)
        for kind in kinds:
            events_count, registered, checked_in = cells.get((month, kind), [0, 0, 0])
            out.append(TrendPoint(month, kind, events_count, registered, checked_in))
    return out


# -- filters -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DateRange:
    """Inclusive calendar dates (UTC); either end may be open."""

    start: date | None = None
    end: date | None = None

    def months(self) -> tuple[str | None, str | None]:
        return (
            self.start.strftime("%Y-%m") if self.start else None,
            self.end.strftime("%Y-%m") if self.end else None,
        )

    def end_exclusive(self) -> date | None:
        """The day after ``end``; None (no bound) when open or the last day there is."""
        if self.end is None or self.end >= date.max:
            return None
        return self.end + timedelta(days=1)


def first_timers_came_back(attended: Mapping[str, int], welcomed: Collection[str]) -> dict[str, dict[str, Any]]:
    """An event's first-timers who came to a later event, all of them and split by
    whether a greeter welcomed them: {all, welcomed, not_welcomed} -> {first_timers, came_back, rate}.

    ``attended``: person -> events attended, for each person whose first event it was;
    ``welcomed``: the people welcomed there."""

    def row(people: list[int]) -> dict[str, Any]:
        back = sum(1 for count in people if count > 1)
        return {"first_timers": len(people), "came_back": back, "rate": share(back, len(people))}

    return {
        "all": row(list(attended.values())),
        "welcomed": row([count for person, count in attended.items() if person in welcomed]),
        "not_welcomed": row([count for person, count in attended.items() if person not in welcomed]),
    }
