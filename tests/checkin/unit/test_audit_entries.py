"""The audit trail's entry shape (checkin.domain.audit) and the recording helper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkin.domain import audit
from checkin.domain.audit import Actor, Subject
from checkin.service_layer import audit as audit_uc
from checkin.service_layer.ports import AuditFilter
from tests.checkin.unit.fakes import fake_world
from turnout_common.auth import Principal
from turnout_common.privacy import pseudonym

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OWNER = Principal(kind="user", subject_id="u-1", org_id="org-1", role="owner", name="Olga Owner")


def test_an_entry_has_one_shape_and_names_the_person_it_concerns() -> None:
    doc = audit.entry("a-1", "org-1", AT, audit.actor_of(OWNER), audit.PERSONAL_DATA_VIEWED, Subject("person", "p-1"))
    assert doc == {
        "_id": "a-1",
        "org_id": "org-1",
        "at": AT,
        "actor": {"kind": "user", "id": "u-1", "label": "Olga Owner", "role": "owner"},
        "action": "personal_data.viewed",
        "subject": {"kind": "person", "id": "p-1"},
        "details": {},
        "person_id": "p-1",
    }
    by_link = audit.entry(
        "a-2", "org-1", AT, audit.person_actor("p-2"), audit.PERSONAL_DATA_EXPORTED, Subject("data_request", "r-1")
    )
    assert by_link["person_id"] == "p-2" and "p-2" not in by_link["actor"]["label"]


def test_unknown_actions_and_actor_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.entry("a", "o", AT, audit.RETENTION_SCHEDULE, "person.deleted", Subject("person", "p"))
    with pytest.raises(ValueError, match="unknown actor kind"):
        audit.entry("a", "o", AT, Actor("robot", "r", "R2"), audit.USER_CREATED, Subject("user", "u"))


def test_kiosk_and_api_token_callers_are_named_as_actors() -> None:
    kiosk = Principal(kind="kiosk", subject_id="k-1", org_id="o", role="kiosk", name="Door 1", event_id="e")
    token = Principal(kind="api", subject_id="api:t-1", org_id="o", role="organizer", name="CRM sync")
    assert audit.actor_of(kiosk).as_doc() == {"kind": "kiosk", "id": "k-1", "label": "Door 1"}
    assert audit.actor_of(token).as_doc() == {"kind": "api", "id": "api:t-1", "label": "CRM sync", "role": "organizer"}


def test_older_entries_read_in_todays_shape() -> None:
    undone = {
        "_id": "x1",
        "org_id": "o",
        "action": "checkin.undone",
        "at": AT,
        "actor": {"kind": "user", "id": "u-1", "name": "Olga", "role": "owner"},
        "event_id": "e-1",
        "registration_id": "r-1",
        "person_id": "p-1",
        "reason": "wrong badge",
        "before": {"status": "registered", "checkin": {"method": "qr"}},
    }
    now = audit.normalized(undone)
    assert now["actor"] == {"kind": "user", "id": "u-1", "label": "Olga", "role": "owner"}
    assert now["subject"] == {"kind": "registration", "id": "r-1"}
    assert now["details"] == {"reason": "wrong badge", "before": {"status": "registered", "checkin": {"method": "qr"}}}
    assert now["person_id"] == "p-1" and now["event_id"] == "e-1"
    override = {
        "_id": "x2",
        "org_id": "o",
        "event_id": "e-1",
        "action": "checkin_window_override",
        "registration_id": "r-2",
        "actor_id": "api:t-9",
        "at": AT,
        "detail": {"within_window": False},
    }
    upgraded = audit.normalized(override)
    assert upgraded["action"] == audit.CHECKIN_OVERRIDE
    assert upgraded["actor"] == {"kind": "api", "id": "api:t-9", "label": ""}
    assert upgraded["details"] == {"within_window": False}
    current = audit.entry("a", "o", AT, audit.RETENTION_SCHEDULE, audit.USER_CREATED, Subject("user", "u"))
    assert audit.normalized(current) is current
    assert audit.actions_matching(audit.CHECKIN_OVERRIDE) == ["checkin.override", "checkin_window_override"]


def test_pseudonymized_replaces_the_id_wherever_it_appears() -> None:
    doc = audit.entry(
        "a",
        "o",
        AT,
        audit.person_actor("p-1"),
        audit.PERSON_ERASURE_REQUESTED,
        Subject("person", "p-1"),
        details={"registrations": ["p-1", "other"], "nested": {"who": "p-1"}, "count": 2},
    )
    stand_in = pseudonym("o", "p-1")
    swapped = audit.pseudonymized(doc, "p-1", stand_in)
    assert "p-1" not in repr(swapped)
    assert swapped["person_id"] == swapped["subject"]["id"] == swapped["actor"]["id"] == stand_in
    assert swapped["details"] == {"registrations": [stand_in, "other"], "nested": {"who": stand_in}, "count": 2}


def test_summaries_read_as_sentences() -> None:
    changed = audit.entry(
        "a",
        "o",
        AT,
        audit.actor_of(OWNER),
        audit.USER_ROLE_CHANGED,
        Subject("user", "u-2"),
        details={"from": "organizer", "to": "viewer"},
    )
    assert audit.summary(changed) == "Role changed: organizer → viewer"
    policy = audit.entry(
        "a",
        "o",
        AT,
        audit.actor_of(OWNER),
        audit.RETENTION_CHANGED,
        Subject("organization", "o"),
        details={"changed": {"checkin_details": {"from": 24, "to": 12}}},
    )
    assert audit.summary(policy) == "Retention changed: checkin_details 24→12 months"


def test_the_helper_records_through_the_store_and_reads_back_newest_first() -> None:
    world = fake_world()
    actor = audit.actor_of(OWNER)
    for minutes, action in ((1, audit.USER_CREATED), (2, audit.KIOSK_REVOKED), (3, audit.USER_CREATED)):
        audit_uc.record(
            world.store, "org-1", actor, action, Subject("user", f"u{minutes}"), at=AT + timedelta(minutes=minutes)
        )
    audit_uc.record(world.store, "org-2", actor, audit.USER_CREATED, Subject("user", "elsewhere"), at=AT)
    found, total = audit_uc.page(world.ctx, "org-1", AuditFilter(), skip=0, limit=10)
    assert total == 3 and [e["subject"]["id"] for e in found] == ["u3", "u2", "u1"]
    users, total = audit_uc.page(world.ctx, "org-1", AuditFilter(actions=(audit.USER_CREATED,)), skip=1, limit=10)
    assert total == 2 and [e["subject"]["id"] for e in users] == ["u1"]
    window = AuditFilter(since=AT + timedelta(minutes=2), until=AT + timedelta(minutes=3))
    assert [e["subject"]["id"] for e in audit_uc.rows(world.ctx, "org-1", window)] == ["u2"]


def test_bad_filters_are_refused() -> None:
    world = fake_world()
    from checkin.domain.model import RuleBroken

    with pytest.raises(RuleBroken, match="action must be one of") as bad:
        audit_uc.page(world.ctx, "org-1", AuditFilter(actions=("user.exploded",)), skip=0, limit=10)
    assert bad.value.field == "action"
    with pytest.raises(RuleBroken, match="to must be after from"):
        audit_uc.page(world.ctx, "org-1", AuditFilter(since=AT, until=AT), skip=0, limit=10)
