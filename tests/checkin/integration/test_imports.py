"""CSV imports of registrations against the real SecantusDB: upload, the job,
the worker's batches and leases, the report."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, add_user, create_event, headers, new_org, registered

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "imports"
EVENTBRITE = (FIXTURES / "eventbrite_attendees.csv").read_bytes()
MEETUP = (FIXTURES / "meetup_rsvps.csv").read_bytes()
GENERIC = (FIXTURES / "generic_semicolon_cp1252.csv").read_bytes()

EVENTBRITE_HEADER = [
    "Order #",
    "Order Date",
    "First Name",
    "Last Name",
    "Email",
    "Quantity",
    "Price Tier",
    "Ticket Type",
    "Attendee #",
    "Group",
    "Order Type",
    "Currency",
    "Total Paid",
    "Fees Paid",
    "Eventbrite Fees",
    "Eventbrite Payment Processing",
    "Attendee Status",
    "Opt in to email updates from the organizer",
]


def upload(
    client: FlaskClient,
    token: str,
    event_id: str,
    raw: bytes,
    filename: str = "attendees.csv",
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
) -> Any:
    data: dict[str, Any] = {"file": (io.BytesIO(raw), filename)}
    if fmt is not None:
        data["format"] = fmt
    if mapping is not None:
        data["mapping"] = json.dumps(mapping)
    return client.post(
        f"/api/v1/events/{event_id}/imports", data=data, content_type="multipart/form-data", headers=headers(token)
    )


def queued(client: FlaskClient, token: str, event_id: str, raw: bytes, **kwargs: Any) -> dict[str, Any]:
    response = upload(client, token, event_id, raw, **kwargs)
    assert response.status_code == 202, response.get_json()
    return dict(response.get_json())


def report(client: FlaskClient, token: str, import_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/imports/{import_id}", headers=headers(token))
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def run_imports(ctx: Any, **kwargs: Any) -> int:
    from checkin.service_layer.imports import process_pending_imports

    return process_pending_imports(ctx, **kwargs)


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return dict(error)


def registered_messages(ctx: Any, event_id: str) -> int:
    return int(ctx.db["outbox"].count_documents({"type": "attendee.registered", "key": event_id}))


# -- the big one ---------------------------------------------------------------------


# The big import's size: 2,000 rows in `make test`, TURNOUT_IMPORT_ROWS=10000 for
# the 10,000-row form (a multiple of 1,000; README's figure is that form's).
BIG_ROWS = int(os.environ.get("TURNOUT_IMPORT_ROWS", "2000"))


def eventbrite_big(rows: int) -> tuple[bytes, dict[int, str], set[int]]:
    """``rows`` attendee rows with 5 bad ones in every thousand (2 bad emails, 2
    missing names, 1 duplicate) and 1 refunded/not attending; returns the file,
    the expected {row: reason} and the skipped rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EVENTBRITE_HEADER)
    bad: dict[int, str] = {}
    skipped: set[int] = set()
    for i in range(rows):
        row = i + 2  # the header is row 1
        first, last, email, status = f"Attendee{i}", f"Family{i % 97}", f"attendee{i}@example.org", "Attending"
        if i % 500 == 7:
            email = f"attendee{i}.example.org" if i % 1000 == 7 else f"attendee{i}@example"
            bad[row] = "bad email"
        elif i % 500 == 123:
            first = ""
            bad[row] = "missing name"
        elif i % 1000 == 999:
            email = f"ATTENDEE{i - 5}@Example.org"
            bad[row] = f"duplicate of row {row - 5}"
        elif i % 1000 == 500:
            status = "Refunded" if i % 2000 == 500 else "Not Attending"
            skipped.add(row)
        consent = "Yes" if i % 3 == 0 else ""
        order = [4_400_000 + i, "2026-04-02 09:14:21-05:00", first, last, email, 1, "", "General Admission"]
        rest = [5_500_000 + i, "", "Free Order", "USD", "0.00", "0.00", "0.00", "0.00", status, consent]
        writer.writerow([*order, *rest])
    return out.getvalue().encode("utf-8"), bad, skipped


