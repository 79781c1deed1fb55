"""Win-back: a personal note to a regular who drifted away, that an organizer
may read, edit and approve before it goes out.

Who: a regular at risk by the rule analytics lists them with
(``turnout_common.regulars``: enough visits, quiet for longer than both a
floor and twice their usual gap, but not gone for a year), with the
organization's own numbers. How often: one per drift (the nudge's key names
the last gathering the person came to), and never within ``cooldown_days``
of the person's previous win-back. When the organization chose
``approval`` (the default), the note is stored as a *draft*: no sender ever
picks a draft up (it belongs to no send batch and is not a pending state);
only an approval schedules it. ``automatic`` schedules it at once; ``off``
drafts nothing and skips what is still pending.

The note itself is written from the person's history ("We've missed you at
the Tuesday food bank shifts since October"), so the organizer starts from
something personal rather than a blank page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from followup.domain.nudges import NudgeState
from followup.domain.settings import WinBackRule
from turnout_common.clock import as_utc
from turnout_common.regulars import RiskRule, days_quiet_at_risk, threshold_days, typical_gap_days


class WinbackMode(StrEnum):
    OFF = "off"
    APPROVAL = "approval"
    AUTOMATIC = "automatic"


MODES = tuple(mode.value for mode in WinbackMode)
SUBJECT_MAX = 200
BODY_MAX = 5000


def mode_of(rule: WinBackRule, switched_on: bool) -> WinbackMode:
    """The organization's choice; the older ``nudges.win_back: false`` switch still means off."""
    if not switched_on:
        return WinbackMode.OFF
    try:
        return WinbackMode(rule.mode)
    except ValueError:
        return WinbackMode.APPROVAL


def first_state(mode: WinbackMode) -> NudgeState:
    """A new win-back waits for a person's approval, or is scheduled at once."""
    return NudgeState.DRAFT if mode == WinbackMode.APPROVAL else NudgeState.SCHEDULED


def risk_rule(rule: WinBackRule) -> RiskRule:
    """The organization's win-back numbers as the shared at-risk rule."""
    return RiskRule(min_visits=rule.min_events, quiet_days=rule.quiet_days, lost_after_days=rule.max_quiet_days)


