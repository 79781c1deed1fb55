"""The mail transports against real local servers: what each can answer, and
the difference exactly-once depends on (not sent vs in doubt). Then the
HTTP provider end to end through the sender."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from followup.adapters.http_provider import HttpProviderTransport
from followup.adapters.smtp import SmtpTransport
from followup.bootstrap import build_services
from followup.config import Settings
from followup.domain.mail import Accepted, InDoubt, NotSent, OutgoingMail, Rejected
from followup.service_layer.context import Services
from followup.service_layer.ports import TransportUnavailable
from followup.service_layer.scheduling import run_scheduler_once
from followup.service_layer.sending import send_due_nudges
from tests.followup.helpers import FakeProvider, Gathering, RecordingHandler
from tests.followup.integration.conftest import apply
from turnout_common.outbox import OUTBOX
from turnout_local.processes import free_port

pytestmark = pytest.mark.integration


def mail(to: str = "someone@example.org") -> OutgoingMail:
    raw = (
        "From: Org <hello@example.org>\r\nTo: <" + to + ">\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n"
        "\r\n.leading dot line\r\nbody\r\n"
    ).encode()
    return OutgoingMail(
        followup_id="f" * 32,
        message_id="<m1@example.org>",
        envelope_from="hello@example.org",
        from_header="Org <hello@example.org>",
        to_address=to,
        to_header=f"<{to}>",
        subject="hi",
        text="body",
        html="<p>body</p>",
        headers={"List-Unsubscribe": "<https://x/u/t>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        raw=raw,
    )


@pytest.fixture
def smtp_handler() -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_smtp_outcomes(smtp_handler: tuple[RecordingHandler, int]) -> None:
    handler, port = smtp_handler
    handler.refuse_rcpt = lambda a: {
        "gone@example.org": "550 5.1.1 no such user",
        "later@example.org": "451 4.7.1 try later",
    }.get(a)
    session = SmtpTransport("127.0.0.1", port, timeout=5).open()
    assert isinstance(session.send(mail()), Accepted)
    hard = session.send(mail("gone@example.org"))
    assert isinstance(hard, Rejected) and hard.permanent and hard.recipient
    soft = session.send(mail("later@example.org"))
    assert isinstance(soft, Rejected) and not soft.permanent
    assert isinstance(session.send(mail("again@example.org")), Accepted)  # same connection, after RSET
    session.close()
    assert [r.to for r in handler.received] == ["someone@example.org", "again@example.org"]
    assert b"\r\n.leading dot line\r\n" in handler.received[0].raw  # dot-stuffing undone by the server


def test_smtp_in_doubt_when_the_answer_never_comes(smtp_handler: tuple[RecordingHandler, int]) -> None:
    handler, port = smtp_handler
    original = handler.handle_DATA

    async def slow(server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        answer = await original(server, session, envelope)  # kept...
        await asyncio.sleep(2.0)  # ... but the answer comes too late
        return answer

    handler.handle_DATA = slow  # type: ignore[method-assign]
    session = SmtpTransport("127.0.0.1", port, timeout=0.5).open()
    outcome = session.send(mail())
    assert isinstance(outcome, InDoubt)  # the payload was handed over; the server may keep it
    assert not session.usable
    assert len(handler.received) == 1  # ... and indeed the server kept it: resending would double it


def test_smtp_not_sent_when_the_connection_breaks_before_data() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(b"220 hello\r\n")
        conn.recv(1000)  # EHLO
        conn.sendall(b"250 ok\r\n")
        conn.recv(1000)  # MAIL FROM
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    session = SmtpTransport("127.0.0.1", port, timeout=2).open()
    outcome = session.send(mail())
    assert isinstance(outcome, NotSent) and not session.usable
    server.close()
    with pytest.raises(TransportUnavailable):
        SmtpTransport("127.0.0.1", free_port(), timeout=1).open()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test certificate")
def test_smtp_starttls_and_auth(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[bytes] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"mailer" and data.password == b"s3cret"
        if ok:
            logins.append(data.login)
        return AuthResult(success=ok)

    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        good = SmtpTransport(
            "127.0.0.1", port, username="mailer", password="s3cret", starttls=True, ca_file=str(cert), timeout=5
        )
        session = good.open()
        assert isinstance(session.send(mail()), Accepted)
        session.close()
        assert logins == [b"mailer"] and len(handler.received) == 1
        with pytest.raises(TransportUnavailable):
            SmtpTransport(
                "127.0.0.1", port, username="mailer", password="wrong", starttls=True, ca_file=str(cert), timeout=3
            ).open()
        with pytest.raises(TransportUnavailable):  # an untrusted certificate is refused
            SmtpTransport("127.0.0.1", port, username="mailer", password="s3cret", starttls=True, timeout=3).open()
    finally:
        controller.stop()


def test_http_provider_outcomes() -> None:
    with FakeProvider() as provider:
        provider.answer = lambda body: {
            "gone@example.org": (422, {"ErrorCode": 406, "Message": "Inactive recipient"}),
            "busy@example.org": (500, {"ErrorCode": 0, "Message": "oops"}),
            "bad@example.org": (422, {"ErrorCode": 300, "Message": "Invalid 'To' address"}),
            "huge@example.org": (413, {"Message": "too large"}),
        }.get(body["To"].strip("<>"))
        session = HttpProviderTransport(provider.url, provider.token).open()
        assert isinstance(session.send(mail()), Accepted)
        gone = session.send(mail("gone@example.org"))
        assert isinstance(gone, Rejected) and gone.permanent and gone.recipient
        assert isinstance(session.send(mail("busy@example.org")), NotSent)
        assert isinstance(session.send(mail("bad@example.org")), Rejected)
        huge = session.send(mail("huge@example.org"))
        assert isinstance(huge, Rejected) and huge.permanent and not huge.recipient
        payload = provider.payloads[0]
        assert payload["MessageStream"] == "outbound" and payload["Metadata"] == {"followup_id": "f" * 32}
        headers = {h["Name"]: h["Value"] for h in payload["Headers"]}
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["Message-ID"] == "<m1@example.org>"
        wrong_token = HttpProviderTransport(provider.url, "nope").open()
        assert isinstance(wrong_token.send(mail()), NotSent)  # our configuration, not the message's fault
    unreachable = HttpProviderTransport(f"http://127.0.0.1:{free_port()}", "t").open()
    assert isinstance(unreachable.send(mail()), NotSent)


def test_http_provider_through_the_sender(
    followup_env: dict[str, str], mongo_client: Any, org_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeProvider() as provider:
        monkeypatch.setenv("FOLLOWUP_TRANSPORT", "http")
        monkeypatch.setenv("FOLLOWUP_HTTP_API_URL", provider.url)
        monkeypatch.setenv("FOLLOWUP_HTTP_API_TOKEN", provider.token)
        settings = Settings.from_env()
        svc: Services = build_services(settings, "http-test", with_transport=True, client=mongo_client)
        failures = {"count": 0}

        def answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
            if body["To"].startswith("Nell"):
                return 422, {"ErrorCode": 406, "Message": "You tried to send to an inactive recipient"}
            if body["To"].startswith("Otto") and failures["count"] < 2:
                failures["count"] += 1
                return 503, {"Message": "try again"}
            return None

        provider.answer = answer
        try:
            g = Gathering(org_id, kind="meeting")
            people = [("h-mia", "Mia"), ("h-nell", "Nell"), ("h-otto", "Otto")]
            facts = [g.scheduled()]
            for person, name in people:
                facts += [g.registered(person, name, f"{name.lower()}@http.example.org"), g.checked_in(person)]
            apply(svc, [*facts, g.ended()])
            run_scheduler_once(svc, "test")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                send_due_nudges(svc)
                states = {d["person_id"]: d["state"] for d in svc.db["nudges"].find({"event_id": g.event_id})}
                if states.get("h-otto") == "sent":
                    break
                time.sleep(0.3)
            assert states == {"h-mia": "sent", "h-nell": "bounced", "h-otto": "sent"}
            assert sorted(p["To"] for p in provider.payloads) == [
                "Mia Tester <mia@http.example.org>",
                "Otto Tester <otto@http.example.org>",
            ]
            assert "Hi Mia," in provider.payloads[0]["TextBody"] or "Hi Otto," in provider.payloads[0]["TextBody"]
            sent = [json.loads(d["payload"])["data"] for d in svc.db[OUTBOX].find({"type": "followup.sent"})]
            assert {s["transport"] for s in sent} == {"http"} and len(sent) == 2
            assert svc.db["suppressions"].find_one({"_id": f"{org_id}:nell@http.example.org"}) is not None
        finally:
            mongo_client.drop_database(settings.database + "")
