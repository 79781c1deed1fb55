"""The retention policy's rules (checkin.domain.retention) and its use cases on fakes:
reading an owner's periods, the schedule, and the sweep of old check-in details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkin.domain import retention as rules
from checkin.domain.audit import Actor
from checkin.service_layer import retention
from tests.checkin.unit.fakes import fake_world
from turnout_common.privacy import DEFAULT_RETENTION, RetentionPeriods

NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
OWNER = Actor("user", "u-1", "Olga", "owner")


def test_an_owner_changes_some_kinds_and_the_others_stay() -> None:
    current = RetentionPeriods(checkin_details=12)
    chosen = rules.read_periods({"tracking_events": 3, "message_bodies": "9"}, current)
    assert chosen == RetentionPeriods(checkin_details=12, tracking_events=3, message_bodies=9)
    assert rules.changes(current, chosen) == {
        "message_bodies": {"from": 6, "to": 9},
        "tracking_events": {"from": 12, "to": 3},
    }
    assert rules.changes(chosen, chosen) == {}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"checkin_details": 0}, "checkin_details"),
        ({"inactive_people": 121}, "inactive_people"),
        ({"message_bodies": 2.5}, "message_bodies"),
        ({"tracking_events": True}, "tracking_events"),
        ({"delivery_journal": ""}, "delivery_journal"),
        ({"delivery_journal": "twelve"}, "delivery_journal"),
        ({"forever": 3}, "forever"),
    ],
)
def test_bad_periods_name_their_kind(values: dict[str, object], field: str) -> None:
    with pytest.raises(rules.PolicyInvalid) as refused:
        rules.read_periods(values)
    assert refused.value.field == field and field in refused.value.message


def test_stored_periods_fall_back_to_the_defaults() -> None:
    assert rules.stored_periods(None) is DEFAULT_RETENTION
    assert rules.stored_periods({"checkin_details": 0}) is DEFAULT_RETENTION  # unusable: never a shorter period
    assert rules.stored_periods({"checkin_details": 6}) == RetentionPeriods(checkin_details=6)


def test_the_schedule_says_what_each_period_means_today() -> None:
    rows = rules.schedule(RetentionPeriods(checkin_details=3), NOW)
    assert [row.kind for row in rows] == list(DEFAULT_RETENTION.as_dict())
    details = rows[0]
    assert details.months == 3 and details.default_months == 24 and not details.is_default
    assert details.cutoff == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)  # 31 May less 3 months: end of February
    assert details.enforced_by == ("checkin", "analytics")
    assert all(row.is_default for row in rows[1:])
    assert all(row.covers and row.label for row in rows)


def test_stripping_keeps_the_check_in_and_clears_who_and_which_device() -> None:
    at = NOW - timedelta(days=400)
    registration = {
        "_id": "r",
        "status": "registered",
        "source": "walk-in",
        "offers": ["carpentry"],
        "seeks": ["mentor"],
        "checkin": {"method": "walk-in", "kiosk_id": "k-1", "actor_id": None, "received_at": at, "scanned_at": at},
        "checkout": {"kiosk_id": "k-1", "actor_id": "u-2", "hours": 2.0, "received_at": at},
    }
    after = rules.stripped(registration)
    assert after["checkin"] == {
        "method": "walk-in",
        "kiosk_id": None,
        "actor_id": None,
        "received_at": at,
        "scanned_at": at,
    }
    assert after["checkout"] == {"kiosk_id": None, "actor_id": None, "hours": 2.0, "received_at": at}
    assert after["offers"] == after["seeks"] == [] and after["status"] == "registered"
    booked = rules.stripped({"source": "api", "offers": ["x"], "checkin": None})
    assert booked == {
        "source": "api",
        "offers": ["x"],
        "checkin": None,
    }  # a booking's own answers are not walk-in answers


def test_setting_a_policy_stores_audits_and_announces_it_at_once() -> None:
    world = fake_world()
    world.store.organizations.add({"_id": "org-1", "name": "A", "slug": "a"})
    periods, entry = retention.set_policy(world.ctx, "org-1", OWNER, {"checkin_details": 6})
    assert periods == RetentionPeriods(checkin_details=6)
    assert world.store.organizations.docs["org-1"]["retention_periods"] == periods.as_dict()
    assert entry["action"] == "retention.changed" and entry["details"]["changed"] == {
        "checkin_details": {"from": 24, "to": 6}
    }
    (message,) = world.published
    assert message.type == "retention.policy_set" and message.subject == "org-1"
    assert message.data["periods"]["checkin_details"] == 6 and message.data["set_by"] == "u-1"
    with pytest.raises(rules.PolicyInvalid):
        retention.set_policy(world.ctx, "org-1", OWNER, {"checkin_details": 500})
    assert len(world.published) == 1 and len(world.store.audit.entries) == 1  # nothing half-done
    policy = retention.schedule_of(world.ctx, "org-1", NOW)
    assert policy.chosen and policy.periods.checkin_details == 6 and policy.set_by == "u-1"


def test_the_sweep_takes_each_organizations_own_period() -> None:
    world = fake_world()
    store = world.store
    store.organizations.add({"_id": "short", "name": "S", "slug": "s", "retention_periods": {"checkin_details": 1}})
    store.organizations.add({"_id": "long", "name": "L", "slug": "l"})
    for org_id in ("short", "long"):
        for name, ended in (("old", NOW - timedelta(days=45)), ("new", NOW - timedelta(days=10))):
            event_id = f"{org_id}-{name}"
            store.events.add({"_id": event_id, "org_id": org_id, "ends_at": ended})
            store.registrations.add(
                {
                    "_id": f"{event_id}-reg",
                    "event_id": event_id,
                    "person_id": "p",
                    "badge_code": f"{event_id}-badge",
                    "source": "walk-in",
                    "offers": ["x"],
                    "seeks": [],
                    "status": "registered",
                    "checkin": {"kiosk_id": "k", "actor_id": None, "received_at": ended},
                    "checkout": None,
                }
            )
            store.checkin_requests.remember({"_id": f"{org_id}:{event_id}-key", "event_id": event_id})
    swept = retention.sweep_checkin_details(world.ctx, NOW, batch=1)
    assert swept == retention.SweepResult(events=1, requests=1, registrations=1)
    assert set(store.checkin_requests.docs) == {"short:short-new-key", "long:long-old-key", "long:long-new-key"}
    old = store.registrations.docs["short-old-reg"]
    assert old["checkin"]["kiosk_id"] is None and old["offers"] == [] and old["checkin"]["received_at"]
    assert store.registrations.docs["short-new-reg"]["offers"] == ["x"]
    assert store.events.docs["short-old"]["details_swept_at"] == NOW
    assert retention.sweep_checkin_details(world.ctx, NOW) == retention.SweepResult()
