"""Recurring shifts on the real broker/database: a series in one step, each occurrence a real
event with its own event.scheduled; editing "this and following"; cancelling one occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, check_in, headers, iso, registered
from turnout_common.contracts import registry

pytestmark = pytest.mark.integration

CHICAGO = ZoneInfo("America/Chicago")


def series_body(**changes: Any) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(minutes=10)
    body: dict[str, Any] = {
        "title": "Thursday Pantry Shift",
        "kind": "volunteer_shift",
        "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=2)),
        "timezone": "America/Chicago",
        "capacity": 12,
        "recurrence": {"frequency": "weekly", "count": 4},
    }
    body.update(changes)
    return body


def messages(ctx: Any, kind: str, ids: set[str]) -> list[Any]:
    found = [registry().parse(bytes(doc["payload"])) for doc in ctx.db["outbox"].find({"type": kind})]
    return [m for m in found if m.data["event_id"] in ids]


def test_a_series_is_made_in_one_step_and_each_occurrence_is_a_real_event(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    ctx = app.extensions["checkin"]
    answer = client.post("/api/v1/series", json=series_body(), headers=headers(org.token))
    assert answer.status_code == 201, answer.get_json()
    made = answer.get_json()
    occurrences = made["occurrences"]
    assert [o["occurrence"] for o in occurrences] == [1, 2, 3, 4]
    assert len({o["id"] for o in occurrences}) == 4 and {o["series_id"] for o in occurrences} == {made["series_id"]}
    local = [datetime.fromisoformat(o["starts_at"]).astimezone(CHICAGO) for o in occurrences]
    assert len({t.strftime("%H:%M %A") for t in local}) == 1  # same local time and weekday
    scheduled = messages(ctx, "event.scheduled", {o["id"] for o in occurrences})
    assert sorted(m.data["occurrence"] for m in scheduled) == [1, 2, 3, 4]
    assert {m.data["series_id"] for m in scheduled} == {made["series_id"]}

    # The first occurrence is on now: someone checks in there, and only there.
    reg = registered(client, org.token, occurrences[0]["id"], "regular@example.org")
    assert check_in(client, org.token, occurrences[0]["id"], badge_code=reg["badge_code"]).status_code == 201
    listed = client.get(f"/api/v1/series/{made['series_id']}", headers=headers(org.token)).get_json()
    assert [o["checked_in_count"] for o in listed["occurrences"]] == [1, 0, 0, 0]
    assert listed["recurrence"]["frequency"] == "weekly"


def test_too_many_occurrences_is_a_clear_400_and_nothing_is_made(app: Flask, client: FlaskClient, org: Org) -> None:
    ctx = app.extensions["checkin"]
    before = ctx.db["events"].count_documents({"org_id": org.id})
    too_many = series_body(recurrence={"frequency": "weekly", "until": "2031-01-01"})
    answer = client.post("/api/v1/series", json=too_many, headers=headers(org.token))
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "too_many_occurrences" and "104" in error["message"]
    bad = client.post("/api/v1/series", json=series_body(recurrence={"frequency": "daily"}), headers=headers(org.token))
    assert bad.status_code == 400
    assert ctx.db["events"].count_documents({"org_id": org.id}) == before


def test_editing_this_and_following_leaves_earlier_and_past_occurrences(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    made = client.post("/api/v1/series", json=series_body(), headers=headers(org.token)).get_json()
    first, second, third, fourth = made["occurrences"]
    client.post(f"/api/v1/events/{first['id']}/end", headers=headers(org.token))
    new_start = datetime.fromisoformat(third["starts_at"]).astimezone(CHICAGO).replace(hour=9, minute=30)
    change = {
        "title": "Thursday Morning Shift",
        "starts_at": iso(new_start),
        "ends_at": iso(new_start + timedelta(hours=3)),
    }
    answer = client.patch(f"/api/v1/events/{third['id']}?scope=following", json=change, headers=headers(org.token))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["also_updated"] == [fourth["id"]]
    listed = client.get(f"/api/v1/series/{made['series_id']}", headers=headers(org.token)).get_json()["occurrences"]
    assert [o["title"] for o in listed] == ["Thursday Pantry Shift"] * 2 + ["Thursday Morning Shift"] * 2
    for o in listed[2:]:
        local = datetime.fromisoformat(o["starts_at"]).astimezone(CHICAGO)
        assert (local.hour, local.minute) == (9, 30)
    assert listed[1]["starts_at"] == second["starts_at"] and listed[0]["status"] == "ended"
    bad = client.patch(f"/api/v1/events/{third['id']}?scope=all", json={"title": "x"}, headers=headers(org.token))
    assert bad.status_code == 400


def test_cancelling_one_occurrence_publishes_its_cancellation_only(app: Flask, client: FlaskClient, org: Org) -> None:
    ctx = app.extensions["checkin"]
    made = client.post("/api/v1/series", json=series_body(), headers=headers(org.token)).get_json()
    ids = [o["id"] for o in made["occurrences"]]
    one = client.post(f"/api/v1/events/{ids[1]}/cancel", json={"reason": "holiday"}, headers=headers(org.token))
    assert one.status_code == 200 and one.get_json()["status"] == "cancelled"
    (cancelled,) = messages(ctx, "event.cancelled", set(ids))
    assert cancelled.data["event_id"] == ids[1] and cancelled.data["series_id"] == made["series_id"]
    assert cancelled.data["occurrence"] == 2 and cancelled.data["reason"] == "holiday"
    rest = client.post(f"/api/v1/events/{ids[2]}/cancel?scope=following", json={}, headers=headers(org.token))
    assert rest.get_json()["also_cancelled"] == [ids[3]]
    statuses = [
        o["status"]
        for o in client.get(f"/api/v1/series/{made['series_id']}", headers=headers(org.token)).get_json()["occurrences"]
    ]
    assert statuses == ["scheduled", "cancelled", "cancelled", "cancelled"]
    assert len(messages(ctx, "event.cancelled", set(ids))) == 3
