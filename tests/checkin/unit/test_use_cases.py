"""checkin's use cases on in-memory fakes of the ports (no database, no broker)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from checkin.domain.admission import CheckinOutcome
from checkin.domain.audit import Actor
from checkin.domain.model import RuleBroken
from checkin.service_layer import checkins, events, kiosks, registrations
from checkin.service_layer.checkins import CheckinCommand, CheckoutCommand
from tests.checkin.unit.fakes import FakeWorld, fake_world, scheduled
from turnout_common.clock import utcnow

ORG = "org-1"


@pytest.fixture
def world() -> FakeWorld:
    return fake_world()


def register(world: FakeWorld, event: dict[str, Any], email: str = "ada@example.org") -> tuple[dict[str, Any], bool]:
    return registrations.register(
        world.ctx, ORG, event["_id"], first_name="Ada", last_name="Lovelace", email=email, consent_email=True
    )


def check_in(world: FakeWorld, event: dict[str, Any], reg: dict[str, Any], key: str, **changes: Any) -> Any:
    command = CheckinCommand(ORG, event["_id"], key, "qr", badge_code=reg["badge_code"], kiosk_id=None, **changes)
    return checkins.record_checkin(world.ctx, command)


# -- registration ----------------------------------------------------------------


def test_register_creates_person_and_registration_and_announces_it(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, created = register(world, event, " Ada@Example.org ")
    assert created and reg["status"] == "registered" and reg["source"] == "api"
    (person,) = world.store.people.docs.values()
    assert person["email_norm"] == "ada@example.org" and person["email"] == "Ada@Example.org"
    assert world.types() == ["event.scheduled", "attendee.registered"]


def test_registering_twice_returns_the_first_registration(world: FakeWorld) -> None:
    event = scheduled(world)
    first, _ = register(world, event)
    again, created = register(world, event, "ADA@example.org")
    assert not created and again["_id"] == first["_id"]
    assert len(world.store.registrations.docs) == 1 and world.types().count("attendee.registered") == 1


def test_a_full_event_waitlists_and_a_cancellation_promotes(world: FakeWorld) -> None:
    event = scheduled(world, capacity=1)
    first, _ = register(world, event, "one@example.org")
    second, _ = register(world, event, "two@example.org")
    assert (first["status"], second["status"]) == ("registered", "waitlisted")
    cancelled, promoted = registrations.cancel_registration(world.ctx, ORG, first["_id"], "ill")
    assert cancelled["status"] == "cancelled"
    assert promoted is not None and promoted["_id"] == second["_id"] and promoted["status"] == "registered"
    assert world.store.events.docs[event["_id"]]["registered_count"] == 1
    assert world.types()[-2:] == ["registration.cancelled", "attendee.registered"]


def test_registration_refused_for_an_ended_event(world: FakeWorld) -> None:
    event = scheduled(world)
    events.end_event(world.ctx, ORG, event["_id"], "organizer")
    with pytest.raises(RuleBroken) as refused:
        register(world, event)
    assert refused.value.code == "event_closed"


# -- check-in --------------------------------------------------------------------


def test_check_in_admits_counts_the_visit_and_publishes(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    answer = check_in(world, event, reg, "key-00000001")
    assert answer.outcome is CheckinOutcome.CHECKED_IN
    assert answer.body["message"] == "Welcome, Ada! First time here" and answer.body["visit_number"] == 1
    stored = world.store.registrations.docs[reg["_id"]]
    assert stored["checkin"]["method"] == "qr"
    assert world.store.people.docs[reg["person_id"]]["visits"] == 1
    assert world.types()[-1] == "attendee.checked_in"
    assert world.store.checkin_requests.docs[f"{ORG}:key-00000001"]["outcome"] == "checked_in"


def test_a_replayed_client_key_gets_the_first_answer_and_writes_nothing(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    first = check_in(world, event, reg, "key-00000001")
    published = len(world.published)
    replay = check_in(world, event, reg, "key-00000001")
    assert replay.outcome is CheckinOutcome.CHECKED_IN
    assert replay.body == {**first.body, "replayed": True}
    assert len(world.published) == published
    assert world.store.people.docs[reg["person_id"]]["visits"] == 1


def test_a_client_key_reused_for_another_event_is_refused(world: FakeWorld) -> None:
    event, other = scheduled(world), scheduled(world, title="Other")
    reg, _ = register(world, event)
    other_reg, _ = register(world, other)
    check_in(world, event, reg, "key-00000001")
    with pytest.raises(RuleBroken) as refused:
        check_in(world, other, other_reg, "key-00000001")
    assert refused.value.code == "client_key_reused"


def test_a_second_scan_is_told_already_checked_in(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    check_in(world, event, reg, "key-00000001")
    again = check_in(world, event, reg, "key-00000002")
    assert again.outcome is CheckinOutcome.ALREADY_CHECKED_IN
    assert again.body["message"].startswith("Ada L. already checked in at ")
    assert world.store.people.docs[reg["person_id"]]["visits"] == 1
    assert world.types().count("attendee.checked_in") == 1


def test_a_waitlisted_person_who_came_is_let_in(world: FakeWorld) -> None:
    event = scheduled(world, capacity=1)
    register(world, event, "one@example.org")
    late, _ = register(world, event, "two@example.org")
    assert check_in(world, event, late, "key-00000001").outcome is CheckinOutcome.CHECKED_IN
    assert world.store.registrations.docs[late["_id"]]["status"] == "registered"


def test_the_door_window_refuses_and_an_override_is_audited(world: FakeWorld) -> None:
    now = utcnow()
    event = scheduled(world, starts_at=now + timedelta(hours=5), ends_at=now + timedelta(hours=7))
    reg, _ = register(world, event)
    with pytest.raises(RuleBroken) as refused:
        check_in(world, event, reg, "key-00000001")
    assert refused.value.code == "checkin_not_open"
    assert world.store.checkin_requests.docs == {}  # rolled back: the key may be used again
    answer = check_in(world, event, reg, "key-00000001", override=True, actor_id="user-1")
    assert answer.outcome is CheckinOutcome.CHECKED_IN
    (audit,) = world.store.audit.entries
    assert audit["action"] == "checkin.override" and audit["details"]["within_window"] is False
    assert audit["actor"]["id"] == "user-1" and audit["registration_id"] == reg["_id"]
    assert audit["person_id"] == reg["person_id"] and audit["subject"] == {"kind": "registration", "id": reg["_id"]}


def test_an_unknown_badge_is_refused(world: FakeWorld) -> None:
    event = scheduled(world)
    with pytest.raises(RuleBroken) as refused:
        check_in(world, event, {"badge_code": "nope"}, "key-00000001")
    assert refused.value.code == "unknown_badge"


# -- check-out and the end of an event -------------------------------------------


def test_check_out_counts_hours_and_a_second_one_is_told_so(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    check_in(world, event, reg, "key-00000001")
    scanned_at = utcnow() + timedelta(hours=2)
    command = CheckoutCommand(ORG, event["_id"], "key-00000002", badge_code=reg["badge_code"], scanned_at=scanned_at)
    answer = checkins.record_checkout(world.ctx, command)
    assert answer.outcome is CheckinOutcome.CHECKED_OUT
    assert answer.body["hours"] == 2.0 and answer.body["total_hours"] == 2.0
    assert world.types()[-1] == "attendee.checked_out"
    again = checkins.record_checkout(
        world.ctx, CheckoutCommand(ORG, event["_id"], "key-00000003", badge_code=reg["badge_code"])
    )
    assert again.outcome is CheckinOutcome.ALREADY_CHECKED_OUT and again.body["hours"] == 2.0


def test_check_out_before_check_in_is_refused(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    with pytest.raises(RuleBroken) as refused:
        checkins.record_checkout(world.ctx, CheckoutCommand(ORG, event["_id"], "key-1", badge_code=reg["badge_code"]))
    assert refused.value.code == "not_checked_in"


def test_ending_a_volunteer_shift_checks_out_everyone_still_in(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    check_in(world, event, reg, "key-00000001")
    events.end_event(world.ctx, ORG, event["_id"], "organizer")
    checkout = world.store.registrations.docs[reg["_id"]]["checkout"]
    assert checkout["closed_by"] == "event_end" and checkout["method"] == "auto"
    assert world.types()[-2:] == ["event.ended", "attendee.checked_out"]


def test_ending_another_kind_of_event_checks_nobody_out(world: FakeWorld) -> None:
    event = scheduled(world, kind="networking")
    reg, _ = register(world, event)
    check_in(world, event, reg, "key-00000001")
    events.end_event(world.ctx, ORG, event["_id"], "organizer")
    assert world.store.registrations.docs[reg["_id"]]["checkout"] is None


# -- kiosk sessions --------------------------------------------------------------


def test_a_kiosk_pairs_once_and_revoking_ends_its_session(world: FakeWorld) -> None:
    event = scheduled(world)
    kiosk = kiosks.create_kiosk(world.ctx, ORG, event["_id"], "Door 1", "1234")
    token, paired, paired_event = kiosks.pair(world.ctx, kiosk["pairing_code"])
    assert token and paired["_id"] == kiosk["_id"] and paired_event["_id"] == event["_id"]
    session = world.ctx.signer.verify(token).session_id
    assert world.ctx.kiosk_sessions.current_session(kiosk["_id"]) == session
    with pytest.raises(RuleBroken) as reused:
        kiosks.pair(world.ctx, kiosk["pairing_code"])
    assert reused.value.code == "invalid_pairing_code"
    kiosks.revoke(world.ctx, ORG, kiosk["_id"], Actor("user", "user-1", "Olga", "owner"))
    assert world.ctx.kiosk_sessions.current_session(kiosk["_id"]) is None
    assert [e["action"] for e in world.store.audit.entries] == ["kiosk.paired", "kiosk.revoked"]


def test_a_new_pairing_code_replaces_the_paired_tablet(world: FakeWorld) -> None:
    event = scheduled(world)
    kiosk = kiosks.create_kiosk(world.ctx, ORG, event["_id"], "Door 1", "1234")
    kiosks.pair(world.ctx, kiosk["pairing_code"])
    fresh = kiosks.new_code(world.ctx, ORG, kiosk["_id"])
    token, _, _ = kiosks.pair(world.ctx, fresh["pairing_code"])
    assert world.ctx.kiosk_sessions.current_session(kiosk["_id"]) == world.ctx.signer.verify(token).session_id


def test_kiosk_search_finds_names_and_reads_check_ins_fresh(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    (found,) = kiosks.search(world.ctx, ORG, event["_id"], "ada")
    assert (found["name"], found["checked_in"]) == ("Ada L.", False)
    check_in(world, event, reg, "key-00000001")
    (found,) = kiosks.search(world.ctx, ORG, event["_id"], "ada")
    assert found["checked_in"] is True


# -- editing and cancelling events -----------------------------------------------


def test_update_event_moves_the_door_window_with_the_schedule(world: FakeWorld) -> None:
    event = scheduled(world)
    later = event["starts_at"] + timedelta(hours=1)
    updated = events.update_event(
        world.ctx,
        ORG,
        event["_id"],
        {"title": "  Late shift ", "starts_at": later, "ends_at": later + timedelta(hours=2)},
    )
    assert updated["title"] == "Late shift"
    assert updated["checkin_opens_at"] == later - timedelta(minutes=60)
    assert world.store.events.docs[event["_id"]]["checkin_closes_at"] == later + timedelta(hours=3)
    assert world.types()[-1] == "event.updated"
    with pytest.raises(RuleBroken) as refused:
        events.update_event(world.ctx, ORG, event["_id"], {"status": "ended"})
    assert refused.value.code == "invalid_field"


def test_a_cancelled_event_closes_the_door_and_cancels_once(world: FakeWorld) -> None:
    event = scheduled(world)
    reg, _ = register(world, event)
    events.cancel_event(world.ctx, ORG, event["_id"], "storm")
    events.cancel_event(world.ctx, ORG, event["_id"], "storm")
    assert world.types().count("event.cancelled") == 1
    with pytest.raises(RuleBroken) as refused:
        check_in(world, event, reg, "key-00000001", override=True)
    assert refused.value.code == "event_cancelled"
    with pytest.raises(RuleBroken) as ended:
        events.end_event(world.ctx, ORG, event["_id"], "organizer")
    assert ended.value.code == "event_cancelled"


def test_due_events_end_at_their_end_time(world: FakeWorld) -> None:
    now = utcnow()
    past = scheduled(world, starts_at=now - timedelta(hours=3), ends_at=now - timedelta(minutes=1))
    scheduled(world)
    assert events.end_due_events(world.ctx, now) == 1
    assert world.store.events.docs[past["_id"]]["status"] == "ended"
    assert world.types().count("event.ended") == 1


# -- CSV imports -----------------------------------------------------------------


def test_an_import_registers_new_people_and_counts_those_already_registered(world: FakeWorld) -> None:
    from checkin.service_layer import imports

    event = scheduled(world)
    register(world, event, "ada@example.org")
    csv = b"first_name,last_name,email\nAda,Lovelace,ADA@example.org\nGrace,Hopper,grace@example.org\n"
    mapping = {"first_name": "first_name", "last_name": "last_name", "email": "email"}
    job = imports.start_import(world.ctx, ORG, event["_id"], csv, "people.csv", "generic", mapping)
    assert job["status"] == "queued" and job["pending"] == 2
    assert imports.process_pending_imports(world.ctx, owner="unit") == 2
    done = world.store.imports.docs[job["_id"]]
    assert (done["status"], done["created"], done["already_registered"]) == ("done", 1, 1)
    assert world.store.imports.rows == {}  # the parsed rows are dropped once done
    assert len(world.store.registrations.docs) == 2
    assert world.types().count("attendee.registered") == 2
