"""Volunteer hours that count, on the real SecantusDB: a coordinator reviews an
event's shifts in bulk (the check-out the event's end closed is flagged), all
or nothing, every decision audited and the people's totals moved; the
volunteer, through the signed link a check-out's message carries, logs
off-site hours and downloads a statement (PDF and CSV) with only approved
hours; its verification link shows the same statement, a tampered one is
refused, and a decision changed later is told."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pypdfium2 as pdfium
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org, create_event, headers, iso, registered
from turnout_common.contracts import registry

pytestmark = pytest.mark.integration


def _shift(app: Flask, client: FlaskClient, org: Org) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A volunteer shift that began three hours ago: Ada and Grace check in at its start and
    out now; Edsger never checks out, so the shift's end closes his check-out."""
    from checkin.service_layer.checkins import CheckinCommand, CheckoutCommand, record_checkin, record_checkout

    ctx = app.extensions["checkin"]
    now = datetime.now(UTC)
    event = create_event(
        client,
        org.token,
        title="Pantry sort",
        starts_at=iso(now - timedelta(hours=3)),
        ends_at=iso(now + timedelta(hours=1)),
    )
    people = []
    for first, last in (("Ada", "Lovelace"), ("Grace", "Hopper"), ("Edsger", "Dijkstra")):
        email = f"{first.lower()}-{uuid.uuid4().hex[:6]}@example.org"
        reg = registered(client, org.token, event["id"], email, first_name=first, last_name=last)
        record_checkin(
            ctx,
            CheckinCommand(
                org.id,
                event["id"],
                f"in-{uuid.uuid4().hex}",
                "staff",
                registration_id=reg["id"],
                scanned_at=now - timedelta(hours=3),
            ),
        )
        people.append(reg)
    for reg in people[:2]:
        record_checkout(ctx, CheckoutCommand(org.id, event["id"], f"out-{uuid.uuid4().hex}", registration_id=reg["id"]))
    ended = client.post(f"/api/v1/events/{event['id']}/end", headers=headers(org.token))
    assert ended.status_code == 200, ended.get_json()
    return event, people


def _review(client: FlaskClient, org: Org, path: str, items: list[dict[str, Any]]) -> Any:
    return client.post(path, json={"items": items}, headers=headers(org.token))


