"""Test helpers for follow-up: checkin's messages as follow-up receives them,
a real SMTP server (aiosmtpd) that counts what it accepts, and a fake HTTP
email provider speaking Postmark's API shape."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from turnout_common.clock import to_rfc3339
from turnout_common.envelope import Envelope, new_envelope

SOURCE = "/turnout/checkin"


def _t(moment: datetime) -> str:
    return to_rfc3339(moment)


@dataclass
class Gathering:
    """Builds checkin's messages for one gathering, as checkin would publish them."""

    org_id: str
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    title: str = "Neighbours networking evening"
    kind: str = "networking"
    timezone: str = "Europe/Berlin"
    starts_at: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=2))
    hours: float = 2.0

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(hours=self.hours)

    def _event_data(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "event_id": self.event_id,
            "title": self.title,
            "kind": self.kind,
            "starts_at": _t(self.starts_at),
            "ends_at": _t(self.ends_at),
            "timezone": self.timezone,
        }

    def scheduled(self, status: str = "scheduled") -> Envelope:
        data = {
            **self._event_data(),
            "venue": "Riverside Hall",
            "capacity": None,
            "checkin_opens_at": _t(self.starts_at - timedelta(hours=1)),
            "checkin_closes_at": _t(self.ends_at + timedelta(hours=1)),
            "status": status,
            "description": None,
        }
        return new_envelope("event.scheduled", source=SOURCE, subject=self.event_id, data=data)

    def ended(self, ended_at: datetime | None = None) -> Envelope:
        data = {
            **self._event_data(),
            "capacity": None,
            "ended_at": _t(ended_at or datetime.now(UTC)),
            "ended_by": "organizer",
        }
        return new_envelope("event.ended", source=SOURCE, subject=self.event_id, data=data)

    def registered(
        self,
        person_id: str,
        first_name: str,
        email_address: str,
        *,
        consent: bool = True,
        offers: list[str] | None = None,
        seeks: list[str] | None = None,
        last_name: str = "Tester",
        status: str = "registered",
        source: str = "api",
    ) -> Envelope:
        data = {
            "org_id": self.org_id,
            "event_id": self.event_id,
            "registration_id": f"r-{person_id}-{self.event_id}"[:64],
            "person_id": person_id,
            "first_name": first_name,
            "last_name": last_name,
            "email": email_address,
            "consent_email": consent,
            "offers": offers or [],
            "seeks": seeks or [],
            "source": source,
            "status": status,
            "registered_at": _t(self.starts_at - timedelta(days=1)),
            "event_kind": self.kind,
        }
        return new_envelope("attendee.registered", source=SOURCE, subject=self.event_id, data=data)

    def checked_in(self, person_id: str, *, first_time: bool = False, at: datetime | None = None) -> Envelope:
        moment = at or self.starts_at + timedelta(minutes=5)
        data = {
            "org_id": self.org_id,
            "event_id": self.event_id,
            "registration_id": f"r-{person_id}-{self.event_id}"[:64],
            "person_id": person_id,
            "kiosk_id": None,
            "method": "qr",
            "scanned_at": _t(moment),
            "received_at": _t(moment),
            "first_time_ever": first_time,
            "event_kind": self.kind,
            "event_starts_at": _t(self.starts_at),
        }
        return new_envelope("attendee.checked_in", source=SOURCE, subject=self.event_id, data=data)

    def checked_out(self, person_id: str, hours: float, hours_link: str | None = None) -> Envelope:
        data: dict[str, Any] = {
            "org_id": self.org_id,
            "event_id": self.event_id,
            "registration_id": f"r-{person_id}-{self.event_id}"[:64],
            "person_id": person_id,
            "kiosk_id": None,
            "method": "auto",
            "scanned_at": _t(self.ends_at),
            "received_at": _t(self.ends_at),
            "checked_in_at": _t(self.starts_at),
            "hours": hours,
            "closed_by": "event_end",
            "event_kind": self.kind,
        }
        if hours_link is not None:
            data["hours_link"] = hours_link
        return new_envelope("attendee.checked_out", source=SOURCE, subject=self.event_id, data=data)

    def checkin_undone(
        self, person_id: str, *, at: datetime | None = None, checked_in_at: datetime | None = None
    ) -> Envelope:
        data = {
            "org_id": self.org_id,
            "event_id": self.event_id,
            "registration_id": f"r-{person_id}-{self.event_id}"[:64],
            "person_id": person_id,
            "checked_in_at": _t(checked_in_at or self.starts_at + timedelta(minutes=5)),
            "undone_at": _t(at or datetime.now(UTC)),
            "undone_by": "u-staff",
            "reason": "scanned the wrong badge",
        }
        return new_envelope("attendee.checkin_undone", source=SOURCE, subject=self.event_id, data=data)


