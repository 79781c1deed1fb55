"""A person's data across the three services, end to end on the launched stack
(every web, relay and worker process, as ``make run`` starts them), with a
real SMTP server (aiosmtpd).

Zelda registers at three gatherings, checks in at one, walks in at the kiosk
of another and misses the third; she gets her emails, clicks a link, rates
the evening with a comment and accepts an introduction. Her data is exported
(the archive holds each service's part) and then erased. Afterwards no
collection of any service holds her name, email or id, analytics' totals are
unchanged, and replaying both topics from offset 0 plus an analytics rebuild
does not bring her back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pymongo import MongoClient

from tests.e2e.stack import stack_with_mail
from tests.e2e.test_followup_e2e import FollowupStack, link, messages_of, received_for, wait_for
from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC

pytestmark = pytest.mark.e2e

PASSWORD = "personal-data-e2e-password"
ORG_NAME = "Harbour Neighbours"
FIRST, LAST = "Zelda", "Quillfeather"
EMAIL = "zelda.quillfeather@example.org"
SERVICES = ("checkin", "followup", "analytics")


@pytest.fixture(scope="module")
def ps() -> Iterator[FollowupStack]:
    with stack_with_mail("turnout-e2e-privacy-", ORG_NAME, PASSWORD, scheduler_interval="0.2") as (stack, smtp, token):
        yield FollowupStack(stack, smtp, token)


def call(fs: FollowupStack, method: str, service: str, path: str, expect: int | None = None, **kwargs: Any) -> Any:
    answer = requests.request(method, fs.url(service, path), headers=fs.headers, timeout=30, **kwargs)
    if expect is None:
        assert answer.status_code < 300, (path, answer.status_code, answer.text)
    else:
        assert answer.status_code == expect, (path, answer.status_code, answer.text)
    return answer.json() if answer.content else None


def gathering(fs: FollowupStack, title: str, kind: str = "networking") -> str:
    now = datetime.now(UTC)
    event = call(
        fs,
        "POST",
        "checkin",
        "/api/v1/events",
        json={
            "title": title,
            "kind": kind,
            "starts_at": (now - timedelta(minutes=10)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "timezone": "Europe/Dublin",
        },
    )
    return str(event["id"])


def register(fs: FollowupStack, event_id: str, first: str, last: str, email: str, **tags: list[str]) -> dict[str, Any]:
    body = {"first_name": first, "last_name": last, "email": email, "consent_email": True, **tags}
    return dict(call(fs, "POST", "checkin", f"/api/v1/events/{event_id}/registrations", json=body))


def check_in(fs: FollowupStack, event_id: str, registration: dict[str, Any]) -> None:
    body = {"badge_code": registration["badge_code"], "client_key": f"k-{uuid.uuid4().hex}"}
    call(fs, "POST", "checkin", f"/api/v1/events/{event_id}/checkins", json=body)


def walk_in(fs: FollowupStack, event_id: str) -> dict[str, Any]:
    door = {"name": "Front door", "staff_pin": "2468"}
    kiosk = call(fs, "POST", "checkin", f"/api/v1/events/{event_id}/kiosks", json=door)
    paired = requests.post(fs.url("checkin", "/api/v1/kiosk/pair"), json={"code": kiosk["pairing_code"]}, timeout=10)
    assert paired.status_code == 200, paired.text
    answer = requests.post(
        fs.url("checkin", "/api/v1/kiosk/walk-ins"),
        headers={"Authorization": f"Bearer {paired.json()['token']}"},
        json={
            "client_key": f"w-{uuid.uuid4().hex}",
            "first_name": FIRST,
            "last_name": LAST,
            "email": EMAIL,
            "consent_email": True,
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def settled(fs: FollowupStack, event_id: str, expected: int) -> list[dict[str, Any]]:
    def done() -> bool:
        sent = {m["id"] for m in messages_of(fs, event_id) if m["state"] == "sent"}
        return len(sent) >= expected and len(received_for(fs, sent)) >= expected

    wait_for(done, 90, f"{expected} messages for {event_id}")
    return messages_of(fs, event_id)


def to_zelda(fs: FollowupStack) -> list[Any]:
    return [r for r in fs.smtp.handler.received if r.to == EMAIL]


# -- what analytics counts ---------------------------------------------------------------------


def totals(fs: FollowupStack, event_ids: list[str]) -> dict[str, Any]:
    """Analytics' aggregates: what must not change when a person is erased."""
    figures: dict[str, Any] = {
        "overview": call(fs, "GET", "analytics", "/api/v1/overview"),
        "retention": call(fs, "GET", "analytics", "/api/v1/retention"),
        "funnel": call(fs, "GET", "analytics", "/api/v1/funnel"),
    }
    for event_id in event_ids:
        figures[f"attendance {event_id}"] = call(fs, "GET", "analytics", f"/api/v1/events/{event_id}/attendance")
    return _without_clock(figures)


