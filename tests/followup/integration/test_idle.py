"""Idle loops sleep, and still act at once: a gathering that ends while the
scheduler and the senders sleep on their change feeds gets its follow-ups
out within a second; a batch that falls due later goes out when it falls
due, not at the next safety poll."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from followup.adapters.mongo import SEND_BATCHES
from followup.bootstrap import MongoServices
from followup.service_layer.scheduling import run_scheduler, run_scheduler_once
from followup.service_layer.sending import Sender
from tests.followup.helpers import Gathering, SmtpServer
from tests.followup.integration.conftest import apply
from turnout_common.envelope import Envelope
from turnout_common.wake import IdlePause

pytestmark = pytest.mark.integration


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def sleepy(svc: MongoServices) -> MongoServices:
    """Leases and safety polls long enough that only a wake-up explains a prompt delivery."""
    svc.settings = dataclasses.replace(svc.settings, lease_seconds=120.0, idle_poll_seconds=60.0)
    return svc


@contextmanager
def running(*loops: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    stop = threading.Event()
    threads = [threading.Thread(target=loop, args=(stop,), daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads), "a loop did not stop within 10 s"


def gathering(org_id: str, people: int) -> tuple[Gathering, list[Envelope]]:
    g = Gathering(org_id, kind="meeting")
    messages: list[Envelope] = [g.scheduled()]
    for n in range(people):
        person = f"p-{n:02d}"
        messages += [g.registered(person, "Guest", f"{person}@example.org"), g.checked_in(person)]
    return g, messages


def test_a_batch_created_while_the_sender_sleeps_goes_out_within_a_second(
    sleepy: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    sender = Sender(sleepy, "sleeper")
    with running(sender.run):
        assert wait_for(lambda: sender.idle is not None and sender.idle.sleeping, 10), "the sender never slept"
        time.sleep(0.5)
        g, messages = gathering(org_id, 5)
        apply(sleepy, [*messages, g.ended()])
        created_at = time.monotonic()
        run_scheduler_once(sleepy, "test")  # inserts the send batch (due now)
        assert wait_for(lambda: len(smtp.handler.received) == 5, 10)
        took = time.monotonic() - created_at
    assert took < 1.0, f"the batch waited {took:.2f} s for a sleeping sender"
    assert isinstance(sender.idle, IdlePause) and sender.idle.wakeups >= 1  # woken, not a poll
    assert smtp.handler.count_by_followup().most_common(1)[0][1] == 1


def test_a_gathering_ending_while_everything_sleeps_is_followed_up_within_a_second(
    sleepy: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    senders = [Sender(sleepy, f"s{n}") for n in range(2)]
    with running(lambda stop: run_scheduler(sleepy, "scheduler", stop), *(s.run for s in senders)):
        assert wait_for(lambda: all(s.idle is not None and s.idle.sleeping for s in senders), 10)
        time.sleep(2.5)  # the scheduler is asleep too by now
        g, messages = gathering(org_id, 8)
        apply(sleepy, messages)
        ended_at = time.monotonic()
        apply(sleepy, [g.ended()])  # the consumer's write: a plan to make
        assert wait_for(lambda: len(smtp.handler.received) == 8, 10)
        took = time.monotonic() - ended_at
    assert took < 1.5, f"follow-ups went out {took:.2f} s after the gathering ended"
    counts = smtp.handler.count_by_followup()
    assert len(counts) == 8 and max(counts.values()) == 1


def test_a_batch_due_later_goes_out_when_due_not_at_the_next_safety_poll(
    sleepy: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    sleepy.settings = dataclasses.replace(sleepy.settings, send_delay_seconds=3)
    sender = Sender(sleepy, "sleeper")
    g, messages = gathering(org_id, 3)
    apply(sleepy, [*messages, g.ended()])
    run_scheduler_once(sleepy, "test")
    batch = sleepy.mongo[1][SEND_BATCHES].find_one({"event_id": g.event_id})
    assert batch is not None
    due_at: datetime = batch["due_at"]
    assert due_at > datetime.now(UTC) + timedelta(seconds=1)
    with running(sender.run):
        early = (due_at - datetime.now(UTC)).total_seconds() - 0.3
        time.sleep(max(0.0, early))
        assert not smtp.handler.received, "sent before it was due"
        assert sender.idle is not None and sender.idle.sleeping
        assert wait_for(lambda: len(smtp.handler.received) == 3, 15), "the batch never went out"
        late = (datetime.now(UTC) - due_at).total_seconds()
    assert late < 1.5, f"the batch went out {late:.2f} s after it fell due"
