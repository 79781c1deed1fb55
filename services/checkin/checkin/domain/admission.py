"""The door's decisions, as pure functions: who is let in, who is told they are
already in, who is refused and why; check-out and volunteer hours likewise.

The service layer reads the documents these rules look at and writes what
they decide; nothing here touches storage, the clock or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from checkin.domain.model import EventKind, RuleBroken, check_door_open, display_name, volunteer_hours
from turnout_common.types import Doc

# How old a kiosk's queued scan may be and still be judged by its own time.
MAX_OFFLINE_AGE = timedelta(hours=24)

# Registrations that may be checked in (a waitlisted person who came is let in).
ADMISSIBLE = ("registered", "waitlisted")


class CheckinOutcome(StrEnum):
    """What a scan at the door did (the ``status`` of the answer)."""

    CHECKED_IN = "checked_in"
    ALREADY_CHECKED_IN = "already_checked_in"
    CHECKED_OUT = "checked_out"
    ALREADY_CHECKED_OUT = "already_checked_out"


def door_time(scanned_at: datetime | None, received_at: datetime) -> datetime:
    """The moment the door window is judged at: when the kiosk scanned (a queue
    synced after closing time still counts), never later than now and never
    more than a day back (a wrong kiosk clock must not reopen old events)."""
    if scanned_at is None or scanned_at > received_at or received_at - scanned_at > MAX_OFFLINE_AGE:
        return received_at
    return scanned_at


def door_refusal(event: Doc, scanned_at: datetime | None, now: datetime, override: bool) -> RuleBroken | None:
    """Why the door takes no new check-in for this event now (None: it does)."""
    try:
        check_door_open(
            event["status"],
            event["checkin_opens_at"],
            event["checkin_closes_at"],
            door_time(scanned_at, now),
            override,
        )
    except RuleBroken as refusal:
        return refusal
    return None


def badge_refusal(registration: Doc | None, org_id: str, event_id: str) -> RuleBroken | None:
    """Why a badge is refused here whatever its check-in state, in words a person at the door understands."""
    if registration is None or registration["org_id"] != org_id:
        return RuleBroken("unknown_badge", "we don't recognise this badge; please see the front desk")
    if registration["event_id"] != event_id:
        return RuleBroken("wrong_event", "this badge is for a different event; please see the front desk")
    if registration["status"] not in ADMISSIBLE:
        return RuleBroken("registration_cancelled", "this registration was cancelled; please see the front desk")
    return None


@dataclass(frozen=True, slots=True)
class Admit:
    """Check this registration in: write ``changes`` and count the person's visit."""

    changes: Doc
    visit_number: int
    first_time_ever: bool
    welcome: str


@dataclass(frozen=True, slots=True)
class AlreadyIn:
    """Checked in before: nothing new is written; the person is told when (and where)."""

    name: str
    checkin: Doc


def welcome(first_name: str, visit_number: int) -> str:
    return f"Welcome, {first_name}! " + (
        "First time here" if visit_number == 1 else f"Welcome back, visit number {visit_number}"
    )


def admit(
    registration: Doc | None,
    *,
    org_id: str,
    event_id: str,
    checkin: Doc,
    visits_before: int,
    refused: RuleBroken | None = None,
) -> Admit | AlreadyIn:
    """Decide a scan of ``registration`` (found by badge code or id; None: no such badge).

    ``checkin`` is what the door would record; ``visits_before`` the person's
    visits counted so far; ``refused`` why a valid registration not yet in may
    not be checked in now (the door window, a cancelled event, a concurrent
    scan). In order: an unknown or foreign badge and a cancelled registration
    are refused; someone already in is told so (even after closing time); then
    the door may refuse; else the registration is checked in, and a waitlisted
    one lifted to registered (the door decides). Raises ``RuleBroken``.
    """
    bad_badge = badge_refusal(registration, org_id, event_id)
    if bad_badge is not None:
        raise bad_badge
    assert registration is not None
    if registration.get("checkin") is not None:
        return AlreadyIn(display_name(registration["first_name"], registration["last_name"]), registration["checkin"])
    if refused is not None:
        raise refused
    visit_number = visits_before + 1
    # The first-timer mark travels with the check-in (greeters are told of first-timers
    # by it): one more field of the same update, no other write on the door's path.
    changes: Doc = {"checkin": {**checkin, "first_time": visit_number == 1}}
    if registration["status"] == "waitlisted":
        changes["status"] = "registered"
    return Admit(changes, visit_number, visit_number == 1, welcome(registration["first_name"], visit_number))


# -- groups: an order of several tickets, a family ---------------------------------


