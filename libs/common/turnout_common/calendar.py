"""Calendar files (RFC 5545) for a gathering: what a registration confirmation
attaches and what the registration page offers as "Add to calendar".

Pure: no I/O; the caller passes every fact. Used by checkin (the download on
the confirmation page, ``METHOD:PUBLISH``) and by follow-up (the confirmation
email and its updates, ``METHOD:REQUEST``, and cancellations,
``METHOD:CANCEL``), so both services write the same event the same way:

- the ``UID`` is per gathering (``event_uid``: a UUID derived from the
  organization and the gathering), so a calendar that has the event updates it
  in place when the gathering moves or is cancelled, whoever downloaded or was
  sent it;
- the ``SEQUENCE`` comes from the time of the gathering's last change (its
  edit or its cancellation; 0 before any edit): ``sequence_at`` counts the
  seconds from 2024-01-01 UTC, so both services derive it from the same moment
  without sharing a counter, it grows with every change, and it stays inside
  RFC 5545's 32-bit INTEGER until 2092; ``next_sequence`` keeps it strictly
  growing when two changes fall in the same second;
- ``DTSTART``/``DTEND`` carry the gathering's ``TZID`` with its ``VTIMEZONE``
  (the transitions of the years around the gathering), so a calendar shows
  the local time of the place even across a DST change.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

PRODID = "-//Turnout//Gatherings//EN"
# Fixed forever: changing it would change every gathering's UID.
UID_NAMESPACE = uuid.UUID("5b0f4a6e-8f0c-5c7e-9a57-6f1d3b2c7e11")
SEQUENCE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
MAX_SEQUENCE = 2**31 - 1

REQUEST = "REQUEST"  # an invitation, or its update (same UID, higher SEQUENCE)
CANCEL = "CANCEL"  # the gathering is cancelled
PUBLISH = "PUBLISH"  # a plain download: no attendee, nothing to answer
METHODS = (REQUEST, CANCEL, PUBLISH)
CONTENT_TYPE = "text/calendar"


def event_uid(org_id: str, event_id: str) -> str:
    """The gathering's UID in every calendar file about it (stable, reveals nothing)."""
    return f"{uuid.uuid5(UID_NAMESPACE, f'{org_id}/{event_id}')}"


def sequence_at(changed_at: datetime | None) -> int:
    """The ``SEQUENCE`` of a gathering last changed at ``changed_at`` (None: never: 0)."""
    if changed_at is None:
        return 0
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    seconds = int((changed_at - SEQUENCE_EPOCH).total_seconds())
    return max(0, min(MAX_SEQUENCE, seconds))


def next_sequence(previous: int | None, changed_at: datetime | None) -> int:
    """The ``SEQUENCE`` after a change at ``changed_at``: from its time, and always above
    the one before (two edits within a second, a clock a little behind)."""
    return min(MAX_SEQUENCE, max(sequence_at(changed_at), (previous or 0) + 1))


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Gathering:
    """What a calendar file says about a gathering."""

    org_id: str
    event_id: str
    title: str
    starts_at: datetime  # aware
    ends_at: datetime  # aware
    timezone: str  # IANA name
    venue: str | None = None
    description: str | None = None
    url: str | None = None  # the gathering's page
    cancelled: bool = False
    changed_at: datetime | None = None  # last edit or cancellation (LAST-MODIFIED)
    sequence: int = 0  # ``sequence_at(changed_at)``, or a stored ``next_sequence``

    @property
    def uid(self) -> str:
        return event_uid(self.org_id, self.event_id)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _description(gathering: Gathering) -> str:
    parts = [text for text in ((gathering.description or "").strip(),) if text]
    if gathering.url:
        parts.append(f"Event page: {gathering.url}")
    return "\n\n".join(parts)


def calendar_file(
    gathering: Gathering,
    *,
    method: str,
    organizer: Person | None,
    stamp: datetime,
    attendee: Person | None = None,
) -> bytes:
    """The ``VCALENDAR`` (one ``VEVENT`` and its ``VTIMEZONE``) as bytes, CRLF lines.

    ``REQUEST`` and ``CANCEL`` name the ``organizer`` and the ``attendee`` (iTIP
    requires them; a ``PUBLISH`` may go without an organizer);
    ``CANCEL`` also marks the event ``STATUS:CANCELLED`` (as does a cancelled
    gathering in a ``PUBLISH``)."""
    if method not in METHODS:
        raise ValueError(f"unknown calendar method {method!r}")
    if method != PUBLISH and (attendee is None or organizer is None):
        raise ValueError(f"a {method} names its organizer and its attendee")
    # icalendar is imported when the first file is written: a process that never
    # writes one (most of them, most of the time) does not carry it (about 7 MB).
    from icalendar import Calendar, Event, vCalAddress, vText

    zone = ZoneInfo(gathering.timezone)
    starts = _aware(gathering.starts_at).astimezone(zone)
    ends = _aware(gathering.ends_at).astimezone(zone)
    if ends <= starts:
        ends = starts + timedelta(hours=1)

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)

    event = Event()
    event.add("uid", gathering.uid)
    event.add("sequence", gathering.sequence)
    event.add("dtstamp", _aware(stamp).astimezone(UTC))
    event.add("dtstart", starts)
    event.add("dtend", ends)
    event.add("summary", gathering.title)
    if gathering.venue:
        event.add("location", gathering.venue)
    description = _description(gathering)
    if description:
        event.add("description", description)
    if gathering.url:
        event.add("url", gathering.url)
    cancelled = method == CANCEL or gathering.cancelled
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    if gathering.changed_at is not None:
        event.add("last-modified", _aware(gathering.changed_at).astimezone(UTC))

    if organizer is not None:
        organizer_address = vCalAddress(f"mailto:{organizer.email}")
        if organizer.name:
            organizer_address.params["cn"] = vText(organizer.name)
        event.add("organizer", organizer_address)
    if attendee is not None and method != PUBLISH:
        address = vCalAddress(f"mailto:{attendee.email}")
        if attendee.name:
            address.params["cn"] = vText(attendee.name)
        address.params["role"] = vText("REQ-PARTICIPANT")
        address.params["partstat"] = vText("ACCEPTED")  # they registered: nothing to answer
        address.params["rsvp"] = vText("FALSE")
        event.add("attendee", address)
    cal.add_component(event)
    # The zone's rules for the years around the gathering (not 1970-2038: a few lines, not pages).
    cal.add_missing_timezones(
        first_date=date(starts.year - 1, 1, 1),
        last_date=date(ends.year + 2, 1, 1),
    )
    return bytes(cal.to_ical())


def file_name(title: str) -> str:
    """A safe attachment or download name for the gathering's file."""
    folded = unicodedata.normalize("NFKD", title.strip()).encode("ascii", "ignore").decode("ascii")
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in folded)
    cleaned = "-".join(part for part in cleaned.split("-") if part)[:60]
    return f"{cleaned or 'event'}.ics"
