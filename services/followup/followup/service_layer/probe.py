"""Where a sender tells an observer how far it got (tests hook in here)."""

from __future__ import annotations

from typing import Literal, Protocol

SendPoint = Literal["after_claim", "before_send", "after_send_before_record"]
SEND_POINTS: tuple[SendPoint, ...] = ("after_claim", "before_send", "after_send_before_record")


class SendProbe(Protocol):
    def reached(self, point: SendPoint, handed_over: int) -> None:
        """The sender reached ``point`` having handed ``handed_over`` messages to the transport.

        ``after_claim``: the batch's messages are rendered and claimed, none handed over;
        ``before_send``: the next message's ``sending`` is journaled, the transport not yet
        called; ``after_send_before_record``: the transport accepted a message, nothing
        recorded about it yet."""
        ...


class NoProbe:
    def reached(self, point: SendPoint, handed_over: int) -> None:
        return None
