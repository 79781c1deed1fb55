"""Nudges: the follow-up emails, their identity and their sending state machine.

A nudge is one email to one person about one gathering, of one kind. Its
identity is its *key* ``event|person|kind`` (plus a discriminator where a
kind may occur more than once per gathering, e.g. one ``introduction`` per
matched pair); the key is unique in the database, and the follow-up id and
the email's ``Message-ID`` are derived from it, so the same nudge always has
the same ids, however often it is scheduled or retried.

The sending state machine (see docs/followup.md; a win-back the organization
approves first starts as a ``draft``, outside it, until approved)::

    scheduled ──claim──▶ claimed ──▶ sending ──▶ sent
        ▲   ▲               │           │  ├──▶ retry ──(due)──▶ claimed …
        │   └──lease lost───┘           │  ├──▶ failed | bounced   (permanent)
        │                               │  └──▶ delivery_unknown  (in doubt)
        └───────────── skipped (no consent, unsubscribed, no longer applies)

A message is handed to the mail transport only after its ``sending`` state
is durable, and the outcome is recorded before the next message starts, so
a crashed sender leaves at most one message in ``sending``: that one may or
may not have been accepted, and it becomes ``delivery_unknown`` (never
resent automatically); every ``claimed`` one provably never left and goes
back to ``scheduled``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from followup.domain.mail import Accepted, InDoubt, NotSent, Outcome, Rejected


class NudgeKind(StrEnum):
    THANK_YOU = "thank_you"
    WE_MISSED_YOU = "we_missed_you"
    FIRST_TIMER_WELCOME = "first_timer_welcome"
    INTRODUCTION_REQUEST = "introduction_request"
    INTRODUCTION = "introduction"
    WIN_BACK = "win_back"
    VOLUNTEER_HOURS = "volunteer_hours"
    # Not a follow-up: the link a person asked for to see or erase their data
    # (sent whatever their consent, never switched off, not announced on turnout.followup).
    DATA_LINK = "data_link"
    # Not follow-ups either: a registration's confirmation with the gathering's calendar
    # file, and the calendar updates a moved or cancelled gathering sends the people who
    # got one (sent whatever their consent, not announced on turnout.followup).
    REGISTRATION_CONFIRMATION = "registration_confirmation"
    EVENT_CHANGED = "event_changed"
    EVENT_CANCELLED = "event_cancelled"


# The emails that carry the gathering's calendar file (same UID, rising SEQUENCE).
CALENDAR_KINDS: frozenset[str] = frozenset(
    {NudgeKind.REGISTRATION_CONFIRMATION.value, NudgeKind.EVENT_CHANGED.value, NudgeKind.EVENT_CANCELLED.value}
)
TRANSACTIONAL_KINDS: frozenset[str] = frozenset({NudgeKind.DATA_LINK.value}) | CALENDAR_KINDS
# The follow-ups proper: switchable, previewable, announced as ``followup.*``.
ALL_KINDS: tuple[NudgeKind, ...] = tuple(kind for kind in NudgeKind if kind.value not in TRANSACTIONAL_KINDS)
# What an organization (or a gathering) can switch off: the follow-ups, and the confirmations
# (their updates still reach whoever got a confirmation: their calendar holds the gathering).
SWITCHABLE_KINDS: tuple[NudgeKind, ...] = (*ALL_KINDS, NudgeKind.REGISTRATION_CONFIRMATION)


def is_followup(kind: str) -> bool:
    """Whether a nudge of this kind is a follow-up (announced on ``turnout.followup``)."""
    return kind not in TRANSACTIONAL_KINDS


class NudgeState(StrEnum):
    # A win-back waiting for an organizer's approval: in no send batch, never picked up.
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    BOUNCED = "bounced"
    SKIPPED = "skipped"
    DELIVERY_UNKNOWN = "delivery_unknown"


# States a sender may pick up (when due).
PENDING: frozenset[NudgeState] = frozenset({NudgeState.SCHEDULED, NudgeState.RETRY})
# States nothing changes any more (except tracking: opens, clicks, bounces).
FINAL: frozenset[NudgeState] = frozenset(
    {NudgeState.SENT, NudgeState.FAILED, NudgeState.BOUNCED, NudgeState.SKIPPED, NudgeState.DELIVERY_UNKNOWN}
)


def nudge_key(event_id: str | None, person_id: str, kind: NudgeKind | str, discriminator: str | None = None) -> str:
    """The unique key of a nudge: one per (gathering, person, kind[, discriminator])."""
    parts = [event_id or "-", person_id, str(kind)]
    if discriminator:
        parts.append(discriminator)
    return "|".join(parts)


def followup_id(key: str) -> str:
    """A stable 32-hex-digit id derived from the nudge key."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def message_id(followup: str, domain: str) -> str:
    """The email's Message-ID: the same for every attempt of the same nudge."""
    return f"<{followup}@{domain}>"


