"""The mail transport as a sender uses it: one connection per batch, reopened
once when it broke before a message left, and a growing pause while the
transport cannot be reached at all."""

from __future__ import annotations

from followup.domain.mail import NotSent, Outcome, OutgoingMail
from followup.service_layer.ports import MailSession, MailTransport, TransportUnavailable
from followup.service_layer.probe import SendProbe

MAX_CONNECT_PAUSE = 60.0


class Courier:
    def __init__(self, transport: MailTransport, probe: SendProbe) -> None:
        self.transport = transport
        self.probe = probe
        self.handed_over = 0  # messages given to the transport
        self._connect_failures = 0

    @property
    def name(self) -> str:
        return self.transport.name

    def open(self) -> MailSession:
        """Connect; ``TransportUnavailable`` when that fails (see ``connect_pause``)."""
        try:
            session = self.transport.open()
        except TransportUnavailable:
            self._connect_failures += 1
            raise
        self._connect_failures = 0
        return session

    def connect_pause(self) -> float:
        """Seconds to wait after the latest failed connection (doubling, at most a minute)."""
        return min(MAX_CONNECT_PAUSE, 2.0 ** min(self._connect_failures, 6))

    def hand_over(self, mail: OutgoingMail, session: MailSession | None) -> tuple[Outcome, MailSession | None]:
        """Send on the open session, reconnecting once when the connection broke before the message left.

        Returns the outcome and the session to go on with (None: the transport went away)."""
        outcome: Outcome = NotSent("not attempted")
        for attempt in range(2):
            if session is None or not session.usable:
                if session is not None:
                    session.close()
                try:
                    session = self.transport.open()
                except TransportUnavailable as exc:
                    return NotSent(f"transport unavailable: {exc}"), None
            self.probe.reached("before_send", self.handed_over)
            outcome = session.send(mail)
            self.handed_over += 1
            if isinstance(outcome, NotSent) and not session.usable and attempt == 0:
                continue  # provably not sent: once more on a fresh connection
            return outcome, session
        return outcome, session
