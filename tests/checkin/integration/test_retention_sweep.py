"""checkin's retention sweep of check-in details, on the real SecantusDB, with the
clock moved forward: old events lose their per-scan records, kiosk and staff
fields and walk-ins' answers; registrations, statuses, check-in times and
attendance counts stay; newer events and other organizations are untouched."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, new_org, registered

pytestmark = pytest.mark.integration


def key() -> str:
    return f"sweep-{uuid.uuid4().hex}"


def kiosk_token(client: FlaskClient, org: Org, event_id: str) -> str:
    kiosk = client.post(
        f"/api/v1/events/{event_id}/kiosks", json={"name": "Door", "staff_pin": "2468"}, headers=headers(org.token)
    ).get_json()
    return str(client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"]}).get_json()["token"])


def busy_event(client: FlaskClient, org: Org) -> dict[str, Any]:
    """An event happening now with a kiosk scan and check-out, a walk-in, a staff check-in and a no-show."""
    now = datetime.now(UTC)
    event = create_event(
        client,
        org.token,
        starts_at=(now - timedelta(hours=2)).isoformat(),
        ends_at=(now + timedelta(hours=1)).isoformat(),
    )
    scanned = registered(client, org.token, event["id"], f"scan-{uuid.uuid4().hex[:6]}@example.org", first_name="Sam")
    staffed = registered(client, org.token, event["id"], f"staff-{uuid.uuid4().hex[:6]}@example.org", first_name="Sue")
    absent = registered(client, org.token, event["id"], f"none-{uuid.uuid4().hex[:6]}@example.org", first_name="Ned")
    k = headers(kiosk_token(client, org, event["id"]))
    assert (
        client.post(
            "/api/v1/kiosk/checkins", json={"badge_code": scanned["badge_code"], "client_key": key()}, headers=k
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/kiosk/checkouts", json={"badge_code": scanned["badge_code"], "client_key": key()}, headers=k
        ).status_code
        == 200
    )
    walk_in = client.post(
        "/api/v1/kiosk/walk-ins",
        json={
            "client_key": key(),
            "first_name": "Walt",
            "email": f"walk-{uuid.uuid4().hex[:6]}@example.org",
            "consent_email": True,
            "offers": ["carpentry"],
            "seeks": ["a mentor"],
        },
        headers=k,
    )
    assert walk_in.status_code == 201
    staff = client.post(
        f"/api/v1/events/{event['id']}/checkins",
        json={"registration_id": staffed["id"], "client_key": key()},
        headers=headers(org.token),
    )
    assert staff.status_code == 201
    return {"event": event, "walk_in_id": walk_in.get_json()["registration_id"], "absent": absent}


def requests_of(ctx: Any, org_id: str, event_id: str) -> int:
    return int(
        ctx.db["checkin_requests"].count_documents(
            {"_id": {"$gte": f"{org_id}:", "$lt": f"{org_id};"}, "event_id": event_id}
        )
    )


def counts(client: FlaskClient, org: Org, event_id: str) -> tuple[int, int, int]:
    body = client.get(f"/api/v1/events/{event_id}", headers=headers(org.token)).get_json()
    return body["registered_count"], body["waitlisted_count"], body["checked_in_count"]


def snapshot(ctx: Any, event_id: str) -> dict[str, dict[str, Any]]:
    return {reg["_id"]: reg for reg in ctx.db["registrations"].find({"event_id": event_id})}


def test_the_sweep_clears_old_details_and_keeps_what_counts(app: Flask, client: FlaskClient, org: Org) -> None:
    from checkin.service_layer import retention

    ctx = app.extensions["checkin"]
    assert (
        client.put(
            "/api/v1/retention", json={"periods": {"checkin_details": 1}}, headers=headers(org.token)
        ).status_code
        == 200
    )
    old = busy_event(client, org)
    event_id = old["event"]["id"]
    # An event two months ahead (overridden check-in): within the period when the clock has moved.
    now = datetime.now(UTC)
    later = create_event(
        client,
        org.token,
        starts_at=(now + timedelta(days=60)).isoformat(),
        ends_at=(now + timedelta(days=60, hours=2)).isoformat(),
    )
    early = registered(client, org.token, later["id"], "early@example.org")
    client.post(
        f"/api/v1/events/{later['id']}/checkins",
        json={"registration_id": early["id"], "client_key": key(), "override": True},
        headers=headers(org.token),
    )
    # Another organization keeps the default 24 months.
    other = new_org(app, client, "Other")
    theirs = busy_event(client, other)

    before = snapshot(ctx, event_id)
    counted = counts(client, org, event_id)
    assert counted == (4, 0, 3)
    assert requests_of(ctx, org.id, event_id) == 4  # scan, check-out, walk-in, staff
    assert requests_of(ctx, org.id, later["id"]) == 1

    # Not yet: a month after the event has not passed.
    swept = retention.sweep_checkin_details(ctx, now + timedelta(days=20))
    assert (
        requests_of(ctx, org.id, event_id) == 4
        and ctx.db["events"].find_one({"_id": event_id}).get("details_swept_at") is None
    )

    moved = now + timedelta(days=33)
    swept = retention.sweep_checkin_details(ctx, moved)
    assert swept.events >= 1 and swept.requests >= 4

    assert requests_of(ctx, org.id, event_id) == 0
    assert requests_of(ctx, org.id, later["id"]) == 1
    assert requests_of(ctx, other.id, theirs["event"]["id"]) == 4
    after = snapshot(ctx, event_id)
    assert set(after) == set(before)
    for reg_id, reg in after.items():
        was = before[reg_id]
        assert reg["status"] == was["status"] and reg["person_id"] == was["person_id"]
        assert (reg["checkin"] is None) == (was["checkin"] is None)
        if reg["checkin"] is not None:
            assert reg["checkin"]["received_at"] == was["checkin"]["received_at"]
            assert reg["checkin"]["method"] == was["checkin"]["method"]
            assert reg["checkin"]["kiosk_id"] is None and reg["checkin"]["actor_id"] is None
    kiosk_scans = [r for r in before.values() if r["checkin"] and r["checkin"]["kiosk_id"]]
    assert len(kiosk_scans) == 2  # the scan and the walk-in: both lost their kiosk
    checked_out = next(r for r in after.values() if r.get("checkout"))
    assert checked_out["checkout"]["kiosk_id"] is None and checked_out["checkout"]["hours"] is not None
    walk_in = after[old["walk_in_id"]]
    assert walk_in["offers"] == [] and walk_in["seeks"] == [] and before[old["walk_in_id"]]["offers"] == ["carpentry"]
    assert counts(client, org, event_id) == counted
    assert ctx.db["events"].find_one({"_id": event_id})["details_swept_at"] is not None

    # The later event and the other organization are as they were.
    assert ctx.db["registrations"].find_one({"_id": early["id"]})["checkin"]["actor_id"]
    theirs_walk_in = ctx.db["registrations"].find_one({"_id": theirs["walk_in_id"]})
    assert theirs_walk_in["offers"] == ["carpentry"] and theirs_walk_in["checkin"]["kiosk_id"]

    # A second sweep finds nothing more to do for this organization.
    cutoff = retention.cutoff(moved, 1)
    assert retention.sweep_organization(ctx, org.id, cutoff, moved, 50) == retention.SweepResult()


def test_the_worker_loop_sweeps_at_start_on_its_clock(app: Flask, client: FlaskClient, org: Org) -> None:
    from checkin.entrypoints.worker import details_retention_loop

    ctx = app.extensions["checkin"]
    client.put("/api/v1/retention", json={"periods": {"checkin_details": 2}}, headers=headers(org.token))
    old = busy_event(client, org)
    event_id = old["event"]["id"]
    moved = datetime.now(UTC) + timedelta(days=70)
    stop = threading.Event()
    loop = threading.Thread(target=details_retention_loop(ctx, 0.05, lambda: moved), args=(stop,), daemon=True)
    loop.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while requests_of(ctx, org.id, event_id) and datetime.now(UTC) < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()
    assert requests_of(ctx, org.id, event_id) == 0
    assert ctx.db["registrations"].find_one({"_id": old["walk_in_id"]})["seeks"] == []


def test_the_sweep_interval_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from checkin.config import Settings

    assert Settings.from_env().retention_sweep_seconds == 3600.0
    monkeypatch.setenv("CHECKIN_RETENTION_SWEEP_SECONDS", "60")
    assert Settings.from_env().retention_sweep_seconds == 60.0
