"""Greeters for first-timers: naming them per event, their signed links, the
live list of first-timers their page polls, and recording a welcome.

- ``name_user`` / ``name_volunteer`` / ``remove`` / ``of_event``: the
  organizer's side (manage permission; audited by who named whom in the document).
- ``link_token`` / ``greeter_for_token`` / ``greeter_for_user``: every greeter
  reaches the page through a signed link (its own salt: never a session token);
  a signed-in user named as a greeter is handed their own.
- ``arrivals``: the event's checked-in first-timers received after a moment
  (the arrivals index; the door's path writes nothing for it beyond its
  check-in, which carries the first-timer mark).
- ``welcome``: once per registration, in one transaction with
  ``attendee.welcomed``; a second tap (or another greeter's) answers the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from checkin.adapters.ids import new_id
from checkin.domain import greeters as rules
from checkin.domain.model import RuleBroken
from checkin.service_layer import signed
from checkin.service_layer.context import Context
from checkin.service_layer.messages import welcomed_message
from checkin.service_layer.ports import AlreadyStored, Transaction
from turnout_common.clock import utcnow
from turnout_common.types import Doc

LINK_SALT = "turnout.greeter-link.v1"
MAX_TOKEN_LENGTH = 400


def _event(ctx: Context, org_id: str, event_id: str) -> Doc:
    event = ctx.store.events.get_in_org(event_id, org_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    return event


def of_event(ctx: Context, org_id: str, event_id: str) -> list[Doc]:
    """The event's greeters, in the order they were named."""
    _event(ctx, org_id, event_id)
    return ctx.store.greeters.of_event(org_id, event_id)


def _add(ctx: Context, org_id: str, event_id: str, greeter: Doc) -> tuple[Doc, bool]:
    """Store a new greeter; the same person named again: the first naming, not a second."""

    def work(tx: Transaction) -> tuple[Doc, bool]:
        existing = tx.store.greeters.of_event(org_id, event_id)
        same = rules.already_named(greeter, existing)
        if same is not None:
            return same, False
        if len(existing) >= rules.MAX_GREETERS:
            raise RuleBroken("too_many_greeters", f"an event has at most {rules.MAX_GREETERS} greeters")
        tx.store.greeters.add(greeter)
        return greeter, True

    return ctx.uow().run(work)


def name_user(ctx: Context, org_id: str, event_id: str, user_id: str, by: str) -> tuple[Doc, bool]:
    """Name a user of the organization as a greeter; (greeter, newly named)."""
    _event(ctx, org_id, event_id)
    user = ctx.store.users.get_in_org(user_id, org_id)
    if user is None:
        raise RuleBroken("user_not_found", "no such user in your organization", "user_id")
    return _add(ctx, org_id, event_id, rules.user_greeter(new_id(), org_id, event_id, user, utcnow(), by))


def name_volunteer(ctx: Context, org_id: str, event_id: str, name: str, email: str, by: str) -> tuple[Doc, bool]:
    """Name a volunteer (name and email) as a greeter; (greeter, newly named)."""
    _event(ctx, org_id, event_id)
    greeter = rules.volunteer_greeter(new_id(), org_id, event_id, name, email, utcnow(), by)
    return _add(ctx, org_id, event_id, greeter)


def remove(ctx: Context, org_id: str, event_id: str, greeter_id: str) -> Doc:
    """Remove a greeter: their link stops working at once."""
    _event(ctx, org_id, event_id)
    removed = ctx.store.greeters.remove(org_id, event_id, greeter_id)
    if removed is None:
        raise RuleBroken("greeter_not_found", "no such greeter at this event")
    return removed


# -- links ----------------------------------------------------------------------------------------------


def link_token(ctx: Context, greeter: Doc) -> str:
    link = rules.Link(greeter["org_id"], greeter["event_id"], greeter["_id"])
    return signed.sign(ctx, LINK_SALT, rules.link_claims(link))


def link_url(ctx: Context, greeter: Doc) -> str:
    return f"{ctx.settings.public_url}/greet/{link_token(ctx, greeter)}"


@dataclass(frozen=True, slots=True)
class GreeterAccess:
    """Who is greeting, at which event."""

    greeter: Doc
    event: Doc


def greeter_for_token(ctx: Context, token: str) -> GreeterAccess:
    """The greeter a link names and their event (``rules.LinkRefused``: forged, malformed or removed)."""
    try:
        claims = signed.unsign(ctx, LINK_SALT, token, MAX_TOKEN_LENGTH)
    except signed.Unreadable as exc:
        raise rules.LinkRefused() from exc
    link = rules.read_link(claims)
    greeter = rules.greeter_of_link(link, ctx.store.greeters.get(link.greeter_id))
    # The event as the door reads it (cached for a few seconds per process): a poll a second costs two reads.
    event = ctx.events.get(link.org_id, link.event_id)
    if event is None:
        raise rules.LinkRefused("This event no longer exists.")
    return GreeterAccess(greeter, event)


def greeter_for_user(ctx: Context, org_id: str, event_id: str, user_id: str) -> Doc | None:
    """The signed-in user's own greeter entry at the event (None: not named)."""
    _event(ctx, org_id, event_id)
    for greeter in ctx.store.greeters.of_event(org_id, event_id):
        if greeter.get("user_id") == user_id:
            return greeter
    return None


# -- the live list and welcomes ----------------------------------------------------------------------------


def arrivals(ctx: Context, access: GreeterAccess, since: datetime | None) -> list[Doc]:
    """The event's first-timers who checked in after ``since`` (None: the latest), newest first,
    each with whether (and by whom) they were welcomed."""
    event = access.event
    found = ctx.store.registrations.first_timers_arrived(event["org_id"], event["_id"], since, rules.FEED_LIMIT)
    welcomes = ctx.store.welcomes.of_registrations([reg["_id"] for reg in found])
    return [rules.first_timer_view(reg, welcomes.get(reg["_id"])) for reg in found]


def welcome(ctx: Context, access: GreeterAccess, registration_id: str, now: datetime | None = None) -> tuple[Doc, bool]:
    """Mark a first-timer welcomed by this greeter; (the welcome, newly recorded).

    Idempotent per registration: a second tap, or another greeter's, gets the
    first welcome back (``False``) and publishes nothing more."""
    moment = now or utcnow()
    event = access.event

    def work(tx: Transaction) -> Doc:
        registration = tx.store.registrations.get_in_org(registration_id, event["org_id"])
        if registration is not None and tx.store.welcomes.get(registration_id) is not None:
            raise AlreadyStored(registration_id)
        refused = rules.welcome_refusal(registration, event, moment)
        if refused is not None:
            raise refused
        assert registration is not None
        record = rules.welcome_record(registration, access.greeter, moment)
        tx.store.welcomes.add(record)
        tx.publish(welcomed_message(record))
        return record

    try:
        return ctx.uow().run(work), True
    except AlreadyStored:
        first = ctx.store.welcomes.get(registration_id)
        if first is None or first["event_id"] != event["_id"]:
            raise
        return first, False


def candidates(ctx: Context, org_id: str) -> list[Doc]:
    """The organization's active users, who may be named greeters (id, name, role)."""
    users = ctx.store.users.of_org(org_id)
    return [
        {"_id": user["_id"], "name": user.get("name") or user.get("email") or "", "role": user.get("role")}
        for user in users
        if user.get("deactivated_at") is None
    ]


def links(ctx: Context, found: list[Doc]) -> dict[str, str]:
    """Each greeter's page link, by greeter id."""
    return {greeter["_id"]: link_url(ctx, greeter) for greeter in found}
