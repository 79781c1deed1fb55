"""The retention policy as owners see it, and what checkin's sweep strips.

The periods themselves (``RetentionPeriods``, their defaults and bounds) are
shared by every service (``turnout_common.privacy``); an organization's are
stored on its document as ``retention_periods`` (absent: the defaults).
Here: what each kind covers and which services enforce it, the schedule with
today's cut-off dates, reading an owner's input with errors that name the
field, and the fields of an old event's registrations the sweep clears.

Pure: no storage, no clock, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from turnout_common.privacy import DEFAULT_RETENTION, MAX_MONTHS, MIN_MONTHS, RetentionPeriods, months_ago

KINDS: tuple[str, ...] = tuple(DEFAULT_RETENTION.as_dict())


@dataclass(frozen=True, slots=True)
class KindInfo:
    label: str
    covers: str
    enforced_by: tuple[str, ...]


KIND_INFO: dict[str, KindInfo] = {
    "checkin_details": KindInfo(
        "Check-in details",
        "Per-scan request records, the kiosk and staff member behind each check-in and check-out, "
        "and walk-ins' answers, for events that ended longer ago; the registration, its status and "
        "check-in time stay (attendance counts survive).",
        ("checkin", "analytics"),
    ),
    "message_bodies": KindInfo(
        "Message bodies",
        "The rendered text of sent follow-up emails; the record of what was sent, to whom and when stays.",
        ("followup",),
    ),
    "delivery_journal": KindInfo(
        "Delivery journal",
        "Each attempt handed to the mail server (server answers, retries).",
        ("followup",),
    ),
    "tracking_events": KindInfo(
        "Opens and clicks",
        "Opens and clicks as recorded (device, address clicked); the counts stay.",
        ("followup", "analytics"),
    ),
    "inactive_people": KindInfo(
        "Inactive people",
        "A person with no registration or visit for this long is erased from every service, "
        "as if they had asked (their visits stay in the counts, anonymously).",
        ("checkin", "followup", "analytics"),
    ),
}


class PolicyInvalid(ValueError):
    """An owner's periods were refused; ``field`` names the kind."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def stored_periods(stored: Any) -> RetentionPeriods:
    """An organization's periods from its document's ``retention_periods`` (absent or unusable: the defaults)."""
    if not isinstance(stored, dict):
        return DEFAULT_RETENTION
    try:
        return RetentionPeriods.from_dict(stored)
    except (TypeError, ValueError):
        return DEFAULT_RETENTION


def read_periods(values: dict[str, Any], current: RetentionPeriods = DEFAULT_RETENTION) -> RetentionPeriods:
    """The periods an owner asked for: each kind given replaces ``current``'s, the others stay.

    Raises ``PolicyInvalid`` naming the first bad kind (unknown, not a whole number, out of bounds).
    """
    for name in values:
        if name not in KINDS:
            raise PolicyInvalid(name, f"{name} is not a kind of data; the kinds are {', '.join(KINDS)}")
    merged = current.as_dict()
    for name in KINDS:
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        merged[name] = value
        try:
            RetentionPeriods(**{name: value}).check()
        except (TypeError, ValueError) as exc:
            raise PolicyInvalid(
                name, f"{name} must be a whole number of months from {MIN_MONTHS} to {MAX_MONTHS}"
            ) from exc
    periods = RetentionPeriods(**merged)
    periods.check()
    return periods


def changes(before: RetentionPeriods, after: RetentionPeriods) -> dict[str, dict[str, int]]:
    """What an owner changed: {kind: {"from": months, "to": months}}."""
    old, new = before.as_dict(), after.as_dict()
    return {name: {"from": old[name], "to": new[name]} for name in KINDS if old[name] != new[name]}


def cutoff(now: datetime, months: int) -> datetime:
    """Data older than this (events ended before it, for check-in details) is due for removal."""
    result: datetime = months_ago(now, months)
    return result


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    kind: str
    label: str
    months: int
    default_months: int
    covers: str
    enforced_by: tuple[str, ...]
    cutoff: datetime

    @property
    def is_default(self) -> bool:
        return self.months == self.default_months


def schedule(periods: RetentionPeriods, now: datetime) -> list[ScheduleRow]:
    """Each kind with its period, its default, what it covers, who enforces it and today's cut-off."""
    months, defaults = periods.as_dict(), DEFAULT_RETENTION.as_dict()
    return [
        ScheduleRow(
            kind=name,
            label=KIND_INFO[name].label,
            months=months[name],
            default_months=defaults[name],
            covers=KIND_INFO[name].covers,
            enforced_by=KIND_INFO[name].enforced_by,
            cutoff=cutoff(now, months[name]),
        )
        for name in KINDS
    ]


# -- checkin's sweep of old check-in details -----------------------------------------------------------

# On every registration of a swept event: who and which device took the check-in and check-out.
DEVICE_FIELDS: tuple[str, ...] = ("kiosk_id", "actor_id")
# On a walk-in's registration: what they answered at the kiosk.
WALK_IN_ANSWERS: tuple[str, ...] = ("offers", "seeks")
WALK_IN_SOURCE = "walk-in"


def stripped(registration: dict[str, Any]) -> dict[str, Any]:
    """The registration as the sweep leaves it: status, person and check-in time kept; details cleared."""
    result = dict(registration)
    for part in ("checkin", "checkout"):
        record = result.get(part)
        if isinstance(record, dict):
            result[part] = {**record, **dict.fromkeys(DEVICE_FIELDS)}
    if result.get("source") == WALK_IN_SOURCE:
        result.update({name: [] for name in WALK_IN_ANSWERS})
    return result
