"""Who counts as a regular at risk of drifting away: one rule, shared.

Analytics lists these people (``/api/v1/people/at-risk``) and follow-up
drafts a win-back note to them; both call this module, so the dashboard's
list and the drafts name the same people. It is a pure rule over a person's
visit times: no storage, no service's domain.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from turnout_common.clock import as_utc


@dataclass(frozen=True, slots=True)
class RiskRule:
    min_visits: int = 3  # a regular: came at least this often
    quiet_days: int = 45  # never flagged before this many days without a visit
    gap_factor: float = 2.0  # ... nor before twice their usual gap between visits
    lost_after_days: int = 365  # after a year they are gone, not at risk


DEFAULT_RULE = RiskRule()


def typical_gap_days(visit_times: Sequence[datetime]) -> float | None:
    """The median number of days between consecutive visits (one decimal), None below two visits."""
    times = sorted(as_utc(t) for t in visit_times)
    gaps = [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(times)]
    return round(statistics.median(gaps), 1) if gaps else None


def threshold_days(typical_gap: float | None, rule: RiskRule = DEFAULT_RULE) -> float:
    """How long without a visit before this person counts as at risk."""
    return max(float(rule.quiet_days), rule.gap_factor * (typical_gap or 0.0))


def risk_from(
    visits: int, last_seen: datetime | None, typical_gap: float | None, rule: RiskRule = DEFAULT_RULE
) -> datetime | None:
    """The moment a regular becomes at risk if they do not come again (None: not a regular)."""
    if last_seen is None or visits < rule.min_visits:
        return None
    return last_seen + timedelta(days=threshold_days(typical_gap, rule))


def days_quiet_at_risk(
    visits: int, last_seen: datetime | None, typical_gap: float | None, now: datetime, rule: RiskRule = DEFAULT_RULE
) -> float | None:
    """Days since the last visit when the person is at risk now, else None.

    At risk: at least ``min_visits`` visits, quiet for at least
    ``threshold_days`` and for at most ``lost_after_days``.
    """
    if last_seen is None or visits < rule.min_visits:
        return None
    quiet = (as_utc(now) - as_utc(last_seen)).total_seconds() / 86400
    if quiet < threshold_days(typical_gap, rule) or quiet > rule.lost_after_days:
        return None
    return quiet
