"""The audited use cases on fakes: an undo publishes attendee.checkin_undone with its
entry in the same transaction; role changes keep an owner; user and kiosk changes are recorded."""

from __future__ import annotations

import pytest

from checkin.domain.audit import Actor
from checkin.domain.model import RuleBroken
from checkin.service_layer import access, badges, checkins, organizations, registrations
from checkin.service_layer.checkins import CheckinCommand
from tests.checkin.unit.fakes import FakeWorld, fake_world, scheduled
from turnout_common.auth import Principal
from turnout_common.clock import to_rfc3339

ORG = "org-1"
STAFF = Actor("user", "u-door", "Dora", "door_staff")


@pytest.fixture
def world() -> FakeWorld:
    return fake_world()


def test_an_undo_publishes_with_its_audit_entry(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = registrations.register(
        world.ctx, ORG, event["_id"], first_name="Ada", last_name="L", email="ada@example.org", consent_email=True
    )
    checkins.record_checkin(
        world.ctx, CheckinCommand(ORG, event["_id"], "key-0000001", "qr", badge_code=reg["badge_code"])
    )
    received_at = world.store.registrations.docs[reg["_id"]]["checkin"]["received_at"]
    after, entry = badges.undo_checkin(world.ctx, ORG, event["_id"], reg["_id"], STAFF, "wrong badge")
    assert after["checkin"] is None and world.store.people.docs[reg["person_id"]]["visits"] == 0
    assert world.types()[-1] == "attendee.checkin_undone"
    message = world.published[-1]
    assert message.subject == event["_id"]
    assert message.data == {
        "org_id": ORG,
        "event_id": event["_id"],
        "registration_id": reg["_id"],
        "person_id": reg["person_id"],
        "checked_in_at": to_rfc3339(received_at),
        "undone_at": to_rfc3339(entry["at"]),
        "undone_by": "u-door",
        "reason": "wrong badge",
    }
    assert world.store.audit.entries == [entry]
    assert entry["action"] == "checkin.undone" and entry["actor"] == STAFF.as_doc()
    assert entry["details"]["before"]["checkin"]["received_at"] == received_at
    with pytest.raises(RuleBroken, match="not checked in"):
        badges.undo_checkin(world.ctx, ORG, event["_id"], reg["_id"], STAFF)
    assert world.types().count("attendee.checkin_undone") == 1 and len(world.store.audit.entries) == 1


def _org_with_owner(world: FakeWorld) -> Principal:
    org = organizations.create_organization(world.ctx, "Alpha", "owner@example.org", "Olga", "correct-horse-battery")
    owner = world.store.users.by_email("owner@example.org")
    assert owner is not None
    return Principal(kind="user", subject_id=owner["_id"], org_id=org["_id"], role="owner", name="Olga")


def test_role_changes_are_audited_and_the_last_owner_stays(world: FakeWorld) -> None:
    owner = _org_with_owner(world)
    viewer = access.add_user(world.ctx, owner, "v@example.org", "Vic", "viewer", "correct-horse-battery")
    changed = access.change_role(world.ctx, owner, viewer["_id"], "organizer")
    assert changed["role"] == "organizer" and world.store.users.docs[viewer["_id"]]["role"] == "organizer"
    with pytest.raises(RuleBroken) as last:
        access.change_role(world.ctx, owner, owner.subject_id, "viewer")
    assert last.value.code == "last_owner"
    assert world.store.users.docs[owner.subject_id]["role"] == "owner"
    organizer = Principal(kind="user", subject_id=viewer["_id"], org_id=owner.org_id, role="organizer", name="Vic")
    with pytest.raises(RuleBroken) as refused:
        access.change_role(world.ctx, organizer, viewer["_id"], "viewer")
    assert refused.value.code == "forbidden_role"
    with pytest.raises(RuleBroken) as missing:
        access.change_role(world.ctx, owner, "nobody", "viewer")
    assert missing.value.code == "user_not_found"
    # A second owner lets the first step down; a deactivated owner does not count.
    second = access.add_user(world.ctx, owner, "s@example.org", "Sid", "owner", "correct-horse-battery")
    third = access.add_user(world.ctx, owner, "t@example.org", "Tia", "owner", "correct-horse-battery")
    access.deactivate_user(world.ctx, owner, third["_id"])
    access.change_role(world.ctx, owner, owner.subject_id, "organizer")
    sid = Principal(kind="user", subject_id=second["_id"], org_id=owner.org_id, role="owner", name="Sid")
    with pytest.raises(RuleBroken, match="last owner"):
        access.change_role(world.ctx, sid, second["_id"], "viewer")
    actions = [e["action"] for e in world.store.audit.entries]
    assert actions == [
        "user.created",
        "user.role_changed",
        "user.created",
        "user.created",
        "user.deactivated",
        "user.role_changed",
    ]
    assert world.store.organizations.docs[owner.org_id]["roles_changed_at"] is not None
