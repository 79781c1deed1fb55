"""Check-in rules as pure functions: no Flask, no MongoDB, no Kafka."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class EventKind(StrEnum):
    VOLUNTEER_SHIFT = "volunteer_shift"
    NETWORKING = "networking"
    WORKSHOP = "workshop"
    MEETING = "meeting"
    OTHER = "other"


class EventStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    ENDED = "ended"


class CheckinMethod(StrEnum):
    QR = "qr"
    SEARCH = "search"
    WALK_IN = "walk-in"
    STAFF = "staff"


class RuleBroken(ValueError):
    """A domain rule refused the request; ``code`` and ``field`` tell the caller why."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def fold_name(text: str) -> str:
    """Accent- and case-insensitive form for name search ("José" -> "jose")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def display_name(first_name: str, last_name: str) -> str:
    """What a kiosk may show: first name and last initial, never the full name or email."""
    initial = last_name.strip()[:1].upper()
    return f"{first_name.strip()} {initial}." if initial else first_name.strip()


def new_badge_code() -> str:
    """128 bits from the OS CSPRNG: unguessable, short enough for a small QR code."""
    return secrets.token_urlsafe(16)


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "America" is a directory
        raise RuleBroken("invalid_timezone", f"{name!r} is not an IANA time zone", "timezone") from exc


@dataclass(frozen=True, slots=True)
class Schedule:
    """When an event runs and when its door is open."""

    starts_at: datetime
    ends_at: datetime
    checkin_opens_at: datetime
    checkin_closes_at: datetime


def plan_schedule(
    starts_at: datetime,
    ends_at: datetime,
    opens_minutes_before: int,
    closes_minutes_after: int,
) -> Schedule:
    if ends_at <= starts_at:
        raise RuleBroken("invalid_schedule", "ends_at must be after starts_at", "ends_at")
    if ends_at - starts_at > timedelta(days=14):
        raise RuleBroken("invalid_schedule", "an event may last at most 14 days", "ends_at")
    return Schedule(
        starts_at=starts_at,
        ends_at=ends_at,
        checkin_opens_at=starts_at - timedelta(minutes=opens_minutes_before),
        checkin_closes_at=ends_at + timedelta(minutes=closes_minutes_after),
    )


def check_door_open(status: str, opens_at: datetime, closes_at: datetime, now: datetime, override: bool) -> None:
    """Refuse a check-in the door should not take; staff may override the window."""
    if status == EventStatus.CANCELLED:
        raise RuleBroken("event_cancelled", "this event was cancelled; check-in is closed")
    if override:
        return
    if now < opens_at:
        raise RuleBroken(
            "checkin_not_open",
            f"check-in opens at {opens_at:%H:%M} UTC; door staff can override",
        )
    if now > closes_at:
        raise RuleBroken(
            "checkin_closed",
            f"check-in closed at {closes_at:%H:%M} UTC; door staff can override",
        )


def registration_status(capacity: int | None, registered_count: int) -> str:
    """New registrations go on the waitlist once capacity is reached."""
    if capacity is not None and registered_count >= capacity:
        return "waitlisted"
    return "registered"


def normalize_tags(tags: list[str]) -> list[str]:
    """Offers/seeks tags: lower-case, single-spaced, de-duplicated, order kept."""
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = " ".join(fold_name(tag).replace("#", " ").split())[:60].strip()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)[:20]


def volunteer_hours(checked_in_at: datetime, checked_out_at: datetime) -> float:
    """Hours between check-in and check-out, to the quarter hour, never negative."""
    seconds = max(0.0, (checked_out_at - checked_in_at).total_seconds())
    return round(seconds / 900) / 4


MAX_PARTY = 100


def normalize_party(value: str | None) -> str | None:
    """A registration's group/order key: trimmed, single-spaced, at most 100 characters; blank means none.

    Registrations of one event with the same party came together (one order,
    one family); a longer key is refused, never cut (two orders must not merge).
    """
    if value is None:
        return None
    cleaned = " ".join(value.split())
    if not cleaned:
        return None
    if len(cleaned) > MAX_PARTY:
        raise RuleBroken("invalid_field", f"party: at most {MAX_PARTY} characters", "party")
    return cleaned
