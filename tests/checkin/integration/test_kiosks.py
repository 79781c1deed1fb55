"""Kiosk pairing, scope, revocation, search, roster, walk-ins and check-outs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, new_org, registered

pytestmark = pytest.mark.integration


def make_kiosk(client: FlaskClient, org: Org, event_id: str, pin: str = "2468") -> dict[str, Any]:
    answer = client.post(
        f"/api/v1/events/{event_id}/kiosks", json={"name": "Front door", "staff_pin": pin}, headers=headers(org.token)
    )
    assert answer.status_code == 201, answer.get_json()
    return dict(answer.get_json())


def paired(client: FlaskClient, org: Org, event_id: str) -> tuple[str, dict[str, Any]]:
    kiosk = make_kiosk(client, org, event_id)
    answer = client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"].lower()})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["token"], kiosk


def test_pairing_is_one_time_and_gives_a_token_for_that_event_only(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    kiosk = make_kiosk(client, org, event["id"])
    assert len(kiosk["pairing_code"]) == 8 and kiosk["status"] == "unpaired"
    first = client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"]})
    assert first.status_code == 200
    body = first.get_json()
    assert body["event"]["id"] == event["id"]
    assert body["staff_pin_sha256"] == hashlib.sha256(f"{kiosk['id']}:2468".encode()).hexdigest()
    again = client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"]})
    assert again.status_code == 404
    assert again.get_json()["error"]["code"] == "invalid_pairing_code"
    listed = client.get(f"/api/v1/events/{event['id']}/kiosks", headers=headers(org.token)).get_json()["kiosks"]
    assert listed[0]["status"] == "paired" and "pairing_code" not in listed[0]


def test_expired_code_is_refused(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    kiosk = make_kiosk(client, org, event["id"])
    ctx.db["kiosks"].update_one(
        {"_id": kiosk["id"]}, {"$set": {"pairing_expires_at": datetime.now(UTC) - timedelta(minutes=1)}}
    )
    answer = client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"]})
    assert answer.status_code == 410


def test_a_kiosk_token_can_do_its_job_and_nothing_else(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    other_event = create_event(client, org.token, title="Other")
    reg = registered(client, org.token, event["id"], "amber@example.org", first_name="Amber", last_name="Nguyen")
    other = registered(client, org.token, other_event["id"], "bo@example.org")
    token, _ = paired(client, org, event["id"])
    kiosk = headers(token)
    scan = client.post(
        "/api/v1/kiosk/checkins", json={"badge_code": reg["badge_code"], "client_key": "kiosk-0001"}, headers=kiosk
    )
    assert scan.status_code == 201
    assert scan.get_json()["message"].startswith("Welcome, Amber!")
    wrong = client.post(
        "/api/v1/kiosk/checkins", json={"badge_code": other["badge_code"], "client_key": "kiosk-0002"}, headers=kiosk
    )
    assert wrong.status_code == 409 and wrong.get_json()["error"]["code"] == "wrong_event"
    # Organizer routes are closed to a kiosk token.
    for method, path in [
        ("get", "/api/v1/events"),
        ("get", f"/api/v1/events/{event['id']}/registrations"),
        ("post", f"/api/v1/events/{event['id']}/checkins"),
        ("get", f"/api/v1/events/{event['id']}/kiosks"),
        ("get", "/api/v1/me"),
    ]:
        answer = getattr(client, method)(path, json={}, headers=kiosk)
        assert answer.status_code == 403, (path, answer.get_json())
    # And kiosk routes are closed to an organizer token.
    assert client.get("/api/v1/kiosk/roster", headers=headers(org.token)).status_code == 403


def test_search_shows_first_name_and_initial_only_tolerating_typos_and_accents(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    registered(client, org.token, event["id"], "jose.garcia@example.org", first_name="José", last_name="García")
    registered(client, org.token, event["id"], "jose.g2@example.org", first_name="José", last_name="Gómez")
    registered(client, org.token, event["id"], "mei@example.org", first_name="Mei", last_name="Sato")
    token, _ = paired(client, org, event["id"])
    for query in ("jose", "JOSÉ", "jsoe", "jose g"):
        results = client.get(f"/api/v1/kiosk/search?q={query}", headers=headers(token)).get_json()["results"]
        assert {r["name"] for r in results} == {"José G."}, query
        assert len(results) == 2
        # Same display name: told apart by a hint that never shows an address.
        hints = [r["hint"] for r in results]
        assert len(set(hints)) == 2
        assert all("example" not in h and "@" not in h and "…" not in h for h in hints)
    results = client.get("/api/v1/kiosk/search?q=garcía", headers=headers(token)).get_json()["results"]
    assert len(results) == 1
    assert client.get("/api/v1/kiosk/search?q=", headers=headers(token)).status_code == 400


def test_roster_lets_an_offline_kiosk_verify_badges_without_the_codes(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "amber@example.org", first_name="Amber", last_name="Nguyen")
    token, _ = paired(client, org, event["id"])
    roster = client.get("/api/v1/kiosk/roster", headers=headers(token)).get_json()
    person = roster["people"][0]
    assert person["badge_sha256"] == hashlib.sha256(reg["badge_code"].encode()).hexdigest()
    assert reg["badge_code"] not in str(roster)
    assert "amber@example.org" not in str(roster)
    assert person["name"] == "Amber N."


def test_revoked_kiosk_is_refused_at_once(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    token, kiosk = paired(client, org, event["id"])
    assert client.get("/api/v1/kiosk/roster", headers=headers(token)).status_code == 200
    assert client.post(f"/api/v1/kiosks/{kiosk['id']}/revoke", headers=headers(org.token)).status_code == 200
    answer = client.get("/api/v1/kiosk/roster", headers=headers(token))
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "kiosk_revoked"
    # Another organization cannot revoke or list our kiosks.
    outsider = new_org(client.application, client, "Outsider")
    assert client.post(f"/api/v1/kiosks/{kiosk['id']}/revoke", headers=headers(outsider.token)).status_code == 404


def test_walk_in_is_recognised_when_they_came_before(client: FlaskClient, org: Org) -> None:
    past = create_event(client, org.token, title="Before")
    reg = registered(client, org.token, past["id"], "ada@example.org", first_name="Ada", last_name="Lovelace")
    client.post(
        f"/api/v1/events/{past['id']}/checkins",
        json={"badge_code": reg["badge_code"], "client_key": "past-0001"},
        headers=headers(org.token),
    )
    event = create_event(client, org.token, title="Tonight")
    token, _ = paired(client, org, event["id"])
    body = {
        "client_key": "walk-0001",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ADA@example.org ".strip(),
        "consent_email": False,
    }
    answer = client.post("/api/v1/kiosk/walk-ins", json=body, headers=headers(token))
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["visit_number"] == 2
    assert "Welcome back" in answer.get_json()["message"]
    replay = client.post("/api/v1/kiosk/walk-ins", json=body, headers=headers(token))
    assert replay.get_json()["replayed"] is True


def test_volunteer_check_out_counts_hours_and_event_end_closes_the_rest(
    client: FlaskClient, org: Org, ctx: Any
) -> None:
    now = datetime.now(UTC)
    event = create_event(
        client,
        org.token,
        kind="volunteer_shift",
        starts_at=(now - timedelta(hours=3)).isoformat(),
        ends_at=(now + timedelta(hours=1)).isoformat(),
    )
    amber = registered(client, org.token, event["id"], "amber@example.org", first_name="Amber")
    bo = registered(client, org.token, event["id"], "bo@example.org", first_name="Bo")
    token, _ = paired(client, org, event["id"])
    k = headers(token)
    for reg, key in ((amber, "in-amber-1"), (bo, "in-bo-0001")):
        scanned = (now - timedelta(hours=2)).isoformat()
        assert (
            client.post(
                "/api/v1/kiosk/checkins",
                json={"badge_code": reg["badge_code"], "client_key": key, "scanned_at": scanned},
                headers=k,
            ).status_code
            == 201
        )
    out = client.post(
        "/api/v1/kiosk/checkouts", json={"badge_code": amber["badge_code"], "client_key": "out-amber-1"}, headers=k
    )
    assert out.status_code == 200, out.get_json()
    assert out.get_json()["hours"] == 2.0
    again = client.post(
        "/api/v1/kiosk/checkouts", json={"badge_code": amber["badge_code"], "client_key": "out-amber-2"}, headers=k
    )
    assert again.get_json()["status"] == "already_checked_out"
    nobody = registered(client, org.token, event["id"], "cy@example.org", first_name="Cy")
    refused = client.post(
        "/api/v1/kiosk/checkouts", json={"badge_code": nobody["badge_code"], "client_key": "out-cy-001"}, headers=k
    )
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_checked_in"
    # Bo forgot to check out: ending the event closes it, with the rule recorded.
    assert client.post(f"/api/v1/events/{event['id']}/end", headers=headers(org.token)).status_code == 200
    bo_doc = ctx.db["registrations"].find_one({"_id": bo["id"]})
    assert bo_doc["checkout"]["closed_by"] == "event_end"
    assert "closed at the event's end" in bo_doc["checkout"]["rule"]
    outs = [d for d in ctx.db["outbox"].find({"type": "attendee.checked_out"})]
    assert len(outs) == 2


def test_event_edit_and_cancel_publish_and_close_the_door(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "amber@example.org")
    edited = client.patch(
        f"/api/v1/events/{event['id']}", json={"title": "Renamed", "venue": "Hall B"}, headers=headers(org.token)
    )
    assert edited.status_code == 200 and edited.get_json()["title"] == "Renamed"
    assert client.patch(f"/api/v1/events/{event['id']}", json={}, headers=headers(org.token)).status_code == 400
    assert (
        client.patch(
            f"/api/v1/events/{event['id']}", json={"timezone": "Mars/Base"}, headers=headers(org.token)
        ).status_code
        == 400
    )
    cancelled = client.post(
        f"/api/v1/events/{event['id']}/cancel", json={"reason": "storm"}, headers=headers(org.token)
    )
    assert cancelled.get_json()["status"] == "cancelled"
    refused = client.post(
        f"/api/v1/events/{event['id']}/checkins",
        json={"badge_code": reg["badge_code"], "client_key": "after-cancel"},
        headers=headers(org.token),
    )
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "event_cancelled"
    types = [d["type"] for d in ctx.db["outbox"].find({"key": event["id"]}).sort("created_at", 1)]
    assert types == ["event.scheduled", "attendee.registered", "event.updated", "event.cancelled"]


def test_cancelling_a_registration_promotes_the_waitlist(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token, capacity=1)
    first = registered(client, org.token, event["id"], "first@example.org")
    second = registered(client, org.token, event["id"], "second@example.org")
    assert second["status"] == "waitlisted"
    answer = client.post(f"/api/v1/registrations/{first['id']}/cancel", json={}, headers=headers(org.token))
    assert answer.status_code == 200
    assert answer.get_json()["promoted_from_waitlist"]["id"] == second["id"]
    scan = client.post(
        f"/api/v1/events/{event['id']}/checkins",
        json={"badge_code": first["badge_code"], "client_key": "cancelled-1"},
        headers=headers(org.token),
    )
    assert scan.status_code == 409 and scan.get_json()["error"]["code"] == "registration_cancelled"
    assert ctx.db["outbox"].count_documents({"type": "registration.cancelled", "key": event["id"]}) == 1


def test_staff_override_of_the_window_is_audited(client: FlaskClient, org: Org, ctx: Any) -> None:
    now = datetime.now(UTC)
    event = create_event(
        client,
        org.token,
        starts_at=(now + timedelta(days=1)).isoformat(),
        ends_at=(now + timedelta(days=1, hours=2)).isoformat(),
    )
    reg = registered(client, org.token, event["id"], "early@example.org")
    early = client.post(
        f"/api/v1/events/{event['id']}/checkins",
        json={"badge_code": reg["badge_code"], "client_key": "early-0001"},
        headers=headers(org.token),
    )
    assert early.status_code == 409
    forced = client.post(
        f"/api/v1/events/{event['id']}/checkins",
        json={"badge_code": reg["badge_code"], "client_key": "early-0002", "override": True},
        headers=headers(org.token),
    )
    assert forced.status_code == 201
    audit = ctx.db["audit_log"].find_one({"registration_id": reg["id"]})
    assert audit["action"] == "checkin.override" and audit["details"]["within_window"] is False
    assert audit["actor"]["kind"] == "user" and audit["actor"]["role"] == "owner"
    assert audit["subject"] == {"kind": "registration", "id": reg["id"]} and audit["person_id"]


def test_a_scan_queued_offline_is_judged_by_when_it_was_scanned(client: FlaskClient, org: Org) -> None:
    now = datetime.now(UTC)
    event = create_event(
        client,
        org.token,
        starts_at=(now - timedelta(hours=3)).isoformat(),
        ends_at=(now - timedelta(hours=1)).isoformat(),
        checkin_closes_minutes_after=30,
    )
    early = registered(client, org.token, event["id"], "early@example.org")
    late = registered(client, org.token, event["id"], "late@example.org")
    token, _ = paired(client, org, event["id"])
    # Scanned while the door was open, synced after it closed: counted.
    synced = client.post(
        "/api/v1/kiosk/checkins",
        json={
            "badge_code": early["badge_code"],
            "client_key": "queued-0001",
            "scanned_at": (now - timedelta(hours=2)).isoformat(),
        },
        headers=headers(token),
    )
    assert synced.status_code == 201, synced.get_json()
    # A kiosk clock claiming a scan from days ago does not reopen the door.
    stale = client.post(
        "/api/v1/kiosk/checkins",
        json={
            "badge_code": late["badge_code"],
            "client_key": "queued-0002",
            "scanned_at": (now - timedelta(days=3)).isoformat(),
        },
        headers=headers(token),
    )
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "checkin_closed"


def test_a_second_scan_says_when_and_where_in_local_time(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token, timezone="America/Chicago")
    reg = registered(client, org.token, event["id"], "amber@example.org", first_name="Amber", last_name="Nguyen")
    token, _ = paired(client, org, event["id"])
    first = client.post(
        "/api/v1/kiosk/checkins",
        json={"badge_code": reg["badge_code"], "client_key": "twice-0001"},
        headers=headers(token),
    )
    assert first.status_code == 201
    local = datetime.fromisoformat(first.get_json()["checked_in_at"].replace("Z", "+00:00")).astimezone(
        ZoneInfo("America/Chicago")
    )
    second = client.post(
        "/api/v1/kiosk/checkins",
        json={"badge_code": reg["badge_code"], "client_key": "twice-0002"},
        headers=headers(token),
    )
    assert second.status_code == 200
    assert second.get_json()["message"] == f"Amber N. already checked in at {local:%H:%M} at Front door"