def group_members(leader: Doc, registrations: list[Doc]) -> list[Doc]:
    """The others of ``leader``'s party at its event, by first name: the
    registrations of the same event with the same ``party``, cancelled ones
    left out (they are not coming). No party: no group."""
    party = leader.get("party")
    if not party:
        return []
    members = [
        r
        for r in registrations
        if r.get("party") == party
        and r["event_id"] == leader["event_id"]
        and r["_id"] != leader["_id"]
        and r["status"] in ADMISSIBLE
    ]
    return sorted(members, key=lambda r: (r["first_name"].casefold(), r["last_name"].casefold(), str(r["_id"])))


def group_member_view(member: Doc) -> Doc:
    """What the door shows of a group member: first name and last initial, whether
    already in, and whether on the waitlist (then not checked in with the group)."""
    return {
        "registration_id": member["_id"],
        "name": display_name(member["first_name"], member["last_name"]),
        "first_name": member["first_name"],
        "checked_in": member.get("checkin") is not None,
        "waitlisted": member["status"] == "waitlisted",
    }


def group_refusal(member: Doc, leader: Doc | None) -> RuleBroken | None:
    """Why ``member`` may not be checked in together with ``leader`` (None: they may).

    Only someone of the leader's own party at the same event comes in with the
    group; a waitlisted member does not (the waitlist is the organizer's to
    lift): they check in with their own badge, which lets them in, or at the desk.
    """
    if leader is None or leader["org_id"] != member["org_id"] or leader["event_id"] != member["event_id"]:
        return RuleBroken("not_in_group", "group_of: no such registration at this event", "group_of")
    if not leader.get("party") or leader.get("party") != member.get("party"):
        return RuleBroken("not_in_group", "this registration is not in the same group", "group_of")
    if member["status"] == "waitlisted":
        name = display_name(member["first_name"], member["last_name"])
        return RuleBroken(
            "waitlisted_in_group",
            f"{name} is on the waitlist: they check in with their own badge or at the front desk",
        )
    return None


def already_in_message(name: str, received_at: datetime, timezone: str, kiosk_name: str | None) -> str:
    """ "Ada L. already checked in at 18:05 at Door 1", in the event's own time."""
    at = received_at.astimezone(ZoneInfo(timezone))
    where = f" at {kiosk_name}" if kiosk_name else ""
    return f"{name} already checked in at {at:%H:%M}{where}"


# -- check-out and volunteer hours -------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckOut:
    """Check this registration out: ``hours`` from its check-in to the scan."""

    name: str
    hours: float


@dataclass(frozen=True, slots=True)
class AlreadyOut:
    name: str
    checkout: Doc

    @property
    def message(self) -> str:
        return f"{self.name} already checked out at {self.checkout['received_at']:%H:%M} UTC"


def check_out(registration: Doc | None, *, org_id: str, event_id: str, scanned_at: datetime) -> CheckOut | AlreadyOut:
    """Decide a check-out scan; raises ``RuleBroken`` for a badge that cannot check out here."""
    if registration is None or registration["org_id"] != org_id:
        raise RuleBroken("unknown_badge", "we don't recognise this badge; please see the front desk")
    if registration["event_id"] != event_id:
        raise RuleBroken("wrong_event", "this badge is for a different event; please see the front desk")
    name = display_name(registration["first_name"], registration["last_name"])
    if not registration.get("checkin"):
        raise RuleBroken("not_checked_in", f"{name} has not checked in yet")
    if registration.get("checkout"):
        return AlreadyOut(name, registration["checkout"])
    return CheckOut(name, volunteer_hours(registration["checkin"]["scanned_at"], scanned_at))


def thank_you(first_name: str, hours: float, total_hours: float) -> str:
    return f"Thank you, {first_name}! {hours:g} hours today, {total_hours:g} in all"


def closes_forgotten_checkouts(event: Doc) -> bool:
    """Only a volunteer shift counts hours, so only its end checks everyone out."""
    return bool(event["kind"] == EventKind.VOLUNTEER_SHIFT)


def still_in(registrations: list[Doc]) -> list[Doc]:
    """Checked in and not out, in ``_id`` order (ObjectIds: creation order)."""
    return sorted(
        (r for r in registrations if r.get("checkin") is not None and r.get("checkout") is None),
        key=lambda registration: str(registration["_id"]),
    )


def forgotten_checkout(registration: Doc, event_ends_at: datetime, ended_at: datetime) -> Doc:
    """The check-out written at a volunteer event's end for someone who never checked out:
    at the end time (or earlier, if the event ended early), with the rule recorded."""
    closing = min(ended_at, event_ends_at)
    return {
        "method": "auto",
        "kiosk_id": None,
        "scanned_at": closing,
        "received_at": ended_at,
        "hours": volunteer_hours(registration["checkin"]["scanned_at"], closing),
        "closed_by": "event_end",
        "rule": "not checked out: closed at the event's end time",
        "actor_id": None,
    }
