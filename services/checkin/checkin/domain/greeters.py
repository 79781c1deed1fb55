"""Greeters: the people an organizer names, per event, to welcome first-timers.

A greeter is a user of the organization or a volunteer known by name and
email; each opens a phone page through a signed link (``link_claims`` /
``read_link``) that lists the first-timers arriving, newest first, with a
"Welcomed" button. Pure rules: who may be named, what a link carries, what
the page shows of a first-timer (first name, last initial, offers and seeks)
and when a welcome may be recorded (once per registration: the first wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checkin.domain.model import RuleBroken, display_name
from turnout_common.emails import normalize_email
from turnout_common.types import Doc

KINDS = ("user", "volunteer")
MAX_NAME = 100
MAX_EMAIL = 254
MAX_GREETERS = 50  # per event: a door has a handful; the list is one page
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A welcome counts up to this long after the event's end (a greeter catching up on their phone).
WELCOME_GRACE = timedelta(hours=12)
# What the page lists: the newest first-timers, at most this many.
FEED_LIMIT = 50


def user_greeter(greeter_id: str, org_id: str, event_id: str, user: Doc, now: datetime, by: str) -> Doc:
    """A user of the organization named as a greeter (``user`` as stored)."""
    if user.get("deactivated_at") is not None:
        raise RuleBroken("invalid_field", "this user is deactivated", "user_id")
    return {
        "_id": greeter_id,
        "org_id": org_id,
        "event_id": event_id,
        "kind": "user",
        "user_id": user["_id"],
        "name": str(user.get("name") or user.get("email") or ""),
        "email": None,
        "email_norm": None,
        "created_at": now,
        "created_by": by,
    }


def volunteer_greeter(
    greeter_id: str, org_id: str, event_id: str, name: str, email: str, now: datetime, by: str
) -> Doc:
    """A volunteer named by name and email (not a user: they open their signed link, no sign-in)."""
    name = " ".join(name.split())
    email = email.strip()
    if not name:
        raise RuleBroken("invalid_field", "name: must not be blank", "name")
    if len(name) > MAX_NAME:
        raise RuleBroken("invalid_field", f"name: at most {MAX_NAME} characters", "name")
    if len(email) > MAX_EMAIL or not EMAIL.match(email):
        raise RuleBroken("invalid_field", "email: enter an address like ada@example.org", "email")
    return {
        "_id": greeter_id,
        "org_id": org_id,
        "event_id": event_id,
        "kind": "volunteer",
        "user_id": None,
        "name": name,
        "email": email,
        "email_norm": normalize_email(email),
        "created_at": now,
        "created_by": by,
    }


def already_named(greeter: Doc, existing: list[Doc]) -> Doc | None:
    """The greeter of ``existing`` that is the same person as ``greeter`` (same user, same email)."""
    for other in existing:
        if greeter["kind"] == "user" and other.get("user_id") == greeter["user_id"]:
            return other
        if greeter["kind"] == "volunteer" and other.get("email_norm") == greeter["email_norm"]:
            return other
    return None


# -- the signed link ----------------------------------------------------------------------------------


class LinkRefused(ValueError):
    """A greeter link that cannot be used (forged, malformed, or its greeter was removed)."""

    def __init__(self, message: str = "This greeter link is not valid. Ask the organizer for a new one.") -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Link:
    org_id: str
    event_id: str
    greeter_id: str


def link_claims(link: Link) -> Doc:
    """What a greeter link's token carries (signed by the service). No expiry inside:
    the link works while its greeter is named (removing them ends it)."""
    return {"o": link.org_id, "e": link.event_id, "g": link.greeter_id}


def read_link(claims: Any) -> Link:
    """The link from a token's verified claims; ``LinkRefused`` if malformed."""
    try:
        values = [claims[key] for key in ("o", "e", "g")]
    except (KeyError, TypeError) as exc:
        raise LinkRefused() from exc
    if not all(isinstance(value, str) and 0 < len(value) <= 64 for value in values):
        raise LinkRefused()
    return Link(*values)


def greeter_of_link(link: Link, greeter: Doc | None) -> Doc:
    """The named greeter the link is for; ``LinkRefused`` once they were removed."""
    if greeter is None or greeter["org_id"] != link.org_id or greeter["event_id"] != link.event_id:
        raise LinkRefused("This greeter link no longer works: the organizer removed it. Ask them for a new one.")
    return greeter


# -- first-timers and welcomes ------------------------------------------------------------------------


def is_first_timer(registration: Doc) -> bool:
    """Checked in, and that check-in was the person's first ever (the door's first-timer mark)."""
    checkin = registration.get("checkin")
    return isinstance(checkin, dict) and bool(checkin.get("first_time"))


def first_timer_view(registration: Doc, welcome: Doc | None) -> Doc:
    """What a greeter's page shows of an arriving first-timer: no email, no last name."""
    return {
        "registration_id": registration["_id"],
        "first_name": registration["first_name"],
        "name": display_name(registration["first_name"], registration.get("last_name") or ""),
        "offers": list(registration.get("offers") or []),
        "seeks": list(registration.get("seeks") or []),
        "checked_in_at": registration["checkin"]["received_at"],
        "welcomed": welcome is not None,
        "welcomed_by": welcome["greeter_name"] if welcome else None,
        "welcomed_at": welcome["welcomed_at"] if welcome else None,
    }


def welcome_refusal(registration: Doc | None, event: Doc, now: datetime) -> RuleBroken | None:
    """Why this registration cannot be marked welcomed (None: it can)."""
    if registration is None or registration["event_id"] != event["_id"] or registration["org_id"] != event["org_id"]:
        return RuleBroken("registration_not_found", "no such registration at this event", "registration_id")
    if not is_first_timer(registration):
        return RuleBroken(
            "not_a_first_timer", "only a first-timer who has checked in can be marked welcomed", "registration_id"
        )
    ends_at = event["ends_at"]
    if ends_at.tzinfo is None and now.tzinfo is not None:
        ends_at = ends_at.replace(tzinfo=now.tzinfo)
    if now > ends_at + WELCOME_GRACE:
        return RuleBroken("event_over", "this event is over: welcomes are recorded up to 12 hours after its end")
    return None


def welcome_record(registration: Doc, greeter: Doc, now: datetime) -> Doc:
    """The welcome of one registration (``_id`` the registration's: one per registration)."""
    return {
        "_id": registration["_id"],
        "org_id": registration["org_id"],
        "event_id": registration["event_id"],
        "registration_id": registration["_id"],
        "person_id": registration["person_id"],
        "greeter_id": greeter["_id"],
        "greeter_kind": greeter["kind"],
        "greeter_name": greeter["name"],
        "welcomed_at": now,
    }