def test_a_coordinator_reviews_a_shift_in_bulk_all_or_nothing_and_every_decision_is_audited(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    ctx = app.extensions["checkin"]
    event, (ada, grace, edsger) = _shift(app, client, org)
    listed = client.get(f"/api/v1/events/{event['id']}/hours", headers=headers(org.token)).get_json()
    shifts = listed["shifts"]
    assert shifts[0]["registration_id"] == edsger["id"], "the auto-closed check-out comes first"
    assert shifts[0]["needs_review"] and shifts[0]["closed_by"] == "event_end"
    assert listed["needs_review"] == 1 and listed["pending"] == 3
    assert {s["recorded_hours"] for s in shifts} == {3.0}

    path = f"/api/v1/events/{event['id']}/hours/review"
    # An adjustment without a reason refuses the whole batch: Ada's approval is not written either.
    refused = _review(
        client,
        org,
        path,
        [
            {"registration_id": ada["id"], "action": "approve"},
            {"registration_id": grace["id"], "action": "adjust", "hours": 2.5},
        ],
    )
    assert refused.status_code == 400
    assert refused.get_json()["error"]["field"] == "items[1].reason"
    too_long = _review(
        client, org, path, [{"registration_id": ada["id"], "action": "adjust", "hours": 25, "reason": "x"}]
    )
    assert too_long.status_code == 400
    assert client.get(f"/api/v1/events/{event['id']}/hours", headers=headers(org.token)).get_json()["pending"] == 3

    decided = _review(
        client,
        org,
        path,
        [
            {"registration_id": ada["id"], "action": "approve"},
            {"registration_id": grace["id"], "action": "adjust", "hours": 2.5, "reason": "left at the break"},
            {"registration_id": edsger["id"], "action": "reject", "reason": "went home at noon"},
        ],
    )
    assert decided.status_code == 200, decided.get_json()
    states = {row["registration_id"]: (row["state"], row["hours"]) for row in decided.get_json()["decided"]}
    assert states == {ada["id"]: ("approved", 3.0), grace["id"]: ("adjusted", 2.5), edsger["id"]: ("rejected", None)}
    # The running totals follow the decisions: approved as recorded, adjusted to 2.5, rejected gone.
    totals = {reg["id"]: ctx.store.people.volunteer_hours(reg["person_id"]) for reg in (ada, grace, edsger)}
    assert totals == {ada["id"]: 3.0, grace["id"]: 2.5, edsger["id"]: 0.0}

    trail = client.get("/api/v1/audit", query_string={"action": "hours.reviewed"}, headers=headers(org.token))
    entries = {e["registration_id"]: e for e in trail.get_json()["entries"]}
    assert set(entries) == {ada["id"], grace["id"], edsger["id"]}
    assert entries[grace["id"]]["details"]["reason"] == "left at the break"
    assert entries[grace["id"]]["summary"] == "Volunteer hours reviewed: adjusted (2.5 h): left at the break"
    assert entries[edsger["id"]]["details"]["before"] == "pending"
    assert entries[ada["id"]]["actor"]["kind"] == "user"
    # A shift of another organization's event, or a made-up one, is not found.
    missing = _review(client, org, path, [{"registration_id": "nope", "action": "approve"}])
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "items[0].registration_id"

    # The review page does the same from a form: the selected rows, each with its own hours, one reason.
    client.set_cookie("turnout_session", org.token)
    page_path = f"/events/{event['id']}/hours"
    shown = client.get(page_path).get_data(as_text=True)
    assert "Reason: went home at noon" in shown and "by Owner Alpha" in shown
    form = {
        "selected": [ada["id"], grace["id"]],
        "action": "adjust",
        f"hours-{ada['id']}": "2",
        f"hours-{grace['id']}": "2,75",
    }
    same_site = {"Origin": "http://localhost"}
    without_reason = client.post(page_path, data=form, headers=same_site)
    assert without_reason.status_code == 400 and "needs a reason" in without_reason.get_data(as_text=True)
    done = client.post(page_path, data={**form, "reason": "the van was late"}, headers=same_site)
    assert done.status_code == 303 and "done=Adjusted" in done.headers["Location"]
    shifts = {s["registration_id"]: s for s in client.get(f"/api/v1/events/{event['id']}/hours").get_json()["shifts"]}
    assert (shifts[ada["id"]]["state"], shifts[ada["id"]]["hours"]) == ("adjusted", 2.0)
    assert (shifts[grace["id"]]["state"], shifts[grace["id"]]["hours"]) == ("adjusted", 2.75)
    assert shifts[edsger["id"]]["state"] == "rejected"
    assert ctx.store.people.volunteer_hours(ada["person_id"]) == 2.0


def test_the_volunteer_logs_off_site_hours_and_gets_a_statement_a_school_can_verify(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    ctx = app.extensions["checkin"]
    event, (ada, grace, _) = _shift(app, client, org)
    _review(
        client,
        org,
        f"/api/v1/events/{event['id']}/hours/review",
        [{"registration_id": ada["id"], "action": "approve"}, {"registration_id": grace["id"], "action": "reject"}],
    )
    # The check-out's message carries Ada's signed hours page: followup's email links to it.
    outbox = [
        registry().parse(bytes(doc["payload"])) for doc in ctx.db["outbox"].find({"type": "attendee.checked_out"})
    ]
    link = next(m.data["hours_link"] for m in outbox if m.data["registration_id"] == ada["id"])
    assert link.startswith(ctx.settings.public_url + "/hours/me/")
    page_path = link.removeprefix(ctx.settings.public_url)

    page = client.get(page_path)
    assert page.status_code == 200 and "Pantry sort" in page.get_data(as_text=True)

    today = datetime.now(UTC).date()
    future = client.post(page_path, data={"date": (today + timedelta(days=2)).isoformat(), "hours": "2", "note": "x"})
    assert future.status_code == 400 and "not in the future" in future.get_data(as_text=True)
    note = '=HYPERLINK("http://evil") flyers for the spring drive'
    logged = client.post(
        page_path, data={"date": (today - timedelta(days=1)).isoformat(), "hours": "2,5", "note": note}
    )
    assert logged.status_code == 303
    pending = client.get("/api/v1/hours/pending", headers=headers(org.token)).get_json()["entries"]
    entry = next(e for e in pending if e["person_id"] == ada["person_id"])
    assert entry["recorded_hours"] == 2.5 and entry["state"] == "pending"

    # Pending hours are not on the statement yet.
    before = client.get(f"{page_path}/statement.csv")
    assert before.status_code == 200 and "flyers" not in before.get_data(as_text=True)
    review_path = f"/api/v1/events/{event['id']}/hours/review"
    approved = _review(client, org, review_path, [{"entry_id": entry["entry_id"], "action": "approve"}])
    assert approved.status_code == 200, approved.get_json()

    pdf = client.get(f"{page_path}/statement.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = pdfium.PdfDocument(pdf.data)[0].get_textpage().get_text_range()
    assert "Ada Lovelace" in text and "Pantry sort" in text and "Total approved hours" in text and "5.5" in text
    assert "Grace" not in text, "a rejected shift and other people never appear"

    rows = list(
        csv.reader(io.StringIO(client.get(f"{page_path}/statement.csv").get_data(as_text=True).lstrip("\ufeff")))
    )
    verify = next(row[1] for row in rows if row and row[0] == "verify at")
    assert ["", "", "Total", "5.5", ""] in rows
    assert [(today - timedelta(days=1)).isoformat(), "off-site", f"'{note}", "2.5", "Owner Alpha"] in rows
    assert not any(cell.startswith("=") for row in rows for cell in row), "no cell a spreadsheet would run"

    verify_path = verify.removeprefix(ctx.settings.public_url)
    shown = client.get(verify_path)
    body = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "Genuine" in body and "Ada Lovelace" in body and "5.5" in body
    payload, signature = verify_path.rsplit(".", 1)
    tampered = client.get(f"{payload[:-2]}{'AA' if payload[-2:] != 'AA' else 'BB'}.{signature}")
    assert tampered.status_code == 400 and "not valid" in tampered.get_data(as_text=True)
    assert client.get(f"{page_path[:-3]}xyz").status_code == 400

    # Rejected afterwards: the verification page says the statement no longer holds as issued.
    _review(
        client,
        org,
        review_path,
        [{"entry_id": entry["entry_id"], "action": "reject", "reason": "duplicate"}],
    )
    changed = client.get(verify_path).get_data(as_text=True)
    assert "changed since" in changed and "Genuine" not in changed