def test_a_big_eventbrite_import(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    assert BIG_ROWS >= 2000 and BIG_ROWS % 1000 == 0, "TURNOUT_IMPORT_ROWS: a multiple of 1,000, at least 2,000"
    thousands = BIG_ROWS // 1000
    raw, bad, skipped = eventbrite_big(BIG_ROWS)
    assert len(bad) == 5 * thousands and len(skipped) == thousands
    created = BIG_ROWS - len(bad) - len(skipped) - 5
    event = create_event(client, org.token)
    for i in range(1, 6):  # already registered before the import
        registered(client, org.token, event["id"], f"attendee{i}@example.org")
    before = registered_messages(ctx, event["id"])

    started = time.perf_counter()
    answer = queued(client, org.token, event["id"], raw, filename="Eventbrite attendees.csv")
    queued_in = time.perf_counter() - started
    assert answer["status"] == "queued" and answer["format"] == "eventbrite"
    assert answer["total"] == BIG_ROWS and answer["rejected_at_parse"] == len(bad)
    assert answer["progress_url"] == f"/api/v1/imports/{answer['id']}"
    handled = run_imports(ctx)
    elapsed = time.perf_counter() - started
    print(f"\n{BIG_ROWS:,}-row Eventbrite import: upload+parse {queued_in:.2f}s, total {elapsed:.1f}s")

    assert handled == BIG_ROWS - len(bad) - len(skipped)
    done = report(client, org.token, answer["id"])
    assert done["status"] == "done" and done["percent"] == 100
    assert (done["total"], done["processed"]) == (BIG_ROWS, BIG_ROWS)
    expected = (created, 5, len(bad), len(skipped))
    assert (done["created"], done["already_registered"], done["failed"], done["skipped"]) == expected
    assert {error["row"]: error["reason"] for error in done["errors"]} == bad
    assert [error["row"] for error in done["errors"]] == sorted(bad)
    assert {entry["row"] for entry in done["skipped_rows"]} == skipped
    assert done["errors_truncated"] is False
    assert registered_messages(ctx, event["id"]) - before == created
    assert ctx.db["registrations"].count_documents({"event_id": event["id"]}) == created + 5
    assert ctx.db["registrations"].count_documents({"event_id": event["id"], "source": "import"}) == created
    assert ctx.db["import_rows"].count_documents({"job_id": answer["id"]}) == 0  # cleaned up
    person = ctx.db["registrations"].find_one({"event_id": event["id"], "first_name": "Attendee1200"})
    assert person["consent_email"] is True and person["status"] == "registered"
    assert ctx.db["registrations"].find_one({"first_name": "Attendee1201"})["consent_email"] is False

    report_csv = client.get(f"/api/v1/imports/{answer['id']}/errors.csv", headers=headers(org.token))
    rows = list(csv.reader(io.StringIO(report_csv.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["row", "reason", "email", "name"]
    assert {int(row[0]): row[1] for row in rows[1:]} == bad


# -- formats --------------------------------------------------------------------------


def test_eventbrite_sample_and_reimport_adds_nothing(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    first = queued(client, org.token, event["id"], EVENTBRITE)
    assert (first["total"], first["to_register"], first["rejected_at_parse"], first["skipped"]) == (10, 4, 4, 2)
    assert run_imports(ctx) == 4
    done = report(client, org.token, first["id"])
    assert (done["status"], done["created"], done["already_registered"], done["failed"]) == ("done", 4, 0, 4)
    assert done["errors"] == [
        {"row": 6, "reason": "missing name"},
        {"row": 7, "reason": "bad email"},
        {"row": 8, "reason": "duplicate of row 3"},
        {"row": 10, "reason": "bad email"},
    ]
    maya = ctx.db["registrations"].find_one({"event_id": event["id"], "first_name": "Maya"})
    assert maya["consent_email"] is True and maya["source"] == "import"
    assert maya["offers"] == ["forklift certified", "spanish"] and maya["seeks"] == ["food safety training"]
    assert ctx.db["people"].find_one({"org_id": org.id, "email_norm": "luis.r@example.com"})["email"] == (
        "LUIS.R@Example.com"
    )
    messages = registered_messages(ctx, event["id"])
    assert messages == 4

    again = queued(client, org.token, event["id"], EVENTBRITE)
    run_imports(ctx)
    second = report(client, org.token, again["id"])
    assert (second["created"], second["already_registered"], second["failed"]) == (0, 4, 4)
    assert registered_messages(ctx, event["id"]) == messages

    listed = client.get(f"/api/v1/events/{event['id']}/imports", headers=headers(org.token)).get_json()["imports"]
    assert [job["id"] for job in listed] == [again["id"], first["id"]]
    assert "errors" not in listed[0]


def test_errors_csv_escapes_spreadsheet_formulas(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], EVENTBRITE)
    response = client.get(f"/api/v1/imports/{job['id']}/errors.csv", headers=headers(org.token))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows == [
        ["row", "reason", "email", "name"],
        ["6", "missing name", "b.stone@example.org", "Stone"],
        ["7", "bad email", "kim(at)example.org", "Kim Park"],
        ["8", "duplicate of row 3", "luis.r@example.COM", "Luis Romero"],
        ["10", "bad email", "'@evil", "'=HYPERLINK(1) Evil"],
    ]


def test_meetup_rsvp_import(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], MEETUP, filename="Meetup RSVPs.csv")
    assert job["format"] == "meetup"
    run_imports(ctx)
    done = report(client, org.token, job["id"])
    assert (done["created"], done["skipped"], done["failed"]) == (5, 1, 0)
    assert (done["name_only"], done["waitlisted"]) == (1, 1)  # Pat has no email; Sam is on the waitlist
    assert done["errors"] == []
    assert done["skipped_rows"] == [{"row": 5, "reason": "skipped: RSVP is 'No'"}]
    names = sorted(
        (reg["first_name"], reg["last_name"], reg["status"])
        for reg in ctx.db["registrations"].find({"event_id": event["id"]})
    )
    assert names == [
        ("Cher", "", "registered"),
        ("Mary Ann van", "Dyke", "registered"),
        ("Maya", "Okafor", "registered"),
        ("Pat", "Doe", "registered"),
        ("Sam", "Ortiz", "waitlisted"),
    ]
    assert all(reg["consent_email"] is False for reg in ctx.db["registrations"].find({"event_id": event["id"]}))


def test_generic_csv_as_raw_body_with_mapping(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    mapping = {
        "first_name": "Prénom",
        "last_name": "Nom",
        "email": "Courriel",
        "consent_email": "Inscription newsletter (opt-in)",
    }
    response = client.post(
        f"/api/v1/events/{event['id']}/imports",
        data=GENERIC,
        content_type="text/csv",
        query_string={"filename": "bénévoles.csv", "mapping": json.dumps(mapping)},
        headers=headers(org.token),
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["format"] == "generic"
    run_imports(ctx)
    done = report(client, org.token, response.get_json()["id"])
    assert done["filename"] == "bénévoles.csv" and done["created"] == 3
    assert done["mapping"]["consent_email"] == "Inscription newsletter (opt-in)"
    zoe = ctx.db["registrations"].find_one({"event_id": event["id"], "first_name": "Zoë"})
    assert zoe["last_name"] == "Müller" and zoe["consent_email"] is False


def test_preview_is_the_column_mapping_step(app: Flask, client: FlaskClient, org: Org) -> None:
    def preview(raw: bytes) -> dict[str, Any]:
        response = client.post(
            "/api/v1/imports/preview",
            data={"file": (io.BytesIO(raw), "x.csv")},
            content_type="multipart/form-data",
            headers=headers(org.token),
        )
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    shown = preview(EVENTBRITE)
    assert shown["format"] == "eventbrite" and shown["total_rows"] == 10 and len(shown["rows"]) == 5
    assert shown["mapping"]["email"] == "Email"
    generic = preview(GENERIC)
    assert generic["format"] == "generic" and generic["encoding"] == "cp1252" and generic["delimiter"] == ";"
    assert generic["headers"][0] == "Prénom"
    # Only what it recognizes (English header names, consent columns); the caller maps the rest.
    assert generic["suggested_mapping"] == {"consent_email": "Inscription newsletter (opt-in)"}


# -- registration rules the batches share with register() -------------------------------


def test_import_fills_capacity_then_waitlists_like_register(
    app: Flask, client: FlaskClient, org: Org, ctx: Any
) -> None:
    event = create_event(client, org.token, capacity=3)
    api_registration = registered(client, org.token, event["id"], "first@example.org")
    raw = b"First Name,Last Name,Email\n" + b"".join(f"P{i},L,p{i}@example.org\n".encode() for i in range(4))
    queued(
        client,
        org.token,
        event["id"],
        raw,
        fmt="generic",
        mapping={"first_name": "First Name", "last_name": "Last Name", "email": "Email"},
    )
    run_imports(ctx)
    statuses = [
        reg["status"]
        for reg in ctx.db["registrations"].find({"event_id": event["id"], "source": "import"}).sort("first_name", 1)
    ]
    assert statuses == ["registered", "registered", "waitlisted", "waitlisted"]
    assert ctx.db["events"].find_one({"_id": event["id"]})["registered_count"] == 3
    imported = ctx.db["registrations"].find_one({"event_id": event["id"], "source": "import"})
    stored = ctx.db["registrations"].find_one({"_id": api_registration["id"]})
    assert set(imported) == set(stored)  # the same document shape as registrations.register()
    assert registered_messages(ctx, event["id"]) == 5  # one per registration, waitlisted ones too


def test_a_row_the_batch_cannot_take_is_reported_and_the_rest_import(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from checkin.service_layer import imports
    from turnout_common.contracts import ContractViolation

    real = imports.registered_message

    def picky(registration: dict[str, Any], person: dict[str, Any], event: dict[str, Any]) -> Any:
        if registration["first_name"] == "Broken":
            raise ContractViolation("data.first_name: refused")
        return real(registration, person, event)

    monkeypatch.setattr(imports, "registered_message", picky)
    event = create_event(client, org.token)
    raw = b"First Name,Last Name,Email\nAda,L,ada@example.org\nBroken,L,broken@example.org\nBob,L,bob@example.org\n"
    job = queued(
        client,
        org.token,
        event["id"],
        raw,
        mapping={"first_name": "First Name", "last_name": "Last Name", "email": "Email"},
    )
    run_imports(ctx)
    done = report(client, org.token, job["id"])
    assert (done["status"], done["created"], done["failed"]) == ("done", 2, 1)
    assert done["errors"] == [{"row": 3, "reason": "could not be registered (invalid data)"}]
    assert registered_messages(ctx, event["id"]) == 2


def test_import_into_an_event_that_ended_meanwhile_fails(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], EVENTBRITE)
    assert client.post(f"/api/v1/events/{event['id']}/end", headers=headers(org.token)).status_code == 200
    run_imports(ctx)
    done = report(client, org.token, job["id"])
    assert done["status"] == "failed" and done["created"] == 0
    assert "ended" in done["failure"]
    _error(upload(client, org.token, event["id"], EVENTBRITE), 409, "event_closed")


# -- progress and workers ------------------------------------------------------------------


def small_file(rows: int) -> bytes:
    return b"Name,Email\n" + b"".join(f"Person {i},person{i}@example.org\n".encode() for i in range(rows))


def test_progress_is_visible_between_batches(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    from checkin.service_layer.imports import claim_import, process_import_batch

    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], small_file(25), mapping={"name": "Name", "email": "Email"})
    assert report(client, org.token, job["id"])["status"] == "queued"
    assert claim_import(ctx, "worker-a") is not None
    seen = []
    while True:
        outcome = process_import_batch(ctx, job["id"], 10, owner="worker-a")
        now = report(client, org.token, job["id"])
        seen.append((now["status"], now["processed"], now["percent"], now["created"]))
        if outcome.finished:
            break
    assert seen == [("running", 10, 40, 10), ("running", 20, 80, 20), ("done", 25, 100, 25)]
    assert report(client, org.token, job["id"])["started_at"] is not None


def test_a_crashed_workers_job_resumes_after_its_lease(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    from checkin.service_layer.imports import LeaseLost, claim_import, process_import_batch

    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], small_file(30), mapping={"name": "Name", "email": "Email"})
    assert claim_import(ctx, "doomed", lease_seconds=1.0)["_id"] == job["id"]
    process_import_batch(ctx, job["id"], 10, owner="doomed", lease_seconds=1.0)
    # ...and "doomed" dies here, holding the lease.
    assert run_imports(ctx, owner="survivor") == 0  # the lease still holds: not taken twice
    assert report(client, org.token, job["id"])["processed"] == 10
    time.sleep(1.2)
    assert run_imports(ctx, owner="survivor", batch=7) == 20
    done = report(client, org.token, job["id"])
    assert (done["status"], done["processed"], done["created"], done["already_registered"]) == ("done", 30, 30, 0)
    assert registered_messages(ctx, event["id"]) == 30
    with pytest.raises(LeaseLost):  # the zombie wakes up: it may not touch the job any more
        process_import_batch(ctx, job["id"], 10, owner="doomed")


def test_a_database_outage_hands_the_job_back_at_once(
    app: Flask, client: FlaskClient, org: Org, ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymongo.errors import AutoReconnect

    from checkin.service_layer import imports

    real = imports._register_rows
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise AutoReconnect("connection reset")
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "_register_rows", flaky)
    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], small_file(12), mapping={"name": "Name", "email": "Email"})
    with pytest.raises(AutoReconnect):
        run_imports(ctx, batch=5)
    stored = ctx.db["imports"].find_one({"_id": job["id"]})
    assert (stored["status"], stored["cursor"], stored["lease_until"]) == ("running", 5, None)
    assert run_imports(ctx, batch=5) == 7  # resumed at once, not after the lease
    done = report(client, org.token, job["id"])
    assert (done["status"], done["created"]) == ("done", 12)


def test_two_workers_never_process_the_same_job(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    from checkin.service_layer.imports import claim_import

    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], small_file(3), mapping={"name": "Name", "email": "Email"})
    assert claim_import(ctx, "a")["_id"] == job["id"]
    assert claim_import(ctx, "b") is None


