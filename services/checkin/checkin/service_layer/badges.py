"""Badges and the door-side views of an event.

- QR codes of badge codes (SVG and PNG, made with segno; the code encodes the
  badge code only, which a kiosk scanner reads and posts as ``badge_code``);
- printable badge data, in the event's own time zone;
- registration search (accent-insensitive name prefix, email prefix) and filters;
- live arrivals (the latest check-ins of an event);
- undoing a check-in, audited in ``audit_log`` and announced (``attendee.checkin_undone``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import segno

from checkin.domain.audit import CHECKIN_UNDONE, Actor, Subject
from checkin.domain.model import RuleBroken, fold_name
from checkin.service_layer import audit, kiosks
from checkin.service_layer.context import Context
from checkin.service_layer.messages import SOURCE
from checkin.service_layer.ports import RegistrationFilter, Transaction
from turnout_common.clock import as_utc, to_rfc3339, utcnow
from turnout_common.emails import normalize_email
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.types import Doc

__all__ = ["Actor", "RegistrationFilter"]

# Statuses a registration can have; only the first two get a badge printed.
STATUSES = ("registered", "waitlisted", "cancelled")
BADGE_STATUSES = ("registered", "waitlisted")

MAX_QUERY_LENGTH = 100
# An email prefix such as "a" matches many people; names still match in full.
MAX_EMAIL_MATCHES = 1000


# -- QR codes ----------------------------------------------------------------------------------------


def qr_code(badge_code: str) -> segno.QRCode:
    """A regular (never micro) QR code of the badge code alone, error correction M:
    a 22-character code fits version 2 (25x25 modules) and survives a crease."""
    return segno.make_qr(badge_code, error="m")


def badge_svg(badge_code: str, *, scale: int = 10, border: int = 4) -> bytes:
    """A standalone SVG document (with its XML declaration and namespace)."""
    buffer = io.BytesIO()
    qr_code(badge_code).save(buffer, kind="svg", scale=scale, border=border, dark="#000", light="#fff")
    return buffer.getvalue()


def badge_svg_inline(badge_code: str) -> str:
    """An ``<svg>`` element to put in an HTML page: a viewBox and no fixed size, so CSS sizes it."""
    svg: str = qr_code(badge_code).svg_inline(
        scale=1, border=2, omitsize=True, dark="#000", light="#fff", svgclass="qr", lineclass=None
    )
    return svg


def badge_png(badge_code: str, *, scale: int = 10, border: int = 4) -> bytes:
    buffer = io.BytesIO()
    qr_code(badge_code).save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()


# -- times in the event's zone -----------------------------------------------------------------------


def local(moment: datetime, timezone: str) -> datetime:
    return as_utc(moment).astimezone(ZoneInfo(timezone))


def format_date(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


def when_lines(starts_at: datetime, ends_at: datetime, timezone: str) -> tuple[str, str]:
    """The date and the times, for a badge's two short lines: ("Sat 2 May 2026", "17:00–20:00 CDT"),
    or ("Sat 2 May 2026 17:00 –", "Sun 3 May 2026 12:00 CDT") when the event spans days."""
    start, end = local(starts_at, timezone), local(ends_at, timezone)
    if start.date() == end.date():
        return format_date(start), f"{start:%H:%M}–{end:%H:%M} {end:%Z}"
    return f"{format_date(start)} {start:%H:%M} –", f"{format_date(end)} {end:%H:%M} {end:%Z}"


def format_when(starts_at: datetime, ends_at: datetime, timezone: str) -> str:
    """ "Sat 2 May 2026 · 17:00–20:00 CDT", or both dates when the event spans days (the zone
    is joined to the time by a no-break space, so a narrow column never strands it)."""
    day, times = when_lines(starts_at, ends_at, timezone)
    joiner = " " if day.endswith("–") else " · "
    head, _, zone = times.rpartition(" ")
    return f"{day}{joiner}{head}\u00a0{zone}"


# -- badges ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Badge:
    registration_id: str
    first_name: str
    last_name: str
    status: str
    badge_code: str
    checked_in: bool
    event_id: str
    event_title: str
    when: str
    when_lines: tuple[str, str]
    venue: str | None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def qr_svg(self) -> str:
        return badge_svg_inline(self.badge_code)


def badge_of(registration: Doc, event: Doc) -> Badge:
    return Badge(
        registration_id=registration["_id"],
        first_name=registration["first_name"],
        last_name=registration.get("last_name") or "",
        status=registration["status"],
        badge_code=registration["badge_code"],
        checked_in=registration.get("checkin") is not None,
        event_id=event["_id"],
        event_title=event["title"],
        when=format_when(event["starts_at"], event["ends_at"], event["timezone"]),
        when_lines=when_lines(event["starts_at"], event["ends_at"], event["timezone"]),
        venue=event.get("venue"),
    )


def get_registration(ctx: Context, org_id: str, registration_id: str) -> Doc:
    """A registration of the organization; another organization's is "not found"."""
    registration = ctx.store.registrations.get_in_org(registration_id, org_id)
    if registration is None:
        raise RuleBroken("registration_not_found", "no such registration in your organization")
    return registration