@dataclass(frozen=True, slots=True)
class AttendanceHistory:
    """One person's attendance across an organization's gatherings."""

    person_id: str
    org_id: str
    attended: int
    last_attended_at: datetime
    last_event_id: str
    visit_times: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A regular at risk, and why (what the drafts page shows)."""

    history: AttendanceHistory
    days_quiet: int
    usual_gap_days: float | None
    threshold_days: int


def regulars_at_risk(history: Iterable[AttendanceHistory], rule: WinBackRule, now: datetime) -> list[AtRisk]:
    """Those of ``history`` at risk now, by the rule shared with analytics."""
    shared = risk_rule(rule)
    found = []
    for entry in history:
        gap = typical_gap_days(entry.visit_times)
        quiet = days_quiet_at_risk(entry.attended, entry.last_attended_at, gap, now, shared)
        if quiet is not None:
            found.append(AtRisk(entry, int(quiet), gap, int(threshold_days(gap, shared))))
    return found


def cooled_down(previous: Iterable[datetime], now: datetime, cooldown_days: int) -> bool:
    """No win-back to this person was drafted within the last ``cooldown_days``."""
    since = as_utc(now) - timedelta(days=cooldown_days)
    return all(as_utc(moment) <= since for moment in previous)


# -- the note ------------------------------------------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
KIND_PLURALS = {
    "volunteer_shift": "volunteer shifts",
    "networking": "networking evenings",
    "workshop": "workshops",
    "meeting": "meetings",
    "social": "get-togethers",
}
HABIT_VISITS = 10  # the habit is read from the person's latest visits


@dataclass(frozen=True, slots=True)
class PastVisit:
    """A gathering the person came to, as its own place saw it (local start time)."""

    title: str
    kind: str
    local_start: datetime


def _plural(title: str) -> str:
    words = title.strip()
    if words[1:] == words[1:].lower():  # "Food bank shift": a phrase, not a name
        words = words[:1].lower() + words[1:]
    if words.endswith("s"):
        return words
    if words.endswith("y") and len(words) > 1 and words[-2].lower() not in "aeiou":
        return words[:-1] + "ies"
    return words + "s"


def describe_habit(visits: Sequence[PastVisit]) -> str:
    """What the person used to come to: "the Tuesday food bank shifts", "the workshops"."""
    recent = sorted(visits, key=lambda v: v.local_start)[-HABIT_VISITS:]
    if not recent:
        return "our gatherings"
    titles = Counter(v.title.strip().casefold() for v in recent if v.title.strip())
    common, count = titles.most_common(1)[0] if titles else ("", 0)
    if count >= 2:
        same = [v for v in recent if v.title.strip().casefold() == common]
        what = _plural(same[-1].title)
    else:
        kinds = Counter(v.kind for v in recent)
        kind = kinds.most_common(1)[0][0]
        same = [v for v in recent if v.kind == kind]
        what = KIND_PLURALS.get(kind, "gatherings")
    days = Counter(v.local_start.weekday() for v in same)
    day, often = days.most_common(1)[0]
    if often * 3 >= len(same) * 2 and len(same) >= 2 and not any(w.lower() in what.lower() for w in WEEKDAYS):
        what = f"{WEEKDAYS[day]} {what}"
    return f"the {what}"


def _since(last: datetime, now: datetime) -> str:
    month = f"{last:%B}"
    return month if (now - last).days < 300 and last.year in (now.year, now.year - 1) else f"{month} {last.year}"


def compose_note(first_name: str, org_name: str, visits: Sequence[PastVisit], now_local: datetime) -> tuple[str, str]:
    """The draft's subject and body, from the person's history (the email's layout
    adds the greeting, the coming gatherings and the unsubscribe link)."""
    name = first_name.strip() or "there"
    habit = describe_habit(visits)
    last = max((v.local_start for v in visits), default=now_local)
    times = len(visits)
    org = org_name.strip() or "us"
    subject = f"We've missed you, {name}"
    body = (
        f"We've missed you at {habit} since {_since(last, now_local)}. "
        f"You came {times} times, and it made a real difference to {org}.\n\n"
        "Whenever you are ready, we would love to see you again. "
        "And if something put you off, just reply: we read every answer."
    )
    return subject, body


def edit_refusal(subject: str, body: str) -> tuple[str, str] | None:
    """``(field, what is wrong)`` with an edited draft, or None when it is fine."""
    if not subject.strip():
        return "subject", "the subject must not be empty"
    if len(subject) > SUBJECT_MAX:
        return "subject", f"the subject must be at most {SUBJECT_MAX} characters"
    if not body.strip():
        return "body", "the note must not be empty"
    if len(body) > BODY_MAX:
        return "body", f"the note must be at most {BODY_MAX} characters"
    return None


def draft_refusal(state: str, action: str) -> str | None:
    """Why ``action`` (approve, edit, discard) cannot be done to a win-back in ``state``."""
    if state == NudgeState.DRAFT:
        return None
    if state == NudgeState.SKIPPED:
        return f"this win-back was already discarded or skipped: nothing to {action}"
    return f"this win-back is no longer a draft ({state}): nothing to {action}"


# -- the funnel --------------------------------------------------------------------------

WENT_OUT = frozenset({NudgeState.SENT.value})


@dataclass(frozen=True, slots=True)
class Funnel:
    drafted: int = 0
    approved: int = 0
    sent: int = 0
    came_back: int = 0
    waiting: int = 0  # drafts not decided yet
    discarded: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "drafted": self.drafted,
            "approved": self.approved,
            "sent": self.sent,
            "came_back": self.came_back,
            "waiting": self.waiting,
            "discarded": self.discarded,
        }


def came_back(sent_at: datetime | None, checkins: Iterable[datetime]) -> bool:
    """Checked in at a gathering after the win-back went out."""
    if sent_at is None:
        return False
    return any(as_utc(moment) > as_utc(sent_at) for moment in checkins)


def funnel(nudges: Iterable[Mapping[str, Any]], returned: set[str]) -> Funnel:
    """Drafted, approved, sent, came back (and waiting, discarded) over win-back nudges;
    ``returned``: the ids of those whose person checked in after it was sent."""
    drafted = approved = sent = back = waiting = discarded = 0
    for doc in nudges:
        drafted += 1
        state = str(doc.get("state"))
        if doc.get("approved_at") is not None:
            approved += 1
        if state == NudgeState.DRAFT:
            waiting += 1
        if doc.get("discarded_at") is not None:
            discarded += 1
        if state in WENT_OUT:
            sent += 1
            if doc["_id"] in returned:
                back += 1
    return Funnel(drafted, approved, sent, back, waiting, discarded)
