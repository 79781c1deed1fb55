"""Data requests against the real database: an export (checkin's part at once,
followup's and analytics' parts arriving through the consumer, the archive 409
then 200, the request's page) and an erasure (checkin's own part in the same
transaction: afterwards no checkin collection holds the person's name, email
or id; the counts stay; the answers complete it)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kafka import TopicPartition

from tests.checkin.integration.conftest import Org, add_user, check_in, create_event, headers, new_org, registered
from tests.checkin.integration.test_imports import queued, run_imports
from tests.checkin.integration.test_pages import browser, text_of
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.consumer import ConsumerWorker
from turnout_common.contracts import PRIVACY_TOPIC
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.privacy import pseudonym

pytestmark = pytest.mark.integration

FIRST, LAST = "Zephyrine", "Quillfeather"


@dataclass
class Record:
    """A record as the broker hands it to the consumer (topic, partition, offset, key, value)."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def deliver(ctx: Any, messages: Sequence[Envelope]) -> None:
    """Hand messages to checkin's privacy consumer, as the worker runs it (parsing, contract check,
    idempotency by message id, the handler, the processed ids in the same transaction)."""
    from checkin.adapters.mongo_privacy import PRIVACY_PROCESSED, in_transaction
    from checkin.service_layer.privacy import PRIVACY_TYPES, apply_privacy_answers

    worker = ConsumerWorker(
        group_id="test",
        consumer_factory=lambda: None,  # type: ignore[arg-type,return-value]
        dlq_producer_factory=lambda: None,  # type: ignore[arg-type,return-value]
        client=ctx.client,
        db=ctx.db,
        handler=in_transaction(apply_privacy_answers),
        handled_types=PRIVACY_TYPES,
        processed_collection=PRIVACY_PROCESSED,
        dead_letter_limit=0,
    )
    records = [
        Record(PRIVACY_TOPIC, 0, offset, message.data["request_id"].encode(), message.to_json(), [])
        for offset, message in enumerate(messages)
    ]
    worker.process({TopicPartition(PRIVACY_TOPIC, 0): records}, threading.Event())


def exported(org_id: str, request_id: str, service: str, part: dict[str, Any], size: int) -> list[Envelope]:
    """A service's answer to an export: its part's JSON in chunks of ``size`` characters."""
    text = json.dumps(part)
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    return [
        new_envelope(
            "person.data_exported",
            source=f"/turnout/{service}",
            subject=request_id,
            data={
                "org_id": org_id,
                "request_id": request_id,
                "service": service,
                "chunk_index": index,
                "chunk_count": len(pieces),
                "chunk": piece,
                "exported_at": to_rfc3339(utcnow()),
            },
        )
        for index, piece in enumerate(pieces)
    ]


def erased(org_id: str, request_id: str, service: str, counts: dict[str, int]) -> Envelope:
    return new_envelope(
        "person.erased",
        source=f"/turnout/{service}",
        subject=request_id,
        data={
            "org_id": org_id,
            "request_id": request_id,
            "service": service,
            "erased_at": to_rfc3339(utcnow()),
            "counts": counts,
        },
    )


def outbox_of(ctx: Any, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(doc["payload"])["data"] for doc in ctx.db["outbox"].find({"type": event_type})]


