"""Exactly once under faults, against a real SMTP server that counts what it accepted.

- The sender process is killed (``os._exit(137)``, as SIGKILL would) at each
  step of the state machine: after claiming, after recording ``sending``
  (before the SMTP conversation), and after the server accepted a message
  but before "sent" was recorded. A fresh worker takes over when the lease
  expires.
- The SMTP server refuses (4xx) for a while, then recovers; one address is
  refused permanently (5xx).
- The Kafka broker is frozen (SIGSTOP) mid-flight, then resumed (SIGCONT).

In every case: no message reaches the server twice, and every nudge ends
``sent`` (received exactly once) or ``delivery_unknown`` (at most the one
message in flight, shown by the API and counted in /metrics): none is
dropped silently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from followup import create_app
from followup.adapters.mongo import NUDGES, PLANS
from followup.service_layer.context import Services
from followup.service_layer.scheduling import run_scheduler_once
from followup.service_layer.sending import Sender
from tests.conftest import Infrastructure
from tests.followup.helpers import Gathering, SmtpServer
from tests.followup.integration.conftest import apply
from turnout_common.auth import Principal, TokenSigner
from turnout_common.config import secret_key
from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC
from turnout_common.kafka import ensure_topics
from turnout_common.outbox import OUTBOX

pytestmark = pytest.mark.integration

PEOPLE = 24


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


ROOT = Path(__file__).resolve().parents[3]


@contextmanager
def worker(env: dict[str, str], **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """The follow-up worker with the test's environment: ``python -m followup.entrypoints.worker``,
    or, given ``FOLLOWUP_FAULT_AT``, the same worker with a fault injector (``tests.followup.fault_worker``)."""
    module = "tests.followup.fault_worker" if "FOLLOWUP_FAULT_AT" in extra else "followup.entrypoints.worker"
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING", **extra},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stderr is not None:
            process.stderr.close()


def seed(svc: Services, org_id: str, domain: str, people: int = PEOPLE) -> Gathering:
    g = Gathering(org_id, kind="meeting", title="Fault-tested meeting")
    messages = [g.scheduled()]
    for n in range(people):
        person = f"{domain.split('.')[0]}-{n:03d}"
        messages += [g.registered(person, f"Guest{n}", f"guest{n}@{domain}"), g.checked_in(person)]
    apply(svc, [*messages, g.ended()])
    run_scheduler_once(svc, "test")
    assert svc.db[NUDGES].count_documents({"event_id": g.event_id}) == people
    return g


def final_states(svc: Services, event_id: str) -> dict[str, str]:
    return {doc["_id"]: doc["state"] for doc in svc.db[NUDGES].find({"event_id": event_id})}


def assert_exactly_once(svc: Services, smtp: SmtpServer, event_id: str, domain: str) -> dict[str, str]:
    """No duplicates at the server; every nudge sent (received once) or visibly in doubt."""
    received = smtp.handler.for_domain(domain)
    counts = {fid: sum(1 for r in received if r.followup_id == fid) for fid in {r.followup_id for r in received}}
    assert all(n == 1 for n in counts.values()), f"duplicates: {counts}"
    states = final_states(svc, event_id)
    assert set(states.values()) <= {"sent", "delivery_unknown"}, states
    for fid, state in states.items():
        if state == "sent":
            assert counts.get(fid) == 1, f"{fid} recorded sent but not received"
    return states


def organizer_token(org_id: str) -> str:
    return TokenSigner(secret_key()).issue(Principal("user", "u-test", org_id, "organizer", "Test Organizer"))


def visible_unknowns(org_id: str, event_id: str) -> tuple[int, str]:
    """What an organizer sees: the API's delivery_unknown list and the /metrics gauge."""
    app = create_app()
    client = app.test_client()
    answer = client.get(
        f"/api/v1/events/{event_id}/messages?status=delivery_unknown",
        headers={"Authorization": f"Bearer {organizer_token(org_id)}"},
    )
    assert answer.status_code == 200, answer.get_json()
    metrics = client.get("/metrics").get_data(as_text=True)
    gauge = next(line for line in metrics.splitlines() if line.startswith("turnout_followup_delivery_unknown "))
    return len(answer.get_json()["messages"]), gauge


