"""Volunteer hours as pure rules: review states and what counts, off-site entries'
limits, bulk review items, the statement's content and its signed claims."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from checkin.domain import hours as rules
from checkin.domain.model import RuleBroken

NOW = datetime(2026, 6, 10, 18, 0, tzinfo=UTC)
TODAY = NOW.date()
COORDINATOR = {"kind": "user", "id": "u1", "label": "Maria Gonzalez", "role": "organizer"}


def shift(hours: float = 3.0, closed_by: str = "attendee", **extra: Any) -> dict[str, Any]:
    return {
        "_id": "r1",
        "person_id": "p1",
        "event_id": "e1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "checkin": {"scanned_at": NOW - timedelta(hours=hours)},
        "checkout": {"scanned_at": NOW, "hours": hours, "closed_by": closed_by},
        **extra,
    }


def entry(hours: float = 2.0, **extra: Any) -> dict[str, Any]:
    return {
        "_id": "h1",
        "person_id": "p1",
        "date": "2026-06-01",
        "hours": hours,
        "note": "flyers",
        "review": None,
        **extra,
    }


def decided(doc: dict[str, Any], action: str, at: datetime = NOW, **item: Any) -> dict[str, Any]:
    key = "registration_id" if "checkout" in doc else "entry_id"
    choice = rules.review_item({key: doc["_id"], "action": action, **item}, 0)
    decision = rules.decide(doc, choice, COORDINATOR, at)
    return {**doc, ("hours_review" if "checkout" in doc else "review"): decision.review}


# -- review states and what counts -----------------------------------------------------------------


def test_a_shift_counts_as_recorded_until_a_coordinator_decides_otherwise() -> None:
    doc = shift(3.0)
    assert rules.state_of(doc) == rules.ReviewState.PENDING
    assert rules.counted(doc) == 3.0 and rules.approved_hours(doc) is None
    assert rules.counted(decided(doc, "approve")) == 3.0
    assert rules.counted(decided(doc, "adjust", hours=2.5, reason="left early")) == 2.5
    assert rules.counted(decided(doc, "reject")) == 0.0


def test_a_decision_moves_the_total_by_what_it_changes_and_can_be_revised() -> None:
    doc = shift(3.0)
    first = rules.decide(doc, rules.review_item({"registration_id": "r1", "action": "reject"}, 0), COORDINATOR, NOW)
    assert first.delta == -3.0 and first.before == rules.ReviewState.PENDING
    rejected = {**doc, "hours_review": first.review}
    again = rules.review_item({"registration_id": "r1", "action": "adjust", "hours": 1.25, "reason": "found her"}, 0)
    second = rules.decide(rejected, again, COORDINATOR, NOW)
    assert second.delta == 1.25 and second.before == rules.ReviewState.REJECTED
    assert second.review["by"]["label"] == "Maria Gonzalez" and second.review["recorded_hours"] == 3.0


def test_an_off_site_entry_counts_only_once_approved() -> None:
    doc = entry(2.0)
    assert rules.counted(doc) == 0.0
    approve = rules.decide(doc, rules.review_item({"entry_id": "h1", "action": "approve"}, 0), COORDINATOR, NOW)
    assert approve.delta == 2.0
    assert rules.approved_hours({**doc, "review": approve.review}) == 2.0


def test_only_a_check_out_closed_at_the_events_end_and_undecided_needs_review() -> None:
    assert rules.needs_review(shift(closed_by="event_end"))
    assert not rules.needs_review(shift(closed_by="attendee"))
    assert not rules.needs_review(decided(shift(closed_by="event_end"), "approve"))


def test_a_registration_without_a_check_out_has_no_hours_to_review() -> None:
    doc = {**shift(), "checkout": None}
    with pytest.raises(RuleBroken) as refused:
        rules.decide(doc, rules.review_item({"registration_id": "r1", "action": "approve"}, 0), COORDINATOR, NOW)
    assert refused.value.code == "not_checked_out"


def test_the_review_table_puts_flagged_shifts_first_then_pending_then_decided() -> None:
    rows = [
        rules.shift_row(decided(shift(_id="a", first_name="Zed"), "approve")),
        rules.shift_row(shift(_id="b", first_name="Bea")),
        rules.shift_row(shift(_id="c", first_name="Cy", closed_by="event_end")),
        rules.shift_row({**shift(_id="d", first_name="Al"), "checkout": None}),
    ]
    assert [row["registration_id"] for row in sorted(rows, key=rules.shift_order)] == ["c", "b", "a", "d"]


# -- bulk review items -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"registration_id": "r1", "action": "adjust", "hours": 2}, "items[0].reason"),
        ({"registration_id": "r1", "action": "adjust", "reason": "why"}, "items[0].hours"),
        ({"registration_id": "r1", "action": "adjust", "hours": 0, "reason": "why"}, "items[0].hours"),
        ({"registration_id": "r1", "action": "adjust", "hours": 24.5, "reason": "why"}, "items[0].hours"),
        ({"registration_id": "r1", "action": "adjust", "hours": True, "reason": "why"}, "items[0].hours"),
        ({"registration_id": "r1", "action": "approve", "hours": 2}, "items[0].hours"),
        ({"registration_id": "r1", "action": "delete"}, "items[0].action"),
        ({"action": "approve"}, "items[0]"),
        ({"registration_id": "r1", "entry_id": "h1", "action": "approve"}, "items[0]"),
        ({"registration_id": "r1", "action": "reject", "reason": "x" * 301}, "items[0].reason"),
    ],
)
def test_a_bad_review_item_is_refused_naming_its_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        rules.review_items([raw])
    assert refused.value.field == field


def test_one_shift_is_decided_at_most_once_per_review() -> None:
    with pytest.raises(RuleBroken) as refused:
        rules.review_items(
            [{"registration_id": "r1", "action": "approve"}, {"registration_id": "r1", "action": "reject"}]
        )
    assert refused.value.field == "items[1]"
    with pytest.raises(RuleBroken):
        rules.review_items([])


# -- off-site entries ---------------------------------------------------------------------------------


def test_an_off_site_entry_takes_a_past_day_hours_up_to_24_and_a_note() -> None:
    doc = rules.new_entry(
        "h1", "o1", "p1", {"date": "2026-06-09", "hours": "2,5", "note": "  sorted   cans "}, TODAY, NOW
    )
    assert (doc["date"], doc["hours"], doc["note"], doc["review"]) == ("2026-06-09", 2.5, "sorted cans", None)
    assert rules.state_of(doc) == rules.ReviewState.PENDING


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"date": "2026-06-11", "hours": 2, "note": "x"}, "date"),  # tomorrow
        ({"date": "2025-01-01", "hours": 2, "note": "x"}, "date"),  # more than a year ago
        ({"date": "2026-02-30", "hours": 2, "note": "x"}, "date"),
        ({"date": "", "hours": 2, "note": "x"}, "date"),
        ({"date": "2026-06-09", "hours": "0", "note": "x"}, "hours"),
        ({"date": "2026-06-09", "hours": "25", "note": "x"}, "hours"),
        ({"date": "2026-06-09", "hours": "two", "note": "x"}, "hours"),
        ({"date": "2026-06-09", "hours": 2, "note": "  "}, "note"),
        ({"date": "2026-06-09", "hours": 2, "note": "x" * 501}, "note"),
    ],
)
def test_an_off_site_entry_out_of_bounds_is_refused(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleBroken) as refused:
        rules.new_entry("h1", "o1", "p1", raw, TODAY, NOW)
    assert refused.value.field == field


# -- the statement ------------------------------------------------------------------------------------


def _day(registration: dict[str, Any], event: dict[str, Any]) -> date:
    return registration["checkin"]["scanned_at"].date()


def test_the_statement_lists_only_approved_hours_of_the_period_as_decided_when_issued() -> None:
    event = {"_id": "e1", "title": "Pantry sort"}
    approved = decided(shift(3.0, _id="a"), "approve", at=NOW - timedelta(days=1))
    adjusted = decided(shift(3.0, _id="b"), "adjust", at=NOW - timedelta(days=1), hours=2.5, reason="left early")
    rejected = decided(shift(3.0, _id="c"), "reject", at=NOW - timedelta(days=1))
    pending = shift(3.0, _id="d")
    later = decided(shift(3.0, _id="f"), "approve", at=NOW + timedelta(hours=1))  # after the statement was issued
    old = decided(shift(3.0, _id="g", checkin={"scanned_at": NOW - timedelta(days=400)}), "approve", at=NOW)
    off_site = decided(entry(1.5), "approve", at=NOW - timedelta(days=2))
    wanted = rules.period("2026-01-01", "2026-06-30", TODAY)
    found = rules.statement(
        "Eastside Pantry",
        "Ada Lovelace",
        [(doc, event) for doc in (approved, adjusted, rejected, pending, later, old)],
        [off_site, entry(4.0, _id="h2")],
        wanted,
        NOW,
        _day,
    )
    assert [(line.what, line.hours) for line in found.lines] == [
        ("flyers", 1.5),
        ("Pantry sort", 3.0),
        ("Pantry sort", 2.5),
    ]
    assert found.total == 7.0
    assert {line.approver for line in found.lines} == {"Maria Gonzalez"}
    assert found.lines[0].shown == "Off-site: flyers"
    rows = rules.statement_rows(found)
    assert rows[0] == ["date", "where", "activity", "hours", "approved_by"]
    assert rows[-1] == ["", "", "Total", "7", ""]


def test_a_period_is_checked_and_defaults_to_the_last_twelve_months() -> None:
    assert rules.period(None, None, TODAY) == rules.Period(TODAY - timedelta(days=364), TODAY)
    with pytest.raises(RuleBroken):
        rules.period("2026-06-02", "2026-06-01", TODAY)
    with pytest.raises(RuleBroken):
        rules.period("2020-01-01", "2026-06-01", TODAY)
    with pytest.raises(RuleBroken):
        rules.period("June", None, TODAY)


def test_signed_claims_round_trip_and_expire() -> None:
    link = rules.HoursLink("o1", "p1", NOW + timedelta(days=1))
    assert rules.read_hours_link(rules.hours_link_claims(link), NOW) == link
    with pytest.raises(rules.LinkRefused) as expired:
        rules.read_hours_link(rules.hours_link_claims(link), NOW + timedelta(days=2))
    assert expired.value.reason == "expired"
    claims = rules.StatementClaims("o1", "p1", rules.Period(date(2026, 1, 1), date(2026, 6, 30)), NOW, 7.0)
    assert rules.read_statement_claims(rules.statement_claims(claims), NOW) == claims
    for broken in ({}, {**rules.statement_claims(claims), "f": "soon"}, {**rules.statement_claims(claims), "h": True}):
        with pytest.raises(rules.LinkRefused) as invalid:
            rules.read_statement_claims(broken, NOW)
        assert invalid.value.reason == "invalid"
    with pytest.raises(rules.LinkRefused):
        rules.read_statement_claims(rules.statement_claims(claims), NOW + rules.STATEMENT_LIFETIME)
