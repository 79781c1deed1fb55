"""A greeter's welcome in the projections: a flag that only turns on, counted
for a first-timer whose check-in stands, in any order and any number of times."""

from __future__ import annotations

import itertools

from analytics.domain.registrations import RegistrationState, event_counters, fold_registration

REGISTERED = ("attendee.registered", {"status": "registered", "source": "api"}, "m1")
WELCOMED = ("attendee.welcomed", {"welcomed_at": "2026-01-01T17:03:00Z"}, "m3")


def _checked_in(first: bool) -> tuple[str, dict[str, object], str]:
    data = {
        "scanned_at": "2026-01-01T17:02:00Z",
        "received_at": "2026-01-01T17:02:00Z",
        "event_starts_at": "2026-01-01T17:00:00Z",
        "kiosk_id": "k1",
        "method": "qr",
        "first_time_ever": first,
    }
    return ("attendee.checked_in", data, "m2")


def _fold(*messages: tuple[str, dict[str, object], str]) -> RegistrationState:
    state = RegistrationState("r1", "e1", "o1", "p1")
    for message_type, data, message_id in messages:
        fold_registration(state, message_type, data, message_id)
    return state


def test_a_welcomed_first_timer_counts_in_any_order_and_once() -> None:
    messages = [REGISTERED, _checked_in(first=True), WELCOMED]
    for order in itertools.permutations(messages):
        counters = event_counters(_fold(*order, WELCOMED))  # and the welcome twice
        assert counters["first_timers"] == 1 and counters["first_timers_welcomed"] == 1


def test_a_welcome_counts_only_a_first_timer_whose_check_in_stands() -> None:
    assert "first_timers_welcomed" not in event_counters(_fold(REGISTERED, _checked_in(first=False), WELCOMED))
    undone = ("attendee.checkin_undone", {"undone_at": "2026-01-01T17:05:00Z"}, "m4")
    state = _fold(REGISTERED, _checked_in(first=True), WELCOMED, undone)
    assert "first_timers_welcomed" not in event_counters(state) and state.welcomed


def test_the_welcome_survives_the_stored_document() -> None:
    state = _fold(REGISTERED, _checked_in(first=True), WELCOMED)
    doc = state.to_doc()
    assert doc["welcomed_event"] == "e1"  # the sparse index's key: only welcomed registrations have it
    assert RegistrationState.from_doc(doc).welcomed
    assert "welcomed_event" not in _fold(REGISTERED).to_doc()
