"""checkin's worker and personal data, against the real broker and database:
the consumer of turnout.privacy completes a data request from answers
published on the topic, and the retention sweep (on a clock a test moves)
files an erasure for each person inactive longer than their organization's
``inactive_people`` period, and for nobody else."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, registered
from tests.checkin.integration.test_privacy_requests import erased, exported, request_of, traces
from tests.conftest import Infrastructure
from turnout_common.clock import utcnow
from turnout_common.contracts import PRIVACY_TOPIC
from turnout_common.kafka import ensure_topics, make_producer
from turnout_common.privacy import pseudonym

pytestmark = pytest.mark.integration


def wait_for(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def running(loop: Callable[[threading.Event], None]) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_answers_published_on_the_privacy_topic_complete_a_request(
    client: FlaskClient, org: Org, ctx: Any, infra: Infrastructure, monkeypatch: pytest.MonkeyPatch
) -> None:
    from checkin.entrypoints.worker import privacy_consumer_loop

    monkeypatch.setenv("CHECKIN_CONSUMER_GROUP", f"checkin-test-{uuid.uuid4().hex[:8]}")
    event = create_event(client, org.token)
    reg = registered(
        client, org.token, event["id"], f"kasimir.{uuid.uuid4().hex[:6]}@example.org", first_name="Kasimir"
    )
    export = client.post(f"/api/v1/people/{reg['person_id']}/export", headers=headers(org.token)).get_json()
    erasure = client.post(f"/api/v1/people/{reg['person_id']}/erasure", headers=headers(org.token)).get_json()
    # The erasure removed the export: its answers arrive for a request that is no more, and are ignored.
    answers = [
        *exported(org.id, export["id"], "followup", {"messages": []}, 1000),
        erased(org.id, erasure["id"], "followup", {"contacts": 1}),
        erased(org.id, erasure["id"], "analytics", {"people": 1}),
        erased(org.id, erasure["id"], "analytics", {"people": 1}),  # a second answer: nothing more
    ]
    ensure_topics(infra.bootstrap, 1)
    producer = make_producer(infra.bootstrap, "test-privacy-answers")
    for message in answers:
        producer.send(PRIVACY_TOPIC, value=message.to_json(), key=message.data["request_id"].encode(), headers=[])
    producer.flush(timeout=15)
    producer.close(timeout=5)

    stop, thread = running(privacy_consumer_loop(ctx, ctx.settings))
    try:
        wait_for(lambda: request_of(client, org.token, erasure["id"])["status"] == "complete", 60, "the erasure")
    finally:
        stop.set()
        thread.join(30)
    done = request_of(client, org.token, erasure["id"])
    assert done["services"]["followup"]["counts"] == {"contacts": 1}
    assert done["services"]["analytics"]["counts"] == {"people": 1}
    assert ctx.db["export_parts"].count_documents({"request_id": export["id"]}) == 0
    assert ctx.db["privacy_processed"].count_documents({"_id": {"$in": [m.id for m in answers]}}) == len(answers)
    assert traces(ctx, ["Kasimir", reg["person_id"]]) == []


def _backdate(ctx: Any, person_id: str, moment: datetime) -> None:
    """Make a person (and their registrations) as old as ``moment``: data set up as years of use would leave it."""
    ctx.db["people"].update_one({"_id": person_id}, {"$set": {"created_at": moment}})
    ctx.db["registrations"].update_many({"person_id": person_id}, {"$set": {"registered_at": moment}})


def test_the_sweep_erases_people_inactive_longer_than_their_organizations_period(
    client: FlaskClient, org: Org, ctx: Any
) -> None:
    from checkin.service_layer.privacy import sweep_inactive_people

    now = utcnow()
    ctx.db["organizations"].update_one({"_id": org.id}, {"$set": {"retention_periods": {"inactive_people": 6}}})
    event = create_event(client, org.token, title="Spring gathering")
    people = {}
    for name in ("Ottilie", "Perpetua", "Quirinus"):
        reg = registered(
            client, org.token, event["id"], f"{name.lower()}.{uuid.uuid4().hex[:6]}@example.org", first_name=name
        )
        people[name] = reg["person_id"]
    # Ottilie: first seen and last registered eight months ago. Perpetua: first seen eight months
    # ago, but registered again just now. Quirinus: new.
    eight_months_ago = now - timedelta(days=245)
    _backdate(ctx, people["Ottilie"], eight_months_ago)
    ctx.db["people"].update_one({"_id": people["Perpetua"]}, {"$set": {"created_at": eight_months_ago}})

    assert sweep_inactive_people(ctx, now) == 1
    assert ctx.db["people"].find_one({"_id": people["Ottilie"]}) is None
    assert {p["_id"] for p in ctx.db["people"].find({"org_id": org.id})} == {people["Perpetua"], people["Quirinus"]}
    [request] = list(ctx.db["data_requests"].find({"org_id": org.id}))
    assert request["kind"] == "erasure" and request["requested_by"] == {"kind": "retention"}
    assert request["person_id"] == pseudonym(org.id, people["Ottilie"])
    [entry] = list(ctx.db["audit_log"].find({"org_id": org.id, "action": "person.erasure_requested"}))
    assert entry["actor"] == {"kind": "system", "id": "retention", "label": "retention schedule"}
    assert sweep_inactive_people(ctx, now) == 0  # nobody twice

    # Seven months on (the clock moved), nobody came back: everyone is inactive now. One erasure
    # per run at most here (the rest wait for the next run), reading one person at a time.
    later = now + timedelta(days=215)
    assert sweep_inactive_people(ctx, later, keep_going=lambda: False) == 0  # the worker is stopping
    assert sweep_inactive_people(ctx, later, batch=1, page=1) == 1
    assert ctx.db["people"].count_documents({"org_id": org.id}) == 1
    assert sweep_inactive_people(ctx, later, batch=1, page=1) == 1
    assert ctx.db["people"].count_documents({"org_id": org.id}) == 0
    assert ctx.db["data_requests"].count_documents({"org_id": org.id, "requested_by.kind": "retention"}) == 3


def test_the_sweep_reads_past_people_who_are_still_active(client: FlaskClient, org: Org, ctx: Any) -> None:
    """Old people who still come sort first (by email): the sweep pages past them to the inactive one."""
    from checkin.service_layer.privacy import sweep_inactive_people

    now = utcnow()
    event = create_event(client, org.token)
    long_ago = now - timedelta(days=40 * 31)
    ids = {}
    for name in ("aaron", "abigail", "zacharias"):
        reg = registered(client, org.token, event["id"], f"{name}.{uuid.uuid4().hex[:6]}@example.org", first_name=name)
        ids[name] = reg["person_id"]
        ctx.db["people"].update_one({"_id": reg["person_id"]}, {"$set": {"created_at": long_ago}})
    _backdate(ctx, ids["zacharias"], long_ago)  # only Zacharias has not registered since
    assert sweep_inactive_people(ctx, now, page=1) == 1
    assert ctx.db["people"].find_one({"_id": ids["zacharias"]}) is None
    assert ctx.db["people"].count_documents({"org_id": org.id}) == 2


def test_the_default_period_keeps_people_three_years_and_the_worker_loop_uses_its_clock(
    client: FlaskClient, org: Org, ctx: Any
) -> None:
    from checkin.entrypoints.worker import inactive_people_loop

    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], f"radegunde.{uuid.uuid4().hex[:6]}@example.org")
    now = utcnow()
    clock = {"now": now + timedelta(days=35 * 30)}  # 35 months on: still within 36
    stop, thread = running(inactive_people_loop(ctx, 0.2, lambda: clock["now"]))
    try:
        time.sleep(1.0)
        assert ctx.db["people"].find_one({"_id": reg["person_id"]}) is not None
        clock["now"] = now + timedelta(days=37 * 31)  # 37 months on
        wait_for(lambda: ctx.db["people"].find_one({"_id": reg["person_id"]}) is None, 20, "the sweep")
    finally:
        stop.set()
        thread.join(10)
    [request] = list(ctx.db["data_requests"].find({"org_id": org.id}))
    assert request["requested_by"] == {"kind": "retention"}
    assert request["requested_at"].year == clock["now"].year  # the sweep's clock, not the wall clock
