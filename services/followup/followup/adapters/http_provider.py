"""An HTTP email provider's API as a transport: Postmark's ``POST /email`` shape.

One JSON request per message, on one keep-alive ``requests.Session`` per
batch. Outcomes:
- 200 with ``ErrorCode`` 0: accepted;
- 422 with a recipient error (300 invalid address, 406 inactive recipient):
  a permanent refusal of the address (a hard bounce: suppress it);
- 401/403 (our token), 408, 429 and 5xx: not accepted, try again later;
- any other 4xx: a permanent failure of this message;
- a connection refused or a connect timeout: not sent; a read timeout or a
  dropped connection after the request went out: in doubt.
"""

from __future__ import annotations

import base64
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from followup.domain.mail import Accepted, InDoubt, NotSent, Outcome, OutgoingMail, Rejected
from followup.service_layer.ports import TransportUnavailable

RECIPIENT_ERRORS = frozenset({300, 406})
RETRYABLE_STATUS = frozenset({401, 403, 408, 429})


def postmark_payload(mail: OutgoingMail, message_stream: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "From": mail.from_header,
        "To": mail.to_header,
        "Subject": mail.subject,
        "TextBody": mail.text,
        "HtmlBody": mail.html,
        "MessageStream": message_stream,
        "Headers": [{"Name": "Message-ID", "Value": mail.message_id}]
        + [{"Name": name, "Value": value} for name, value in mail.headers.items()],
        "Metadata": {"followup_id": mail.followup_id},
        "TrackOpens": False,
        "TrackLinks": "None",
    }
    if mail.reply_to:
        payload["ReplyTo"] = mail.reply_to
    if mail.attachments:
        payload["Attachments"] = [
            {"Name": name, "Content": base64.b64encode(data).decode("ascii"), "ContentType": content_type}
            for name, content_type, data in mail.attachments
        ]
    return payload


def _never_connected(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


class HttpProviderSession:
    def __init__(self, url: str, token: str, message_stream: str, timeout: float) -> None:
        self.url = url
        self.message_stream = message_stream
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers.update(
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "X-Postmark-Server-Token": token,
            }
        )
        self._usable = True

    @property
    def usable(self) -> bool:
        return self._usable

    def send(self, mail: OutgoingMail) -> Outcome:
        try:
            answer = self.http.post(
                self.url, json=postmark_payload(mail, self.message_stream), timeout=(5.0, self.timeout)
            )
        except requests.ConnectionError as exc:
            self._usable = False
            if _never_connected(exc):
                return NotSent(f"provider unreachable: {exc!r}")
            return InDoubt(f"connection lost after the request went out: {exc!r}")
        except requests.Timeout as exc:
            self._usable = False
            return InDoubt(f"no answer from the provider in time: {exc!r}")
        except requests.RequestException as exc:
            self._usable = False
            return NotSent(f"request not sent: {exc!r}")
        return self._classify(answer)

    @staticmethod
    def _classify(answer: requests.Response) -> Outcome:
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        code = body.get("ErrorCode")
        text = f"{answer.status_code} {body.get('Message') or answer.reason or ''}".strip()[:1000]
        if answer.status_code == 200 and code in (0, None):
            return Accepted(f"{text} MessageID={body.get('MessageID', '')}")
        if answer.status_code in RETRYABLE_STATUS or answer.status_code >= 500:
            return NotSent(text)
        if isinstance(code, int) and code in RECIPIENT_ERRORS:
            return Rejected(text, permanent=True, recipient=True, code=code)
        if 400 <= answer.status_code < 500:
            return Rejected(text, permanent=True, code=code if isinstance(code, int) else answer.status_code)
        return NotSent(text)

    def close(self) -> None:
        self._usable = False
        self.http.close()


class HttpProviderTransport:
    name = "http"

    def __init__(self, base_url: str, token: str, message_stream: str = "outbound", timeout: float = 15.0) -> None:
        self.url = f"{base_url.rstrip('/')}/email"
        self.token = token
        self.message_stream = message_stream
        self.timeout = timeout

    def open(self) -> HttpProviderSession:
        if not self.token:
            raise TransportUnavailable("FOLLOWUP_HTTP_API_TOKEN is not set")
        return HttpProviderSession(self.url, self.token, self.message_stream, self.timeout)
