"""Group commit: concurrent scans written together, each kiosk told its own answer.

The combiner is tested with real threads; the batch use case against the
in-memory store, scan for scan against the same scans done one at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from checkin.domain.model import RuleBroken
from checkin.service_layer import checkins, registrations
from checkin.service_layer.checkins import CheckinAnswer, CheckinCommand
from checkin.service_layer.group_commit import GroupCommit
from tests.checkin.unit.fakes import FakeWorld, fake_world, scheduled
from turnout_common.clock import utcnow

ORG = "org-1"


# -- the combiner ------------------------------------------------------------------------


def test_a_lone_caller_is_written_at_once_in_a_batch_of_one() -> None:
    seen: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int | BaseException]:
        seen.append(list(items))
        return [item * 10 for item in items]

    combiner: GroupCommit[int, int] = GroupCommit(run)
    assert combiner.submit(4) == 40
    assert combiner.submit(5) == 50
    assert seen == [[4], [5]]


def test_callers_arriving_during_a_write_share_the_next_batch_and_get_their_own_answers() -> None:
    first_started = threading.Event()
    release_first = threading.Event()
    batches: list[list[int]] = []

    def run(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        if items == [0]:
            first_started.set()
            assert release_first.wait(5)
        return [RuleBroken("odd", f"{item} is odd") if item % 2 else item * 10 for item in items]

    combiner: GroupCommit[int, int] = GroupCommit(run)
    answers: dict[int, object] = {}

    def call(item: int) -> None:
        try:
            answers[item] = combiner.submit(item)
        except RuleBroken as broken:
            answers[item] = broken.message

    leader = threading.Thread(target=call, args=(0,))
    leader.start()
    assert first_started.wait(5)
    others = [threading.Thread(target=call, args=(item,)) for item in range(1, 8)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 5
    while len(combiner._queue) < 7 and time.monotonic() < deadline:  # all seven are waiting
        time.sleep(0.005)
    release_first.set()
    for thread in [leader, *others]:
        thread.join(5)
    assert batches[0] == [0]
    assert sorted(batches[1]) == list(range(1, 8)) and len(batches) == 2  # one batch for all who waited
    assert answers == {0: 0, 2: 20, 4: 40, 6: 60, 1: "1 is odd", 3: "3 is odd", 5: "5 is odd", 7: "7 is odd"}


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    def run(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return list(items)

    combiner: GroupCommit[int, int] = GroupCommit(run)
    with pytest.raises(ConnectionError):
        combiner.submit(1)
    assert combiner.submit(2) == 2


def test_many_threads_each_get_exactly_their_own_answer() -> None:
    def run(items: Sequence[int]) -> list[int | BaseException]:
        time.sleep(0.002)  # a write takes a moment, so batches form
        return [item + 1000 for item in items]

    combiner: GroupCommit[int, int] = GroupCommit(run, max_batch=8)
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def caller(start: int) -> None:
        for item in range(start, start + 50):
            answer = combiner.submit(item)
            with lock:
                answers[item] = answer

    threads = [threading.Thread(target=caller, args=(n * 100,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 800 and all(answer == item + 1000 for item, answer in answers.items())
    assert combiner.items == 800 and combiner.batches < 800  # some were written together


# -- the batch use case ---------------------------------------------------------------


def open_event(world: FakeWorld, **changes: Any) -> dict[str, Any]:
    return scheduled(
        world, ORG, **{"title": "Networking evening", "kind": "networking", "timezone": "Europe/Berlin", **changes}
    )


def people(world: FakeWorld, event: dict[str, Any], count: int) -> list[dict[str, Any]]:
    return [
        registrations.register(
            world.ctx,
            ORG,
            event["_id"],
            first_name=f"Guest{i}",
            last_name="Test",
            email=f"g{i}@example.org",
            consent_email=True,
        )[0]
        for i in range(count)
    ]


def scans(event: dict[str, Any], regs: list[dict[str, Any]], other_event: dict[str, Any]) -> list[CheckinCommand]:
    """A busy minute at the door: first scans, a double tap, a badge scanned at two kiosks,
    an unknown badge, a badge of another event, a staff pick by registration id."""
    e = event["_id"]
    return [
        CheckinCommand(ORG, e, "k1", "qr", badge_code=regs[0]["badge_code"], kiosk_id="door-1"),
        CheckinCommand(ORG, e, "k2", "qr", badge_code=regs[1]["badge_code"], kiosk_id="door-2"),
        CheckinCommand(ORG, e, "k1", "qr", badge_code=regs[0]["badge_code"], kiosk_id="door-1"),  # double tap
        CheckinCommand(ORG, e, "k3", "qr", badge_code=regs[1]["badge_code"], kiosk_id="door-1"),  # two kiosks
        CheckinCommand(ORG, e, "k4", "qr", badge_code="NOSUCHBADGE"),
        CheckinCommand(ORG, e, "k5", "qr", badge_code=other_event["badge_code"]),
        CheckinCommand(ORG, e, "k6", "staff", registration_id=regs[2]["_id"]),
        CheckinCommand(ORG, e, "k7", "qr", badge_code=regs[3]["badge_code"]),
        CheckinCommand(ORG, "no-such-event", "k8", "qr", badge_code=regs[4]["badge_code"]),
    ]


def summary(outcome: CheckinAnswer | Exception) -> tuple[Any, ...]:
    if isinstance(outcome, RuleBroken):
        return ("refused", outcome.code)
    assert isinstance(outcome, CheckinAnswer), outcome
    body = outcome.body
    return (body["status"], body["registration_id"], body.get("visit_number"), body.get("replayed", False))


def a_busy_door() -> tuple[FakeWorld, list[CheckinCommand], list[dict[str, Any]]]:
    world = fake_world()
    event = open_event(world)
    other = open_event(world, title="Another evening")
    regs = people(world, event, 5)
    (elsewhere,) = people(world, other, 1)
    return world, scans(event, regs, elsewhere), regs


def test_scans_written_together_answer_and_store_exactly_as_scans_written_one_by_one() -> None:
    together_world, commands, regs = a_busy_door()
    outcomes = checkins.record_checkins_together(together_world.ctx, commands)

    alone_world, alone_commands, _ = a_busy_door()
    alone: list[CheckinAnswer | Exception] = []
    for command in alone_commands:
        try:
            alone.append(checkins.record_checkin_alone(alone_world.ctx, command))
        except RuleBroken as broken:
            alone.append(broken)

    # Registration ids differ between the two worlds: compare by position in the roster.
    def positions(world: FakeWorld, found: list[CheckinAnswer | Exception]) -> list[tuple[Any, ...]]:
        ids = {
            reg["_id"]: f"reg{i}"
            for i, reg in enumerate(sorted(world.store.registrations.docs.values(), key=lambda r: r["first_name"]))
        }
        return [tuple(ids.get(part, part) for part in summary(outcome)) for outcome in found]

    assert positions(together_world, outcomes) == positions(alone_world, alone)
    assert [summary(o)[0] for o in outcomes] == [
        "checked_in",
        "checked_in",
        "checked_in",  # the double tap: the first answer again, marked a replay
        "already_checked_in",
        "refused",
        "refused",
        "checked_in",
        "checked_in",
        "refused",
    ]
    assert outcomes[2].body["replayed"] is True  # type: ignore[union-attr]
    checked_in = [reg for reg in together_world.store.registrations.docs.values() if reg.get("checkin")]
    assert sorted(reg["_id"] for reg in checked_in) == sorted(
        reg["_id"] for reg in (regs[0], regs[1], regs[2], regs[3])
    )
    assert together_world.types().count("attendee.checked_in") == 4
    assert all(together_world.store.people.docs[reg["person_id"]]["visits"] == 1 for reg in checked_in)
    assert len(together_world.store.checkin_requests.docs) == 4 + 1  # four admitted, one already-in


def test_a_replayed_client_key_in_a_batch_sends_every_scan_alone_and_each_gets_its_answer() -> None:
    world = fake_world()
    event = open_event(world)
    regs = people(world, event, 3)
    first = CheckinCommand(ORG, event["_id"], "offline-1", "qr", badge_code=regs[0]["badge_code"])
    checkins.record_checkin_alone(world.ctx, first)  # synced earlier; the kiosk replays its queue
    batch = [
        first,
        CheckinCommand(ORG, event["_id"], "offline-2", "qr", badge_code=regs[1]["badge_code"]),
        CheckinCommand(ORG, event["_id"], "offline-3", "qr", badge_code=regs[2]["badge_code"]),
    ]
    outcomes = checkins.record_checkins_together(world.ctx, batch)
    assert [summary(o)[0] for o in outcomes] == ["checked_in", "checked_in", "checked_in"]
    assert [summary(o)[3] for o in outcomes] == [True, False, False]
    assert world.types().count("attendee.checked_in") == 3


def test_one_person_at_two_events_in_one_batch_is_counted_as_two_visits() -> None:
    world = fake_world()
    morning, evening = open_event(world, title="Morning"), open_event(world, title="Evening")
    (at_morning,) = people(world, morning, 1)
    (at_evening,) = people(world, evening, 1)  # same email: same person
    assert at_morning["person_id"] == at_evening["person_id"]
    outcomes = checkins.record_checkins_together(
        world.ctx,
        [
            CheckinCommand(ORG, morning["_id"], "m", "qr", badge_code=at_morning["badge_code"]),
            CheckinCommand(ORG, evening["_id"], "e", "qr", badge_code=at_evening["badge_code"]),
        ],
    )
    assert [summary(o)[2] for o in outcomes] == [1, 2]
    assert world.store.people.docs[at_morning["person_id"]]["visits"] == 2


def test_a_closed_door_in_a_batch_is_refused_as_it_would_be_alone() -> None:
    world = fake_world()
    now = utcnow()
    closed = open_event(world, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=2, hours=2))
    (reg,) = people(world, closed, 1)
    (outcome,) = checkins.record_checkins_together(
        world.ctx, [CheckinCommand(ORG, closed["_id"], "early", "qr", badge_code=reg["badge_code"])]
    )
    assert isinstance(outcome, RuleBroken) and outcome.code == "checkin_not_open"
