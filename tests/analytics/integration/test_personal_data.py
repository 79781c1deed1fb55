"""A person's data in analytics, on the real broker and database: an export
answered through analytics' outbox and relay on ``turnout.privacy``; an
erasure that keeps every total the dashboard API gives (before and after, and
after a rebuild and a replay of both topics) while no collection keeps the
person's id, name or address; a late message about the erased person counted
anonymously; an undone check-in lowering the count; a correction renaming the
person; the retention sweep on a moved clock; and the worker process itself,
whose relay answers a request and costs next to nothing while idle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from pymongo import MongoClient
from pymongo.database import Database

from analytics.adapters.mongo import MongoProjections, ensure_indexes, snapshot
from analytics.adapters.privacy import RetentionRecords
from analytics.entrypoints.worker import RELAY_LEASE_SECONDS
from analytics.service_layer.projector import project
from analytics.service_layer.rebuild import rebuild
from analytics.service_layer.retention import retention_loop
from tests.analytics.history import History, Scripted, scripted_history
from tests.analytics.integration.conftest import auth, project_directly
from tests.conftest import Infrastructure
from turnout_common.consumer import ConsumerWorker
from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC, PRIVACY_TOPIC, registry
from turnout_common.envelope import Envelope
from turnout_common.kafka import ensure_topics, make_consumer, make_producer
from turnout_common.privacy import pseudonym
from turnout_common.relay_main import relay_loop

pytestmark = pytest.mark.integration

Doc = dict[str, Any]
NAME, LAST, EMAIL = "Anabel", "Quixote-Zq7", "anabel.qz7@example.org"


# -- helpers ------------------------------------------------------------------------------------------


def produce(infra: Infrastructure, topics: tuple[str, str], messages: list[Envelope]) -> None:
    """Send each message to the test's own topic for its real one, keyed as its contract says."""
    producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
    for message in messages:
        route = registry().route(message.type)
        topic = topics[0] if route.topic == CHECKIN_TOPIC else topics[1]
        producer.send(topic, key=str(message.data[route.key_field]).encode(), value=message.to_json())
    producer.flush()
    producer.close()