@pytest.mark.parametrize(
    ("fault", "after", "expect_unknown", "received_before_restart"),
    [
        ("after_claim", "0", 0, 0),
        ("before_send", "5", 1, 5),
        ("after_send_before_record", "5", 1, 6),
    ],
)
def test_sender_killed_at_each_step(
    svc: Services,
    smtp: SmtpServer,
    org_id: str,
    followup_env: dict[str, str],
    fault: str,
    after: str,
    expect_unknown: int,
    received_before_restart: int,
) -> None:
    domain = f"{fault.replace('_', '-')}.example.org"
    g = seed(svc, org_id, domain)
    loops = {"FOLLOWUP_WORKER_LOOPS": "sender", "FOLLOWUP_SENDER_THREADS": "1", "FOLLOWUP_BATCH_SIZE": "200"}
    with worker(followup_env, **loops, FOLLOWUP_FAULT_AT=fault, FOLLOWUP_FAULT_AFTER_MESSAGES=after) as crashing:
        assert crashing.wait(30) == 137
    assert len(smtp.handler.for_domain(domain)) == received_before_restart
    # The dead sender's lease expires; a new worker takes over.
    with worker(followup_env, **loops):
        wait_until(
            lambda: all(s in ("sent", "delivery_unknown") for s in final_states(svc, g.event_id).values()),
            40,
            "every nudge settled",
        )
        time.sleep(1.0)  # a late duplicate would show up here
    states = assert_exactly_once(svc, smtp, g.event_id, domain)
    unknown = [fid for fid, state in states.items() if state == "delivery_unknown"]
    assert len(unknown) == expect_unknown
    received = {r.followup_id for r in smtp.handler.for_domain(domain)}
    if fault == "before_send":
        assert not set(unknown) & received  # in doubt, and in fact never handed over
    if fault == "after_send_before_record":
        assert set(unknown) <= received  # in doubt, and in fact delivered: not resent
    assert len(received) == PEOPLE - (1 if fault == "before_send" else 0)
    listed, gauge = visible_unknowns(org_id, g.event_id)
    assert listed == expect_unknown
    assert gauge == f"turnout_followup_delivery_unknown {float(expect_unknown)}"
    if unknown:
        # An organizer resolves it: resend the one that never left; mark the delivered one sent.
        action = "resend" if fault == "before_send" else "mark_sent"
        client = create_app().test_client()
        answer = client.post(
            f"/api/v1/messages/{unknown[0]}/resolution",
            json={"action": action},
            headers={"Authorization": f"Bearer {organizer_token(org_id)}"},
        )
        assert answer.status_code == 200, answer.get_json()
        with worker(followup_env, **loops):
            wait_until(lambda: set(final_states(svc, g.event_id).values()) == {"sent"}, 30, "the resolution")
            time.sleep(0.5)
        assert_exactly_once(svc, smtp, g.event_id, domain)
        assert len({r.followup_id for r in smtp.handler.for_domain(domain)}) == PEOPLE
        sent = [json.loads(d["payload"])["data"]["followup_id"] for d in svc.db[OUTBOX].find({"type": "followup.sent"})]
        assert sorted(sent) == sorted(final_states(svc, g.event_id))


def test_sender_paused_past_its_lease_then_resumed(
    svc: Services, smtp: SmtpServer, org_id: str, followup_env: dict[str, str]
) -> None:
    """A sender frozen mid-batch (SIGSTOP) loses its lease; another takes over; the
    frozen one wakes up (SIGCONT) and must not hand over anything the other did."""
    domain = "paused-sender.example.org"
    g = seed(svc, org_id, domain)
    smtp.handler.data_delay = 0.1
    loops = {"FOLLOWUP_WORKER_LOOPS": "sender", "FOLLOWUP_SENDER_THREADS": "1"}
    with worker(followup_env, **loops) as first:
        wait_until(lambda: len(smtp.handler.for_domain(domain)) >= 5, 30, "the first sender under way")
        first.send_signal(signal.SIGSTOP)
        try:
            time.sleep(float(followup_env["FOLLOWUP_LEASE_SECONDS"]) + 0.5)
            with worker(followup_env, **loops):
                wait_until(lambda: len(smtp.handler.for_domain(domain)) >= 10, 30, "the takeover")
                before_wake = len(smtp.handler.for_domain(domain))
                first.send_signal(signal.SIGCONT)
                wait_until(
                    lambda: set(final_states(svc, g.event_id).values()) <= {"sent", "delivery_unknown"},
                    30,
                    "every nudge settled",
                )
                time.sleep(2.0)  # the woken sender's last word, and any late duplicate
        finally:
            first.send_signal(signal.SIGCONT)
    states = assert_exactly_once(svc, smtp, g.event_id, domain)
    assert list(states.values()).count("delivery_unknown") <= 1
    assert before_wake > 6  # the second sender really took over while the first was frozen
    assert len({r.followup_id for r in smtp.handler.for_domain(domain)}) >= PEOPLE - 1