def settled_totals(fs: FollowupStack, event_ids: list[str]) -> dict[str, Any]:
    """``totals`` once every email has gone and analytics has counted it (two reads 3 s apart agree)."""
    previous: tuple[int, dict[str, Any]] | None = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        current = (len(fs.smtp.handler.received), totals(fs, event_ids))
        if current == previous:
            return current[1]
        previous = current
        time.sleep(3.0)
    raise AssertionError("analytics' totals kept changing")


def _without_clock(value: Any) -> Any:
    """Drop what moves with the clock alone (generated_at, as_of ...)."""
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in ("generated_at", "as_of", "now")}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


# -- searching every collection of every service -------------------------------------------------


def traces(fs: FollowupStack, needles: list[str]) -> list[str]:
    """Every place (service database, collection, document id) a needle still appears in."""
    client: MongoClient[dict[str, Any]] = MongoClient(fs.stack.config.mongo)
    found: list[str] = []
    lowered = [needle.lower() for needle in needles]
    try:
        for service in SERVICES:
            name = fs.stack.service_env(service).get(f"{service.upper()}_MONGODB_DATABASE", f"turnout_{service}")
            db = client[name]
            for collection in db.list_collection_names():
                for document in db[collection].find():
                    text = json.dumps(document, default=str).lower()
                    for needle in lowered:
                        if needle in text:
                            found.append(f"{name}.{collection} {document.get('_id')!s}: {needle}")
    finally:
        client.close()
    return found


# -- replaying the topics --------------------------------------------------------------------------


