"""The projections against the real broker and database: a scripted history
through Kafka and the real consumer gives the expected figures; a rebuild from
the archive gives exactly the same figures; replaying the topics changes none."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from kafka import KafkaProducer
from pymongo import MongoClient

from analytics.adapters.mongo import MongoProjections, ensure_indexes, generations, snapshot
from analytics.service_layer.projector import project
from analytics.service_layer.rebuild import rebuild
from tests.analytics.history import CHECKIN, scripted_history
from tests.analytics.integration.conftest import auth, project_directly
from tests.conftest import Infrastructure
from turnout_common.consumer import ConsumerWorker
from turnout_common.envelope import Envelope
from turnout_common.kafka import ensure_topics, make_consumer, make_producer

pytestmark = pytest.mark.integration

Doc = dict[str, Any]


def produce(infra: Infrastructure, topics: tuple[str, str], messages: list[Envelope]) -> None:
    producer = KafkaProducer(bootstrap_servers=infra.bootstrap, acks="all")
    for message in messages:
        topic, key = (
            (topics[0], message.data["event_id"]) if message.source == CHECKIN else (topics[1], message.subject)
        )
        producer.send(topic, key=key.encode(), value=message.to_json())
    producer.flush()
    producer.close()


def consume(infra: Infrastructure, db: Any, topics: tuple[str, str], until: Any, timeout: float = 60) -> ConsumerWorker:
    group = f"analytics-test-{uuid.uuid4().hex[:8]}"
    worker = ConsumerWorker(
        group_id=group,
        consumer_factory=lambda: make_consumer(infra.bootstrap, group, list(topics), client_id="analytics-test"),
        dlq_producer_factory=lambda: make_producer(infra.bootstrap, "analytics-test-dlq"),
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(worker):
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
    return worker


def api_answers(client: Any, org_id: str, events: list[str]) -> dict[str, Any]:
    paths = ["/api/v1/events", "/api/v1/trends", "/api/v1/retention", "/api/v1/funnel", "/api/v1/people"]
    paths += [
        "/api/v1/people/at-risk",
        "/api/v1/people/loyalty",
        "/api/v1/people?limit=2&offset=3",
        "/api/v1/overview",
        "/api/v1/events?format=csv",
        "/api/v1/retention?format=csv",
    ]
    for event_id in events:
        paths += [f"/api/v1/events/{event_id}/report", f"/api/v1/events/{event_id}/lanes?format=csv"]
    answers = {}
    headers = auth(org_id)
    for path in paths:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
        answers[path] = response.get_json() if response.is_json else response.get_data(as_text=True)
    return answers


def test_scripted_history_through_kafka_then_rebuilt_then_replayed(
    infra: Infrastructure, mongo_client: MongoClient[Doc], service_env: dict[str, str], unique: str
) -> None:
    from analytics import create_app

    scripted = scripted_history()
    messages = scripted.history.messages + scripted.other.messages
    topics = (f"t.analytics.checkin.{unique}", f"t.analytics.followup.{unique}")
    ensure_topics(infra.bootstrap, 6, topics, with_dlq=True)
    produce(infra, topics, messages)
    db = mongo_client[service_env["ANALYTICS_MONGODB_DATABASE"]]
    ensure_indexes(db)
    consume(infra, db, topics, lambda _: db["archive"].count_documents({}) >= len(messages))
    assert db["archive"].count_documents({}) == len(messages)

    app = create_app()
    client = app.test_client()
    org = scripted.history.org_id
    events = [scripted.events[name]["event_id"] for name in ("e1", "e2", "e3", "e4")]
    e1, e2, e3, e4 = events
    before = api_answers(client, org, events)

    # -- the figures of the scripted history ------------------------------------------------------
    by_id = {e["event_id"]: e for e in before["/api/v1/events"]["events"]}
    assert len(by_id) == 5  # the other organization's event is not there
    assert {k: by_id[e1][k] for k in ("registered", "cancelled", "checked_in", "first_timers", "no_shows")} == {
        "registered": 5,
        "cancelled": 1,
        "checked_in": 4,
        "first_timers": 4,
        "no_shows": 1,
    }
    assert by_id[e1]["show_rate"] == 0.8
    assert by_id[e1]["volunteer_hours"] == 9.75
    assert by_id[e1]["checked_out"] == 4
    assert {
        k: by_id[e2][k] for k in ("registered", "checked_in", "walk_ins", "first_timers", "returning", "no_shows")
    } == {
        "registered": 4,
        "checked_in": 3,
        "walk_ins": 1,
        "first_timers": 2,
        "returning": 1,
        "no_shows": 1,
    }
    assert by_id[e3]["checked_in"] == 3 and by_id[e3]["returning"] == 3  # a second scan is not a second arrival
    assert by_id[e4]["status"] == "scheduled" and by_id[e4]["no_shows"] is None and by_id[e4]["checked_in"] == 1
    report = before[f"/api/v1/events/{e1}/report"]
    assert [(p["minutes"], p["arrivals"]) for p in report["arrivals"]] == [(-10, 2), (-5, 0), (0, 2)]
    assert {lane["kiosk_id"]: lane["checked_in"] for lane in report["lanes"]} == {"door-a": 2, "door-b": 2}
    assert report["first_timers_returned"] == {
        "first_timers": 4,
        "came_back": 2,
        "rate": 0.5,
        "welcomed": {"first_timers": 2, "came_back": 2, "rate": 1.0},  # ana and cai
        "not_welcomed": {"first_timers": 2, "came_back": 0, "rate": 0.0},  # ben and fay
    }
    assert report["event"]["first_timers_welcomed"] == 2 and report["event"]["welcomed_share"] == 0.5
    assert report["staffing_hint"]["lanes"] >= 1
    people = {p["name"].split()[0]: p for p in before["/api/v1/people"]["people"]}
    assert people["Ana"]["events_attended"] == 3 and people["Ana"]["volunteer_hours"] == 3.0
    assert people["Ana"]["followups_received"] == 1 and people["Ana"]["followups_acted_on"] == 1
    assert people["Ana"]["longest_streak_months"] >= 2
    assert "Eve" not in people  # cancelled, never came
    assert before["/api/v1/people"]["total"] == 7
    assert [p["events_attended"] for p in before["/api/v1/people"]["people"]] == [3, 2, 2, 1, 1, 1, 1]
    # A page from the middle is that slice of the whole list (ranks 4 and 5).
    assert before["/api/v1/people?limit=2&offset=3"]["people"] == before["/api/v1/people"]["people"][3:5]
    loyalty = before["/api/v1/people/loyalty"]
    assert loyalty["people"] == 7
    assert [(c["events_attended"], c["people"]) for c in loyalty["counts"]] == [(1, 4), (2, 2), (3, 1)]
    assert [(b["label"], b["people"]) for b in loyalty["bands"][:3]] == [("once", 4), ("twice", 2), ("3 to 5 times", 1)]
    assert [p["name"].split()[0] for p in before["/api/v1/people/at-risk"]["people"]] == ["Ana"]
    funnel = {row["nudge_kind"]: row for row in before["/api/v1/funnel"]["kinds"]}
    assert (funnel["thank_you"]["sent"], funnel["thank_you"]["opened"], funnel["thank_you"]["clicked"]) == (2, 2, 1)
    assert funnel["we_missed_you"]["came_back"] == 1  # dee came to E2 after the nudge
    assert funnel["first_timer_welcome"]["bounced"] == 1
    retention = before["/api/v1/retention"]
    assert retention["people"] == 7 and retention["first_timer_return_rate"] == round(3 / 7, 4)
    overview = before["/api/v1/overview"]
    assert overview["checked_in"] == 11 and overview["events"] == 4  # the cancelled picnic is left out

    # -- a rebuild gives exactly the same figures -------------------------------------------------
    live = snapshot(db)
    report_of_rebuild = rebuild(MongoProjections(mongo_client, db), switch_grace=0)
    assert report_of_rebuild.messages == len(messages)
    assert generations(db) == {"events": 1, "people": 1}
    assert snapshot(db) == live
    assert api_answers(client, org, events) == before

    # -- replaying both topics from the start applies nothing and changes no figure ----------------
    replayed = consume(
        infra, db, topics, lambda w: sum(s.get("committed", 0) for s in _status(db, w)) >= len(messages), timeout=60
    )
    assert replayed.applied_total == 0
    assert snapshot(db) == live
    assert api_answers(client, org, events) == before
    app.extensions["analytics"].client.close()


def _status(db: Any, worker: ConsumerWorker) -> list[Doc]:
    return list(db["consumer_status"].find({"group": worker.group_id}))


def test_rebuild_picks_up_messages_archived_while_it_runs(
    mongo_client: MongoClient[Doc], service_env: dict[str, str]
) -> None:
    scripted = scripted_history()
    messages = scripted.history.messages
    db = mongo_client[service_env["ANALYTICS_MONGODB_DATABASE"]]
    ensure_indexes(db)
    half = len(messages) // 2
    project_directly(db, messages[:half])
    progress: list[Any] = []
    late = iter(range(half, len(messages), 10))

    def on_progress(item: Any) -> None:
        # The live worker goes on meanwhile: more messages archived and projected mid-rebuild.
        progress.append(item)
        start = next(late, None)
        if start is not None:
            project_directly(db, messages[start : start + 10])

    rebuild(MongoProjections(mongo_client, db), batch_size=7, on_progress=on_progress, progress_every=0, switch_grace=0)
    for start in late:  # whatever the rebuild did not see yet arrives after the switch
        project_directly(db, messages[start : start + 10])
    assert {item.phase for item in progress} >= {"archive", "catch-up", "after switch"}
    expected = mongo_client[f"{db.name}_expected"]
    ensure_indexes(expected)
    project_directly(expected, messages)
    try:
        assert snapshot(db) == snapshot(expected)
    finally:
        mongo_client.drop_database(expected.name)


def test_the_worker_rebuilds_projections_of_an_older_version_as_it_starts(
    mongo_client: MongoClient[Doc], service_env: dict[str, str]
) -> None:
    """A deployment whose people projection predates the slim summary and the
    loyalty counts gets them rebuilt from its archive, with the same figures."""
    from analytics.adapters.mongo import PROJECTION_STATE, PROJECTION_VERSIONS, outdated_groups
    from analytics.service_layer.rebuild import upgrade_outdated

    scripted = scripted_history()
    db = mongo_client[service_env["ANALYTICS_MONGODB_DATABASE"]]
    assert upgrade_outdated(MongoProjections(mongo_client, db)) is None  # nothing archived: nothing to rebuild
    assert outdated_groups(db) == []
    ensure_indexes(db)
    project_directly(db, scripted.history.messages)
    expected = snapshot(db)
    # What an older version left: the people facts, no summary, no loyalty counts, version 1.
    db.drop_collection("people_summary")
    db.drop_collection("loyalty")
    db[PROJECTION_STATE].update_one({"_id": "people"}, {"$set": {"version": 1}}, upsert=True)
    assert outdated_groups(db) == ["people"]

    report = upgrade_outdated(MongoProjections(mongo_client, db))
    assert report is not None and report.projections == ("people",)
    assert outdated_groups(db) == [] and generations(db)["people"] == 1
    assert db[PROJECTION_STATE].find_one({"_id": "people"})["version"] == PROJECTION_VERSIONS["people"]
    assert snapshot(db) == expected
    assert upgrade_outdated(MongoProjections(mongo_client, db)) is None  # once is enough


def test_a_rebuild_whose_cache_fills_up_gives_the_same_figures(
    mongo_client: MongoClient[Doc], service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics.service_layer import rebuild as rebuilding

    scripted = scripted_history()
    db = mongo_client[service_env["ANALYTICS_MONGODB_DATABASE"]]
    ensure_indexes(db)
    project_directly(db, scripted.history.messages + scripted.other.messages)
    live = snapshot(db)
    # Flush the states held between batches every few people and registrations.
    monkeypatch.setattr(rebuilding, "MAX_CACHED_PEOPLE", 2)
    monkeypatch.setattr(rebuilding, "MAX_CACHED_REGISTRATIONS", 3)
    rebuild(MongoProjections(mongo_client, db), batch_size=5, switch_grace=0)
    assert snapshot(db) == live


def test_the_archive_keeps_only_the_indexes_it_is_read_by(
    mongo_client: MongoClient[Doc], service_env: dict[str, str]
) -> None:
    db = mongo_client[service_env["ANALYTICS_MONGODB_DATABASE"]]
    # What an earlier version created: indexes nothing reads, each a write per archived message.
    db["archive"].create_index([("type", 1), ("time", 1)])
    db["archive"].create_index([("subject", 1)])
    ensure_indexes(db)
    # Read by applied_at (rebuilds, the retention sweep) and by person (erasures, exports).
    assert set(db["archive"].index_information()) == {
        "_id_",
        "applied_at_1",
        "envelope.data.person_id_1",
        "envelope.data.other_person_id_1",
    }
    # The web and the worker start together: the one that comes second finds it gone.
    from turnout_common.indexes import drop_index_if_present

    drop_index_if_present(db, "archive", "type_1_time_1")
    ensure_indexes(db)


def test_the_archive_is_read_whole_a_window_at_a_time(
    mongo_client: MongoClient[Doc], service_env: dict[str, str]
) -> None:
    """Messages applied years apart, in bursts, or a little in the future are all read, once."""
    from datetime import UTC, datetime, timedelta

    from analytics.adapters.mongo import ArchiveReader

    messages = scripted_history().history.messages
    db = mongo_client[service_env["ANALYTICS_MONGODB_DATABASE"]]
    ensure_indexes(db)
    now = datetime.now(UTC)
    moments = [now + timedelta(hours=2), now - timedelta(days=3 * 365), datetime(2001, 5, 1, tzinfo=UTC)]
    docs = []
    for index, message in enumerate(messages):
        # A third in one burst (the same instant), the rest spread over the moments above.
        at = now - timedelta(days=10) if index % 3 == 0 else moments[index % len(moments)]
        docs.append({"_id": message.id, "type": message.type, "applied_at": at, "envelope": message.to_dict()})
    db["archive"].insert_many(docs)
    reader = ArchiveReader(db)
    assert not reader.is_empty() and reader.count() == len(messages)
    read = [envelope.id for batch in reader.batches(4) for envelope in batch]
    assert sorted(read) == sorted(m.id for m in messages)
    recent = [envelope.id for batch in reader.batches(4, since=now - timedelta(days=11)) for envelope in batch]
    assert len(recent) == sum(1 for doc in docs if doc["applied_at"] >= now - timedelta(days=11))
