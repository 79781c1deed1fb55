"""What the service layer needs from the outside world, as protocols: a mail
transport (SMTP or an HTTP provider API) and a renderer (Jinja templates).
Adapters implement them; tests pass fakes."""

from __future__ import annotations

import threading
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
class Attachment:
    """A file sent with an email (a calendar file: also offered inline, as an
    alternative of the text, which is where calendar programs look for an invitation)."""

    filename: str
    content_type: str  # with its parameters, e.g. ``text/calendar; method=REQUEST``
    data: bytes
    inline_alternative: bool = False


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
    attachments: tuple[Attachment, ...] = ()


class Renderer(Protocol):
    def render(self, draft: Draft) -> OutgoingMail: ...


class Pause(Protocol):
    """How a polling loop waits between passes (``turnout_common.wake.IdlePause`` on MongoDB).

    ``pause(stop, found_work)`` after each pass: a short wait while work keeps
    coming; once idle, a sleep that ends when work is written, after
    ``max_sleep`` seconds (a safety poll and the loop's time-based work), or
    when ``stop`` is set. ``sleeping`` is true when the next pause without
    work will sleep (the loop may then shorten ``max_sleep`` to the time its
    next item falls due)."""

    max_sleep: float
    await_ms: int  # one wait on the feed: a sleep may last this much past ``max_sleep``

    @property
    def sleeping(self) -> bool: ...

    def pause(self, stop: threading.Event, found_work: bool) -> None: ...

    def wake(self) -> None:
        """Forget the idle state (the loop found work, or failed and will retry)."""
        ...

    def close(self) -> None: ...


class WorkSignals(Protocol):
    """Pauses that wake when the work of a loop is written."""

    def batches(self, *, busy_pause: float, max_sleep: float) -> Pause:
        """Wakes when a send batch is created or made ``ready`` again."""
        ...

    def plans(self, *, busy_pause: float, max_sleep: float) -> Pause:
        """Wakes when a plan is created or changed (a gathering ended, a late check-in)."""
        ...


class FixedPause:
    """Where nothing signals work: wait ``busy_pause`` after every pass (polling)."""

    def __init__(self, busy_pause: float, max_sleep: float) -> None:
        self.busy_pause = busy_pause
        self.max_sleep = max_sleep
        self.await_ms = 0

    @property
    def sleeping(self) -> bool:
        return False

    def pause(self, stop: threading.Event, found_work: bool) -> None:
        stop.wait(self.busy_pause)

    def wake(self) -> None:
        pass

    def close(self) -> None:
        pass


class PollingSignals:
    """``WorkSignals`` without a change feed: every loop polls at its busy pause."""

    def batches(self, *, busy_pause: float, max_sleep: float) -> Pause:
        return FixedPause(busy_pause, max_sleep)

    def plans(self, *, busy_pause: float, max_sleep: float) -> Pause:
        return FixedPause(busy_pause, max_sleep)


def pause_until_due(pause: Pause, stop: threading.Event, due_in: float | None, longest: float) -> None:
    """An idle pass's pause, ending no later than ``due_in`` seconds from now
    (when the loop's next item falls due; None: nothing is scheduled).

    A sleep on the feed ends up to one wait (``await_ms``) past its
    ``max_sleep``, so it is cut short by that much; the last stretch before
    the due time is a plain wait (work written meanwhile is found by the pass
    right after it, at the due time)."""
    if not pause.sleeping or due_in is None:
        pause.max_sleep = longest
        pause.pause(stop, False)
        return
    slack = pause.await_ms / 1000
    if due_in <= slack:
        stop.wait(max(0.0, due_in))
        return
    pause.max_sleep = min(longest, due_in - slack)
    pause.pause(stop, False)
