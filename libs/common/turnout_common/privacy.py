"""Personal data across the services: the keys an erased person leaves behind,
and the retention periods every service enforces.

An erased person must not come back (a redelivered or replayed message about
them stays erased), yet no collection may keep their name, email or id. So a
service remembers only one-way digests:

- ``pseudonym(org_id, person_id)`` replaces the person's id wherever a record
  must stay for the aggregates (an event's attendance, cohorts, the funnel):
  the same person always maps to the same pseudonym, so a rebuild from an
  anonymised archive counts them exactly as before, and nobody can turn it
  back into the id (ids are random; the digest is SHA-256).
- ``email_digest(org_id, email_key)`` is what a service keeps of an erased
  person's address when it must still recognise it (a suppression, a
  tombstone): a search for the address finds nothing.

Pure: the domain layers may import it.
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

ERASED_NAME = "(erased)"
PSEUDONYM_PREFIX = "anon-"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def pseudonym(org_id: str, person_id: str) -> str:
    """The stand-in id of an erased person within their organization (stable, one-way)."""
    if person_id.startswith(PSEUDONYM_PREFIX):
        return person_id
    return PSEUDONYM_PREFIX + _digest("person", org_id, person_id)[:32]


def email_digest(org_id: str, email_key: str) -> str:
    """A one-way digest of an (already normalized) email address within an organization."""
    return "sha256:" + _digest("email", org_id, email_key)


def is_pseudonym(value: str) -> bool:
    return value.startswith(PSEUDONYM_PREFIX)


# -- retention -------------------------------------------------------------------------------------

MIN_MONTHS = 1
MAX_MONTHS = 120


@dataclass(frozen=True, slots=True)
class RetentionPeriods:
    """Months each kind of personal data is kept; the defaults apply until an owner sets others.

    - ``checkin_details``: raw check-in details (checkin's per-scan request
      records, kiosk and device fields, walk-in answers; analytics' raw rows).
    - ``message_bodies``: the rendered bodies of sent messages (followup).
    - ``delivery_journal``: each attempt handed to the mail server (followup).
    - ``tracking_events``: opens and clicks as recorded (followup, analytics);
      the counts stay.
    - ``inactive_people``: a person with no registration or visit for this
      long is erased from every service (checkin asks, as for any erasure).
    """

    checkin_details: int = 24
    message_bodies: int = 6
    delivery_journal: int = 12
    tracking_events: int = 12
    inactive_people: int = 36

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RetentionPeriods:
        """Periods from ``retention.policy_set``'s ``periods`` (missing kinds keep their default)."""
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        periods = cls(**known)
        periods.check()
        return periods

    def check(self) -> None:
        for name, months in self.as_dict().items():
            if not isinstance(months, int) or isinstance(months, bool) or not MIN_MONTHS <= months <= MAX_MONTHS:
                raise ValueError(f"{name} must be a whole number of months from {MIN_MONTHS} to {MAX_MONTHS}")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


DEFAULT_RETENTION = RetentionPeriods()


def months_ago(now: Any, months: int) -> Any:
    """``now`` minus whole calendar months (the day clamped to the target month's length)."""
    year, month = divmod(now.year * 12 + (now.month - 1) - months, 12)
    month += 1
    day = min(now.day, calendar.monthrange(year, month)[1])
    return now.replace(year=year, month=month, day=day)
