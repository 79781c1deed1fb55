"""Who gets which nudge: decided from the facts when a gathering's nudges are
planned, and decided *again* from the facts at send time (a late check-in
turns a "we missed you" into a "thank you"; an unsubscribe stops everything
still waiting)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from followup.domain.nudges import CALENDAR_KINDS, NudgeKind

INTRODUCTION_EVENT_KINDS = frozenset({"networking", "volunteer_shift"})
VOLUNTEER_KINDS = frozenset({"volunteer_shift"})
# A volunteer-hours email waits this long for the check-out (and its hours)
# to arrive, then is skipped.
HOURS_WAIT = timedelta(hours=24)
HOURS_RECHECK = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class AttendanceFacts:
    """What follow-up knows of one person at one gathering."""

    registration_status: str | None = None  # registered, waitlisted, cancelled, or None (walk-in)
    checked_in: bool = False
    first_time_ever: bool = False
    hours: float | None = None


@dataclass(frozen=True, slots=True)
class ContactFacts:
    email: str | None
    consent: bool
    unsubscribed: bool = False
    suppressed: bool = False


def unreachable_reason(contact: ContactFacts | None) -> str | None:
    """Why nothing may be sent to this contact, or None. Nothing without consent."""
    if contact is None or not contact.email:
        return "no_contact"
    if contact.unsubscribed:
        return "unsubscribed"
    if contact.suppressed:
        return "suppressed"
    if not contact.consent:
        return "no_consent"
    return None


def event_nudges(event_kind: str, attendance: AttendanceFacts, enabled: Callable[[NudgeKind], bool]) -> list[NudgeKind]:
    """The per-person nudges a gathering's end calls for (introductions are matched separately)."""
    kinds: list[NudgeKind] = []
    if attendance.checked_in:
        kinds.append(NudgeKind.THANK_YOU)
        if attendance.first_time_ever:
            kinds.append(NudgeKind.FIRST_TIMER_WELCOME)
        if event_kind in VOLUNTEER_KINDS:
            kinds.append(NudgeKind.VOLUNTEER_HOURS)
    elif attendance.registration_status == "registered":
        kinds.append(NudgeKind.WE_MISSED_YOU)
    return [kind for kind in kinds if enabled(kind)]


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # "send", "skip" or "wait"
    reason: str | None = None
    until: datetime | None = None

    @classmethod
    def send(cls) -> Decision:
        return cls("send")

    @classmethod
    def skip(cls, reason: str) -> Decision:
        return cls("skip", reason)

    @classmethod
    def wait(cls, until: datetime, reason: str) -> Decision:
        return cls("wait", reason, until)


@dataclass(frozen=True, slots=True)
class SendFacts:
    """Everything the send-time decision looks at, for one nudge."""

    kind: NudgeKind
    contact: ContactFacts | None
    enabled: bool
    event_kind: str | None
    attendance: AttendanceFacts | None
    send_at: datetime
    next_window_opening: datetime  # == now when now is inside the daytime window
    pending_suggestions: int = 0  # introduction_request: suggestions still open
    introduction_agreed: bool = False  # introduction: both people accepted
    still_away: bool = False  # win_back: no attendance since the nudge was planned
    expires_at: datetime | None = None  # data_link: when the link stops working
    event_status: str | None = None  # calendar emails: scheduled, cancelled, ended
    event_over: bool = False  # calendar emails: the gathering has ended (or its end time passed)


def decide_transactional(facts: SendFacts, now: datetime) -> Decision:
    """A message the person asked for (their data link): whatever their consent and the
    switches, at any hour; never to an address that bounced or was blocked."""
    contact = facts.contact
    if contact is None or not contact.email:
        return Decision.skip("no_contact")
    if contact.suppressed:
        return Decision.skip("suppressed")
    if facts.expires_at is not None and now >= facts.expires_at:
        return Decision.skip("link_expired")
    return Decision.send()


def decide_calendar(facts: SendFacts) -> Decision:
    """A registration's confirmation, or the update of a gathering that moved or was
    cancelled: whatever the person's follow-up consent and at any hour (they registered;
    their calendar must show the truth), never to an address that bounced, was blocked or
    unsubscribed. A confirmation can be switched off; its updates cannot (whoever got one
    has the gathering in their calendar)."""
    contact = facts.contact
    if contact is None or not contact.email:
        return Decision.skip("no_contact")
    if contact.suppressed:
        return Decision.skip("suppressed")
    registration = (facts.attendance or AttendanceFacts()).registration_status
    if facts.kind == NudgeKind.EVENT_CANCELLED:
        return Decision.send()
    if facts.kind == NudgeKind.REGISTRATION_CONFIRMATION and not facts.enabled:
        return Decision.skip("disabled")
    if facts.event_status == "cancelled":
        return Decision.skip("event_cancelled")
    if facts.event_over or facts.event_status == "ended":
        return Decision.skip("event_over")
    if registration != "registered":
        return Decision.skip("not_registered")
    return Decision.send()


