"""Retention in follow-up: which policy applies, and the cut-off dates it means.

Owners set the periods in checkin (``retention.policy_set``); follow-up keeps
the newest per organization and enforces three of them:

- ``message_bodies``: a sent message's rendered email (text and HTML) is
  removed once it is older; the record of what was sent, to whom and when
  (kind, state, subject, times) stays;
- ``delivery_journal``: the journal's entries (each attempt handed to the
  mail server) are deleted once older;
- ``tracking_events``: which links a person followed is removed from
  messages sent longer ago; the first open and click times and the counts
  stay (the statuses and figures do not change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from turnout_common.privacy import DEFAULT_RETENTION, RetentionPeriods, months_ago


def periods_of(doc: Mapping[str, Any] | None) -> RetentionPeriods:
    """The stored policy's periods, or the defaults when the organization set none."""
    if not doc or not isinstance(doc.get("periods"), Mapping):
        return DEFAULT_RETENTION
    try:
        return RetentionPeriods.from_dict(dict(doc["periods"]))
    except (TypeError, ValueError):
        return DEFAULT_RETENTION


def replaces(current: Mapping[str, Any] | None, set_at: datetime) -> bool:
    """A policy set at ``set_at`` replaces the stored one unless that one is newer."""
    if current is None or current.get("set_at") is None:
        return True
    stored: datetime = current["set_at"]
    return set_at >= stored


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Before these moments, the data of each kind is past its period."""

    message_bodies: datetime
    delivery_journal: datetime
    tracking_events: datetime

    @classmethod
    def of(cls, periods: RetentionPeriods, now: datetime) -> Cutoffs:
        return cls(
            message_bodies=months_ago(now, periods.message_bodies),
            delivery_journal=months_ago(now, periods.delivery_journal),
            tracking_events=months_ago(now, periods.tracking_events),
        )

    @property
    def earliest_needed(self) -> datetime:
        """The latest cut-off: a batch due after it holds nothing to sweep."""
        return max(self.message_bodies, self.delivery_journal, self.tracking_events)


# The sweeps, each marked on a send batch once done: message bodies, the
# delivery journal, link tracking.
BODIES, JOURNAL, TRACKING = "bodies", "journal", "tracking"
SWEEPS = (BODIES, JOURNAL, TRACKING)
