"""Checkin's JSON API against the real Tansu broker and SecantusDB server."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import (
    PASSWORD,
    Org,
    add_user,
    check_in,
    create_event,
    event_body,
    headers,
    iso,
    new_org,
    register,
    registered,
)
from turnout_common.contracts import registry

pytestmark = pytest.mark.integration


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return dict(error)


def _outbox(ctx: Any, event_type: str, **query: Any) -> list[dict[str, Any]]:
    return list(ctx.db["outbox"].find({"type": event_type, **query}))


# -- readiness (first: the slow probe below runs on while later tests do) -----------------------------


def _app_with_closed_kafka_port(monkeypatch: pytest.MonkeyPatch) -> Flask:
    from checkin import create_app
    from turnout_local.processes import free_port

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    return create_app()


def test_readyz_names_kafka_when_the_broker_is_unreachable(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app_with_closed_kafka_port(monkeypatch)
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "unavailable"
        assert any("kafka" in reason for reason in body["reasons"]), body
        assert not any("mongodb" in reason for reason in body["reasons"]), body
    finally:
        app.extensions["checkin"].client.close()


def test_readyz_answers_promptly_when_kafka_is_down(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app_with_closed_kafka_port(monkeypatch)
    answers: list[int] = []
    probe = threading.Thread(target=lambda: answers.append(app.test_client().get("/readyz").status_code), daemon=True)
    probe.start()
    probe.join(8)
    assert answers == [503], "no answer from /readyz within 8 s"


# -- sign-in ---------------------------------------------------------------------------------------


def test_login_returns_a_working_token_and_cookie(client: FlaskClient, org: Org) -> None:
    response = client.post("/api/v1/auth/login", json={"email": f"  {org.owner_email.upper()} ", "password": PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert body["user"]["role"] == "owner"
    assert body["user"]["organization"]["id"] == org.id
    assert "password_hash" not in json.dumps(body)
    assert "turnout_session=" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    me = client.get("/api/v1/me", headers=headers(body["token"]))
    assert me.status_code == 200
    assert me.get_json()["org_id"] == org.id


def test_login_with_wrong_password_or_unknown_email_is_the_same_401(client: FlaskClient, org: Org) -> None:
    wrong = client.post("/api/v1/auth/login", json={"email": org.owner_email, "password": "not-the-password"})
    unknown = client.post("/api/v1/auth/login", json={"email": "nobody@example.org", "password": PASSWORD})
    first = _error(wrong, 401, "invalid_credentials")
    second = _error(unknown, 401, "invalid_credentials")
    assert first["message"] == second["message"]


def test_api_without_a_token_is_401(client: FlaskClient, org: Org) -> None:
    _error(client.get("/api/v1/events"), 401, "unauthenticated")
    _error(client.get("/api/v1/events", headers=headers("forged.token.value")), 401, "invalid_token")


# -- events ---------------------------------------------------------------------------------------


def test_create_event_returns_it(client: FlaskClient, org: Org) -> None:
    response = client.post(
        "/api/v1/events",
        json={
            "title": "  Spring Networking Night ",
            "kind": "networking",
            "starts_at": "2030-04-10T18:00:00-05:00",
            "ends_at": "2030-04-10T21:00:00-05:00",
            "timezone": "America/Chicago",
            "venue": "Hall B",
            "capacity": 80,
            "description": "Bring business cards",
            "checkin_opens_minutes_before": 30,
            "checkin_closes_minutes_after": 15,
        },
        headers=headers(org.token),
    )
    assert response.status_code == 201
    event = response.get_json()
    assert event["title"] == "Spring Networking Night"
    assert event["kind"] == "networking"
    assert event["starts_at"] == "2030-04-10T23:00:00.000Z"
    assert event["ends_at"] == "2030-04-11T02:00:00.000Z"
    assert event["checkin_opens_at"] == "2030-04-10T22:30:00.000Z"
    assert event["checkin_closes_at"] == "2030-04-11T02:15:00.000Z"
    assert (event["venue"], event["capacity"], event["status"]) == ("Hall B", 80, "scheduled")
    assert (event["registered_count"], event["checked_in_count"]) == (0, 0)
    fetched = client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token))
    assert fetched.get_json() == event


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "America", "UTC+2"])
def test_bad_timezone_is_400(client: FlaskClient, org: Org, timezone: str) -> None:
    response = client.post("/api/v1/events", json=event_body(timezone=timezone), headers=headers(org.token))
    error = _error(response, 400, "invalid_timezone")
    assert error["field"] == "timezone"


def test_ends_before_starts_is_400(client: FlaskClient, org: Org) -> None:
    now = datetime.now(UTC)
    body = event_body(starts_at=iso(now + timedelta(hours=2)), ends_at=iso(now + timedelta(hours=1)))
    error = _error(client.post("/api/v1/events", json=body, headers=headers(org.token)), 400, "invalid_schedule")
    assert error["field"] == "ends_at"


def test_missing_title_is_400_missing_field(client: FlaskClient, org: Org) -> None:
    body = event_body()
    del body["title"]
    error = _error(client.post("/api/v1/events", json=body, headers=headers(org.token)), 400, "missing_field")
    assert error["field"] == "title"


def test_kind_outside_the_enum_is_400(client: FlaskClient, org: Org) -> None:
    response = client.post("/api/v1/events", json=event_body(kind="rave"), headers=headers(org.token))
    assert _error(response, 400, "invalid_field")["field"] == "kind"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"title": "   "}, "invalid_field", "title"),
        ({"starts_at": "2030-04-10T18:00:00"}, "invalid_timestamp", "starts_at"),
        ({"starts_at": "next tuesday"}, "invalid_timestamp", "starts_at"),
        ({"starts_at": "0001-01-01T00:00:00+01:00"}, "invalid_timestamp", "starts_at"),
        ({"starts_at": "0001-01-01T00:00:00Z", "ends_at": "0001-01-01T05:00:00Z"}, "invalid_timestamp", "starts_at"),
        ({"starts_at": "9999-12-31T20:00:00Z", "ends_at": "9999-12-31T23:30:00Z"}, "invalid_timestamp", "starts_at"),
        ({"capacity": 0}, "invalid_field", "capacity"),
        ({"checkin_opens_minutes_before": -5}, "invalid_field", "checkin_opens_minutes_before"),
        ({"organizer": "me"}, "unknown_field", None),
    ],
)
def test_other_bad_event_fields_are_400(
    client: FlaskClient, ctx: Any, org: Org, changes: dict[str, Any], code: str, field: str | None
) -> None:
    response = client.post("/api/v1/events", json=event_body(**changes), headers=headers(org.token))
    assert _error(response, 400, code)["field"] == field
    assert ctx.db["events"].count_documents({}) == 0
    assert ctx.db["outbox"].count_documents({}) == 0


def test_unknown_event_is_404(client: FlaskClient, org: Org) -> None:
    _error(client.get("/api/v1/events/000000000000000000000000", headers=headers(org.token)), 404, "event_not_found")


def test_ending_an_event_publishes_event_ended_once(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    first = client.post(f"/api/v1/events/{event['id']}/end", headers=headers(org.token))
    again = client.post(f"/api/v1/events/{event['id']}/end", headers=headers(org.token))
    assert first.status_code == again.status_code == 200
    assert first.get_json()["status"] == "ended"
    assert len(_outbox(ctx, "event.ended", key=event["id"])) == 1
    _error(register(client, org.token, event["id"], "late@example.org"), 409, "event_closed")


# -- registrations ------------------------------------------------------------------------------------


def test_register_returns_the_registration(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    response = register(
        client,
        org.token,
        event["id"],
        "ada@example.org",
        offers=["Python", "python", "Grant Writing"],
        seeks=["Mentoring"],
        consent_email=False,
    )
    assert response.status_code == 201
    reg = response.get_json()
    assert reg["event_id"] == event["id"]
    assert (reg["first_name"], reg["last_name"], reg["status"]) == ("Ada", "Lovelace", "registered")
    assert reg["consent_email"] is False
    assert reg["offers"] == ["python", "grant writing"]
    assert reg["seeks"] == ["mentoring"]
    assert len(reg["badge_code"]) >= 20
    assert reg["checked_in_at"] is None
    listed = client.get(f"/api/v1/events/{event['id']}/registrations", headers=headers(org.token)).get_json()
    assert [r["id"] for r in listed["registrations"]] == [reg["id"]]
    fetched = client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token)).get_json()
    assert fetched["registered_count"] == 1


def test_registering_the_same_email_again_returns_the_same_registration(
    client: FlaskClient, ctx: Any, org: Org
) -> None:
    event = create_event(client, org.token)
    first = registered(client, org.token, event["id"], "Ada.Lovelace@Example.org")
    again = register(client, org.token, event["id"], "ada.lovelace@EXAMPLE.ORG", first_name="Augusta")
    assert again.status_code == 200
    assert again.get_json()["id"] == first["id"]
    assert again.get_json()["badge_code"] == first["badge_code"]
    assert ctx.db["people"].count_documents({"org_id": org.id}) == 1
    assert len(_outbox(ctx, "attendee.registered", key=event["id"])) == 1
    fetched = client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token)).get_json()
    assert fetched["registered_count"] == 1


def test_email_whitespace_is_ignored_when_matching_people(ctx: Any, org: Org, client: FlaskClient) -> None:
    # The API refuses emails with surrounding spaces (400, see below); imports and
    # other callers of the service layer rely on the normalization.
    from checkin.service_layer import registrations

    event = create_event(client, org.token)
    first, created = registrations.register(
        ctx, org.id, event["id"], first_name="Ada", last_name="L", email="ada@example.org", consent_email=True
    )
    again, created_again = registrations.register(
        ctx, org.id, event["id"], first_name="Ada", last_name="L", email="  ADA@example.org\t", consent_email=True
    )
    assert (created, created_again) == (True, False)
    assert again["_id"] == first["_id"]
    spaced = register(client, org.token, event["id"], " ada@example.org ")
    assert _error(spaced, 400, "invalid_field")["field"] == "email"


def test_capacity_reached_puts_the_next_person_on_the_waitlist(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token, capacity=1)
    first = registered(client, org.token, event["id"], "first@example.org")
    second = registered(client, org.token, event["id"], "second@example.org")
    assert (first["status"], second["status"]) == ("registered", "waitlisted")
    fetched = client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token)).get_json()
    assert fetched["registered_count"] == 1
    statuses = sorted(
        registry().parse(bytes(doc["payload"])).data["status"] for doc in _outbox(ctx, "attendee.registered")
    )
    assert statuses == ["registered", "waitlisted"]


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"email": "not-an-email"}, "invalid_field", "email"),
        ({"first_name": "   "}, "missing_field", "first_name"),
        ({"consent_email": "yes"}, "invalid_field", "consent_email"),
        ({"offers": ["x"] * 21}, "invalid_field", "offers"),
    ],
)
def test_bad_registrations_are_400(
    client: FlaskClient, ctx: Any, org: Org, changes: dict[str, Any], code: str, field: str
) -> None:
    event = create_event(client, org.token)
    email = changes.pop("email", "ada@example.org")
    response = register(client, org.token, event["id"], email, **changes)
    assert _error(response, 400, code)["field"] == field
    assert ctx.db["registrations"].count_documents({}) == 0


def test_missing_consent_is_never_assumed(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    response = client.post(
        f"/api/v1/events/{event['id']}/registrations",
        json={"first_name": "Ada", "email": "ada@example.org"},
        headers=headers(org.token),
    )
    assert _error(response, 400, "missing_field")["field"] == "consent_email"


def test_tag_that_folds_longer_than_60_characters_is_accepted(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    response = register(client, org.token, event["id"], "tags@example.org", offers=["ß" + "a" * 57 + " b"])
    assert response.status_code == 201


# -- check-in -----------------------------------------------------------------------------------------


def test_check_in_by_badge_welcomes_a_first_timer(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    response = check_in(client, org.token, event["id"], badge_code=reg["badge_code"], kiosk_id="door-1")
    assert response.status_code == 201
    answer = response.get_json()
    assert answer["status"] == "checked_in"
    assert answer["registration_id"] == reg["id"]
    assert answer["name"] == "Ada L."  # never the full last name at the door
    assert "Lovelace" not in json.dumps(answer)
    assert answer["first_time_ever"] is True
    assert answer["visit_number"] == 1
    assert "First time here" in answer["message"]
    assert answer["kiosk_id"] == "door-1"
    listed = client.get(f"/api/v1/events/{event['id']}/registrations", headers=headers(org.token)).get_json()
    assert listed["registrations"][0]["checked_in_at"] == answer["checked_in_at"]
    fetched = client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token)).get_json()
    assert fetched["checked_in_count"] == 1


def test_check_in_by_registration_id(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    response = check_in(client, org.token, event["id"], registration_id=reg["id"], method="search")
    assert response.status_code == 201
    assert response.get_json()["registration_id"] == reg["id"]


def test_second_event_counts_as_a_return_visit(client: FlaskClient, ctx: Any, org: Org) -> None:
    first_event = create_event(client, org.token, title="Shift 1")
    second_event = create_event(client, org.token, title="Shift 2")
    first = registered(client, org.token, first_event["id"], "ada@example.org")
    second = registered(client, org.token, second_event["id"], "ADA@example.org")
    assert first["person_id"] == second["person_id"]
    assert check_in(client, org.token, first_event["id"], badge_code=first["badge_code"]).status_code == 201
    response = check_in(client, org.token, second_event["id"], badge_code=second["badge_code"])
    assert response.status_code == 201
    answer = response.get_json()
    assert answer["visit_number"] == 2
    assert answer["first_time_ever"] is False
    assert "visit number 2" in answer["message"]
    (doc,) = _outbox(ctx, "attendee.checked_in", key=second_event["id"])
    data = registry().parse(bytes(doc["payload"])).data
    assert (data["visit_number"], data["first_time_ever"]) == (2, False)


def test_scanning_again_says_already_checked_in_and_publishes_nothing(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    first = check_in(client, org.token, event["id"], badge_code=reg["badge_code"])
    assert first.status_code == 201
    again = check_in(client, org.token, event["id"], badge_code=reg["badge_code"])
    assert again.status_code == 200
    answer = again.get_json()
    assert answer["status"] == "already_checked_in"
    assert answer["checked_in_at"] == first.get_json()["checked_in_at"]
    assert answer["name"] == "Ada L."
    assert len(_outbox(ctx, "attendee.checked_in")) == 1
    fetched = client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token)).get_json()
    assert fetched["checked_in_count"] == 1
    assert ctx.db["people"].find_one({"_id": reg["person_id"]})["visits"] == 1


def test_replayed_client_key_returns_the_first_answer(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    first = check_in(client, org.token, event["id"], badge_code=reg["badge_code"], client_key="kiosk-1:0001")
    replay = check_in(client, org.token, event["id"], badge_code=reg["badge_code"], client_key="kiosk-1:0001")
    assert first.status_code == replay.status_code == 201
    replayed = replay.get_json()
    assert replayed.pop("replayed") is True
    assert replayed == first.get_json()
    assert len(_outbox(ctx, "attendee.checked_in")) == 1
    # The same key for another event is a client bug, not a replay: refused, and
    # nothing is recorded even though the badge is valid there.
    other = create_event(client, org.token, title="Other")
    other_reg = registered(client, org.token, other["id"], "ada@example.org")
    response = check_in(client, org.token, other["id"], badge_code=other_reg["badge_code"], client_key="kiosk-1:0001")
    assert _error(response, 409, "client_key_reused")["field"] == "client_key"
    assert len(_outbox(ctx, "attendee.checked_in")) == 1
    assert ctx.db["registrations"].find_one({"_id": other_reg["id"]})["checkin"] is None
    assert check_in(client, org.token, other["id"], badge_code=other_reg["badge_code"]).status_code == 201


def test_unknown_badge_is_404(client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    _error(check_in(client, org.token, event["id"], badge_code="no-such-badge-code-123"), 404, "unknown_badge")
    _error(check_in(client, org.token, event["id"], registration_id="000000000000000000000000"), 404, "unknown_badge")


def test_badge_of_another_event_is_409_wrong_event(client: FlaskClient, ctx: Any, org: Org) -> None:
    tonight = create_event(client, org.token, title="Tonight")
    other = create_event(client, org.token, title="Other")
    reg = registered(client, org.token, other["id"], "ada@example.org")
    _error(check_in(client, org.token, tonight["id"], badge_code=reg["badge_code"]), 409, "wrong_event")
    assert len(_outbox(ctx, "attendee.checked_in")) == 0


def test_check_in_before_the_window_is_refused_unless_overridden(
    app: Flask, client: FlaskClient, ctx: Any, org: Org
) -> None:
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    event = create_event(client, org.token, starts_at=iso(tomorrow), ends_at=iso(tomorrow + timedelta(hours=2)))
    reg = registered(client, org.token, event["id"], "early@example.org")
    error = _error(check_in(client, org.token, event["id"], badge_code=reg["badge_code"]), 409, "checkin_not_open")
    assert "override" in error["message"]
    assert len(_outbox(ctx, "attendee.checked_in")) == 0
    organizer = add_user(app, client, org.id, "organizer")
    response = check_in(client, organizer, event["id"], badge_code=reg["badge_code"], override=True)
    assert response.status_code == 201
    (doc,) = _outbox(ctx, "attendee.checked_in")
    assert registry().parse(bytes(doc["payload"])).data["override"] is True


def test_check_in_after_the_window_is_refused(client: FlaskClient, org: Org) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    event = create_event(client, org.token, starts_at=iso(yesterday), ends_at=iso(yesterday + timedelta(hours=2)))
    reg = registered(client, org.token, event["id"], "late@example.org")
    _error(check_in(client, org.token, event["id"], badge_code=reg["badge_code"]), 409, "checkin_closed")


def test_rescan_after_the_window_still_says_already_checked_in(client: FlaskClient, org: Org) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    event = create_event(client, org.token, starts_at=iso(yesterday), ends_at=iso(yesterday + timedelta(hours=2)))
    reg = registered(client, org.token, event["id"], "late@example.org")
    assert check_in(client, org.token, event["id"], badge_code=reg["badge_code"], override=True).status_code == 201
    again = check_in(client, org.token, event["id"], badge_code=reg["badge_code"])
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "already_checked_in"


def test_a_waitlisted_person_who_comes_is_checked_in_and_registered(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token, capacity=1)
    registered(client, org.token, event["id"], "first@example.org")
    late = registered(client, org.token, event["id"], "late@example.org")
    assert late["status"] == "waitlisted"
    response = check_in(client, org.token, event["id"], badge_code=late["badge_code"])
    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["visit_number"], response.get_json()["first_time_ever"]) == (1, True)
    stored = ctx.db["registrations"].find_one({"_id": late["id"]})
    assert stored["status"] == "registered"
    assert stored["checkin"]["method"] == "qr"
    person = ctx.db["people"].find_one({"_id": late["person_id"]})
    assert (person["visits"], person["first_seen_at"]) == (1, person["last_seen_at"])
    [message] = _outbox(ctx, "attendee.checked_in", key=event["id"])
    data = registry().parse(bytes(message["payload"])).data
    assert (data["registration_id"], data["visit_number"], data["first_time_ever"]) == (late["id"], 1, True)


def test_concurrent_scans_of_one_badge_check_in_once(app: Flask, client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "rush@example.org")
    barrier = threading.Barrier(8)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def scan(index: int) -> None:
        own_client = app.test_client()
        barrier.wait()
        response = check_in(
            own_client, org.token, event["id"], badge_code=reg["badge_code"], client_key=f"rush-{index:04d}"
        )
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=scan, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 7 + [201], results
    assert all(body["status"] == "already_checked_in" for status, body in results if status == 200)
    assert len(_outbox(ctx, "attendee.checked_in", key=event["id"])) == 1
    assert ctx.db["people"].find_one({"_id": reg["person_id"]})["visits"] == 1
    fetched = client.get(f"/api/v1/events/{event['id']}", headers=headers(org.token)).get_json()
    assert fetched["checked_in_count"] == 1


def test_concurrent_replays_of_one_client_key_agree(app: Flask, client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "retry@example.org")
    barrier = threading.Barrier(6)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def scan() -> None:
        own_client = app.test_client()
        barrier.wait()
        response = check_in(own_client, org.token, event["id"], badge_code=reg["badge_code"], client_key="same-key-01")
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=scan) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(status for status, _ in results) == [201] * 6, results
    assert len({body["checked_in_at"] for _, body in results}) == 1
    assert sum(1 for _, body in results if not body.get("replayed")) == 1
    assert len(_outbox(ctx, "attendee.checked_in", key=event["id"])) == 1


# -- organizations are isolated -------------------------------------------------------------------------


def test_another_organization_cannot_see_or_touch_our_event(app: Flask, client: FlaskClient, org: Org) -> None:
    ours = create_event(client, org.token, title="Alpha only")
    reg = registered(client, org.token, ours["id"], "ada@example.org")
    other = new_org(app, client, "Beta")
    theirs = create_event(client, other.token, title="Beta only")
    hb = headers(other.token)

    _error(client.get(f"/api/v1/events/{ours['id']}", headers=hb), 404, "event_not_found")
    _error(client.get(f"/api/v1/events/{ours['id']}/registrations", headers=hb), 404, "event_not_found")
    _error(register(client, other.token, ours["id"], "mallory@example.org"), 404, "event_not_found")
    _error(client.post(f"/api/v1/events/{ours['id']}/end", headers=hb), 404, "event_not_found")
    _error(check_in(client, other.token, ours["id"], badge_code=reg["badge_code"]), 404, "event_not_found")
    # Our badge at their own event: they learn nothing about it.
    _error(check_in(client, other.token, theirs["id"], badge_code=reg["badge_code"]), 404, "unknown_badge")
    _error(check_in(client, other.token, theirs["id"], registration_id=reg["id"]), 404, "unknown_badge")

    their_list = client.get("/api/v1/events", headers=hb).get_json()["events"]
    assert [e["id"] for e in their_list] == [theirs["id"]]
    our_list = client.get("/api/v1/events", headers=headers(org.token)).get_json()["events"]
    assert [e["id"] for e in our_list] == [ours["id"]]
    # Nothing of ours changed.
    ours_now = client.get(f"/api/v1/events/{ours['id']}", headers=headers(org.token)).get_json()
    assert (ours_now["status"], ours_now["registered_count"], ours_now["checked_in_count"]) == ("scheduled", 1, 0)


def test_same_email_in_two_organizations_is_two_people(app: Flask, client: FlaskClient, org: Org) -> None:
    other = new_org(app, client, "Beta")
    ours = registered(client, org.token, create_event(client, org.token)["id"], "ada@example.org")
    theirs = registered(client, other.token, create_event(client, other.token)["id"], "ada@example.org")
    assert ours["person_id"] != theirs["person_id"]


def test_client_keys_are_per_organization(app: Flask, client: FlaskClient, org: Org) -> None:
    other = new_org(app, client, "Beta")
    ours_event, theirs_event = create_event(client, org.token), create_event(client, other.token)
    ours = registered(client, org.token, ours_event["id"], "a@example.org")
    theirs = registered(client, other.token, theirs_event["id"], "b@example.org")
    first = check_in(client, org.token, ours_event["id"], badge_code=ours["badge_code"], client_key="shared-0001")
    second = check_in(
        client, other.token, theirs_event["id"], badge_code=theirs["badge_code"], client_key="shared-0001"
    )
    assert first.status_code == second.status_code == 201
    assert "replayed" not in second.get_json()
    assert second.get_json()["registration_id"] == theirs["id"]


# -- roles --------------------------------------------------------------------------------------------


def test_viewer_can_look_but_not_create_or_check_in(app: Flask, client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    viewer = add_user(app, client, org.id, "viewer")
    assert client.get("/api/v1/events", headers=headers(viewer)).status_code == 200
    assert client.get(f"/api/v1/events/{event['id']}/registrations", headers=headers(viewer)).status_code == 200
    _error(client.post("/api/v1/events", json=event_body(), headers=headers(viewer)), 403, "forbidden")
    _error(check_in(client, viewer, event["id"], badge_code=reg["badge_code"]), 403, "forbidden")
    _error(register(client, viewer, event["id"], "x@example.org"), 403, "forbidden")
    _error(client.post(f"/api/v1/events/{event['id']}/end", headers=headers(viewer)), 403, "forbidden")
    assert ctx.db["events"].count_documents({}) == 1
    assert len(_outbox(ctx, "attendee.checked_in")) == 0


def test_door_staff_can_check_in_but_not_manage(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    staff = add_user(app, client, org.id, "door_staff")
    assert check_in(client, staff, event["id"], badge_code=reg["badge_code"]).status_code == 201
    _error(client.post("/api/v1/events", json=event_body(), headers=headers(staff)), 403, "forbidden")
    _error(register(client, staff, event["id"], "x@example.org"), 403, "forbidden")


def test_role_names_are_validated(ctx: Any, org: Org) -> None:
    from checkin.domain.model import RuleBroken
    from checkin.service_layer import organizations

    with pytest.raises(RuleBroken) as caught:
        organizations.new_user_doc(org.id, "x@example.org", "X", PASSWORD, "superuser")
    assert caught.value.code == "invalid_role"
    with pytest.raises(RuleBroken) as caught:
        organizations.new_user_doc(org.id, "x@example.org", "X", "short", "viewer")
    assert caught.value.code == "weak_password"


def test_duplicate_owner_email_is_refused(ctx: Any, org: Org) -> None:
    from checkin.domain.model import RuleBroken
    from checkin.service_layer import organizations

    with pytest.raises(RuleBroken) as caught:
        organizations.create_organization(ctx, "Another one", org.owner_email.upper(), "X", PASSWORD)
    assert caught.value.code == "already_exists"
    assert ctx.db["organizations"].count_documents({}) == 1


# -- input abuse ----------------------------------------------------------------------------------------


def _raw(client: FlaskClient, path: str, token: str, data: bytes | str, content_type: str = "application/json") -> Any:
    return client.post(path, data=data, content_type=content_type, headers=headers(token))


def test_hostile_bodies_are_4xx_never_500(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    checkins = f"/api/v1/events/{event['id']}/checkins"
    registrations = f"/api/v1/events/{event['id']}/registrations"
    cases = [
        (_raw(client, checkins, org.token, json.dumps({"client_key": "k" * 10, "badge_code": {"$ne": None}})), 400),
        (_raw(client, registrations, org.token, json.dumps({"$where": "sleep(1000)"})), 400),
        (_raw(client, "/api/v1/events", org.token, json.dumps({**event_body(), "venue.x": "y"})), 400),
        (_raw(client, "/api/v1/events", org.token, "{'title': 'single quotes'}"), 400),
        (_raw(client, "/api/v1/events", org.token, b'{"title": "\xff\xfe"}'), 400),
        (_raw(client, "/api/v1/events", org.token, json.dumps(event_body()), "text/plain"), 415),
        (_raw(client, "/api/v1/events", org.token, "[]"), 400),
        (_raw(client, "/api/v1/events", org.token, ""), 400),
        (_raw(client, "/api/v1/events", org.token, '{"title": "\\ud800 lone surrogate"}'), 400),
        (_raw(client, "/api/v1/events", org.token, json.dumps(event_body(title="\ud83c\udf89 Party"))), 201),
        (
            _raw(
                client, registrations, org.token, '{"first_name": "\\udfff", "email": "a@b.co", "consent_email": true}'
            ),
            400,
        ),
        (client.post("/api/v1/auth/login", json={"email": "x\ud800@example.org", "password": "\ud800" * 4}), 400),
        (check_in(client, org.token, event["id"], badge_code=reg["badge_code"], kiosk_id=""), 400),
        (
            check_in(client, org.token, event["id"], badge_code=reg["badge_code"], scanned_at="0005-01-01T00:00:00Z"),
            400,
        ),
        (check_in(client, org.token, event["id"], badge_code=reg["badge_code"], client_key="has spaces!"), 400),
        (check_in(client, org.token, event["id"], badge_code="x", registration_id=reg["id"]), 400),
        (check_in(client, org.token, event["id"]), 400),
        (client.get("/api/v1/events?limit=abc", headers=headers(org.token)), 400),
        (client.get("/api/v1/events?limit=0", headers=headers(org.token)), 400),
        (client.get("/api/v1/events?limit=1001", headers=headers(org.token)), 400),
        (client.get("/api/v1/events?offset=-1", headers=headers(org.token)), 400),
        (client.get("/api/v1/events?offset=99999999999999999999", headers=headers(org.token)), 400),
        (client.get(f"/api/v1/events/{event['id']}/registrations?limit=1e3", headers=headers(org.token)), 400),
        (client.get("/api/v1/events/%24where", headers=headers(org.token)), 404),
        (client.delete(f"/api/v1/events/{event['id']}", headers=headers(org.token)), 405),
    ]
    for index, (response, expected) in enumerate(cases):
        assert response.status_code == expected, (index, response.get_data(as_text=True)[:300])
        if expected >= 400:
            assert response.get_json()["error"]["code"], index
    # Nothing the refused requests carried was stored or published.
    assert ctx.db["registrations"].count_documents({}) == 1
    assert len(_outbox(ctx, "attendee.checked_in")) == 0
    assert ctx.db["events"].count_documents({}) == 2  # ours and the 🎉 party


def test_operator_in_badge_code_does_not_match_a_registration(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    registered(client, org.token, event["id"], "ada@example.org")
    response = _raw(
        client,
        f"/api/v1/events/{event['id']}/checkins",
        org.token,
        json.dumps({"client_key": "k" * 10, "badge_code": {"$gt": ""}}),
    )
    error = _error(response, 400, "forbidden_key")
    assert error["field"] == "badge_code.$gt"
    assert len(_outbox(ctx, "attendee.checked_in")) == 0


def test_two_megabyte_body_is_413(infra: Any, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from checkin import create_app

    monkeypatch.setenv("CHECKIN_MAX_BODY_BYTES", "1048576")
    app = create_app()
    try:
        client = app.test_client()
        org = new_org(app, client, "Big")
        body = json.dumps({**event_body(), "description": "x" * (2 * 1024 * 1024)})
        response = _raw(client, "/api/v1/events", org.token, body)
        error = _error(response, 413, "body_too_large")
        assert "1048576" in error["message"]
        # Just under the limit is judged on its content, not its size.
        small = _raw(client, "/api/v1/events", org.token, json.dumps({**event_body(), "description": "x" * 6000}))
        assert _error(small, 400, "invalid_field")["field"] == "description"
    finally:
        app.extensions["checkin"].client.close()


# -- the outbox -----------------------------------------------------------------------------------------


def test_every_write_stages_exactly_one_valid_outbox_message(client: FlaskClient, ctx: Any, org: Org) -> None:
    event = create_event(client, org.token)
    reg = registered(client, org.token, event["id"], "ada@example.org")
    answer = check_in(client, org.token, event["id"], badge_code=reg["badge_code"]).get_json()

    docs = list(ctx.db["outbox"].find({}))
    assert sorted(doc["type"] for doc in docs) == ["attendee.checked_in", "attendee.registered", "event.scheduled"]
    for doc in docs:
        assert doc["state"] == "pending"
        assert doc["topic"] == "turnout.checkin"
        assert doc["key"] == event["id"]
        assert doc["attempts"] == 0
        envelope = registry().parse(bytes(doc["payload"]))
        assert envelope.id == doc["_id"]
        assert envelope.type == doc["type"]
        assert envelope.subject == event["id"]
        assert envelope.data["org_id"] == org.id
        assert envelope.source == "/turnout/checkin"
    by_type = {doc["type"]: registry().parse(bytes(doc["payload"])).data for doc in docs}
    assert by_type["event.scheduled"]["title"] == event["title"]
    assert by_type["event.scheduled"]["starts_at"] == event["starts_at"]
    assert by_type["attendee.registered"]["registration_id"] == reg["id"]
    assert by_type["attendee.registered"]["email"] == "ada@example.org"
    checked_in = by_type["attendee.checked_in"]
    assert checked_in["registration_id"] == reg["id"]
    assert checked_in["person_id"] == reg["person_id"]
    assert checked_in["received_at"] == answer["checked_in_at"]
    assert (checked_in["first_time_ever"], checked_in["visit_number"], checked_in["method"]) == (True, 1, "qr")


def test_a_write_whose_message_breaks_the_contract_is_not_stored(ctx: Any, org: Org) -> None:
    """The domain write and its message commit together or not at all."""
    from checkin.service_layer import events
    from turnout_common.contracts import ContractViolation

    now = datetime.now(UTC)
    with pytest.raises(ContractViolation, match="title"):
        # A blank title passes the service layer, is stored, then its event.scheduled fails validation.
        events.schedule_event(
            ctx,
            org.id,
            title="   ",
            kind="meeting",
            starts_at=now,
            ends_at=now + timedelta(hours=1),
            timezone="UTC",
        )
    assert ctx.db["events"].count_documents({}) == 0
    assert ctx.db["outbox"].count_documents({}) == 0


# -- operations -----------------------------------------------------------------------------------------


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "service": "checkin"}
    assert response.headers["X-Request-Id"]


def test_readyz_is_ready_when_mongodb_and_the_topics_are_there(infra: Any, client: FlaskClient) -> None:
    from turnout_common.kafka import ensure_topics

    ensure_topics(infra.bootstrap, 6)
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ready"


def test_metrics_expose_backlog_and_latency(client: FlaskClient, org: Org) -> None:
    create_event(client, org.token)
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'turnout_outbox_backlog{service="checkin"} 1.0' in text
    assert "turnout_http_request_duration_seconds" in text
    assert 'route="/api/v1/events"' in text


def test_every_request_carries_a_request_id(client: FlaskClient, org: Org) -> None:
    response = client.get("/api/v1/events", headers={**headers(org.token), "X-Request-Id": "door-7-req-1"})
    assert response.headers["X-Request-Id"] == "door-7-req-1"
    assert client.get("/api/v1/events").headers["X-Request-Id"]


def test_openapi_documents_every_route(app: Flask, client: FlaskClient) -> None:
    from turnout_common.openapi import flask_rule_to_path

    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "Turnout checkin"
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path = flask_rule_to_path(rule.rule)
        assert path in doc["paths"], rule.rule
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            op = doc["paths"][path].get(method.lower())
            assert op is not None, (method, rule.rule)
            assert op["summary"] != "(undocumented)", (method, rule.rule)
            checked += 1
    assert checked >= 12
    create = doc["paths"]["/api/v1/events"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"title", "kind", "starts_at", "ends_at", "timezone"}
    assert create["x-permission"] == "manage"
    checkin_op = doc["paths"]["/api/v1/events/{event_id}/checkins"]["post"]
    assert {"201", "200", "404", "409", "401", "403"} <= set(checkin_op["responses"])
    assert checkin_op["parameters"][0] == {
        "name": "event_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