# -- checkin's messages about one person ------------------------------------------------


def _person_message(event_type: str, person_id: str, data: dict[str, Any]) -> Envelope:
    return new_envelope(event_type, source=SOURCE, subject=person_id, data=data)


def export_requested(org_id: str, person_id: str, email_address: str | None, request_id: str = "") -> Envelope:
    return _person_message(
        "person.export_requested",
        person_id,
        {
            "org_id": org_id,
            "person_id": person_id,
            "request_id": request_id or uuid.uuid4().hex[:24],
            "email": email_address,
            "requested_at": _t(datetime.now(UTC)),
            "requested_by": {"kind": "user", "user_id": "u-owner"},
        },
    )


def erasure_requested(org_id: str, person_id: str, email_address: str | None, request_id: str = "") -> Envelope:
    message = export_requested(org_id, person_id, email_address, request_id)
    return _person_message("person.erasure_requested", person_id, message.data)


def person_updated(
    org_id: str,
    person_id: str,
    first_name: str,
    email_address: str | None,
    *,
    previous_email: str | None = None,
    last_name: str = "Tester",
    at: datetime | None = None,
) -> Envelope:
    data: dict[str, Any] = {
        "org_id": org_id,
        "person_id": person_id,
        "first_name": first_name,
        "last_name": last_name,
        "email": email_address,
        "updated_at": _t(at or datetime.now(UTC)),
        "updated_by": "u-owner",
    }
    if previous_email is not None:
        data["previous_email"] = previous_email
    return _person_message("person.updated", person_id, data)


def data_link_requested(
    org_id: str, person_id: str, email_address: str, first_name: str, purpose: str = "export"
) -> Envelope:
    now = datetime.now(UTC)
    return _person_message(
        "person.data_link_requested",
        person_id,
        {
            "org_id": org_id,
            "person_id": person_id,
            "email": email_address,
            "first_name": first_name,
            "organization_name": "Riverside Food Bank",
            "purpose": purpose,
            "link": f"https://checkin.example.org/privacy/requests/{uuid.uuid4().hex}.signed",
            "expires_at": _t(now + timedelta(hours=24)),
            "requested_at": _t(now),
        },
    )


def retention_set(org_id: str, set_at: datetime, **periods: int) -> Envelope:
    values = {
        "checkin_details": 24,
        "message_bodies": 6,
        "delivery_journal": 12,
        "tracking_events": 12,
        "inactive_people": 36,
        **periods,
    }
    return new_envelope(
        "retention.policy_set",
        source=SOURCE,
        subject=org_id,
        data={"org_id": org_id, "periods": values, "set_at": _t(set_at), "set_by": "u-owner"},
    )


# -- a real SMTP server -----------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def followup_id(self) -> str:
        return str(self.message["X-Turnout-Followup-Id"])

    @property
    def kind(self) -> str:
        return str(self.message["X-Turnout-Nudge"])

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]


class RecordingHandler:
    """An aiosmtpd handler that keeps every accepted message; ``refuse`` decides
    per recipient whether to answer with an SMTP error instead."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.refuse_rcpt: Callable[[str], str | None] = lambda address: None
        self.refuse_data: Callable[[str], str | None] = lambda address: None
        self.rcpt_attempts: Counter[str] = Counter()
        self.data_delay = 0.0  # seconds each DATA takes (a slow server)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            self.rcpt_attempts[address] += 1
        answer = self.refuse_rcpt(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_delay:
            import asyncio

            await asyncio.sleep(self.data_delay)
        answer = self.refuse_data(envelope.rcpt_tos[0])
        if answer:
            return answer
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 OK queued"

    def count_by_followup(self) -> Counter[str]:
        with self.lock:
            return Counter(item.followup_id for item in self.received)

    def for_domain(self, domain: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.to.endswith("@" + domain)]


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.handler = RecordingHandler()
        self.port = port
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# -- a fake HTTP provider (Postmark's shape) ----------------------------------------------


class FakeProvider:
    """``POST /email`` like Postmark: records payloads; ``answer`` may override the reply."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.payloads: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any]] | None] = lambda payload: None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.headers.get("X-Postmark-Server-Token") != provider.token:
                    self._reply(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
                    return
                special = provider.answer(body)
                if special is not None:
                    self._reply(*special)
                    return
                provider.payloads.append(body)
                self._reply(
                    200,
                    {
                        "To": body["To"],
                        "SubmittedAt": datetime.now(UTC).isoformat(),
                        "MessageID": str(uuid.uuid4()),
                        "ErrorCode": 0,
                        "Message": "OK",
                    },
                )

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