def replay_topics(fs: FollowupStack) -> dict[TopicPartition, int]:
    """Publish every record of both topics again, from offset 0 (a redelivery of everything);
    return each partition's highwater afterwards."""
    bootstrap = fs.stack.config.bootstrap
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in (CHECKIN_TOPIC, FOLLOWUP_TOPIC)
            for p in reader.partitions_for_topic(topic)
        ]
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        records = []
        quiet_until = time.monotonic() + 5
        while time.monotonic() < quiet_until:
            batch = reader.poll(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
            if batch:
                quiet_until = time.monotonic() + 2
        assert records, "nothing to replay"
        for record in records:
            producer.send(record.topic, key=record.key, value=record.value, partition=record.partition)
        producer.flush()
        return {
            tp: 2 * len([r for r in records if (r.topic, r.partition) == (tp.topic, tp.partition)]) for tp in partitions
        }
    finally:
        producer.close()
        reader.close()


def caught_up(fs: FollowupStack, replayed: dict[TopicPartition, int]) -> Callable[[], bool]:
    """Followup's and analytics' consumers have applied every replayed record."""
    client: MongoClient[dict[str, Any]] = MongoClient(fs.stack.config.mongo)

    def ready() -> bool:
        for service in ("followup", "analytics"):
            name = fs.stack.service_env(service).get(f"{service.upper()}_MONGODB_DATABASE", f"turnout_{service}")
            status = {(d["topic"], d["partition"]): d for d in client[name]["consumer_status"].find()}
            topics = (CHECKIN_TOPIC,) if service == "followup" else (CHECKIN_TOPIC, FOLLOWUP_TOPIC)
            for tp, highwater in replayed.items():
                if tp.topic not in topics or highwater == 0:
                    continue
                row = status.get((tp.topic, tp.partition))
                if row is None or row["committed"] < highwater:
                    return False
        return True

    return ready


def rebuild_analytics(fs: FollowupStack) -> None:
    subprocess.run(
        [sys.executable, "-m", "analytics.entrypoints.cli", "rebuild"],
        env={**os.environ, **fs.stack.service_env("analytics")},
        check=True,
        capture_output=True,
        timeout=300,
    )


# -- the test ----------------------------------------------------------------------------------------


def test_a_person_is_exported_then_erased_from_every_service(ps: FollowupStack) -> None:
    fs = ps
    # The emails link the organization's website (a tracked click).
    branding = {"name": ORG_NAME, "website_url": "https://harbour.example.org/"}
    call(fs, "PATCH", "followup", "/api/v1/settings", json={"branding": branding})
    # 1. An evening: Zelda and Yusuf come for the first time; their offers and needs match.
    evening = gathering(fs, "Harbour networking evening")
    zelda = register(fs, evening, FIRST, LAST, EMAIL, offers=["Design"], seeks=["Grant writing"])
    yusuf = register(
        fs, evening, "Yusuf", "Brightwater", "yusuf.b@example.org", offers=["grant writing"], seeks=["design"]
    )
    person_id = zelda["person_id"]
    for registration in (zelda, yusuf):
        check_in(fs, evening, registration)
    call(fs, "POST", "checkin", f"/api/v1/events/{evening}/end")
    settled(fs, evening, 6)

    # She clicks a link, rates the evening with a comment and accepts the introduction; so does Yusuf.
    mail = to_zelda(fs)
    thanks = next(r for r in mail if r.kind == "thank_you")
    welcome = next(r for r in mail if r.kind == "first_timer_welcome")
    clicked = re.search(r"(http://127\.0\.0\.1:\d+/c/\S+)", welcome.message.get_body(("plain",)).get_content())
    assert clicked, "no tracked link in the welcome"
    assert requests.get(clicked.group(1), timeout=10, allow_redirects=False).status_code in (302, 303)
    rating = link(thanks, "f")
    rated = requests.post(rating, data={"rating": "5", "comment": f"{FIRST} loved meeting Yusuf"}, timeout=10)
    assert rated.status_code == 200
    for item in fs.smtp.handler.received:
        if item.kind == "introduction_request" and item.to in (EMAIL, "yusuf.b@example.org"):
            assert requests.post(link(item, "i"), timeout=10).status_code == 200
    wait_for(lambda: any(r.kind == "introduction" for r in to_zelda(fs)), 60, "the introduction")

    # 2. A volunteer shift she walks in to at the kiosk.
    shift = gathering(fs, "Harbour clean-up shift", "volunteer_shift")
    walk_in(fs, shift)
    call(fs, "POST", "checkin", f"/api/v1/events/{shift}/end")
    # 3. A workshop she registers for and misses.
    workshop = gathering(fs, "Harbour grant-writing workshop", "workshop")
    register(fs, workshop, FIRST, LAST, EMAIL)
    call(fs, "POST", "checkin", f"/api/v1/events/{workshop}/end")
    wait_for(lambda: any(r.kind == "we_missed_you" for r in to_zelda(fs)), 90, "the we-missed-you")
    wait_for(lambda: len([r for r in to_zelda(fs) if r.kind == "thank_you"]) >= 2, 90, "the shift's thank-you")

    def analytics_knows_her() -> bool:
        answer = requests.get(fs.url("analytics", f"/api/v1/people/{person_id}"), headers=fs.headers, timeout=10)
        return (
            answer.status_code == 200 and answer.json().get("visits_count", len(answer.json().get("visits", []))) >= 2
        )

    wait_for(analytics_knows_her, 60, "analytics to know Zelda")
    events = [evening, shift, workshop]
    before = settled_totals(fs, events)
    mails_before_erasure = len(to_zelda(fs))

    # Export: every service contributes its part.
    export = call(fs, "POST", "checkin", f"/api/v1/people/{person_id}/export", expect=201)
    wait_for(
        lambda: call(fs, "GET", "checkin", f"/api/v1/data-requests/{export['id']}")["status"] == "complete",
        60,
        "the export",
    )
    archive = call(fs, "GET", "checkin", f"/api/v1/data-requests/{export['id']}/archive.json")
    assert set(SERVICES) <= set(archive)
    text = json.dumps(archive)
    assert EMAIL in json.dumps(archive["checkin"]) and EMAIL in json.dumps(archive["followup"])
    assert person_id in json.dumps(archive["analytics"])
    assert f"{FIRST} loved meeting Yusuf" in json.dumps(archive["followup"])  # her rating's comment
    for kind in ("thank_you", "we_missed_you", "introduction"):
        assert kind in json.dumps(archive["followup"]), kind
    assert "Harbour clean-up shift" in text and "Harbour grant-writing workshop" in text

    # Before the erasure, the search finds her in every service's database.
    needles = [FIRST, LAST, EMAIL, person_id]
    seen = traces(fs, needles)
    for service in SERVICES:
        assert any(f"turnout_{service}" in place for place in seen), service

    # Erasure: all three confirm.
    erasure = call(fs, "POST", "checkin", f"/api/v1/people/{person_id}/erasure", expect=201)
    wait_for(
        lambda: call(fs, "GET", "checkin", f"/api/v1/data-requests/{erasure['id']}")["status"] == "complete",
        60,
        "the erasure",
    )
    assert traces(fs, needles) == []
    assert totals(fs, events) == before

    # Replaying both topics from offset 0, then rebuilding analytics from its archive, brings nobody back.
    replayed = replay_topics(fs)
    wait_for(caught_up(fs, replayed), 120, "followup and analytics to apply the replay")
    rebuild_analytics(fs)
    assert traces(fs, needles) == []
    assert totals(fs, events) == before
    # And no email reached her after the erasure.
    time.sleep(2.0)
    assert len(to_zelda(fs)) == mails_before_erasure


def test_a_corrected_email_and_an_undone_check_in_reach_followup_and_analytics(ps: FollowupStack) -> None:
    """A corrected address gets the next message (the old one nothing); an undone
    check-in turns the thank-you into a we-missed-you and lowers analytics' count."""
    fs = ps
    cafe = gathering(fs, "Harbour repair café")
    annika = register(fs, cafe, "Annika", "Stormvale", "annika.old@example.org")
    bodhi = register(fs, cafe, "Bodhi", "Farrow", "bodhi.farrow@example.org")
    for registration in (annika, bodhi):
        check_in(fs, cafe, registration)

    def attended() -> Any:
        answer = requests.get(fs.url("analytics", f"/api/v1/events/{cafe}/attendance"), headers=fs.headers, timeout=10)
        return answer.json().get("checked_in") if answer.status_code == 200 else None

    wait_for(lambda: attended() == 2, 30, "analytics to count both")
    fixed = call(fs, "PATCH", "checkin", f"/api/v1/people/{annika['person_id']}", json={"email": "annika@example.org"})
    assert fixed["email"] == "annika@example.org"
    undo = f"/api/v1/events/{cafe}/checkins/{bodhi['id']}/undo"
    call(fs, "POST", "checkin", undo, json={"reason": "scanned his friend's badge"})
    wait_for(lambda: attended() == 1, 30, "analytics to count the undo")

    call(fs, "POST", "checkin", f"/api/v1/events/{cafe}/end")
    listed = settled(fs, cafe, 3)  # Annika: thank-you and welcome; Bodhi: we-missed-you
    time.sleep(2.0)
    got = {(r.to, r.kind) for r in received_for(fs, {m["id"] for m in listed})}
    assert got == {
        ("annika@example.org", "thank_you"),
        ("annika@example.org", "first_timer_welcome"),
        ("bodhi.farrow@example.org", "we_missed_you"),
    }
    assert not [r for r in fs.smtp.handler.received if r.to == "annika.old@example.org"]
    thanks = next(r for r in fs.smtp.handler.received if r.to == "annika@example.org" and r.kind == "thank_you")
    assert "Annika" in thanks.message.get_body(("plain",)).get_content()
