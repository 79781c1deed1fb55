"""The suppression list's rules: one entry per organization and address, and
who may lift it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from turnout_common.emails import normalize_email

UNSUBSCRIBED = "unsubscribed"  # the person's own unsubscribe
ORGANIZER = "organizer"  # an organizer blocked the address
HARD_BOUNCE = "hard_bounce"  # the mail system said the address does not exist


def suppression_id(org_id: str, email: str) -> str:
    """The entry's key: the organization and the address's comparison key."""
    return f"{org_id}:{normalize_email(email)}"


def suppression_entry(
    org_id: str, email: str, reason: str, detail: str, now: datetime, person_id: str | None
) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "email": email,
        "email_norm": normalize_email(email),
        "reason": reason,
        "detail": detail[:1000],
        "person_id": person_id,
        "created_at": now,
    }


def lift_refusal(reason: str) -> str | None:
    """Why an organizer may not lift an entry with this reason, or None when they may."""
    if reason == UNSUBSCRIBED:
        return "this person unsubscribed themselves; only they can subscribe again"
    return None


def lifts_contact_unsubscribe(reason: str) -> bool:
    """Lifting an organizer's block also lifts the contacts' unsubscribe it caused."""
    return reason == ORGANIZER
