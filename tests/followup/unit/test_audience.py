"""Who gets which nudge, at plan time and again at send time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from followup.domain.audience import (
    AttendanceFacts,
    ContactFacts,
    SendFacts,
    decide_at_send_time,
    event_nudges,
    unreachable_reason,
)
from followup.domain.nudges import NudgeKind

NOW = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
OK = ContactFacts(email="a@example.org", consent=True)


def all_on(kind: NudgeKind) -> bool:
    return True


def test_plan_time_audience() -> None:
    came_first = AttendanceFacts("registered", checked_in=True, first_time_ever=True)
    assert event_nudges("volunteer_shift", came_first, all_on) == [
        NudgeKind.THANK_YOU,
        NudgeKind.FIRST_TIMER_WELCOME,
        NudgeKind.VOLUNTEER_HOURS,
    ]
    assert event_nudges("workshop", AttendanceFacts("registered"), all_on) == [NudgeKind.WE_MISSED_YOU]
    assert event_nudges("workshop", AttendanceFacts("waitlisted"), all_on) == []
    assert event_nudges("workshop", AttendanceFacts("cancelled"), all_on) == []
    walk_in = AttendanceFacts(None, checked_in=True)
    assert event_nudges("meeting", walk_in, lambda k: k != NudgeKind.THANK_YOU) == []


def test_nothing_without_consent() -> None:
    assert unreachable_reason(None) == "no_contact"
    assert unreachable_reason(ContactFacts(email=None, consent=True)) == "no_contact"
    assert unreachable_reason(ContactFacts(email="a@b.c", consent=False)) == "no_consent"
    assert unreachable_reason(ContactFacts(email="a@b.c", consent=True, unsubscribed=True)) == "unsubscribed"
    assert unreachable_reason(ContactFacts(email="a@b.c", consent=True, suppressed=True)) == "suppressed"
    assert unreachable_reason(OK) is None


def facts(kind: NudgeKind, **changes: object) -> SendFacts:
    base: dict[str, object] = {
        "kind": kind,
        "contact": OK,
        "enabled": True,
        "event_kind": "workshop",
        "attendance": AttendanceFacts("registered", checked_in=True, first_time_ever=True, hours=2.0),
        "send_at": NOW,
        "next_window_opening": NOW,
    }
    base.update(changes)
    return SendFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("send_facts", "action", "reason"),
    [
        (facts(NudgeKind.THANK_YOU), "send", None),
        (facts(NudgeKind.THANK_YOU, enabled=False), "skip", "disabled"),
        (facts(NudgeKind.THANK_YOU, contact=ContactFacts("a@b.c", True, unsubscribed=True)), "skip", "unsubscribed"),
        (facts(NudgeKind.THANK_YOU, attendance=AttendanceFacts("registered")), "skip", "not_checked_in"),
        # A late check-in: the "we missed you" no longer applies.
        (facts(NudgeKind.WE_MISSED_YOU), "skip", "checked_in_after_all"),
        (facts(NudgeKind.WE_MISSED_YOU, attendance=AttendanceFacts("cancelled")), "skip", "registration_cancelled"),
        (facts(NudgeKind.WE_MISSED_YOU, attendance=AttendanceFacts("registered")), "send", None),
        (
            facts(NudgeKind.VOLUNTEER_HOURS, attendance=AttendanceFacts("registered", True)),
            "wait",
            "waiting_for_check_out",
        ),
        (
            facts(
                NudgeKind.VOLUNTEER_HOURS,
                attendance=AttendanceFacts("registered", True),
                send_at=NOW - timedelta(days=2),
            ),
            "skip",
            "no_hours_recorded",
        ),
        (facts(NudgeKind.INTRODUCTION_REQUEST), "skip", "no_open_suggestions"),
        (facts(NudgeKind.INTRODUCTION_REQUEST, pending_suggestions=2), "send", None),
        (facts(NudgeKind.INTRODUCTION), "skip", "not_agreed"),
        (facts(NudgeKind.WIN_BACK, still_away=False), "skip", "came_back"),
        (facts(NudgeKind.THANK_YOU, next_window_opening=NOW + timedelta(hours=6)), "wait", "outside_daytime_window"),
    ],
)
def test_send_time_decision(send_facts: SendFacts, action: str, reason: str | None) -> None:
    decision = decide_at_send_time(send_facts, NOW)
    assert (decision.action, decision.reason) == (action, reason)
    if action == "wait":
        assert decision.until is not None and decision.until > NOW