def event_badges(ctx: Context, org_id: str, event_id: str, *, skip: int, limit: int) -> tuple[list[Doc], int]:
    """The registrations that get a badge (not cancelled), by last name; and how many there are."""
    return ctx.store.registrations.badges_page(org_id, event_id, BADGE_STATUSES, skip, limit)


# -- search and filters ------------------------------------------------------------------------------


def _name_pattern(text: str) -> str | None:
    """A regex matching names that have a word starting with the folded text ("jos" finds "José")."""
    folded = " ".join(fold_name(text).split())
    if not folded:
        return None
    return r"(?:^|\s)" + re.escape(folded)


def _check_filter(wanted: RegistrationFilter) -> None:
    if len(wanted.text) > MAX_QUERY_LENGTH:
        raise RuleBroken("invalid_query", f"search text is limited to {MAX_QUERY_LENGTH} characters", "q")
    if wanted.status is not None and wanted.status not in STATUSES:
        raise RuleBroken("invalid_query", f"status must be one of {', '.join(STATUSES)}", "status")


def with_emails(ctx: Context, org_id: str, registrations: list[Doc]) -> list[Doc]:
    """The registrations with each person's email (one query for the page)."""
    ids = list({reg["person_id"] for reg in registrations})
    emails = ctx.store.people.emails(org_id, ids)
    return [{**reg, "email": emails.get(reg["person_id"], "")} for reg in registrations]


def search_registrations(
    ctx: Context, org_id: str, event_id: str, wanted: RegistrationFilter, *, skip: int, limit: int
) -> tuple[list[Doc], int]:
    """One page of the event's matching registrations, by name, with emails; and the total.

    Search text matches a word of the name (accent-insensitive prefix) or the
    start of the email; emails live on people (registrations keep none).
    """
    _check_filter(wanted)
    text = wanted.text.strip()
    pattern = _name_pattern(text) if text else None
    person_ids = ctx.store.people.ids_by_email_prefix(org_id, normalize_email(text), MAX_EMAIL_MATCHES) if text else []
    found, total = ctx.store.registrations.search(org_id, event_id, wanted, pattern, person_ids, skip, limit)
    return with_emails(ctx, org_id, found), total


# -- arrivals and kiosks -----------------------------------------------------------------------------


def arrivals(ctx: Context, org_id: str, event_id: str, *, since: datetime | None, limit: int) -> list[Doc]:
    """The event's latest check-ins, newest first (received after ``since``, when given)."""
    return ctx.store.registrations.arrivals(org_id, event_id, since, limit)


def event_kiosks(ctx: Context, org_id: str, event_id: str) -> list[Doc]:
    """The kiosks paired (or being paired) to an event, with their check-ins today."""
    return kiosks.list_kiosks(ctx, org_id, event_id)


def kiosk_names(ctx: Context, event_id: str, kiosk_ids: list[str]) -> dict[str, str]:
    wanted = [kiosk_id for kiosk_id in set(kiosk_ids) if kiosk_id]
    if not wanted:
        return {}
    return ctx.store.kiosks.names(event_id, wanted)


# -- undoing a check-in ------------------------------------------------------------------------------


def checkin_undone_message(
    registration: Doc, checked_in_at: datetime, undone_at: datetime, undone_by: str, reason: str | None
) -> Envelope:
    """attendee.checkin_undone: followup and analytics count the person as not attended again."""
    return new_envelope(
        "attendee.checkin_undone",
        source=SOURCE,
        subject=registration["event_id"],
        data={
            "org_id": registration["org_id"],
            "event_id": registration["event_id"],
            "registration_id": registration["_id"],
            "person_id": registration["person_id"],
            "checked_in_at": to_rfc3339(checked_in_at),
            "undone_at": to_rfc3339(undone_at),
            "undone_by": undone_by,
            "reason": reason or "",
        },
    )


def undo_checkin(
    ctx: Context, org_id: str, event_id: str, registration_id: str, actor: Actor, reason: str | None = None
) -> tuple[Doc, Doc]:
    """Clear a registration's check-in, write who did it, when and what was there
    before (``checkin.undone`` in the audit trail), and publish ``attendee.checkin_undone``.

    One transaction: the registration, the person's visit count (so a fresh
    check-in counts the same visit again), the audit entry and the message;
    followup and analytics count the person as not attended again.
    Returns (the registration as it is now, the audit entry).
    """

    def work(tx: Transaction) -> tuple[Doc, Doc]:
        now = utcnow()
        registration = tx.store.registrations.get_in_org(registration_id, org_id)
        if registration is None or registration["event_id"] != event_id:
            raise RuleBroken("registration_not_found", "no such registration for this event")
        before = registration.get("checkin")
        if before is None:
            raise RuleBroken("not_checked_in", "this person is not checked in; there is nothing to undo")
        tx.store.registrations.clear_checkin(registration_id)
        tx.store.people.uncount_visit(registration["person_id"])
        entry = audit.record(
            tx.store,
            org_id,
            actor,
            CHECKIN_UNDONE,
            Subject("registration", registration_id),
            at=now,
            event_id=event_id,
            registration_id=registration_id,
            person_id=registration["person_id"],
            details={"reason": reason, "before": {"status": registration["status"], "checkin": before}},
        )
        tx.publish(checkin_undone_message(registration, before["received_at"], now, actor.id, reason))
        return {**registration, "checkin": None}, entry

    return ctx.uow().run(work)
