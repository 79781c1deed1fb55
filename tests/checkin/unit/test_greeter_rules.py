"""Greeters' rules without a server: who may be named, what a link carries,
what a greeter sees of a first-timer, and when a welcome may be recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkin.domain import greeters as rules
from checkin.domain.model import RuleBroken

NOW = datetime(2026, 5, 1, 18, 5, tzinfo=UTC)
EVENT = {"_id": "e-1", "org_id": "o-1", "ends_at": NOW + timedelta(hours=2)}


def registration(first_time: bool | None = True, **fields: object) -> dict[str, object]:
    checkin = None if first_time is None else {"received_at": NOW, "first_time": first_time, "method": "qr"}
    return {
        "_id": "r-1",
        "org_id": "o-1",
        "event_id": "e-1",
        "person_id": "p-1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email_hint": "a…@example.org",
        "offers": ["python"],
        "seeks": ["a mentor"],
        "checkin": checkin,
        **fields,
    }


def test_a_volunteer_needs_a_name_and_a_real_address() -> None:
    greeter = rules.volunteer_greeter("g-1", "o-1", "e-1", "  Grace   Hopper ", " Grace@Example.org ", NOW, "u-1")
    assert (greeter["name"], greeter["email"], greeter["email_norm"]) == (
        "Grace Hopper",
        "Grace@Example.org",
        "grace@example.org",
    )
    with pytest.raises(RuleBroken) as blank:
        rules.volunteer_greeter("g-2", "o-1", "e-1", "   ", "g@example.org", NOW, "u-1")
    assert blank.value.field == "name"
    with pytest.raises(RuleBroken) as bad:
        rules.volunteer_greeter("g-2", "o-1", "e-1", "Grace", "not-an-address", NOW, "u-1")
    assert bad.value.field == "email"


def test_the_same_person_named_twice_is_found_not_added() -> None:
    first = rules.volunteer_greeter("g-1", "o-1", "e-1", "Grace", "grace@example.org", NOW, "u-1")
    again = rules.volunteer_greeter("g-2", "o-1", "e-1", "Grace H.", "GRACE@example.org", NOW, "u-1")
    assert rules.already_named(again, [first]) is first
    user = rules.user_greeter("g-3", "o-1", "e-1", {"_id": "u-9", "name": "Sam"}, NOW, "u-1")
    assert rules.already_named(user, [first]) is None
    with pytest.raises(RuleBroken):
        rules.user_greeter("g-4", "o-1", "e-1", {"_id": "u-8", "name": "Gone", "deactivated_at": NOW}, NOW, "u-1")


def test_a_link_names_its_greeter_and_stops_when_they_are_removed() -> None:
    link = rules.read_link(rules.link_claims(rules.Link("o-1", "e-1", "g-1")))
    greeter = {"_id": "g-1", "org_id": "o-1", "event_id": "e-1"}
    assert rules.greeter_of_link(link, greeter) is greeter
    with pytest.raises(rules.LinkRefused):
        rules.greeter_of_link(link, None)  # removed
    with pytest.raises(rules.LinkRefused):
        rules.greeter_of_link(link, {**greeter, "event_id": "e-2"})
    for claims in ({"o": "o-1", "e": "e-1"}, {"o": "o-1", "e": "e-1", "g": 7}, "g-1", None):
        with pytest.raises(rules.LinkRefused):
            rules.read_link(claims)


def test_a_greeter_sees_first_name_last_initial_and_what_they_offer_or_seek() -> None:
    view = rules.first_timer_view(registration(), None)
    assert view["name"] == "Ada L." and view["first_name"] == "Ada"
    assert (view["offers"], view["seeks"], view["welcomed"]) == (["python"], ["a mentor"], False)
    assert "Lovelace" not in str(view) and "example.org" not in str(view)
    welcome = {"greeter_name": "Grace", "welcomed_at": NOW}
    assert rules.first_timer_view(registration(), welcome)["welcomed_by"] == "Grace"


def test_only_a_checked_in_first_timer_of_the_event_can_be_welcomed_until_a_while_after_it() -> None:
    assert rules.welcome_refusal(registration(), EVENT, NOW) is None
    assert rules.welcome_refusal(registration(), EVENT, NOW + timedelta(hours=14)) is None
    codes = {
        "returning": rules.welcome_refusal(registration(first_time=False), EVENT, NOW),
        "not in": rules.welcome_refusal(registration(first_time=None), EVENT, NOW),
        "elsewhere": rules.welcome_refusal(registration(event_id="e-2"), EVENT, NOW),
        "missing": rules.welcome_refusal(None, EVENT, NOW),
        "too late": rules.welcome_refusal(registration(), EVENT, NOW + timedelta(hours=15)),
    }
    assert {name: broken.code if broken else None for name, broken in codes.items()} == {
        "returning": "not_a_first_timer",
        "not in": "not_a_first_timer",
        "elsewhere": "registration_not_found",
        "missing": "registration_not_found",
        "too late": "event_over",
    }


def test_a_welcome_is_one_per_registration_and_names_its_greeter() -> None:
    greeter = {"_id": "g-1", "kind": "volunteer", "name": "Grace"}
    record = rules.welcome_record(registration(), greeter, NOW)
    assert record["_id"] == record["registration_id"] == "r-1"
    assert (record["greeter_id"], record["greeter_kind"], record["person_id"]) == ("g-1", "volunteer", "p-1")