class Consuming:
    """analytics' consumer (the real ConsumerWorker and handler) running in a thread."""

    def __init__(self, infra: Infrastructure, db: Database[Doc], topics: tuple[str, str]) -> None:
        self.group = f"analytics-test-{uuid.uuid4().hex[:8]}"
        self.worker = ConsumerWorker(
            group_id=self.group,
            consumer_factory=lambda: make_consumer(infra.bootstrap, self.group, list(topics), client_id="t"),
            dlq_producer_factory=lambda: make_producer(infra.bootstrap, "analytics-test-dlq"),
            client=db.client,
            db=db,
            handler=project,
            processed_collection="archive",
            store_envelope=True,
            status_interval=0.2,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def wait(predicate: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or predicate}")


class PrivacyAnswers:
    """Reads turnout.privacy from the start (a group of its own), collecting analytics' answers."""

    def __init__(self, infra: Infrastructure) -> None:
        self.consumer = make_consumer(
            infra.bootstrap, f"privacy-{uuid.uuid4().hex[:8]}", [PRIVACY_TOPIC], client_id="t"
        )
        self.seen: list[Envelope] = []

    def of(self, request_id: str, kind: str) -> list[Envelope]:
        for records in self.consumer.poll(timeout_ms=500).values():
            self.seen += [Envelope.from_json(record.value) for record in records]
        return [m for m in self.seen if m.data["request_id"] == request_id and m.type == kind]

    def close(self) -> None:
        self.consumer.close()


def totals(client: Any, org_id: str, event_ids: list[str]) -> dict[str, Any]:
    """What the dashboard API says of the organization as a whole (no one's name)."""
    headers = auth(org_id)

    def get(path: str) -> Any:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
        return response.get_json()

    events = {
        e["event_id"]: {k: v for k, v in e.items() if k not in ("title",)} for e in get("/api/v1/events")["events"]
    }
    reports = {}
    for event_id in event_ids:
        report = get(f"/api/v1/events/{event_id}/report")
        reports[event_id] = {k: report[k] for k in ("arrivals", "lanes", "first_timers_returned", "staffing_hint")}
    at_risk = get("/api/v1/people/at-risk")["people"]
    people = get("/api/v1/people")
    return {
        "overview": get("/api/v1/overview"),
        "events": events,
        "reports": reports,
        "trends": get("/api/v1/trends"),
        "retention": get("/api/v1/retention"),
        "funnel": get("/api/v1/funnel"),
        "loyalty": get("/api/v1/people/loyalty"),
        "at_risk": (len(at_risk), sorted(p["events_attended"] for p in at_risk)),
        "people": (people["total"], [p["events_attended"] for p in people["people"]]),
    }


def traces(db: Database[Doc], needles: list[str]) -> list[str]:
    """Every place in every collection of ``db`` whose text contains a needle (case-insensitive)."""
    folded = [needle.casefold() for needle in needles]
    found: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(key, f"{where}.{key}(key)")
                walk(inner, f"{where}.{key}")
        elif isinstance(value, list | tuple):
            for index, inner in enumerate(value):
                walk(inner, f"{where}[{index}]")
        elif isinstance(value, bytes | str):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            hits = [needle for needle in folded if needle in text.casefold()]
            if hits:
                found.append(f"{where}: {hits}")

    for name in db.list_collection_names():
        for doc in db[name].find():
            walk(doc, f"{name}/{doc.get('_id')}")
    return found


@pytest.fixture
def topics(infra: Infrastructure, unique: str) -> tuple[str, str]:
    names = (f"t.analytics.checkin.{unique}", f"t.analytics.followup.{unique}")
    ensure_topics(infra.bootstrap, 6, names, with_dlq=True)
    ensure_topics(infra.bootstrap, 6, (PRIVACY_TOPIC,), with_dlq=False)
    return names


@pytest.fixture
def db(mongo_client: MongoClient[Doc], service_env: dict[str, str]) -> Iterator[Database[Doc]]:
    database = mongo_client[service_env["ANALYTICS_MONGODB_DATABASE"]]
    ensure_indexes(database)
    yield database
    mongo_client.drop_database(database.name)


@pytest.fixture
def relay(infra: Infrastructure, db: Database[Doc]) -> Iterator[None]:
    """The relay loop of analytics' worker, in a thread."""
    stop = threading.Event()
    loop = relay_loop(db, infra.bootstrap, 6, "analytics", lease_seconds=RELAY_LEASE_SECONDS)
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(30)


def _history() -> tuple[Scripted, History, str]:
    """The scripted history, with ana renamed (a correction), a data link sent to
    her, an introduction of dee to her, and gus's walk-in check-in undone."""
    scripted = scripted_history()
    history = scripted.history
    ana = scripted.people["ana"]
    now = datetime.now(UTC)
    history.correct(ana, NAME, LAST, EMAIL, now - timedelta(days=3))
    history.data_link(ana, EMAIL, NAME, now - timedelta(days=2))
    history.introduce(scripted.events["e2"], scripted.people["dee"], ana, now - timedelta(days=2))
    history.undo_check_in(scripted.events["e2"], scripted.people["gus"], 30)
    return scripted, history, ana


# -- the export, the erasure, a rebuild and a replay --------------------------------------------------


def test_export_then_erasure_keep_the_totals_and_leave_no_trace(
    infra: Infrastructure,
    mongo_client: MongoClient[Doc],
    db: Database[Doc],
    topics: tuple[str, str],
    relay: None,
) -> None:
    from analytics import create_app

    scripted, history, ana = _history()
    messages = history.messages + scripted.other.messages
    produce(infra, topics, messages)
    consuming = Consuming(infra, db, topics)
    answers = PrivacyAnswers(infra)
    app = create_app()
    client = app.test_client()
    org = history.org_id
    event_ids = [scripted.events[name]["event_id"] for name in ("e1", "e2", "e3", "e4")]
    needles = [ana, NAME, LAST, EMAIL, f"{ana}@example.org", "SECRET-TOKEN"]
    try:
        wait(lambda: db["archive"].count_documents({}) >= len(messages), what="the history applied")
        before = totals(client, org, event_ids)
        assert before["events"][scripted.events["e2"]["event_id"]]["checked_in"] == 2  # gus's undone
        person = client.get(f"/api/v1/people/{ana}", headers=auth(org)).get_json()
        assert person["name"] == f"{NAME} {LAST}"  # the correction
        # The data link's signed URL was never stored.
        assert not traces(db, ["SECRET-TOKEN"])

        # -- the export: analytics' part through its outbox and relay ----------------------------
        started = time.monotonic()
        export_id = history.data_request("export", ana, EMAIL, datetime.now(UTC))
        produce(infra, topics, history.messages[-1:])
        chunks = wait(lambda: answers.of(export_id, "person.data_exported"), what="the export's part")
        exported_in = time.monotonic() - started
        assert len(chunks) == chunks[0].data["chunk_count"] == 1
        assert chunks[0].source == "/turnout/analytics" and chunks[0].subject == export_id
        part = json.loads("".join(m.data["chunk"] for m in sorted(chunks, key=lambda m: m.data["chunk_index"])))
        assert (part["person_id"], part["person"]["first_name"], part["summary"]["events_attended"]) == (
            ana,
            NAME,
            3,
        )
        assert len(part["registrations"]) == 4
        assert any(m["type"] == "person.updated" and m["data"]["email"] == EMAIL for m in part["messages"])
        assert wait(lambda: db["outbox"].count_documents({}) == 0, what="the outbox emptied")

        # -- the erasure --------------------------------------------------------------------------
        # A dead letter about her (a message that once failed), kept in the database.
        db["dead_letters"].insert_one({"_id": "t:0:1", "value": f'{{"person_id":"{ana}"}}'.encode(), "error": "x"})
        erasure_id = history.data_request("erasure", ana, EMAIL, datetime.now(UTC))
        produce(infra, topics, history.messages[-1:])
        (erased,) = wait(lambda: answers.of(erasure_id, "person.erased"), what="the erasure's answer")
        counts = erased.data["counts"]
        assert counts["people"] == 1 and counts["registration_facts"] == 4 and counts["archived_messages"] > 15
        assert counts["dead_letters"] == 1
        wait(lambda: db["outbox"].count_documents({}) == 0, what="the outbox emptied")
        after = totals(client, org, event_ids)
        assert after == before
        assert traces(db, needles) == []
        alias = pseudonym(org, ana)
        erased_row = client.get(f"/api/v1/people/{alias}", headers=auth(org)).get_json()
        assert erased_row["name"] == "(erased)" and erased_row["events_attended"] == 3
        assert client.get(f"/api/v1/people/{ana}", headers=auth(org)).status_code == 404
        tombstone = db["erased_people"].find_one({"_id": alias})
        assert tombstone["request_id"] == erasure_id and tombstone["email_digest"].startswith("sha256:")

        # -- a late message about her, never applied before: counted, anonymously ------------------
        late = History(org_id=org)
        late.registrations = dict(history.registrations)
        late.visits[ana] = 3
        e4 = scripted.events["e4"]
        late.check_in(e4, ana, 40)
        produce(infra, topics, late.messages)
        wait(lambda: db["archive"].find_one({"_id": late.messages[0].id}), what="the late check-in")
        later = totals(client, org, event_ids)
        assert later["events"][e4["event_id"]]["checked_in"] == before["events"][e4["event_id"]]["checked_in"] + 1
        assert traces(db, needles) == []
        live = snapshot(db)
    finally:
        consuming.close()
        answers.close()

    # -- a rebuild from the archive: the same projections, nobody back --------------------------------
    rebuild(MongoProjections(mongo_client, db), switch_grace=0)
    assert snapshot(db) == live
    assert totals(client, org, event_ids) == later
    assert traces(db, needles) == []

    # -- both topics replayed from offset 0 by a fresh group: nothing applied, nobody back ------------
    replay = Consuming(infra, db, topics)
    try:
        total = len(messages) + 2 + len(late.messages)
        wait(
            lambda: sum(s.get("committed", 0) for s in db["consumer_status"].find({"group": replay.group})) >= total,
            what="the replay",
        )
    finally:
        replay.close()
    assert replay.worker.applied_total == 0
    assert snapshot(db) == live and traces(db, needles) == []
    app.extensions["analytics"].client.close()
    print(f"export answered in {exported_in:.2f}s")


def test_a_replayed_registration_after_erasure_adds_nothing_personal(
    mongo_client: MongoClient[Doc], db: Database[Doc]
) -> None:
    """A registration message that was never applied before (new id) arrives
    after the erasure: it counts, under the pseudonym, without the name."""
    history = History()
    event = history.event("Shift", "volunteer_shift", datetime.now(UTC) - timedelta(days=3))
    history.register(event, "zed-7", name="Zedekiah")
    history.check_in(event, "zed-7", 1)
    project_directly(db, history.messages)
    _apply(mongo_client, db, [_request(history, "erasure", "zed-7")])
    again = History(org_id=history.org_id)
    again.registrations = dict(history.registrations)
    later_event = again.event("Supper", "networking", datetime.now(UTC) - timedelta(days=1))
    again.register(later_event, "zed-7", name="Zedekiah")
    again.register(event, "zed-7", name="Zedekiah")  # the same registration again, a new message
    _apply(mongo_client, db, again.messages)
    assert traces(db, ["zed-7", "Zedekiah"]) == []
    alias = pseudonym(history.org_id, "zed-7")
    figures = {doc["_id"]: doc for doc in db["event_figures"].find()}
    assert figures[event["event_id"]]["registered"] == 1 and figures[event["event_id"]]["checked_in"] == 1
    assert figures[later_event["event_id"]]["registered"] == 1
    assert db["registration_facts"].count_documents({"person_id": alias}) == 2
    assert db["people"].find_one({"_id": alias})["first_name"] == "(erased)"


def _request(history: History, kind: str, person: str) -> Envelope:
    history.data_request(kind, person, f"{person}@example.org", datetime.now(UTC))
    return history.messages[-1]


def _apply(client: MongoClient[Doc], db: Database[Doc], messages: list[Envelope]) -> None:
    """One batch as the consumer applies it: the handler and the archive, in one transaction."""
    from turnout_common.mongo import UnitOfWork

    def work(uow: UnitOfWork) -> None:
        project(uow, messages)
        now = datetime.now(UTC)
        uow.db["archive"].insert_many(
            [
                {"_id": m.id, "type": m.type, "applied_at": now, "envelope": m.to_dict(), "subject": m.subject}
                for m in messages
            ],
            session=uow.session,
        )

    UnitOfWork(client, db).run(work)


# -- an undone check-in, a correction -------------------------------------------------------------------


def test_an_undone_check_in_lowers_the_count_and_a_later_one_raises_it(
    infra: Infrastructure, db: Database[Doc], topics: tuple[str, str]
) -> None:
    from analytics import create_app

    history = History()
    event = history.event("Shift", "volunteer_shift", datetime.now(UTC) - timedelta(hours=1), hours=4)
    for person in ("p1", "p2"):
        history.register(event, person, name=person.upper())
        history.check_in(event, person, 5)
    consuming = Consuming(infra, db, topics)
    app = create_app()
    client = app.test_client()
    headers = auth(history.org_id)

    def attendance() -> Any:
        return client.get(f"/api/v1/events/{event['event_id']}/attendance", headers=headers).get_json()

    def visits(person: str) -> int:
        return int(client.get(f"/api/v1/people/{person}", headers=headers).get_json()["events_attended"])

    try:
        produce(infra, topics, history.messages)
        wait(lambda: attendance().get("checked_in") == 2, what="two check-ins")
        history.undo_check_in(event, "p2", 20)
        produce(infra, topics, history.messages[-1:])
        wait(lambda: attendance().get("checked_in") == 1, what="the undo")
        assert visits("p2") == 0 and visits("p1") == 1
        assert client.get("/api/v1/people/loyalty", headers=headers).get_json()["people"] == 1
        history.check_in(event, "p2", 45, kiosk="door-b")
        history.correct("p2", "Petra", "Second", "petra@example.org", datetime.now(UTC))
        produce(infra, topics, history.messages[-2:])
        wait(lambda: attendance().get("checked_in") == 2, what="the check-in after the undo")
        person = client.get("/api/v1/people/p2", headers=headers).get_json()
        assert person["name"] == "Petra Second" and person["events_attended"] == 1
        assert person["visits"][0]["checked_in_at"].startswith(
            (event["_starts"] + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M")
        )
    finally:
        consuming.close()
        app.extensions["analytics"].client.close()


# -- retention --------------------------------------------------------------------------------------------


def test_the_retention_sweep_on_a_moved_clock_strips_details_and_keeps_the_figures(
    mongo_client: MongoClient[Doc], db: Database[Doc]
) -> None:
    scripted = scripted_history()
    history = scripted.history
    now = datetime.now(UTC)
    history.policy(now - timedelta(days=1), checkin_details=3)  # tracking: the default 12 months
    for start in range(0, len(history.messages), 50):
        _apply(mongo_client, db, history.messages[start : start + 50])
    # The policy was kept (a second, older one does not replace it).
    older = History(org_id=history.org_id)
    older.policy(now - timedelta(days=30), checkin_details=60)
    _apply(mongo_client, db, older.messages)
    assert db["retention_policies"].find_one({"_id": history.org_id})["periods"]["checkin_details"] == 3
    before = snapshot(db)

    def archived(kind: str, field: str) -> list[Any]:
        return [doc["envelope"]["data"].get(field) for doc in db["archive"].find({"type": kind})]

    assert all(url for url in archived("followup.clicked", "url"))
    assert all(number for number in archived("attendee.checked_in", "visit_number"))
    clock = {"now": now}
    stop = threading.Event()
    loop = retention_loop(RetentionRecords(db), every=0.05, clock=lambda: clock["now"])
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # a few sweeps at today's clock: nothing is old enough
        assert all(number for number in archived("attendee.checked_in", "visit_number"))
        clock["now"] = now + timedelta(days=4 * 31)  # four months on: check-in details go
        wait(lambda: not any(archived("attendee.checked_in", "visit_number")), what="check-in details stripped")
        assert all(url for url in archived("followup.clicked", "url"))
        clock["now"] = now + timedelta(days=13 * 31)  # thirteen months on: the clicked addresses go
        wait(lambda: not any(archived("followup.clicked", "url")), what="tracking details stripped")
    finally:
        stop.set()
        thread.join(10)
    assert all(kiosk is None for kiosk in archived("attendee.checked_out", "kiosk_id"))
    assert any(kiosk for kiosk in archived("attendee.checked_in", "kiosk_id"))  # the lanes read it
    assert snapshot(db) == before
    rebuild(MongoProjections(mongo_client, db), switch_grace=0)
    assert snapshot(db) == before


# -- the worker process --------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_worker_answers_through_its_own_relay_and_idles_cheaply(
    infra: Infrastructure, db: Database[Doc], service_env: dict[str, str], unique: str
) -> None:
    """The real worker process (consumer, relay and retention sweep as threads):
    an export request on turnout.checkin is answered on turnout.privacy, and
    idle, the process uses next to no CPU."""
    env = {
        **os.environ,
        **service_env,
        "ANALYTICS_CONSUMER_GROUP": f"analytics-worker-{unique}",
    }
    ensure_topics(infra.bootstrap, 6, with_dlq=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "analytics.entrypoints.worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    answers = PrivacyAnswers(infra)
    try:
        history = History()
        history.data_request("export", "someone-new", None, datetime.now(UTC))
        producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
        message = history.messages[-1]
        producer.send(CHECKIN_TOPIC, key=message.subject.encode(), value=message.to_json())
        producer.flush()
        producer.close()
        (answer,) = wait(
            lambda: answers.of(message.data["request_id"], "person.data_exported"), 90, "the worker's answer"
        )
        part = json.loads(answer.data["chunk"])
        assert (part["person"], part["messages"]) == (None, [])
        time.sleep(3)  # settle: the loops go idle
        cpu, started = _cpu_seconds(worker.pid), time.monotonic()
        time.sleep(6)  # a dozen of the consumer's 0.5 s polls: enough to catch a busy loop
        idle = (_cpu_seconds(worker.pid) - cpu) / (time.monotonic() - started)
        print(f"analytics worker idle: {idle * 1000:.1f} ms CPU per second")
        assert idle < 0.05, f"the idle worker used {idle * 1000:.0f} ms of CPU per second"
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        leases = list(db["relay_leases"].find())
        assert len(leases) == 1 and leases[0]["until"] > datetime.now(UTC)
    finally:
        answers.close()
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert worker.returncode == 0, worker.stderr.read().decode()[-2000:] if worker.stderr else ""
    assert FOLLOWUP_TOPIC  # both topics consumed (the spec); only turnout.checkin used here
