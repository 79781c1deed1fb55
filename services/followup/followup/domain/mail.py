"""An outgoing email and what a mail transport can answer about it.

A transport's answer is one of four outcomes, and the difference between the
last two is what exactly-once depends on:

- ``Accepted``: the server took responsibility for the message.
- ``Rejected``: the server refused it (permanently or for now); it was not
  accepted.
- ``NotSent``: the conversation broke before the message was complete; it
  cannot have been accepted, so it is safe to try again.
- ``InDoubt``: the whole message was handed over but no answer came back; it
  may have been accepted, so it must not be sent again automatically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A rendered email: the MIME bytes as sent, and its parts for HTTP APIs."""

    followup_id: str
    message_id: str
    envelope_from: str
    from_header: str
    to_address: str
    to_header: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)  # extra headers (List-Unsubscribe, ...)
    raw: bytes = b""
    reply_to: str | None = None
    # Files sent with it: (file name, content type with its parameters, bytes).
    attachments: tuple[tuple[str, str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Accepted:
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    detail: str
    permanent: bool
    recipient: bool = False  # the address itself is bad (a hard bounce)
    code: int | None = None


@dataclass(frozen=True, slots=True)
class NotSent:
    detail: str


@dataclass(frozen=True, slots=True)
class InDoubt:
    detail: str


Outcome = Accepted | Rejected | NotSent | InDoubt

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def classify_smtp_reply(code: int, text: str, stage: str) -> Rejected:
    """A refusal from an SMTP server at ``stage`` (``mail``, ``rcpt`` or ``data``).

    5xx is permanent, 4xx temporary (RFC 5321 4.2.1). A permanent refusal is
    about the *address* (suppress it, a hard bounce) when it came at RCPT, or
    when the enhanced status code says so (5.1.x: bad mailbox or domain,
    5.2.1: mailbox disabled) at DATA.
    """
    detail = f"{code} {text}".strip()[:1000]
    permanent = 500 <= code < 600
    recipient = False
    if permanent:
        if stage == "rcpt":
            recipient = True
        else:
            match = _ENHANCED.search(text)
            if match and match.group(1) == "5" and (match.group(2) == "1" or match.group(2, 3) == ("2", "1")):
                recipient = True
    return Rejected(detail=detail, permanent=permanent, recipient=recipient, code=code)
