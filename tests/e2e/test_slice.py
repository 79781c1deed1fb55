"""The thin vertical slice on the launched stack: an HTTP check-in on checkin
goes through the outbox, the relay and Kafka to the analytics worker, and
analytics serves the count over HTTP. Nothing lost, nothing doubled."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer
from pymongo import MongoClient

from tests.e2e.helpers import attendance, check_in_all, create_open_event, register_many, wait_for_count
from tests.e2e.stack import RunningStack
from turnout_common.consumer import ConsumerWorker
from turnout_common.contracts import CHECKIN_TOPIC
from turnout_common.kafka import make_consumer, make_producer

pytestmark = pytest.mark.e2e


def analytics_db(stack: RunningStack) -> Any:
    client: MongoClient[dict[str, Any]] = MongoClient(stack.config.mongo, tz_aware=True)
    return client["turnout_analytics"]


def test_thousand_checkins_are_counted_exactly(running_stack: RunningStack) -> None:
    event = create_open_event(running_stack, "Slice: 1,000 check-ins")
    registrations = register_many(running_stack, event["id"], 1000)
    statuses = check_in_all(running_stack, event["id"], registrations)
    assert statuses.count(201) == 1000

    assert wait_for_count(running_stack, event["id"], "checked_in", 1000) == 1000
    figures = attendance(running_stack, event["id"])
    assert figures is not None
    assert figures["registered"] == 1000
    assert figures["first_timers"] == 1000
    assert figures["title"] == "Slice: 1,000 check-ins"

    # A second scan of everyone records nothing new and changes no count.
    again = check_in_all(running_stack, event["id"], registrations[:100])
    assert again.count(200) == 100
    assert wait_for_count(running_stack, event["id"], "checked_in", 1000, timeout=3) == 1000

    # Follow-up built its own contact list from the same messages.
    contacts: list[dict[str, Any]] = []
    while True:
        page = requests.get(
            running_stack.url("followup", f"/api/v1/contacts?limit=1000&offset={len(contacts)}"),
            headers=running_stack.headers,
            timeout=10,
        ).json()["contacts"]
        if not page:
            break
        contacts.extend(page)
    guests = {c["email"]: c for c in contacts if c["first_name"].startswith("Guest")}
    assert len(guests) >= 1000
    # Consent is carried over exactly as given at registration (never assumed).
    consented = {r["first_name"] for r in registrations if r["consent_email"]}
    ours = [c for c in guests.values() if c["first_name"] in {r["first_name"] for r in registrations}]
    assert {c["first_name"] for c in ours if c["consent_email"]} >= consented


def test_replaying_the_topic_to_a_fresh_group_changes_no_count(running_stack: RunningStack) -> None:
    event = create_open_event(running_stack, "Slice: replay")
    registrations = register_many(running_stack, event["id"], 50)
    check_in_all(running_stack, event["id"], registrations)
    assert wait_for_count(running_stack, event["id"], "checked_in", 50) == 50
    db = analytics_db(running_stack)
    before = {doc["_id"]: doc for doc in db["event_figures"].find()}

    from analytics.service_layer.projector import project

    group = f"replay-{uuid.uuid4().hex[:8]}"
    bootstrap = running_stack.config.bootstrap
    worker = ConsumerWorker(
        group_id=group,
        consumer_factory=lambda: make_consumer(bootstrap, group, [CHECKIN_TOPIC], client_id="replay-test"),
        dlq_producer_factory=lambda: make_producer(bootstrap, "replay-test-dlq"),
        client=db.client,
        db=db,
        handler=project,
        processed_collection="archive",
        store_envelope=True,
        status_interval=0.2,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        caught_up = False
        while time.monotonic() < deadline and not caught_up:
            time.sleep(0.5)
            status = list(db["consumer_status"].find({"group": group, "topic": CHECKIN_TOPIC}))
            caught_up = len(status) == 6 and all(s["lag"] == 0 for s in status)
        assert caught_up, "the replaying consumer did not reach the end of the topic"
        consumed = sum(s["committed"] for s in db["consumer_status"].find({"group": group}))
        assert consumed >= 50 + 1000  # it really read the history from offset 0
    finally:
        stop.set()
        thread.join(30)
    assert worker.applied_total == 0
    after = {doc["_id"]: doc for doc in db["event_figures"].find()}
    assert after == before


# The kill-mid-burst tests' burst: 400 check-ins in `make test` (the process dies
# after 150; the chaos suite's short form kills the same processes under 1,000
# scans), TURNOUT_SLICE_BURST=1000 for the longer form.
BURST = int(os.environ.get("TURNOUT_SLICE_BURST", "400"))


def _burst_with_crash(running_stack: RunningStack, victim: str, title: str) -> None:
    event = create_open_event(running_stack, title)
    registrations = register_many(running_stack, event["id"], BURST)
    killed = threading.Event()

    def on_progress(done: int) -> None:
        if done >= BURST * 3 // 8 and not killed.is_set():
            killed.set()
            running_stack.stack.children[victim].kill()

    statuses = check_in_all(running_stack, event["id"], registrations, on_progress)
    assert killed.is_set()
    assert statuses.count(201) == BURST
    service, process = victim.split("-")
    running_stack.stack.start_process(service, process)
    assert wait_for_count(running_stack, event["id"], "checked_in", BURST, timeout=120) == BURST


def test_relay_killed_mid_burst_loses_and_doubles_nothing(running_stack: RunningStack) -> None:
    # checkin's relay runs in its worker: the worker is what dies.
    _burst_with_crash(running_stack, "checkin-worker", "Slice: relay SIGKILL")


def test_analytics_worker_killed_mid_burst_loses_and_doubles_nothing(running_stack: RunningStack) -> None:
    _burst_with_crash(running_stack, "analytics-worker", "Slice: worker SIGKILL")


def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(running_stack: RunningStack) -> None:
    bootstrap = running_stack.config.bootstrap
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    marker = uuid.uuid4().hex
    producer.send(CHECKIN_TOPIC, key=b"x", value=f"not json {marker}".encode())
    producer.send(
        CHECKIN_TOPIC,
        key=b"x",
        value=(
            b'{"specversion":"1.0","id":"' + str(uuid.uuid4()).encode() + b'","source":"/turnout/checkin",'
            b'"type":"attendee.checked_in","time":"2026-01-01T00:00:00Z","subject":"' + marker.encode() + b'",'
            b'"datacontenttype":"application/json","dataschema":"urn:turnout:schema:attendee.checked_in:v1",'
            b'"data":{"event_id":"x"}}'
        ),
    )
    producer.flush()
    producer.close()

    # The worker keeps going: a real check-in after the bad messages is counted.
    event = create_open_event(running_stack, "Slice: after poison")
    registrations = register_many(running_stack, event["id"], 3)
    check_in_all(running_stack, event["id"], registrations)
    assert wait_for_count(running_stack, event["id"], "checked_in", 3) == 3

    dlq = KafkaConsumer(
        f"{CHECKIN_TOPIC}.dlq",
        bootstrap_servers=bootstrap,
        group_id=f"dlq-reader-{marker}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    found: list[Any] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(found) < 4:
        for records in dlq.poll(timeout_ms=500).values():
            found.extend(r for r in records if marker.encode() in (r.value or b""))
    dlq.close()
    # Both consumer groups (analytics and followup) dead-letter each bad message once.
    groups = {dict(r.headers)["dlq.consumer_group"] for r in found}
    assert groups == {b"turnout-analytics", b"turnout-followup"}
    for record in found:
        headers = dict(record.headers)
        assert headers["dlq.original_topic"] == CHECKIN_TOPIC.encode()
        assert int(headers["dlq.original_offset"]) >= 0
        assert headers["dlq.error"]
    errors = {dict(r.headers)["dlq.error"].decode() for r in found}
    assert any("not JSON" in e for e in errors)
    assert any("data invalid" in e for e in errors)
    metrics = requests.get(running_stack.url("analytics", "/metrics"), timeout=10).text
    assert 'turnout_dead_letters{service="analytics",topic="turnout.checkin"}' in metrics


def test_sigterm_stops_a_worker_within_seconds(running_stack: RunningStack) -> None:
    child = running_stack.stack.children["followup-worker"]
    started = time.monotonic()
    code = child.stop(timeout=15)
    elapsed = time.monotonic() - started
    running_stack.stack.start_process("followup", "worker")
    assert code == 0
    assert elapsed < 8, f"worker took {elapsed:.1f}s to stop"


def test_every_service_is_ready_and_describes_itself(running_stack: RunningStack) -> None:
    for service in ("checkin", "followup", "analytics"):
        ready = requests.get(running_stack.url(service, "/readyz"), timeout=10)
        assert ready.status_code == 200, ready.text
        spec = requests.get(running_stack.url(service, "/openapi.json"), timeout=10).json()
        assert spec["openapi"] == "3.1.0"
        assert "/readyz" in spec["paths"]
        metrics = requests.get(running_stack.url(service, "/metrics"), timeout=10).text
        assert "turnout_outbox_backlog" in metrics
    metrics = requests.get(running_stack.url("analytics", "/metrics"), timeout=10).text
    assert 'turnout_consumer_lag{group="turnout-analytics"' in metrics
