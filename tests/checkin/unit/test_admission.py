"""The door's decisions (checkin.domain.admission): pure, no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from checkin.domain.admission import (
    MAX_OFFLINE_AGE,
    Admit,
    AlreadyIn,
    AlreadyOut,
    CheckOut,
    admit,
    already_in_message,
    badge_refusal,
    check_out,
    closes_forgotten_checkouts,
    door_refusal,
    door_time,
    forgotten_checkout,
    still_in,
    thank_you,
    welcome,
)
from checkin.domain.model import EventKind, RuleBroken

T0 = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)
ORG, EVENT = "org-1", "event-1"


def registration(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "reg-1",
        "org_id": ORG,
        "event_id": EVENT,
        "person_id": "person-1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "status": "registered",
        "checkin": None,
        "checkout": None,
    }
    doc.update(changes)
    return doc


def event(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": EVENT,
        "org_id": ORG,
        "kind": "volunteer_shift",
        "status": "scheduled",
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=3),
        "checkin_opens_at": T0 - timedelta(hours=1),
        "checkin_closes_at": T0 + timedelta(hours=4),
    }
    doc.update(changes)
    return doc


CHECKIN = {"method": "qr", "kiosk_id": "k1", "scanned_at": T0, "received_at": T0}


def decide(reg: dict[str, Any] | None, visits: int = 0, refused: RuleBroken | None = None) -> Admit | AlreadyIn:
    return admit(reg, org_id=ORG, event_id=EVENT, checkin=CHECKIN, visits_before=visits, refused=refused)


# -- door time and window ------------------------------------------------------------


def test_door_time_is_the_scan_time_when_plausible() -> None:
    assert door_time(T0 - timedelta(minutes=5), T0) == T0 - timedelta(minutes=5)


@pytest.mark.parametrize(
    "scanned_at",
    [None, T0 + timedelta(seconds=1), T0 - MAX_OFFLINE_AGE - timedelta(seconds=1)],
    ids=["no scan time", "in the future", "more than a day back"],
)
def test_door_time_falls_back_to_receipt(scanned_at: datetime | None) -> None:
    assert door_time(scanned_at, T0) == T0


def test_door_time_accepts_exactly_a_day_back() -> None:
    assert door_time(T0 - MAX_OFFLINE_AGE, T0) == T0 - MAX_OFFLINE_AGE


def test_the_door_is_open_inside_the_window() -> None:
    assert door_refusal(event(), None, T0, override=False) is None


def test_the_door_refuses_before_and_after_the_window() -> None:
    early = door_refusal(event(), None, T0 - timedelta(hours=2), override=False)
    late = door_refusal(event(), None, T0 + timedelta(hours=5), override=False)
    assert early is not None and early.code == "checkin_not_open"
    assert late is not None and late.code == "checkin_closed"


def test_a_queued_scan_is_judged_at_its_scan_time() -> None:
    closes = event()["checkin_closes_at"]
    assert door_refusal(event(), closes - timedelta(minutes=1), closes + timedelta(minutes=30), False) is None


def test_staff_override_opens_the_window_but_not_a_cancelled_event() -> None:
    assert door_refusal(event(), None, T0 + timedelta(hours=9), override=True) is None
    cancelled = door_refusal(event(status="cancelled"), None, T0, override=True)
    assert cancelled is not None and cancelled.code == "event_cancelled"


# -- admit ---------------------------------------------------------------------------


def test_a_first_visit_is_admitted_with_a_first_time_welcome() -> None:
    decision = decide(registration())
    assert isinstance(decision, Admit)
    # The check-in carries the first-timer mark (greeters are told by it).
    assert decision.changes == {"checkin": {**CHECKIN, "first_time": True}}
    assert (decision.visit_number, decision.first_time_ever) == (1, True)
    assert decision.welcome == "Welcome, Ada! First time here"


def test_a_returning_visitor_is_welcomed_back_with_the_visit_number() -> None:
    decision = decide(registration(), visits=4)
    assert isinstance(decision, Admit)
    assert (decision.visit_number, decision.first_time_ever) == (5, False)
    assert decision.changes["checkin"]["first_time"] is False
    assert decision.welcome == "Welcome, Ada! Welcome back, visit number 5"


def test_the_waitlist_is_lifted_at_the_door() -> None:
    decision = decide(registration(status="waitlisted"))
    assert isinstance(decision, Admit)
    assert decision.changes == {"checkin": {**CHECKIN, "first_time": True}, "status": "registered"}


def test_someone_already_in_is_told_so() -> None:
    earlier = {**CHECKIN, "received_at": T0 - timedelta(minutes=20)}
    decision = decide(registration(checkin=earlier))
    assert decision == AlreadyIn("Ada L.", earlier)


def test_someone_already_in_is_told_so_even_when_the_door_is_closed() -> None:
    closed = RuleBroken("checkin_closed", "closed")
    assert isinstance(decide(registration(checkin=CHECKIN), refused=closed), AlreadyIn)


def test_a_closed_door_refuses_a_new_check_in() -> None:
    with pytest.raises(RuleBroken) as refused:
        decide(registration(), refused=RuleBroken("checkin_closed", "closed"))
    assert refused.value.code == "checkin_closed"


@pytest.mark.parametrize(
    ("reg", "code"),
    [
        (None, "unknown_badge"),
        (registration(org_id="other-org"), "unknown_badge"),
        (registration(event_id="other-event"), "wrong_event"),
        (registration(status="cancelled"), "registration_cancelled"),
        (registration(status="cancelled", checkin=CHECKIN), "registration_cancelled"),
    ],
    ids=["unknown", "another organization", "another event", "cancelled", "cancelled though in"],
)
def test_badges_refused_whatever_the_door(reg: dict[str, Any] | None, code: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        decide(reg)
    assert refused.value.code == code
    assert badge_refusal(reg, ORG, EVENT) is not None


def test_a_foreign_badge_is_refused_before_the_door_window() -> None:
    with pytest.raises(RuleBroken) as refused:
        decide(registration(event_id="other"), refused=RuleBroken("checkin_closed", "closed"))
    assert refused.value.code == "wrong_event"


def test_messages() -> None:
    assert welcome("Bo", 1) == "Welcome, Bo! First time here"
    chicago = already_in_message("Ada L.", T0, "America/Chicago", "Door 1")
    assert chicago == "Ada L. already checked in at 13:00 at Door 1"
    assert already_in_message("Ada L.", T0, "UTC", None) == "Ada L. already checked in at 18:00"


# -- check-out and hours -------------------------------------------------------------


def out(reg: dict[str, Any] | None, scanned_at: datetime) -> CheckOut | AlreadyOut:
    return check_out(reg, org_id=ORG, event_id=EVENT, scanned_at=scanned_at)


def test_check_out_counts_hours_from_the_check_in_scan_to_the_quarter_hour() -> None:
    decision = out(registration(checkin=CHECKIN), T0 + timedelta(hours=2, minutes=8))
    assert decision == CheckOut("Ada L.", 2.25)


def test_check_out_before_check_in_counts_no_hours() -> None:
    assert out(registration(checkin=CHECKIN), T0 - timedelta(hours=1)) == CheckOut("Ada L.", 0.0)


def test_a_second_check_out_is_told_the_first() -> None:
    first = {"hours": 2.0, "received_at": T0 + timedelta(hours=2)}
    decision = out(registration(checkin=CHECKIN, checkout=first), T0 + timedelta(hours=3))
    assert isinstance(decision, AlreadyOut)
    assert decision.message == "Ada L. already checked out at 20:00 UTC"


@pytest.mark.parametrize(
    ("reg", "code"),
    [
        (None, "unknown_badge"),
        (registration(org_id="other-org", checkin=CHECKIN), "unknown_badge"),
        (registration(event_id="other", checkin=CHECKIN), "wrong_event"),
        (registration(), "not_checked_in"),
    ],
)
def test_check_out_refusals(reg: dict[str, Any] | None, code: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        out(reg, T0)
    assert refused.value.code == code


def test_thank_you() -> None:
    assert thank_you("Ada", 2.5, 10.0) == "Thank you, Ada! 2.5 hours today, 10 in all"


def test_only_a_volunteer_shift_closes_forgotten_checkouts() -> None:
    assert closes_forgotten_checkouts(event(kind=EventKind.VOLUNTEER_SHIFT))
    assert not closes_forgotten_checkouts(event(kind=EventKind.NETWORKING))


def test_still_in_keeps_those_checked_in_and_not_out_in_id_order() -> None:
    regs = [
        registration(_id="b", checkin=CHECKIN),
        registration(_id="a", checkin=CHECKIN),
        registration(_id="c"),
        registration(_id="d", checkin=CHECKIN, checkout={"hours": 1.0}),
    ]
    assert [r["_id"] for r in still_in(regs)] == ["a", "b"]


def test_a_forgotten_checkout_closes_at_the_end_time() -> None:
    reg = registration(checkin=CHECKIN)
    ends = T0 + timedelta(hours=3)
    late = forgotten_checkout(reg, ends, ends + timedelta(minutes=10))
    assert (late["scanned_at"], late["hours"], late["closed_by"], late["method"]) == (ends, 3.0, "event_end", "auto")
    early = forgotten_checkout(reg, ends, T0 + timedelta(hours=1))
    assert (early["scanned_at"], early["hours"]) == (T0 + timedelta(hours=1), 1.0)