def request_of(client: FlaskClient, token: str, request_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/data-requests/{request_id}", headers=headers(token))
    assert answer.status_code == 200, answer.get_json()
    return dict(answer.get_json())


def traces(ctx: Any, needles: list[str], skip: tuple[str, ...] = ("outbox",)) -> list[str]:
    """Every checkin collection and document (by id) where a needle still appears (case-insensitive)."""
    found = []
    lowered = [needle.lower() for needle in needles]
    for name in ctx.db.list_collection_names():
        if name in skip:
            continue
        for doc in ctx.db[name].find():
            text = json.dumps(doc, default=str).lower()
            found += [f"{name} {doc.get('_id')}: {needle}" for needle in lowered if needle in text]
    return found


@pytest.fixture
def zephyrine(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> dict[str, Any]:
    """A person at two events: checked in at one (a door answer kept under its client key), in an
    import's report of rejected rows, looked at and corrected; and another person, who stays."""
    shift = create_event(client, org.token, title="Harbour clean-up shift", kind="volunteer_shift")
    workshop = create_event(client, org.token, title="Grant writing workshop", kind="workshop")
    email = f"zephyrine.{uuid.uuid4().hex[:8]}@example.org"
    # Registered with a typo in her surname, corrected below.
    typo = LAST.replace("ll", "l") if "ll" in LAST else LAST + "e"
    at_shift = registered(client, org.token, shift["id"], email, first_name=FIRST, last_name=typo, offers=["Design"])
    at_workshop = registered(client, org.token, workshop["id"], email, first_name=FIRST, last_name=typo)
    key = f"door-{uuid.uuid4().hex}"
    assert (
        check_in(client, org.token, shift["id"], badge_code=at_shift["badge_code"], client_key=key).status_code == 201
    )
    other = registered(
        client, org.token, shift["id"], f"ulrich.{uuid.uuid4().hex[:6]}@example.org", first_name="Ulrich"
    )
    # An import of the workshop where her row came twice: the second is reported (name and address).
    csv = f"first_name,last_name,email\n{FIRST},{LAST},{email}\n{FIRST},{LAST},{email.upper()}\n".encode()
    job = queued(
        client,
        org.token,
        workshop["id"],
        csv,
        fmt="generic",
        mapping={"first_name": "first_name", "last_name": "last_name", "email": "email"},
    )
    run_imports(ctx)
    stored_job = ctx.db["imports"].find_one({"_id": job["id"]})
    assert any(email.upper() == problem["email"] for problem in stored_job["errors"]), stored_job["errors"]
    person_id = at_shift["person_id"]
    assert client.get(f"/api/v1/people/{person_id}", headers=headers(org.token)).status_code == 200
    assert (
        client.patch(f"/api/v1/people/{person_id}", json={"last_name": LAST}, headers=headers(org.token)).status_code
        == 200
    )
    return {
        "person_id": person_id,
        "email": email,
        "events": [shift, workshop],
        "registrations": [at_shift, at_workshop],
        "client_key": key,
        "other": other,
        "import_id": job["id"],
    }


# -- export ------------------------------------------------------------------------------------------------------


def test_an_export_gathers_every_services_part_into_the_archive(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, zephyrine: dict[str, Any]
) -> None:
    person_id = zephyrine["person_id"]
    answer = client.post(f"/api/v1/people/{person_id}/export", headers=headers(org.token))
    assert answer.status_code == 201, answer.get_json()
    request = answer.get_json()
    assert request["kind"] == "export" and request["person_id"] == person_id and request["status"] == "working"
    assert request["requested_by"]["kind"] == "user"
    assert request["services"]["checkin"]["status"] == "done"
    assert request["services"]["checkin"]["summary"]["counts"]["registrations"] == 2
    assert {request["services"][s]["status"] for s in ("followup", "analytics")} == {"working"}
    assert request["archive_url"] is None
    # The other services are asked, with the address they know the person by.
    [asked] = outbox_of(ctx, "person.export_requested")
    assert asked == {
        "org_id": org.id,
        "person_id": person_id,
        "request_id": request["id"],
        "email": zephyrine["email"],
        "requested_at": request["requested_at"],
        "requested_by": request["requested_by"],
    }
    [entry] = list(ctx.db["audit_log"].find({"org_id": org.id, "action": "personal_data.exported"}))
    assert entry["subject"] == {"kind": "person", "id": person_id} and entry["details"]["request_id"] == request["id"]
    archive_url = f"/api/v1/data-requests/{request['id']}/archive.json"
    not_yet = client.get(archive_url, headers=headers(org.token))
    assert not_yet.status_code == 409 and "1 of 3" in not_yet.get_json()["error"]["message"]

    # followup answers in several chunks (out of order, one delivered twice), analytics in one.
    followup_part = {
        "contact": {"email": zephyrine["email"], "first_name": FIRST},
        "messages": [{"nudge": "thank_you", "sent_at": "2026-05-02T09:00:00.000Z", "body": "Thank you! " * 40}],
        "ratings": [{"rating": 5, "comment": f"{FIRST} loved it"}],
    }
    chunks = exported(org.id, request["id"], "followup", followup_part, 200)
    assert len(chunks) >= 3
    deliver(ctx, [chunks[-1], chunks[0]])
    assert request_of(client, org.token, request["id"])["services"]["followup"]["status"] == "working"
    deliver(ctx, [chunks[0], *chunks[1:-1]])  # chunk 0 again: a redelivery changes nothing
    shown = request_of(client, org.token, request["id"])
    assert shown["services"]["followup"]["status"] == "done"
    assert shown["services"]["followup"]["summary"]["counts"] == {"contact": 1, "messages": 1, "ratings": 1}
    assert shown["status"] == "working" and client.get(archive_url, headers=headers(org.token)).status_code == 409
    analytics_part = {"person": {"person_id": person_id, "visits": 1}, "visits": [{"event_id": "e", "at": "x"}]}
    deliver(ctx, exported(org.id, request["id"], "analytics", analytics_part, 100_000))
    shown = request_of(client, org.token, request["id"])
    assert shown["status"] == "complete" and shown["completed_at"] is not None
    assert shown["archive_url"] == archive_url

    archive = client.get(archive_url, headers=headers(org.token))
    assert archive.status_code == 200 and archive.mimetype == "application/json"
    assert "attachment" in archive.headers["Content-Disposition"]
    body = archive.get_json()
    assert set(body) == {"request", "checkin", "followup", "analytics"}
    assert body["followup"] == followup_part and body["analytics"] == analytics_part
    titles = {reg["event_title"] for reg in body["checkin"]["registrations"]}
    assert titles == {"Harbour clean-up shift", "Grant writing workshop"}
    assert body["checkin"]["person"]["email"] == zephyrine["email"]
    checked = [reg for reg in body["checkin"]["registrations"] if reg["checked_in"]]
    assert len(checked) == 1 and checked[0]["event_title"] == "Harbour clean-up shift"
    actions = {entry["action"] for entry in body["checkin"]["audit_entries"]}
    assert {"personal_data.viewed", "person.corrected"} <= actions
    # Later answers (a replay of an answer under a new id) change nothing.
    deliver(ctx, exported(org.id, request["id"], "analytics", {"person": "other"}, 100_000))
    assert client.get(archive_url, headers=headers(org.token)).get_json()["analytics"] == analytics_part

    # The request's page: each service done, what each reported, the download.
    page = browser(app, org.owner_email).get(f"/data-requests/{request['id']}")
    assert page.status_code == 200
    text = text_of(page)
    assert f"Export of {FIRST} {LAST}" in text and "Complete" in text
    assert "Harbour clean-up shift" in text and "thank_you (2026-05-02)" in text
    assert archive_url in page.get_data(as_text=True) and 'http-equiv="refresh"' not in page.get_data(as_text=True)
    listing = client.get("/api/v1/data-requests", headers=headers(org.token)).get_json()
    assert listing["total"] == 1 and listing["data_requests"][0]["person_name"] == f"{FIRST} {LAST}"


def test_a_working_request_page_refreshes_and_an_unknown_answer_is_ignored(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, zephyrine: dict[str, Any]
) -> None:
    request = client.post(f"/api/v1/people/{zephyrine['person_id']}/export", headers=headers(org.token)).get_json()
    page = browser(app, org.owner_email).get(f"/data-requests/{request['id']}")
    html = page.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="3">' in html and "1 of 3 services have answered" in text_of(page)
    # Answers naming no request of this organization: ignored (and applied only once as messages).
    other = new_org(app, client, "Other")
    deliver(
        ctx,
        [
            erased(org.id, "no-such-request", "followup", {"contacts": 1}),
            erased(other.id, request["id"], "followup", {"contacts": 1}),
            erased(org.id, request["id"], "analytics", {"people": 1}),  # an erasure answer to an export
            *exported(org.id, "no-such-request", "followup", {"a": 1}, 10),
        ],
    )
    assert request_of(client, org.token, request["id"])["services"]["followup"]["status"] == "working"
    assert request_of(client, org.token, request["id"])["services"]["analytics"]["status"] == "working"
    assert ctx.db["export_parts"].count_documents({"request_id": "no-such-request"}) == 0
    # An unreadable part is reported, and counts as answered.
    bad = exported(org.id, request["id"], "followup", {"x": 1}, 100)
    bad[0].data["chunk"] = "{not json"
    deliver(ctx, bad)
    followup = request_of(client, org.token, request["id"])["services"]["followup"]
    assert followup["status"] == "failed" and "not valid JSON" in followup["error"]


def test_only_owners_and_organizers_file_requests_and_only_in_their_organization(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, zephyrine: dict[str, Any]
) -> None:
    person_id = zephyrine["person_id"]
    for role in ("door_staff", "viewer"):
        token = add_user(app, client, org.id, role)
        assert client.post(f"/api/v1/people/{person_id}/export", headers=headers(token)).status_code == 403
        assert client.post(f"/api/v1/people/{person_id}/erasure", headers=headers(token)).status_code == 403
        assert client.get("/api/v1/data-requests", headers=headers(token)).status_code == 403
    other = new_org(app, client, "Other")
    assert client.post(f"/api/v1/people/{person_id}/erasure", headers=headers(other.token)).status_code == 404
    request = client.post(f"/api/v1/people/{person_id}/export", headers=headers(org.token)).get_json()
    assert client.get(f"/api/v1/data-requests/{request['id']}", headers=headers(other.token)).status_code == 404
    assert (
        client.get(f"/api/v1/data-requests/{request['id']}/archive.json", headers=headers(other.token)).status_code
        == 404
    )
    assert client.get("/api/v1/data-requests", headers=headers(other.token)).get_json()["total"] == 0
    assert ctx.db["people"].find_one({"_id": person_id}) is not None


# -- erasure ------------------------------------------------------------------------------------------------------


def test_an_erasure_leaves_no_name_email_or_id_in_any_checkin_collection(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, zephyrine: dict[str, Any]
) -> None:
    person_id, email = zephyrine["person_id"], zephyrine["email"]
    shift, workshop = zephyrine["events"]
    # An earlier export (its parts too) goes with the person.
    export = client.post(f"/api/v1/people/{person_id}/export", headers=headers(org.token)).get_json()
    needles = [FIRST, LAST, email, person_id]
    assert traces(ctx, needles)  # she is everywhere before
    counts_before = {
        event["id"]: client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token)).get_json()
        for event in (shift, workshop)
    }

    answer = client.post(f"/api/v1/people/{person_id}/erasure", headers=headers(org.token))
    assert answer.status_code == 201, answer.get_json()
    request = answer.get_json()
    stand_in = pseudonym(org.id, person_id)
    assert request["kind"] == "erasure" and request["person_id"] == stand_in and request["status"] == "working"
    done = request["services"]["checkin"]
    assert done["status"] == "done"
    assert done["counts"] == {
        "people": 1,
        "registrations": 2,
        "checkin_requests": 1,
        "import_reports": 1,
        "audit_entries": 3,  # viewed, corrected, exported
        "hour_entries": 0,
        "welcomes": 0,
        "greeters": 0,
        "export_requests": 1,
    }

    # Nothing names her any more (the outbox keeps messages only until the relay publishes them).
    assert traces(ctx, needles) == []
    pending = {doc["type"] for doc in ctx.db["outbox"].find() if person_id in doc["payload"].decode()}
    assert "person.erasure_requested" in pending
    [asked] = outbox_of(ctx, "person.erasure_requested")
    assert asked["person_id"] == person_id and asked["email"] == email and asked["request_id"] == request["id"]
    # The events' figures are unchanged; her registrations stay, anonymised, under the pseudonym.
    for event_id, before in counts_before.items():
        assert client.get(f"/api/v1/events/{event_id}", headers=headers(org.token)).get_json() == before
    kept = list(ctx.db["registrations"].find({"person_id": stand_in}))
    assert len(kept) == 2 and {reg["first_name"] for reg in kept} == {"(erased)"}
    assert [reg["checkin"]["method"] for reg in kept if reg["checkin"]] == ["qr"]
    # Her badge no longer opens the door; her export and its parts are gone; a tombstone remains.
    old_badge = zephyrine["registrations"][1]["badge_code"]
    refused = check_in(client, org.token, workshop["id"], badge_code=old_badge)
    assert refused.status_code == 404
    assert ctx.db["data_requests"].find_one({"_id": export["id"]}) is None
    assert ctx.db["export_parts"].count_documents({"request_id": export["id"]}) == 0
    assert ctx.db["checkin_requests"].find_one({"_id": f"{org.id}:{zephyrine['client_key']}"}) is None
    assert ctx.db["erased_people"].find_one({"_id": stand_in})["request_id"] == request["id"]
    # The trail keeps that something happened, not who: every entry names the pseudonym.
    entries = list(ctx.db["audit_log"].find({"org_id": org.id, "person_id": stand_in}))
    assert {entry["action"] for entry in entries} >= {"person.erasure_requested", "personal_data.viewed"}
    # The other person is untouched.
    other = ctx.db["registrations"].find_one({"_id": zephyrine["other"]["id"]})
    assert other["first_name"] == "Ulrich"

    # She is gone for checkin's own flows: not found, cannot be erased twice.
    assert client.get(f"/api/v1/people/{person_id}", headers=headers(org.token)).status_code == 404
    again = client.post(f"/api/v1/people/{person_id}/erasure", headers=headers(org.token))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "person_erased"
    assert client.post("/api/v1/people/nobody/erasure", headers=headers(org.token)).status_code == 404

    # followup and analytics confirm: complete.
    deliver(ctx, [erased(org.id, request["id"], "followup", {"contacts": 1, "messages": 4})])
    assert request_of(client, org.token, request["id"])["status"] == "working"
    deliver(ctx, [erased(org.id, request["id"], "analytics", {"people": 1, "facts": 3})])
    final = request_of(client, org.token, request["id"])
    assert final["status"] == "complete"
    assert final["services"]["followup"]["counts"] == {"contacts": 1, "messages": 4}
    assert (
        client.get(f"/api/v1/data-requests/{request['id']}/archive.json", headers=headers(org.token)).status_code == 409
    )
    page = browser(app, org.owner_email).get(f"/data-requests/{request['id']}")
    text = text_of(page)
    assert "Erasure of a person" in text and "every service has erased the person" in text and FIRST not in text
    assert traces(ctx, needles) == []

    # Coming back of her own will is allowed: the same address makes a new person.
    again = registered(client, org.token, workshop["id"], email, first_name=FIRST, last_name=LAST)
    assert again["person_id"] != person_id


def test_the_audit_entry_of_an_erasure_names_only_the_pseudonym(
    client: FlaskClient, org: Org, ctx: Any, zephyrine: dict[str, Any]
) -> None:
    person_id = zephyrine["person_id"]
    request = client.post(f"/api/v1/people/{person_id}/erasure", headers=headers(org.token)).get_json()
    [entry] = list(ctx.db["audit_log"].find({"org_id": org.id, "action": "person.erasure_requested"}))
    assert entry["subject"] == {"kind": "person", "id": pseudonym(org.id, person_id)}
    assert entry["details"] == {"request_id": request["id"]}
    assert entry["actor"]["kind"] == "user"
    text = json.dumps(entry, default=str)
    assert person_id not in text and zephyrine["email"] not in text and FIRST not in text
