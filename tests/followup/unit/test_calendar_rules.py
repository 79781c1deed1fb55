"""The rules of registration confirmations and calendar updates (who gets one,
when it is skipped, what counts as a change) and how the calendar file travels
with the email (MIME for SMTP, attachments for the HTTP provider)."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from followup.adapters.http_provider import postmark_payload
from followup.adapters.rendering import compose_mime
from followup.domain.audience import (
    AttendanceFacts,
    ContactFacts,
    SendFacts,
    calendar_changed,
    confirms_registration,
    decide_at_send_time,
)
from followup.domain.mail import OutgoingMail
from followup.domain.nudges import ALL_KINDS, SWITCHABLE_KINDS, NudgeKind, is_followup
from followup.service_layer.ports import Attachment

NOW = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)


def confirms(**changes: object) -> bool:
    fields: dict[str, object] = {
        "source": "public",
        "status": "registered",
        "email": "ana@example.org",
        "event_status": "scheduled",
        "starts_at": LATER,
        "now": NOW,
    }
    fields.update(changes)
    return confirms_registration(**fields)  # type: ignore[arg-type]


def test_who_gets_a_confirmation() -> None:
    assert confirms() and confirms(source="api")
    assert not confirms(source="walk-in")  # at the door already
    assert not confirms(source="import")  # registered elsewhere, confirmed there
    assert not confirms(status="waitlisted")  # gets it when promoted (registered)
    assert not confirms(email=None) and not confirms(email="")  # a name-only registration
    assert not confirms(event_status=None)  # a gathering follow-up never heard of
    assert not confirms(event_status="cancelled") and not confirms(event_status="ended")
    assert not confirms(starts_at=NOW) and not confirms(starts_at=NOW - timedelta(minutes=1))


def facts(kind: NudgeKind, **changes: object) -> SendFacts:
    fields: dict[str, object] = {
        "kind": kind,
        "contact": ContactFacts(email="ana@example.org", consent=True),
        "enabled": True,
        "event_kind": "workshop",
        "attendance": AttendanceFacts(registration_status="registered"),
        "send_at": NOW,
        "next_window_opening": NOW + timedelta(hours=9),  # at night: calendar emails do not wait
        "event_status": "scheduled",
    }
    fields.update(changes)
    return SendFacts(**fields)  # type: ignore[arg-type]


def decided(kind: NudgeKind, **changes: object) -> tuple[str, str | None]:
    decision = decide_at_send_time(facts(kind, **changes), NOW)
    return decision.action, decision.reason


CONFIRM, CHANGED, CANCELLED = NudgeKind.REGISTRATION_CONFIRMATION, NudgeKind.EVENT_CHANGED, NudgeKind.EVENT_CANCELLED


def test_calendar_emails_go_at_any_hour_whatever_the_consent() -> None:
    no_consent = ContactFacts(email="ana@example.org", consent=False)
    for kind in (CONFIRM, CHANGED, CANCELLED):
        assert decided(kind) == ("send", None)
        assert decided(kind, contact=no_consent) == ("send", None)


@pytest.mark.parametrize("kind", [CONFIRM, CHANGED, CANCELLED])
def test_never_to_a_suppressed_address_or_nobody(kind: NudgeKind) -> None:
    assert decided(kind, contact=ContactFacts(email="a@example.org", consent=True, suppressed=True)) == (
        "skip",
        "suppressed",
    )
    assert decided(kind, contact=None) == ("skip", "no_contact")  # erased: the contact is gone
    assert decided(kind, contact=ContactFacts(email=None, consent=True)) == ("skip", "no_contact")


def test_what_stops_a_confirmation_or_an_update() -> None:
    assert decided(CONFIRM, enabled=False) == ("skip", "disabled")
    assert decided(CHANGED, enabled=False) == ("send", None)  # their calendar has it: keep it true
    for kind in (CONFIRM, CHANGED):
        assert decided(kind, event_status="cancelled") == ("skip", "event_cancelled")
        assert decided(kind, event_over=True) == ("skip", "event_over")
        assert decided(kind, attendance=AttendanceFacts(registration_status="cancelled")) == (
            "skip",
            "not_registered",
        )
    # A cancellation reaches whoever got the gathering into their calendar.
    assert decided(CANCELLED, event_status="cancelled", attendance=None) == ("send", None)


def test_what_counts_as_a_change_for_calendars() -> None:
    before = {
        "title": "Bike repair",
        "starts_at": NOW,
        "ends_at": LATER,
        "timezone": "America/Chicago",
        "venue": "Hall",
        "capacity": 10,
    }
    assert not calendar_changed(before, {**before, "capacity": 40})
    assert not calendar_changed(before, {**before, "starts_at": NOW.replace(microsecond=123)})  # stored in ms
    assert not calendar_changed(None, before)
    for name, value in (("title", "Bike repair!"), ("starts_at", LATER), ("venue", None), ("timezone", "UTC")):
        assert calendar_changed(before, {**before, name: value}), name


def test_the_kinds() -> None:
    for kind in (CONFIRM, CHANGED, CANCELLED):
        assert kind not in ALL_KINDS and not is_followup(kind.value)  # not announced, not previewed
    assert CONFIRM in SWITCHABLE_KINDS and CHANGED not in SWITCHABLE_KINDS


ICS = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nSUMMARY:Caf\xc3\xa9\r\nEND:VCALENDAR\r\n"


def test_the_calendar_file_is_attached_and_offered_inline() -> None:
    attachment = Attachment("Cafe.ics", "text/calendar; method=REQUEST", ICS, inline_alternative=True)
    raw = compose_mime(
        [("Subject", "You're registered: Café"), ("Message-ID", "<x@example.org>")],
        "plain text",
        "<p>html</p>",
        boundary="=_turnout_abc",
        attachments=[attachment],
    )
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage) and message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)).get_content().strip() == "plain text"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content().strip() == "<p>html</p>"  # type: ignore[union-attr]
    (attached,) = message.iter_attachments()
    assert attached.get_filename() == "Cafe.ics" and attached.get_param("method") == "REQUEST"
    assert attached.get_payload(decode=True) == ICS
    alternative = next(part for part in message.walk() if part.get_content_type() == "multipart/alternative")
    types = [part.get_content_type() for part in alternative.iter_parts()]
    assert types == ["text/plain", "text/html", "text/calendar"]
    # Without attachments the message stays a plain multipart/alternative.
    plain = compose_mime([("Subject", "x")], "t", "h", boundary="=_turnout_abc")
    assert b"multipart/alternative" in plain and b"multipart/mixed" not in plain


def test_the_http_provider_gets_the_calendar_file_as_an_attachment() -> None:
    mail = OutgoingMail(
        followup_id="f1",
        message_id="<f1@example.org>",
        envelope_from="hello@example.org",
        from_header="Org <hello@example.org>",
        to_address="ana@example.org",
        to_header="ana@example.org",
        subject="s",
        text="t",
        html="h",
        attachments=(("Cafe.ics", "text/calendar; method=CANCEL", ICS),),
    )
    (item,) = postmark_payload(mail, "outbound")["Attachments"]
    assert item["Name"] == "Cafe.ics" and item["ContentType"] == "text/calendar; method=CANCEL"
    assert base64.b64decode(item["Content"]) == ICS
    assert "Attachments" not in postmark_payload(dataclasses.replace(mail, attachments=()), "outbound")
