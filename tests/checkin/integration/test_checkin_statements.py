"""The check-in hot path's database statements, counted on the real database.

A first scan of a valid badge is one read (the registration with its person's
visit count, an aggregate with $lookup) and four writes (the registration by
_id, the person's visit count, the client key, the outbox) in one
transaction: the benchmark's CPU per check-in depends on it staying so. The
door's extras after the answer (email, group, label) read nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo import MongoClient, monitoring

from tests.checkin.integration.conftest import Org, create_event, headers, registered

# Commands of the driver's own housekeeping, not of the use case.
HOUSEKEEPING = {"hello", "isMaster", "ismaster", "ping", "endSessions", "saslStart", "saslContinue", "buildInfo"}


class Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in HOUSEKEEPING:
            return
        target = event.command.get(event.command_name)
        with self._lock:
            self.commands.append((event.command_name, target if isinstance(target, str) else None))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def recorded(app: Flask, settings: Any) -> Iterator[tuple[Any, Recorder]]:
    """A context like the app's, on a client whose every command is recorded."""
    from checkin.adapters.event_cache import EventCache
    from checkin.adapters.repositories import MongoStore
    from checkin.adapters.unit_of_work import MongoUnitOfWork
    from checkin.service_layer.caches import AccessChecks, KioskSessions, RosterCache
    from checkin.service_layer.context import Context
    from turnout_common.contracts import registry

    recorder = Recorder()
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True, event_listeners=[recorder])
    db = client[settings.database]
    store = MongoStore(db)
    contracts = registry()
    wired = app.extensions["checkin"]
    ctx = Context(
        store=store,
        new_uow=lambda: MongoUnitOfWork(client, db, contracts),
        signer=wired.signer,
        settings=wired.settings,
        events=EventCache(store.events),
        kiosk_sessions=KioskSessions(store.kiosks),
        rosters=RosterCache(),
        access=AccessChecks(store.users, store.api_tokens, store.ended_sessions),
    )
    yield ctx, recorder
    client.close()


def test_a_first_scan_is_one_read_and_four_writes_in_one_transaction(
    client: FlaskClient, org: Org, recorded: tuple[Any, Recorder]
) -> None:
    from checkin.service_layer import checkins

    ctx, recorder = recorded
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    ctx.events.get(org.id, event["id"])  # the event cache is warm at a busy door
    recorder.commands.clear()
    command = checkins.CheckinCommand(org.id, event["id"], "key-statements-1", "qr", badge_code=reg["badge_code"])
    answer = checkins.record_checkin(ctx, command)
    assert answer.body["status"] == "checked_in"
    assert recorder.commands == [
        ("aggregate", "registrations"),
        ("update", "registrations"),
        ("update", "people"),
        ("insert", "checkin_requests"),
        ("insert", "outbox"),
        ("commitTransaction", None),
    ]
    # The door's extras (email, group, label) come from the transaction's own read...
    recorder.commands.clear()
    extras = checkins.door_extras(ctx, org.id, event["id"], answer.body, answer.registration)
    assert recorder.commands == []
    # ...and say what a read of the registration after the commit says.
    assert extras == checkins.door_extras(ctx, org.id, event["id"], answer.body) == {"has_email": True}
    assert recorder.commands == [("find", "registrations")]


def test_scans_written_together_cost_one_statement_per_collection(
    client: FlaskClient, org: Org, recorded: tuple[Any, Recorder]
) -> None:
    """Eight kiosks' first scans as one group commit: the same six statements as one scan."""
    from checkin.service_layer import checkins

    ctx, recorder = recorded
    event = create_event(client, org.token)
    regs = [registered(client, org.token, event["id"], f"group{i}@example.org") for i in range(8)]
    ctx.events.get(org.id, event["id"])
    recorder.commands.clear()
    commands = [
        checkins.CheckinCommand(org.id, event["id"], f"key-together-{i}", "qr", badge_code=reg["badge_code"])
        for i, reg in enumerate(regs)
    ]
    answers = checkins.record_checkins_together(ctx, commands)
    assert [a.body["status"] for a in answers if isinstance(a, checkins.CheckinAnswer)] == ["checked_in"] * 8
    assert [a.body["registration_id"] for a in answers if isinstance(a, checkins.CheckinAnswer)] == [
        reg["id"] for reg in regs
    ]
    assert recorder.commands == [
        ("aggregate", "registrations"),
        ("update", "registrations"),
        ("update", "people"),
        ("insert", "checkin_requests"),
        ("insert", "outbox"),
        ("commitTransaction", None),
    ]
    # Each kiosk's answer was stored under its own key: a replay answers the same.
    replay = checkins.record_checkin_alone(ctx, commands[3])
    assert replay.body["replayed"] is True and replay.body["registration_id"] == regs[3]["id"]
    listed = client.get(f"/api/v1/events/{event['id']}/registrations", headers=headers(org.token))
    assert sum(1 for reg in listed.get_json()["registrations"] if reg["checked_in_at"]) == 8


def test_people_already_in_are_told_so_from_the_batch_s_own_read(
    client: FlaskClient, org: Org, recorded: tuple[Any, Recorder]
) -> None:
    """A batch of repeat scans: one read, the client keys, the commit (no second transaction each)."""
    from checkin.service_layer import checkins

    ctx, recorder = recorded
    event = create_event(client, org.token)
    regs = [registered(client, org.token, event["id"], f"again{i}@example.org") for i in range(4)]
    first = [
        checkins.CheckinCommand(org.id, event["id"], f"key-first-{i}", "qr", badge_code=reg["badge_code"])
        for i, reg in enumerate(regs)
    ]
    checkins.record_checkins_together(ctx, first)
    recorder.commands.clear()
    again = [
        checkins.CheckinCommand(org.id, event["id"], f"key-again-{i}", "qr", badge_code=reg["badge_code"])
        for i, reg in enumerate(regs)
    ]
    answers = checkins.record_checkins_together(ctx, again)
    bodies = [a.body for a in answers if isinstance(a, checkins.CheckinAnswer)]
    assert [b["status"] for b in bodies] == ["already_checked_in"] * 4
    assert all("already checked in at" in b["message"] for b in bodies)
    assert [b["registration_id"] for b in bodies] == [reg["id"] for reg in regs]
    assert recorder.commands == [
        ("aggregate", "registrations"),
        ("insert", "checkin_requests"),
        ("commitTransaction", None),
    ]
    replay = checkins.record_checkin_alone(ctx, again[2])
    assert replay.body["replayed"] is True and replay.body["status"] == "already_checked_in"