def test_smtp_refusing_then_recovering(svc: Services, smtp: SmtpServer, org_id: str) -> None:
    domain = "refusing.example.org"
    g = seed(svc, org_id, domain, people=12)
    refusing = threading.Event()
    refusing.set()
    smtp.handler.refuse_data = lambda address: "451 4.7.1 Try again later" if refusing.is_set() else None
    smtp.handler.refuse_rcpt = lambda address: (
        "550 5.1.1 <guest3@refusing.example.org>: no such user" if address.startswith("guest3@") else None
    )
    stop = threading.Event()
    sender = Sender(svc, "refusal-test")
    thread = threading.Thread(target=sender.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: sum(smtp.handler.rcpt_attempts.values()) >= 24, 20, "a few refused attempts")
        assert smtp.handler.for_domain(domain) == []
        refusing.clear()
        wait_until(
            lambda: all(s in ("sent", "bounced") for s in final_states(svc, g.event_id).values()), 30, "recovery"
        )
    finally:
        stop.set()
        thread.join(15)
    states = final_states(svc, g.event_id)
    assert list(states.values()).count("bounced") == 1
    received = smtp.handler.for_domain(domain)
    assert len(received) == 11 and len({r.followup_id for r in received}) == 11
    bounced = svc.db[NUDGES].find_one({"event_id": g.event_id, "state": "bounced"})
    assert bounced is not None and bounced["person_id"].endswith("-003")
    assert svc.db["suppressions"].find_one({"_id": f"{org_id}:guest3@{domain}"})["reason"] == "hard_bounce"
    failed = [json.loads(doc["payload"])["data"] for doc in svc.db[OUTBOX].find({"type": "followup.failed"})]
    assert any(not f["permanent"] for f in failed)  # the 451s, retried
    assert [f["permanent"] for f in failed if f["followup_id"] == bounced["_id"]] == [True]
    assert svc.db[OUTBOX].count_documents({"type": "followup.bounced"}) == 1
    retried = svc.db[NUDGES].find_one({"event_id": g.event_id, "state": "sent", "attempts": {"$gt": 1}})
    assert retried is not None


def read_followup_topic(infra: Infrastructure, org_id: str, expected: int, timeout: float) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(
        FOLLOWUP_TOPIC,
        bootstrap_servers=infra.bootstrap,
        group_id=f"fault-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=1000,
    )
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for record in consumer:
                message = json.loads(record.value)
                if message["data"].get("org_id") == org_id:
                    found.append(message)
            if len({m["id"] for m in found if m["type"] == "followup.sent"}) >= expected:
                break
    finally:
        consumer.close()
    return found


def test_broker_paused_and_resumed(
    svc: Services, smtp: SmtpServer, org_id: str, followup_env: dict[str, str], infra: Infrastructure
) -> None:
    domain = "paused.example.org"
    ensure_topics(infra.bootstrap, 6)
    g = Gathering(org_id, kind="meeting", title="Paused-broker meeting")
    messages = [g.scheduled()]
    for n in range(PEOPLE):
        messages += [g.registered(f"pb-{n:03d}", f"Guest{n}", f"guest{n}@{domain}"), g.checked_in(f"pb-{n:03d}")]
    messages.append(g.ended())
    env = {**followup_env, "FOLLOWUP_CONSUMER_GROUP": f"followup-pause-{uuid.uuid4().hex[:8]}"}
    relay = subprocess.Popen(
        [sys.executable, "-m", "followup.entrypoints.relay"],
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with worker(env, FOLLOWUP_SENDER_THREADS="1", FOLLOWUP_BATCH_SIZE="8"):
            producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
            for message in messages:
                producer.send(CHECKIN_TOPIC, key=g.event_id.encode(), value=message.to_json())
            producer.flush()
            producer.close()
            wait_until(lambda: svc.db[PLANS].find_one({"_id": g.event_id}) is not None, 60, "the plan")
            broker = infra.broker.process
            assert broker is not None
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                # Mail keeps going while the broker is frozen; only the messages about it wait.
                wait_until(lambda: len(smtp.handler.for_domain(domain)) >= 8, 30, "sending while paused")
                time.sleep(2.0)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            wait_until(lambda: len(smtp.handler.for_domain(domain)) >= PEOPLE, 60, "every email")
            wait_until(
                lambda: svc.db[OUTBOX].count_documents({"state": {"$ne": "published"}}) == 0, 60, "the outbox drained"
            )
        published = read_followup_topic(infra, org_id, PEOPLE, timeout=30)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(20)
    assert_exactly_once(svc, smtp, g.event_id, domain)
    assert set(final_states(svc, g.event_id).values()) == {"sent"}
    sent_ids = {m["data"]["followup_id"] for m in published if m["type"] == "followup.sent"}
    scheduled_ids = {m["data"]["followup_id"] for m in published if m["type"] == "followup.scheduled"}
    assert len(sent_ids) == PEOPLE and sent_ids == scheduled_ids
    # Kafka is at-least-once; the ids make any copy recognisable.
    by_id: dict[str, set[str]] = {}
    for message in published:
        by_id.setdefault(message["id"], set()).add(json.dumps(message["data"], sort_keys=True))
    assert all(len(bodies) == 1 for bodies in by_id.values())