# -- access and bad input ------------------------------------------------------------------------


def test_another_organization_cannot_see_or_use_the_import(app: Flask, client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token)
    job = queued(client, org.token, event["id"], EVENTBRITE)
    other = new_org(app, client, "Beta")
    _error(client.get(f"/api/v1/imports/{job['id']}", headers=headers(other.token)), 404, "import_not_found")
    _error(client.get(f"/api/v1/imports/{job['id']}/errors.csv", headers=headers(other.token)), 404, "import_not_found")
    _error(client.get(f"/api/v1/events/{event['id']}/imports", headers=headers(other.token)), 404, "event_not_found")
    _error(upload(client, other.token, event["id"], EVENTBRITE), 404, "event_not_found")
    viewer = add_user(app, client, org.id, "viewer")
    _error(client.get(f"/api/v1/imports/{job['id']}", headers=headers(viewer)), 403, "forbidden")
    _error(upload(client, viewer, event["id"], EVENTBRITE), 403, "forbidden")
    _error(
        client.post(f"/api/v1/events/{event['id']}/imports", data=EVENTBRITE, content_type="text/csv"),
        401,
        "unauthenticated",
    )


def test_bad_uploads_are_clear_4xx(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    url = f"/api/v1/events/{event['id']}/imports"
    auth = headers(org.token)
    _error(
        client.post(url, data={"format": "auto"}, content_type="multipart/form-data", headers=auth), 400, "missing_file"
    )
    _error(client.post(url, headers=auth), 400, "missing_file")
    _error(upload(client, org.token, event["id"], b""), 400, "empty_file")
    _error(upload(client, org.token, event["id"], b"PK\x03\x04\x14\x00binary"), 400, "not_csv")
    _error(upload(client, org.token, event["id"], b"a,b\n\x00\x01\x02,\xff\n"), 400, "not_csv")
    _error(upload(client, org.token, event["id"], b"First Name,Last Name,Email\n"), 400, "no_rows")
    _error(upload(client, org.token, event["id"], EVENTBRITE, fmt="xlsx"), 400, "unknown_format")
    generic = b"Given,Family,Contact\nAda,Lovelace,ada@example.org\n"
    error = _error(upload(client, org.token, event["id"], generic), 400, "mapping_required")
    assert error["headers"] == ["Given", "Family", "Contact"] and "Given, Family, Contact" in error["message"]
    error = _error(upload(client, org.token, event["id"], MEETUP, fmt="eventbrite"), 400, "missing_columns")
    assert error["missing"] == ["First Name", "Last Name", "Email"] and "Name" in error["headers"]
    error = _error(upload(client, org.token, event["id"], generic, mapping={"email": "Mail"}), 400, "missing_columns")
    assert error["missing"] == ["Mail"]
    bad_json = client.post(
        url,
        data={"file": (io.BytesIO(generic), "g.csv"), "mapping": "{not json"},
        content_type="multipart/form-data",
        headers=auth,
    )
    _error(bad_json, 400, "invalid_mapping")
    _error(client.post(url, json={"file": "a,b"}, headers=auth), 415, "unsupported_media_type")
    _error(upload(client, org.token, "no-such-event", EVENTBRITE), 404, "event_not_found")
    _error(client.get("/api/v1/imports/nope", headers=auth), 404, "import_not_found")
    _error(client.get("/api/v1/events/nope/imports", headers=auth), 404, "event_not_found")


def test_files_up_to_16_mb_are_accepted_and_larger_ones_refused(app: Flask, client: FlaskClient, org: Org) -> None:
    event = create_event(client, org.token)
    # Bigger than the app's usual 1 MB bodies, inside this route's 16 MB.
    padding = "x" * 60
    body = b"Name,Email,Notes\n" + b"".join(f"P {i},p{i}@example.org,{padding}\n".encode() for i in range(20_000))
    assert 1_500_000 < len(body) < 16 * 1024 * 1024
    accepted = client.post(
        f"/api/v1/events/{event['id']}/imports",
        data=body,
        content_type="text/csv",
        query_string={"mapping": json.dumps({"name": "Name", "email": "Email"})},
        headers=headers(org.token),
    )
    assert accepted.status_code == 202, accepted.get_json()
    too_big = b"Name,Email\n" + b"y" * (16 * 1024 * 1024)
    _error(upload(client, org.token, event["id"], too_big), 413, "file_too_large")
    _error(
        client.post(
            f"/api/v1/events/{event['id']}/imports", data=too_big, content_type="text/csv", headers=headers(org.token)
        ),
        413,
        "file_too_large",
    )


def test_import_routes_are_documented(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    routes = {
        ("/api/v1/events/{event_id}/imports", "post"),
        ("/api/v1/events/{event_id}/imports", "get"),
        ("/api/v1/imports/{import_id}", "get"),
        ("/api/v1/imports/{import_id}/errors.csv", "get"),
        ("/api/v1/imports/preview", "post"),
    }
    for path, method in routes:
        op = doc["paths"][path][method]
        assert op["tags"] == ["imports"] and op["x-permission"] == "manage", (path, method)
        assert op["summary"] != "(undocumented)"


def test_the_oldest_free_job_is_claimed_first(ctx: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from checkin.service_layer.imports import claim_import
    from turnout_common.clock import utcnow

    now = utcnow()
    ctx.db["imports"].insert_many(
        [
            {"_id": "done-oldest", "status": "done", "lease_until": None, "created_at": now - timedelta(hours=9)},
            {"_id": "queued-new", "status": "queued", "lease_until": None, "created_at": now - timedelta(hours=1)},
            {
                "_id": "leased",
                "status": "running",
                "lease_until": now + timedelta(hours=1),
                "created_at": now - timedelta(hours=8),
            },
            {
                "_id": "expired",
                "status": "running",
                "lease_until": now - timedelta(seconds=5),
                "created_at": now - timedelta(hours=3),
            },
            {"_id": "queued-b", "status": "queued", "created_at": now - timedelta(hours=2)},
            {"_id": "queued-a", "status": "queued", "created_at": now - timedelta(hours=2)},
        ]
    )
    order = [claim_import(ctx, f"w{n}") for n in range(5)]
    assert [job and job["_id"] for job in order] == ["expired", "queued-a", "queued-b", "queued-new", None]
    taken = ctx.db["imports"].find_one({"_id": "queued-a"})
    assert (taken["status"], taken["lease_owner"]) == ("running", "w1")
    assert taken["started_at"] is not None and taken["lease_until"] > datetime.now(UTC)