def decide_at_send_time(facts: SendFacts, now: datetime) -> Decision:
    """Send now, skip for good (with the reason), or wait until a later time."""
    if facts.kind == NudgeKind.DATA_LINK:
        return decide_transactional(facts, now)
    if facts.kind in CALENDAR_KINDS:
        return decide_calendar(facts)
    if not facts.enabled:
        return Decision.skip("disabled")
    reason = unreachable_reason(facts.contact)
    if reason:
        return Decision.skip(reason)
    attendance = facts.attendance or AttendanceFacts()
    kind = facts.kind
    if kind == NudgeKind.THANK_YOU and not attendance.checked_in:
        return Decision.skip("not_checked_in")
    if kind == NudgeKind.WE_MISSED_YOU:
        if attendance.checked_in:
            return Decision.skip("checked_in_after_all")
        if attendance.registration_status != "registered":
            return Decision.skip("registration_cancelled")
    if kind == NudgeKind.FIRST_TIMER_WELCOME and not (attendance.checked_in and attendance.first_time_ever):
        return Decision.skip("not_a_first_timer")
    if kind == NudgeKind.VOLUNTEER_HOURS:
        if not attendance.checked_in:
            return Decision.skip("not_checked_in")
        if attendance.hours is None:
            if now >= facts.send_at + HOURS_WAIT:
                return Decision.skip("no_hours_recorded")
            return Decision.wait(now + HOURS_RECHECK, "waiting_for_check_out")
    if kind == NudgeKind.INTRODUCTION_REQUEST and facts.pending_suggestions <= 0:
        return Decision.skip("no_open_suggestions")
    if kind == NudgeKind.INTRODUCTION and not facts.introduction_agreed:
        return Decision.skip("not_agreed")
    if kind == NudgeKind.WIN_BACK and not facts.still_away:
        return Decision.skip("came_back")
    if facts.next_window_opening > now:
        return Decision.wait(facts.next_window_opening, "outside_daytime_window")
    return Decision.send()


# A thank-you in one of these states has gone out (or is going out right now).
WENT_OUT = frozenset({"claimed", "sending", "sent", "delivery_unknown"})


# Registrations from these sources get a confirmation with the calendar file: the person
# registered for a gathering still ahead (not a walk-in at the door, nor an import of people
# who registered elsewhere and got that place's confirmation).
CONFIRMED_SOURCES = frozenset({"public", "api"})
# What a calendar shows of a gathering: a change to one of these sends an update.
CALENDAR_FIELDS = ("title", "starts_at", "ends_at", "timezone", "venue")


def confirms_registration(
    *, source: str, status: str, email: str | None, event_status: str | None, starts_at: datetime | None, now: datetime
) -> bool:
    """Whether a registration gets a confirmation email: registered (a waitlisted person
    gets theirs when a place opens and they are registered), with an address, for a
    gathering follow-up knows (checkin announces it before its registrations), still
    scheduled and not started (someone registering once the doors are open is there, or
    on the way: a calendar invitation would come too late to help)."""
    if source not in CONFIRMED_SOURCES or status != "registered" or not email:
        return False
    return event_status == "scheduled" and starts_at is not None and starts_at > now


def calendar_changed(before: dict[str, object] | None, after: dict[str, object]) -> bool:
    """Whether an edit changed what a calendar shows (a capacity change does not)."""
    if before is None:
        return False
    return any(_comparable(before.get(name)) != _comparable(after.get(name)) for name in CALENDAR_FIELDS)


def _comparable(value: object) -> object:
    """Times as the database keeps them (milliseconds), so a round trip is no change."""
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def missed_you_after_all(kind: NudgeKind, thank_you_state: str | None) -> bool:
    """Whether a reconsidered nudge may be added: after an undone check-in the person is
    a no-show again, but one who already got the thank-you hears nothing more."""
    return not (kind == NudgeKind.WE_MISSED_YOU and thank_you_state in WENT_OUT)
