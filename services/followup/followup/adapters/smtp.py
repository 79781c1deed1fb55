"""The SMTP transport (smtplib): one connection per batch, several messages on it.

The one thing smtplib does not tell us is *where* a conversation broke, and
exactly-once needs it: a failure before the end of the DATA payload means
the server cannot have accepted the message (safe to send again); a failure
after it means it may have (in doubt: never resend automatically). So DATA
is sent here with a marker set the moment the final ``.`` goes out.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from typing import Any

from followup.domain.mail import Accepted, InDoubt, NotSent, Outcome, OutgoingMail, classify_smtp_reply
from followup.service_layer.ports import TransportUnavailable

_LEADING_DOT = re.compile(rb"(?m)^\.")
_BARE_NEWLINE = re.compile(rb"\r\n|\r|\n")


class _SMTP(smtplib.SMTP):
    """smtplib.SMTP whose DATA records whether the whole payload was handed over."""

    payload_sent = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            return code, reply
        payload = _BARE_NEWLINE.sub(b"\r\n", bytes(msg))
        payload = _LEADING_DOT.sub(b"..", payload)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        self.send(payload + b".\r\n")
        self.payload_sent = True
        return self.getreply()


class SmtpSession:
    def __init__(self, connection: _SMTP) -> None:
        self.connection = connection
        self._usable = True

    @property
    def usable(self) -> bool:
        return self._usable

    def send(self, mail: OutgoingMail) -> Outcome:
        conn = self.connection
        conn.payload_sent = False
        try:
            options: list[str] = []
            if not mail.to_address.isascii():
                if not conn.has_extn("smtputf8"):
                    return classify_smtp_reply(553, "5.6.7 non-ASCII address and no SMTPUTF8", "rcpt")
                options.append("SMTPUTF8")
            code, reply = conn.mail(mail.envelope_from, options)
            if code != 250:
                return self._refused(code, reply, "mail")
            code, reply = conn.rcpt(mail.to_address)
            if code not in (250, 251):
                return self._refused(code, reply, "rcpt")
            code, reply = conn.data(mail.raw)
            if code != 250:
                # A reply after the payload is still a clear refusal: nothing was accepted.
                return self._refused(code, reply, "data")
            return Accepted(f"{code} {reply.decode(errors='replace')}".strip())
        except (smtplib.SMTPException, OSError) as exc:
            self._usable = False
            self._close_quietly()
            if conn.payload_sent:
                return InDoubt(f"connection lost after the message was handed over: {exc!r}")
            return NotSent(f"connection lost before the message was complete: {exc!r}")

    def _refused(self, code: int, reply: bytes, stage: str) -> Outcome:
        text = reply.decode(errors="replace")
        if code == 421:  # the server is closing the connection
            self._usable = False
            self._close_quietly()
        else:
            try:
                self.connection.rset()
            except (smtplib.SMTPException, OSError):
                self._usable = False
                self._close_quietly()
        return classify_smtp_reply(code, text, stage)

    def _close_quietly(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.close()

    def close(self) -> None:
        if not self._usable:
            return
        self._usable = False
        try:
            self.connection.quit()
        except (smtplib.SMTPException, OSError):
            self._close_quietly()


class SmtpTransport:
    """SMTP with optional STARTTLS and AUTH (``SMTP_*`` settings)."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 15.0,
        ca_file: str = "",
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self.ca_file = ca_file
        self.local_hostname = local_hostname

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file or None)
        return context

    def open(self) -> SmtpSession:
        try:
            conn = _SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportUnavailable(f"cannot connect to SMTP {self.host}:{self.port}: {exc!r}") from exc
        try:
            conn.ehlo()
            if self.starttls:
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if self.username:
                conn.login(self.username, self.password)
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            with contextlib.suppress(OSError):
                conn.close()
            raise TransportUnavailable(f"SMTP handshake with {self.host}:{self.port} failed: {exc!r}") from exc
        return SmtpSession(conn)