def followup_from_message_id(value: str) -> str | None:
    """The follow-up id inside one of our Message-IDs, or None."""
    inner = value.strip().removeprefix("<").removesuffix(">")
    local, _, _ = inner.partition("@")
    if len(local) == 32 and all(ch in "0123456789abcdef" for ch in local):
        return local
    return None


def after_lease_expired(state: NudgeState) -> NudgeState:
    """What a nudge left behind by a dead sender becomes.

    ``claimed``: it was rendered but never handed to the transport: send it
    again. ``sending``: the transport may have accepted it; resending could
    deliver it twice, so it is marked ``delivery_unknown`` for a person to
    resolve (at most once in the ambiguous window, never silently).
    """
    if state == NudgeState.CLAIMED:
        return NudgeState.SCHEDULED
    if state == NudgeState.SENDING:
        return NudgeState.DELIVERY_UNKNOWN
    return state


# What an organizer can filter a gathering's messages by (``display_status``'s answers).
DISPLAY_STATUSES = (
    "scheduled",
    "retry",
    "sending",
    "sent",
    "failed",
    "bounced",
    "opened",
    "clicked",
    "delivery_unknown",
    "skipped",
)


def display_status(
    state: str, *, opened: bool = False, clicked: bool = False, bounced: bool = False, feedback: bool = False
) -> str:
    """The status an organizer sees: engagement outranks plain ``sent``."""
    if state == NudgeState.SENT:
        if bounced:
            return "bounced"
        if clicked or feedback:
            return "clicked"
        if opened:
            return "opened"
    if state in (NudgeState.CLAIMED, NudgeState.SENDING):
        return "sending"
    return state


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter for temporary failures, then give up."""

    base_seconds: float = 60.0
    max_seconds: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """Wait before attempt ``attempts + 1`` (``attempts`` >= 1 made so far)."""
        raw = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        jitter = (rng or random).uniform(0.8, 1.2)
        return timedelta(seconds=raw * jitter)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


@dataclass(frozen=True, slots=True)
class Transition:
    """Where a nudge goes after one delivery attempt."""

    state: NudgeState
    error: str | None = None
    retry_at: datetime | None = None
    permanent: bool = False
    suppress_address: bool = False
    bounce: bool = False


def after_attempt(
    outcome: Outcome,
    attempts: int,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Transition:
    """The next state after the transport answered ``outcome`` on attempt ``attempts``."""
    if isinstance(outcome, Accepted):
        return Transition(NudgeState.SENT)
    if isinstance(outcome, InDoubt):
        return Transition(NudgeState.DELIVERY_UNKNOWN, error=outcome.detail)
    if isinstance(outcome, Rejected) and outcome.permanent:
        if outcome.recipient:
            return Transition(
                NudgeState.BOUNCED, error=outcome.detail, permanent=True, suppress_address=True, bounce=True
            )
        return Transition(NudgeState.FAILED, error=outcome.detail, permanent=True)
    if isinstance(outcome, Rejected | NotSent):
        if policy.exhausted(attempts):
            return Transition(
                NudgeState.FAILED, error=f"gave up after {attempts} attempts: {outcome.detail}", permanent=True
            )
        return Transition(NudgeState.RETRY, error=outcome.detail, retry_at=now + policy.delay(attempts, rng))
    raise TypeError(f"unknown delivery outcome {outcome!r}")


# What an organizer may do with a message whose delivery is in doubt (or that failed).
RESOLUTIONS: dict[str, tuple[NudgeState, ...]] = {
    "resend": (NudgeState.DELIVERY_UNKNOWN, NudgeState.FAILED),
    "mark_sent": (NudgeState.DELIVERY_UNKNOWN,),
    "mark_failed": (NudgeState.DELIVERY_UNKNOWN,),
}


def resolution_refusal(action: str, state: str) -> str | None:
    """Why ``action`` cannot resolve a message in ``state``, or None when it can."""
    if state not in RESOLUTIONS[action]:
        return f"a {state} message cannot be resolved with {action}"
    return None


# Planned per person from attendance alone: when a person's facts change after
# planning, one of these no longer due is skipped (the others have their own rules).
RECONSIDERED_KINDS = (
    NudgeKind.THANK_YOU,
    NudgeKind.WE_MISSED_YOU,
    NudgeKind.FIRST_TIMER_WELCOME,
    NudgeKind.VOLUNTEER_HOURS,
)


def no_longer_due(kind: str, key: str, state: str, wanted_keys: set[str]) -> bool:
    """A pending nudge that the person's current facts no longer call for."""
    return kind in RECONSIDERED_KINDS and key not in wanted_keys and state in PENDING
