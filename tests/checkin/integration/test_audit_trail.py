"""The audit trail on the real SecantusDB: each audited action leaves one entry in
one shape; owners read it (filters, pages, CSV); roles change with the last
owner kept; older entries still read."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import (
    PASSWORD,
    Org,
    add_user,
    create_event,
    headers,
    login,
    new_org,
    registered,
)

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "http://localhost"}


def entries(client: FlaskClient, org: Org, **params: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/audit", query_string=params, headers=headers(org.token))
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["entries"])


def user_id_of(client: FlaskClient, token: str) -> str:
    return str(client.get("/api/v1/me", headers=headers(token)).get_json()["id"])


def new_user(client: FlaskClient, org: Org, role: str, name: str = "Added") -> dict[str, Any]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    answer = client.post(
        "/api/v1/users",
        json={"email": email, "name": name, "role": role, "password": PASSWORD},
        headers=headers(org.token),
    )
    assert answer.status_code == 201, answer.get_json()
    return {**answer.get_json(), "email": email}


# -- users ----------------------------------------------------------------------------------------


def test_adding_a_user_changing_their_role_and_deactivating_them_are_audited(client: FlaskClient, org: Org) -> None:
    owner_id = user_id_of(client, org.token)
    added = new_user(client, org, "door_staff")
    changed = client.patch(f"/api/v1/users/{added['id']}", json={"role": "organizer"}, headers=headers(org.token))
    assert changed.status_code == 200 and changed.get_json()["role"] == "organizer"
    assert login(client, added["email"])  # signs in with the new role
    assert client.get("/api/v1/me", headers=headers(login(client, added["email"]))).get_json()["role"] == "organizer"
    assert client.post(f"/api/v1/users/{added['id']}/deactivate", headers=headers(org.token)).status_code == 200

    trail = entries(client, org)
    assert [e["action"] for e in trail] == ["user.deactivated", "user.role_changed", "user.created"]
    for entry in trail:
        assert entry["actor"] == {"kind": "user", "id": owner_id, "label": "Owner Alpha", "role": "owner"}
        assert entry["subject"] == {"kind": "user", "id": added["id"]}
    assert trail[2]["details"] == {"role": "door_staff"}
    assert trail[1]["details"] == {"from": "door_staff", "to": "organizer"}
    assert trail[1]["summary"] == "Role changed: door_staff → organizer"
    assert trail[0]["details"] == {"role": "organizer"}
    # Deactivating again changes nothing in the trail.
    assert client.post(f"/api/v1/users/{added['id']}/deactivate", headers=headers(org.token)).status_code == 200
    assert len(entries(client, org, action="user.deactivated")) == 1


def test_only_an_owner_changes_roles_and_the_last_owner_stays(app: Flask, client: FlaskClient, org: Org) -> None:
    owner_id = user_id_of(client, org.token)
    organizer = add_user(app, client, org.id, "organizer")
    viewer = new_user(client, org, "viewer")
    path = f"/api/v1/users/{viewer['id']}"
    refused = client.patch(path, json={"role": "organizer"}, headers=headers(organizer))
    assert refused.status_code == 403
    assert client.patch(path, json={"role": "boss"}, headers=headers(org.token)).status_code == 400
    assert client.patch(path, json={}, headers=headers(org.token)).status_code == 400
    assert client.patch("/api/v1/users/nobody", json={"role": "viewer"}, headers=headers(org.token)).status_code == 404
    other = new_org(app, client, "Other")
    assert client.patch(path, json={"role": "owner"}, headers=headers(other.token)).status_code == 404
    assert client.patch(path, json={"role": "viewer"}, headers=headers(org.token)).get_json()["role"] == "viewer"

    alone = client.patch(f"/api/v1/users/{owner_id}", json={"role": "organizer"}, headers=headers(org.token))
    assert alone.status_code == 409 and alone.get_json()["error"]["code"] == "last_owner"
    assert "last owner" in alone.get_json()["error"]["message"]
    # With a second owner, the first may step down; then the second is the last one.
    second = new_user(client, org, "owner", "Second Owner")
    assert (
        client.patch(f"/api/v1/users/{owner_id}", json={"role": "organizer"}, headers=headers(org.token)).status_code
        == 200
    )
    second_token = login(client, second["email"])
    last = client.patch(f"/api/v1/users/{second['id']}", json={"role": "viewer"}, headers=headers(second_token))
    assert last.status_code == 409
    roles = {u["id"]: u["role"] for u in client.get("/api/v1/users", headers=headers(second_token)).get_json()["users"]}
    assert roles[owner_id] == "organizer" and roles[second["id"]] == "owner"
    changes = entries(client, Org(org.id, org.owner_email, second_token), action="user.role_changed")
    assert [e["details"] for e in changes] == [{"from": "owner", "to": "organizer"}]  # refusals leave nothing


def test_a_role_change_names_the_old_and_new_role_and_a_same_role_change_records_nothing(
    client: FlaskClient, org: Org
) -> None:
    viewer = new_user(client, org, "viewer")
    path = f"/api/v1/users/{viewer['id']}"
    assert client.patch(path, json={"role": "viewer"}, headers=headers(org.token)).status_code == 200
    assert entries(client, org, action="user.role_changed") == []
    assert client.patch(path, json={"role": "door_staff"}, headers=headers(org.token)).status_code == 200
    (entry,) = entries(client, org, action="user.role_changed")
    assert entry["details"] == {"from": "viewer", "to": "door_staff"}


# -- kiosks and check-ins -------------------------------------------------------------------------


def test_pairing_and_revoking_a_kiosk_are_audited(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    kiosk = client.post(
        f"/api/v1/events/{event['id']}/kiosks",
        json={"name": "Side door", "staff_pin": "2468"},
        headers=headers(org.token),
    ).get_json()
    assert client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"]}).status_code == 200
    assert client.post(f"/api/v1/kiosks/{kiosk['id']}/revoke", headers=headers(org.token)).status_code == 200
    revoked, paired = entries(client, org)
    assert paired["action"] == "kiosk.paired" and paired["actor"] == {
        "kind": "kiosk",
        "id": kiosk["id"],
        "label": "Side door",
    }
    assert paired["subject"] == {"kind": "kiosk", "id": kiosk["id"]} and paired["event_id"] == event["id"]
    assert revoked["action"] == "kiosk.revoked" and revoked["actor"]["kind"] == "user"
    assert revoked["details"] == {"name": "Side door", "status_before": "paired"}


def test_a_staff_override_is_audited_and_a_kiosk_scan_writes_no_entry(client: FlaskClient, org: Org) -> None:
    now = datetime.now(UTC)
    later = create_event(
        client,
        org.token,
        starts_at=(now + timedelta(days=1)).isoformat(),
        ends_at=(now + timedelta(days=1, hours=2)).isoformat(),
    )
    early = registered(client, org.token, later["id"], "early@example.org")
    forced = client.post(
        f"/api/v1/events/{later['id']}/checkins",
        json={"badge_code": early["badge_code"], "client_key": "override-0001", "override": True},
        headers=headers(org.token),
    )
    assert forced.status_code == 201
    (entry,) = entries(client, org, action="checkin.override")
    assert entry["registration_id"] == early["id"] and entry["person_id"] == early["person_id"]
    assert entry["details"]["within_window"] is False and entry["details"]["method"] == "qr"
    assert entry["actor"]["label"] == "Owner Alpha"

    tonight = create_event(client, org.token)
    reg = registered(client, org.token, tonight["id"], "door@example.org")
    kiosk = client.post(
        f"/api/v1/events/{tonight['id']}/kiosks", json={"name": "Door", "staff_pin": "2468"}, headers=headers(org.token)
    ).get_json()
    token = client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"]}).get_json()["token"]
    before = len(entries(client, org))
    scan = client.post(
        "/api/v1/kiosk/checkins",
        json={"badge_code": reg["badge_code"], "client_key": "kiosk-scan-01"},
        headers=headers(token),
    )
    assert scan.status_code == 201
    assert len(entries(client, org)) == before


# -- reading the trail ----------------------------------------------------------------------------


def _seed(app: Flask, org: Org, count: int, start: datetime, action: str = "user.created") -> None:
    from checkin.domain.audit import Actor, Subject
    from checkin.service_layer import audit

    store = app.extensions["checkin"].store
    for index in range(count):
        audit.record(
            store,
            org.id,
            Actor("user", "u-seed", "Seeder", "owner"),
            action,
            Subject("user", f"seed-{index}"),
            at=start + timedelta(hours=index),
        )


def test_owners_page_through_the_trail_by_action_and_time(app: Flask, client: FlaskClient, org: Org) -> None:
    start = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    _seed(app, org, 30, start)  # 10 Jan 09:00 .. 11 Jan 14:00
    _seed(app, org, 2, start + timedelta(days=3), "kiosk.revoked")
    first = client.get("/api/v1/audit", query_string={"limit": "10"}, headers=headers(org.token)).get_json()
    assert first["total"] == 32 and len(first["entries"]) == 10
    stamps = [e["at"] for e in first["entries"]]
    assert stamps == sorted(stamps, reverse=True) and first["entries"][0]["action"] == "kiosk.revoked"
    rest = client.get("/api/v1/audit", query_string={"limit": "10", "offset": "30"}, headers=headers(org.token))
    assert [e["subject"]["id"] for e in rest.get_json()["entries"]] == ["seed-1", "seed-0"]
    assert len(entries(client, org, action="kiosk.revoked")) == 2
    day = entries(client, org, **{"from": "2026-01-11", "to": "2026-01-11", "limit": "100"})
    assert len(day) == 15 and all(e["at"].startswith("2026-01-11") for e in day)
    window = entries(client, org, **{"from": "2026-01-10T10:00:00Z", "to": "2026-01-10T12:00:00Z"})
    assert [e["subject"]["id"] for e in window] == ["seed-2", "seed-1"]
    # Another organization's owner sees none of it.
    other = new_org(app, client, "Other")
    assert entries(client, other) == []


def test_bad_filters_are_told_and_only_owners_read_the_trail(app: Flask, client: FlaskClient, org: Org) -> None:
    for params, field in (
        ({"action": "user.exploded"}, "action"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"from": "0001-01-01"}, "from"),
    ):
        answer = client.get("/api/v1/audit", query_string=params, headers=headers(org.token))
        assert answer.status_code == 400, params
        assert answer.get_json()["error"]["field"] == field, params
        assert client.get("/api/v1/audit.csv", query_string=params, headers=headers(org.token)).status_code == 400
    assert client.get("/api/v1/audit", query_string={"limit": "501"}, headers=headers(org.token)).status_code == 400
    organizer = add_user(app, client, org.id, "organizer")
    assert client.get("/api/v1/audit", headers=headers(organizer)).status_code == 403
    assert client.get("/api/v1/audit.csv", headers=headers(organizer)).status_code == 403
    assert client.get("/api/v1/audit").status_code == 401


def test_the_csv_holds_the_filtered_trail_with_formulas_defused(app: Flask, client: FlaskClient, org: Org) -> None:
    sneaky = new_user(client, org, "owner", '=HYPERLINK("https://evil.example","x")')
    sneaky_token = login(client, sneaky["email"])
    viewer = new_user(client, org, "viewer")
    assert (
        client.patch(
            f"/api/v1/users/{viewer['id']}", json={"role": "door_staff"}, headers=headers(sneaky_token)
        ).status_code
        == 200
    )
    answer = client.get("/api/v1/audit.csv", query_string={"action": "user.role_changed"}, headers=headers(org.token))
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == 1
    (row,) = rows
    assert row["action"] == "user.role_changed" and row["subject_id"] == viewer["id"]
    assert row["actor_label"] == '\'=HYPERLINK("https://evil.example","x")'
    assert row["summary"] == "Role changed: viewer → door_staff"
    assert '"from": "viewer"' in row["details"]
    everything = client.get("/api/v1/audit.csv", headers=headers(org.token)).get_data(as_text=True)
    assert everything.count("user.created") == 2 and everything.startswith("\ufeffat,action,summary")


def test_entries_written_before_the_one_shape_still_read(app: Flask, client: FlaskClient, org: Org) -> None:
    db = app.extensions["checkin"].db
    at = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    db["audit_log"].insert_many(
        [
            {
                "_id": f"legacy-undo-{org.id}",
                "org_id": org.id,
                "action": "checkin.undone",
                "at": at,
                "actor": {"kind": "user", "id": "u-1", "name": "Old Owner", "role": "owner"},
                "event_id": "e-1",
                "registration_id": "r-1",
                "person_id": "p-1",
                "reason": "wrong badge",
                "before": {"status": "registered", "checkin": {"method": "qr", "received_at": at}},
            },
            {
                "org_id": org.id,
                "event_id": "e-1",
                "action": "checkin_window_override",
                "registration_id": "r-2",
                "actor_id": "u-1",
                "at": at + timedelta(minutes=1),
                "detail": {"within_window": False},
            },
        ]
    )
    override, undone = entries(client, org)
    assert undone["actor"] == {"kind": "user", "id": "u-1", "label": "Old Owner", "role": "owner"}
    assert undone["summary"] == "Check-in undone: wrong badge" and undone["person_id"] == "p-1"
    assert undone["details"]["before"]["checkin"]["received_at"] == "2026-02-01T12:00:00.000Z"
    assert override["action"] == "checkin.override" and override["subject"] == {"kind": "registration", "id": "r-2"}
    assert entries(client, org, action="checkin.override")[0]["details"] == {"within_window": False}


def test_an_erasure_rewrites_the_person_in_older_entries(app: Flask, client: FlaskClient, org: Org) -> None:
    from turnout_common.privacy import pseudonym

    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "gone@example.org")
    client.post(
        f"/api/v1/events/{event['id']}/checkins",
        json={"registration_id": reg["id"], "client_key": "erase-0001"},
        headers=headers(org.token),
    )
    client.post(f"/api/v1/events/{event['id']}/checkins/{reg['id']}/undo", headers=headers(org.token))
    store = app.extensions["checkin"].store
    stand_in = pseudonym(org.id, reg["person_id"])
    assert store.audit.pseudonymize_person(org.id, reg["person_id"], stand_in) == 1
    (entry,) = entries(client, org, action="checkin.undone")
    assert entry["person_id"] == stand_in and reg["person_id"] not in str(entry)
    assert store.audit.of_person(org.id, reg["person_id"], 10) == []


# -- the page -------------------------------------------------------------------------------------


def browser(app: Flask, email: str) -> FlaskClient:
    signed_in = app.test_client()
    answer = signed_in.post("/login", data={"email": email, "password": PASSWORD}, headers=ORIGIN)
    assert answer.status_code == 303
    return signed_in


def test_the_audit_page_shows_the_trail_with_filters_and_the_csv_link(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    viewer = new_user(client, org, "viewer")
    client.patch(f"/api/v1/users/{viewer['id']}", json={"role": "door_staff"}, headers=headers(org.token))
    owner = browser(app, org.owner_email)
    page = owner.get("/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Role changed: viewer → door_staff" in html and "User added" in html
    assert 'href="/audit"' in html  # the nav link
    filtered = owner.get("/audit?action=user.role_changed").get_data(as_text=True)
    assert "Role changed" in filtered and "User added</strong>" not in filtered
    assert "/api/v1/audit.csv?action=user.role_changed" in filtered
    assert owner.get("/api/v1/audit.csv?action=user.role_changed").status_code == 200  # the link works with the cookie
    assert owner.get("/audit?from=someday").status_code == 400
    organizer = browser(app, add_user_email(app, org.id, "organizer"))
    assert organizer.get("/audit").status_code == 403
    assert 'href="/audit"' not in organizer.get("/events").get_data(as_text=True)
    assert app.test_client().get("/audit").status_code == 302


def add_user_email(app: Flask, org_id: str, role: str) -> str:
    from checkin.service_layer import organizations

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    app.extensions["checkin"].db["users"].insert_one(
        organizations.new_user_doc(org_id, email, f"A {role}", PASSWORD, role)
    )
    return email
