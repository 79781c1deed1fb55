"""Registration confirmations and calendar updates, on the session's real
SecantusDB and a real SMTP server (aiosmtpd): each email is parsed with the
standard library, its calendar file with icalendar, as a mail and calendar
program would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from followup.adapters.mongo import NUDGES
from followup.bootstrap import MongoServices
from followup.service_layer import organizer
from followup.service_layer.sending import send_due_nudges
from tests.followup.helpers import SOURCE, Gathering, Received, SmtpServer, _t, erasure_requested
from tests.followup.integration.conftest import apply
from turnout_common.calendar import event_uid
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.outbox import OUTBOX

CHICAGO = ZoneInfo("America/Chicago")


def upcoming(org_id: str) -> Gathering:
    # 18:30 in Chicago, ten days from now.
    day = (datetime.now(CHICAGO) + timedelta(days=10)).date()
    starts = datetime(day.year, day.month, day.day, 18, 30, tzinfo=CHICAGO).astimezone(UTC)
    return Gathering(
        org_id, kind="workshop", title="Bike repair workshop", timezone="America/Chicago", starts_at=starts
    )


def updated(g: Gathering, *, venue: str = "Riverside Hall", capacity: int | None = None) -> Envelope:
    data = {
        "org_id": g.org_id,
        "event_id": g.event_id,
        "title": g.title,
        "kind": g.kind,
        "starts_at": _t(g.starts_at),
        "ends_at": _t(g.ends_at),
        "timezone": g.timezone,
        "venue": venue,
        "capacity": capacity,
        "checkin_opens_at": _t(g.starts_at - timedelta(hours=1)),
        "checkin_closes_at": _t(g.ends_at + timedelta(hours=1)),
        "status": "scheduled",
        "description": None,
    }
    return new_envelope("event.updated", source=SOURCE, subject=g.event_id, data=data)


def cancelled(g: Gathering) -> Envelope:
    data = {
        "org_id": g.org_id,
        "event_id": g.event_id,
        "title": g.title,
        "kind": g.kind,
        "starts_at": _t(g.starts_at),
        "ends_at": _t(g.ends_at),
        "timezone": g.timezone,
        "cancelled_at": _t(datetime.now(UTC)),
        "reason": "the hall flooded",
    }
    return new_envelope("event.cancelled", source=SOURCE, subject=g.event_id, data=data)


def calendar_of(item: Received) -> tuple[str, Any, Calendar]:
    """The attached calendar file: (its Content-Type's method, the attachment part, the parsed calendar)."""
    message = item.message
    assert message.get_content_type() == "multipart/mixed"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "Bike-repair-workshop.ics"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    # Also inline, as the alternative calendar programs look for, with the same content.
    alternative = message.get_body(("related", "html", "plain"))
    assert alternative is not None
    inline = [p for p in message.walk() if p.get_content_type() == "text/calendar" and not p.is_attachment()]
    assert [p.get_payload(decode=True) for p in inline] == [payload]
    assert attachment.get_content_type() == "text/calendar"
    return str(attachment.get_param("method")), attachment, Calendar.from_ical(payload)


def received(smtp: SmtpServer, kind: str) -> list[Received]:
    return [item for item in smtp.handler.received if item.kind == kind]


def test_a_registration_gets_its_confirmation_with_the_calendar_file_then_each_update(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    g = upcoming(org_id)
    ana, ben = (f"p-{name}-{uuid.uuid4().hex[:8]}" for name in ("ana", "ben"))
    registration = g.registered(ana, "Ana", "ana@example.org", consent=False, source="public", last_name="Lee")
    apply(svc, [g.scheduled(), registration])
    apply(svc, [registration])  # redelivered: still one
    apply(svc, [g.registered(ben, "Ben", "ben@example.org", status="waitlisted", source="public")])
    assert send_due_nudges(svc).sent == 1

    (confirmation,) = smtp.handler.received
    assert confirmation.to == "ana@example.org" and confirmation.kind == "registration_confirmation"
    message = confirmation.message
    assert message["Subject"] == "You're registered: Bike repair workshop"
    assert message["List-Unsubscribe"] is None  # transactional: sent whatever the consent
    text = message.get_body(("plain",)).get_content()
    local = g.starts_at.astimezone(CHICAGO)
    assert f"{local:%A} {local.day} {local:%B %Y}, 18:30" in text and "(America/Chicago)" in text
    method, _, cal = calendar_of(confirmation)
    assert method == "REQUEST"
    assert str(cal["method"]) == "REQUEST"
    (event,) = cal.events
    uid = str(event["uid"])
    assert uid == event_uid(org_id, g.event_id)
    assert int(event["sequence"]) == 0
    assert event["dtstart"].params["TZID"] == "America/Chicago"
    assert event["dtstart"].dt == local and event["dtstart"].dt.hour == 18
    assert event["dtend"].dt == g.ends_at.astimezone(CHICAGO)
    assert str(event["location"]) == "Riverside Hall" and str(event["summary"]) == "Bike repair workshop"
    assert str(event["attendee"]) == "mailto:ana@example.org" and event["attendee"].params["CN"] == "Ana Lee"
    assert str(event["organizer"]).startswith("mailto:")
    assert [str(z["tzid"]) for z in cal.walk("VTIMEZONE")] == ["America/Chicago"]
    # Not a follow-up: nothing about it on turnout.followup.
    assert svc.db[OUTBOX].count_documents({"type": {"$regex": "^followup\\."}}) == 0

    # A change nobody's calendar shows (the capacity) sends nothing.
    apply(svc, [updated(g, capacity=40)])
    assert send_due_nudges(svc).handled == 0

    # Moved a day later and to another hall: an update, same UID, higher SEQUENCE.
    g.starts_at += timedelta(days=1)
    move = updated(g, venue="Northside Library")
    apply(svc, [move])
    apply(svc, [move])  # redelivered: still one
    assert send_due_nudges(svc).sent == 1
    (update,) = received(smtp, "event_changed")
    assert update.to == "ana@example.org" and update.message["Subject"] == "Changed: Bike repair workshop"
    assert "Northside Library" in update.message.get_body(("plain",)).get_content()
    method, _, cal = calendar_of(update)
    assert method == "REQUEST"
    (moved,) = cal.events
    assert str(moved["uid"]) == uid and int(moved["sequence"]) > 0
    assert moved["dtstart"].dt == g.starts_at.astimezone(CHICAGO) and moved["dtstart"].dt.hour == 18
    assert str(moved["location"]) == "Northside Library"

    # Cancelled: METHOD:CANCEL, same UID, higher SEQUENCE still.
    apply(svc, [cancelled(g)])
    assert send_due_nudges(svc).sent == 1
    (cancellation,) = received(smtp, "event_cancelled")
    assert cancellation.message["Subject"] == "Cancelled: Bike repair workshop"
    method, _, cal = calendar_of(cancellation)
    assert method == "CANCEL" and str(cal["method"]) == "CANCEL"
    (gone,) = cal.events
    assert str(gone["uid"]) == uid and int(gone["sequence"]) > int(moved["sequence"])
    assert str(gone["status"]) == "CANCELLED"
    assert [item.to for item in smtp.handler.received] == ["ana@example.org"] * 3  # never Ben (waitlisted)
    assert smtp.handler.count_by_followup().most_common(1)[0][1] == 1

    # The organizer sees them among the gathering's messages, each as it was sent.
    listed = organizer.list_messages(svc, org_id, g.event_id, limit=50, offset=0)
    assert sorted((m["kind"], m["status"]) for m in listed["messages"]) == [
        ("event_cancelled", "sent"),
        ("event_changed", "sent"),
        ("registration_confirmation", "sent"),
    ]
    only = organizer.list_messages(svc, org_id, g.event_id, limit=50, offset=0, kind="registration_confirmation")
    (summary,) = only["messages"]
    detail = organizer.message_detail(svc, org_id, summary["id"])
    assert "You're registered for Bike repair workshop" in detail["rendered"]["text"]


def test_who_gets_no_confirmation(svc: MongoServices, smtp: SmtpServer, org_id: str) -> None:
    g = upcoming(org_id)
    people = {name: f"p-{name}-{uuid.uuid4().hex[:8]}" for name in ("walk", "imp", "none", "sup", "era", "ok")}
    no_email = g.registered(people["none"], "Noa", "noa@example.org", source="public")
    no_email.data["email"] = None  # a name-only registration
    organizer.add_suppression(svc, org_id, "sup@example.org", "bounced in our old system")
    apply(
        svc,
        [
            g.scheduled(),
            g.registered(people["walk"], "Wal", "walk@example.org", source="walk-in"),
            g.registered(people["imp"], "Ima", "imp@example.org", source="import"),
            no_email,
            g.registered(people["sup"], "Sup", "sup@example.org", source="api"),
            g.registered(people["era"], "Era", "era@example.org", source="api"),
            g.registered(people["ok"], "Oki", "ok@example.org", source="api"),
        ],
    )
    # Erased before the sender ran: nothing for her.
    apply(svc, [erasure_requested(org_id, people["era"], "era@example.org")])
    report = send_due_nudges(svc)
    assert [item.to for item in smtp.handler.received] == ["ok@example.org"]
    assert report.sent == 1
    states = {doc["person_id"]: (doc["state"], doc.get("skip_reason")) for doc in svc.db[NUDGES].find()}
    assert states[people["sup"]] == ("skipped", "suppressed")
    assert ("skipped", "erased") in states.values()
    assert not {people["walk"], people["imp"], people["none"]} & set(states)

    # Moved: only the one who got the confirmation hears about it (not the erased, not the suppressed).
    g.starts_at += timedelta(hours=2)
    apply(svc, [updated(g)])
    send_due_nudges(svc)
    assert [(item.to, item.kind) for item in smtp.handler.received][1:] == [("ok@example.org", "event_changed")]


def test_an_organization_can_switch_confirmations_off(svc: MongoServices, smtp: SmtpServer, org_id: str) -> None:
    view = organizer.update_org_settings(svc, org_id, {"nudges": {"registration_confirmation": False}})
    assert view["nudges"]["registration_confirmation"] is False
    g = upcoming(org_id)
    person = f"p-{uuid.uuid4().hex[:12]}"
    apply(svc, [g.scheduled(), g.registered(person, "Ola", "ola@example.org", source="public")])
    assert send_due_nudges(svc).handled == 0
    assert smtp.handler.received == []
    assert svc.db[NUDGES].count_documents({"org_id": org_id}) == 0


@pytest.mark.parametrize("when", ["started", "cancelled_first"])
def test_no_confirmation_for_a_gathering_under_way_or_cancelled(
    svc: MongoServices, smtp: SmtpServer, org_id: str, when: str
) -> None:
    g = upcoming(org_id)
    person = f"p-{uuid.uuid4().hex[:12]}"
    if when == "started":
        g.starts_at = datetime.now(UTC) - timedelta(minutes=5)
        apply(svc, [g.scheduled(), g.registered(person, "Pia", "pia@example.org", source="public")])
    else:
        registration = g.registered(person, "Pia", "pia@example.org", source="public")
        apply(svc, [g.scheduled(), registration, cancelled(g)])  # cancelled before the sender ran
    send_due_nudges(svc)
    assert smtp.handler.received == []


def test_a_waitlisted_person_is_confirmed_when_a_place_opens(svc: MongoServices, smtp: SmtpServer, org_id: str) -> None:
    g = upcoming(org_id)
    person = f"p-{uuid.uuid4().hex[:12]}"
    apply(svc, [g.scheduled(), g.registered(person, "Wen", "wen@example.org", status="waitlisted", source="public")])
    assert send_due_nudges(svc).handled == 0
    # checkin announces the promotion as the same registration, now registered.
    promoted = g.registered(person, "Wen", "wen@example.org", status="registered", source="public")
    apply(svc, [promoted])
    apply(svc, [g.registered(person, "Wen", "wen@example.org", status="registered", source="public")])  # again
    assert send_due_nudges(svc).sent == 1
    assert [(item.to, item.kind) for item in smtp.handler.received] == [
        ("wen@example.org", "registration_confirmation")
    ]
