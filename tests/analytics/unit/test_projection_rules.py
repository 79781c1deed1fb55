"""The projection rules, without a database: each figure of the scripted history,
and the property that makes a rebuild equal to the live projection (any order,
any batch size, any message twice gives the same figures)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from analytics.domain.people import PersonState, cohort_counters, fold_person, funnel_counters, summarize
from analytics.domain.registrations import (
    RegistrationState,
    arrival_bucket,
    event_counters,
    fold_registration,
    lane_counters,
)
from analytics.service_layer.projector import apply_batch
from tests.analytics.history import Scripted, scripted_history
from tests.analytics.unit.fakes import FakeProjectionStore

NOW = datetime(2026, 3, 15, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def scripted() -> Scripted:
    return scripted_history(NOW)


def project(messages: list, batch: int) -> FakeProjectionStore:  # type: ignore[type-arg]
    store = FakeProjectionStore()
    for start in range(0, len(messages), batch):
        apply_batch(store, messages[start : start + batch])
    return store


def test_arrival_buckets_are_five_minutes_relative_to_the_start() -> None:
    start = datetime(2026, 1, 1, 17, 0, tzinfo=UTC)
    assert arrival_bucket(start.replace(minute=0, second=1), start) == 0
    assert arrival_bucket(start.replace(hour=16, minute=55), start) == -5
    assert arrival_bucket(start.replace(hour=16, minute=54, second=59), start) == -10
    assert arrival_bucket(start.replace(minute=14, second=59), start) == 10
    assert arrival_bucket(start.replace(year=2027), start) == 48 * 60  # a kiosk with a wrong clock


def _registration() -> RegistrationState:
    return RegistrationState("r1", "e1", "o1", "p1")


def _checkin(minutes: int, first: bool = True, kiosk: str | None = "k1") -> dict[str, object]:
    return {
        "scanned_at": f"2026-01-01T17:{minutes:02d}:00Z",
        "event_starts_at": "2026-01-01T17:00:00Z",
        "kiosk_id": kiosk,
        "method": "qr",
        "first_time_ever": first,
    }


def test_waitlisted_then_promoted_counts_once_as_registered() -> None:
    state = _registration()
    fold_registration(state, "attendee.registered", {"status": "waitlisted", "source": "api"}, "m1")
    assert event_counters(state) == {"waitlisted": 1}
    fold_registration(state, "attendee.registered", {"status": "registered", "source": "api"}, "m2")
    assert event_counters(state) == {"registered": 1, "not_arrived": 1}
    # The older message again (a replay, or a rebuild reading out of order) changes nothing.
    fold_registration(state, "attendee.registered", {"status": "waitlisted", "source": "api"}, "m1")
    assert event_counters(state) == {"registered": 1, "not_arrived": 1}


def test_cancelled_registration_leaves_the_registered_count() -> None:
    state = _registration()
    fold_registration(state, "attendee.registered", {"status": "registered", "source": "walk-in"}, "m1")
    fold_registration(state, "registration.cancelled", {}, "m2")
    assert event_counters(state) == {"cancelled": 1}


def test_a_check_in_scanned_twice_is_one_arrival_at_the_first_scan() -> None:
    state = _registration()
    fold_registration(state, "attendee.registered", {"status": "registered", "source": "api"}, "m1")
    fold_registration(state, "attendee.checked_in", _checkin(12, first=False, kiosk="k2"), "m3")
    fold_registration(state, "attendee.checked_in", _checkin(2), "m2")
    counters = event_counters(state)
    assert counters == {"registered": 1, "checked_in": 1, "first_timers": 1, "methods.qr": 1, "arrivals.0": 1}
    assert lane_counters(state) == {"k1": {"checked_in": 1, "arrivals.0": 1}}


def test_check_out_carries_the_hours_of_the_last_check_out() -> None:
    state = _registration()
    fold_registration(state, "attendee.checked_in", _checkin(0), "m1")
    out = {"scanned_at": "2026-01-01T19:00:00Z", "kiosk_id": None, "method": "qr", "hours": 2.0}
    fold_registration(state, "attendee.checked_out", {**out, "scanned_at": "2026-01-01T20:00:00Z", "hours": 3.0}, "m3")
    fold_registration(state, "attendee.checked_out", out, "m2")
    assert event_counters(state)["volunteer_centihours"] == 300
    assert event_counters(state)["registered"] == 1  # a check-in without its registration still counts


def test_person_summary_streaks_and_cohort() -> None:
    state = PersonState("p1", "o1")
    for month, event in ((1, "a"), (2, "b"), (3, "c"), (6, "d")):
        data = {
            "event_id": event,
            "scanned_at": f"2026-{month:02d}-10T17:00:00Z",
            "event_starts_at": f"2026-{month:02d}-10T17:00:00Z",
            "event_kind": "networking",
            "first_time_ever": month == 1,
        }
        fold_person(state, "attendee.checked_in", data, (NOW, f"m{month}"))
    summary = summarize(state)
    assert summary["events_attended"] == 4
    assert summary["months"] == ["2026-01", "2026-02", "2026-03", "2026-06"]
    assert (summary["streak_longest"], summary["streak_last"]) == (3, 1)
    assert summary["regular"] is True
    assert summary["typical_gap_days"] == 31.0
    assert cohort_counters(state) == {"2026-01": {"size": 1, "returned": 1, "m0": 1, "m1": 1, "m2": 1, "m5": 1}}


def test_funnel_counts_a_click_as_an_open_and_a_later_visit_as_came_back() -> None:
    state = PersonState("p1", "o1")
    base = {"followup_id": "f1", "nudge_kind": "we_missed_you", "event_id": None}
    fold_person(state, "followup.clicked", {**base, "clicked_at": "2026-02-02T10:00:00Z"}, (NOW, "m2"))
    fold_person(state, "followup.sent", {**base, "sent_at": "2026-02-01T10:00:00Z"}, (NOW, "m1"))
    visit = {
        "event_id": "e9",
        "scanned_at": "2026-02-20T17:00:00Z",
        "event_starts_at": "2026-02-20T17:00:00Z",
        "event_kind": "workshop",
        "first_time_ever": False,
    }
    fold_person(state, "attendee.checked_in", visit, (NOW, "m3"))
    cells = funnel_counters(state)
    assert cells == {"2026-02|we_missed_you": {"sent": 1, "opened": 1, "clicked": 1, "returned": 1}}
    assert summarize(state)["followups_acted"] == 1


def test_scripted_history_figures(scripted: Scripted) -> None:
    store = project(scripted.history.messages, 50)
    e1, e2, e3 = (scripted.events[name]["event_id"] for name in ("e1", "e2", "e3"))
    assert store.event_counters[e1] | {} == {
        "registered": 5,
        "cancelled": 1,
        "checked_in": 4,
        "first_timers": 4,
        "first_timers_welcomed": 2,
        "not_arrived": 1,
        "checked_out": 4,
        "volunteer_centihours": 975,
        "methods": {"qr": 4},
        "arrivals": {"-10": 2, "0": 2},
    }
    assert store.event_counters[e2]["walk_ins"] == 1
    assert store.event_counters[e2]["returning"] == 1
    assert store.event_counters[e3]["checked_in"] == 3  # cai's second scan is not a second arrival
    assert store.events[e1].status == "ended"
    ana = store.people[scripted.people["ana"]]
    assert summarize(ana)["events_attended"] == 3
    assert summarize(ana)["centihours"] == 300
    # How often people came: each person counts once, at their current number of events.
    org = scripted.history.org_id
    assert {n: cell["people"] for (o, n), cell in store.loyalty.items() if o == org and cell.get("people")} == {
        1: 4,
        2: 2,
        3: 1,
    }


def test_a_copied_person_is_independent_of_the_original(scripted: Scripted) -> None:
    store = project(scripted.history.messages, 50)
    ana = store.people[scripted.people["ana"]]
    copied = ana.copy()
    assert copied == ana
    next(iter(copied.visits.values())).centihours += 100
    next(iter(copied.followups.values())).feedback = False
    copied.introductions.add("x")
    assert copied != ana and summarize(copied)["centihours"] == summarize(ana)["centihours"] + 100
    assert next(iter(ana.followups.values())).feedback is True and "x" not in ana.introductions


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_order_any_batches_and_duplicates_give_the_same_figures(scripted: Scripted, seed: int) -> None:
    messages = scripted.history.messages + scripted.other.messages
    expected = project(messages, 500).figures()
    rng = random.Random(seed)
    shuffled = messages + rng.sample(messages, 25)  # some messages twice
    rng.shuffle(shuffled)
    assert project(shuffled, rng.randint(1, 40)).figures() == expected


def test_funnel_counts_people_only_and_shows_scanners_and_proxies_apart() -> None:
    state = PersonState("p1", "o1")
    base = {"followup_id": "f1", "nudge_kind": "thank_you", "event_id": "e1"}
    scanner = {"machine": True, "machine_reason": "too_soon"}
    fold_person(state, "followup.sent", {**base, "sent_at": "2026-02-01T10:00:00Z"}, (NOW, "m1"))
    fold_person(state, "followup.clicked", {**base, "clicked_at": "2026-02-01T10:00:02Z", **scanner}, (NOW, "m2"))
    proxy = {"machine": True, "machine_reason": "image_proxy"}
    fold_person(state, "followup.opened", {**base, "opened_at": "2026-02-01T10:00:03Z", **proxy}, (NOW, "m3"))
    cells = funnel_counters(state)
    assert cells == {"2026-02|thank_you": {"sent": 1, "machine_opened": 1, "machine_clicked": 1}}
    assert summarize(state)["followups_acted"] == 0
    # The person's own click, later: counted, and no longer among the machines' extras.
    fold_person(state, "followup.clicked", {**base, "clicked_at": "2026-02-02T08:00:00Z"}, (NOW, "m4"))
    assert funnel_counters(state) == {"2026-02|thank_you": {"sent": 1, "opened": 1, "clicked": 1}}
    assert summarize(state)["followups_acted"] == 1
