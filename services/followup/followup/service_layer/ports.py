"""What the service layer needs from the outside world, as protocols: a mail
transport (SMTP or an HTTP provider API) and a renderer (Jinja templates).
Adapters implement them; tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from followup.domain.mail import Outcome, OutgoingMail


class TransportUnavailable(RuntimeError):
    """The transport cannot be reached right now (nothing was sent)."""


class MailSession(Protocol):
    """One open connection to the transport, reused for several messages."""

    def send(self, mail: OutgoingMail) -> Outcome: ...

    @property
    def usable(self) -> bool:
        """False once the connection broke; open a new session for further messages."""
        ...

    def close(self) -> None: ...


class MailTransport(Protocol):
    name: str  # "smtp" or "http" (as followup.sent reports it)

    def open(self) -> MailSession:
        """Connect (and authenticate); raise ``TransportUnavailable`` when that fails."""
        ...


@dataclass(frozen=True, slots=True)
class Draft:
    """Everything needed to render one email."""

    followup_id: str
    kind: str
    message_id: str
    envelope_from: str
    from_header: str
    to_address: str
    to_header: str
    reply_to: str | None
    date: datetime
    context: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class Renderer(Protocol):
    def render(self, draft: Draft) -> OutgoingMail: ...
