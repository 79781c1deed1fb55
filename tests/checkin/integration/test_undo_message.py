"""Undoing a check-in is announced: attendee.checkin_undone in the same transaction as the
undo and its audit entry, on the real SecantusDB."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, check_in, create_event, headers, registered
from turnout_common.clock import as_utc, to_rfc3339
from turnout_common.contracts import registry

pytestmark = pytest.mark.integration


def undone_messages(ctx: Any, registration_id: str) -> list[Any]:
    found = [
        registry().parse(bytes(doc["payload"])) for doc in ctx.db["outbox"].find({"type": "attendee.checkin_undone"})
    ]
    return [message for message in found if message.data["registration_id"] == registration_id]


def test_an_undo_publishes_who_when_and_why_with_the_audit_entry(app: Flask, client: FlaskClient, org: Org) -> None:
    ctx = app.extensions["checkin"]
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "undone@example.org")
    checked = check_in(client, org.token, event["id"], badge_code=reg["badge_code"])
    assert checked.status_code == 201
    received_at = ctx.db["registrations"].find_one({"_id": reg["id"]})["checkin"]["received_at"]
    me = client.get("/api/v1/me", headers=headers(org.token)).get_json()

    answer = client.post(
        f"/api/v1/events/{event['id']}/checkins/{reg['id']}/undo",
        json={"reason": "scanned the wrong badge"},
        headers=headers(org.token),
    )
    assert answer.status_code == 200, answer.get_json()

    (message,) = undone_messages(ctx, reg["id"])
    assert message.subject == event["id"] and message.source == "/turnout/checkin"
    entry = ctx.db["audit_log"].find_one({"_id": answer.get_json()["audit_id"]})
    assert message.data == {
        "org_id": org.id,
        "event_id": event["id"],
        "registration_id": reg["id"],
        "person_id": reg["person_id"],
        "checked_in_at": to_rfc3339(as_utc(received_at)),
        "undone_at": to_rfc3339(as_utc(entry["at"])),
        "undone_by": me["id"],
        "reason": "scanned the wrong badge",
    }
    assert answer.get_json()["undone_at"] == message.data["undone_at"]
    # The outbox keys it by event, like every attendee.* message (one partition keeps the order).
    stored = ctx.db["outbox"].find_one({"_id": message.id})
    assert stored["key"] == event["id"] and stored["topic"] == "turnout.checkin"
    assert entry["action"] == "checkin.undone" and entry["subject"] == {"kind": "registration", "id": reg["id"]}
    assert entry["person_id"] == reg["person_id"] and entry["details"]["reason"] == "scanned the wrong badge"
    assert entry["details"]["before"]["checkin"]["received_at"] == received_at


def test_an_undo_without_a_reason_says_so_and_a_refused_undo_publishes_nothing(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    ctx = app.extensions["checkin"]
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "again@example.org")
    path = f"/api/v1/events/{event['id']}/checkins/{reg['id']}/undo"
    refused = client.post(path, headers=headers(org.token))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_checked_in"
    assert undone_messages(ctx, reg["id"]) == []
    assert ctx.db["audit_log"].count_documents({"registration_id": reg["id"]}) == 0

    check_in(client, org.token, event["id"], registration_id=reg["id"])
    assert client.post(path, headers=headers(org.token)).status_code == 200
    check_in(client, org.token, event["id"], registration_id=reg["id"])
    assert client.post(path, json={"reason": None}, headers=headers(org.token)).status_code == 200
    first, second = sorted(undone_messages(ctx, reg["id"]), key=lambda m: m.data["undone_at"])
    assert first.data["reason"] == "" and second.data["reason"] == ""
    assert first.data["checked_in_at"] < second.data["checked_in_at"]  # each names the check-in it undid


def test_the_openapi_document_says_an_undo_publishes(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    summary = doc["paths"]["/api/v1/events/{event_id}/checkins/{registration_id}/undo"]["post"]["summary"]
    assert "attendee.checkin_undone" in summary and "no message" not in summary
