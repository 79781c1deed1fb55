"""Crashing a sender on purpose, for the fault tests: a ``SendProbe`` that
exits the process (like SIGKILL) when the sender reaches one point."""

from __future__ import annotations

import logging
import os
import sys

from followup.service_layer.probe import SEND_POINTS, SendPoint

log = logging.getLogger("followup.sender")

FAULT_AT = "FOLLOWUP_FAULT_AT"
FAULT_AFTER = "FOLLOWUP_FAULT_AFTER_MESSAGES"


class FaultInjector:
    """Exit with 137 at ``point`` once ``after_messages`` messages were handed over."""

    def __init__(self, point: str, after_messages: int = 0) -> None:
        if point not in SEND_POINTS:
            raise ValueError(f"{FAULT_AT} must be one of {', '.join(SEND_POINTS)}, got {point!r}")
        self.point = point
        self.after_messages = after_messages

    @classmethod
    def from_env(cls) -> FaultInjector | None:
        point = os.environ.get(FAULT_AT, "")
        if not point:
            return None
        return cls(point, int(os.environ.get(FAULT_AFTER, "0") or 0))

    def reached(self, point: SendPoint, handed_over: int) -> None:
        if point == self.point and handed_over >= self.after_messages:
            log.error("fault injection: exiting", extra={"fault_at": point, "messages": handed_over})
            sys.stderr.flush()
            os._exit(137)
