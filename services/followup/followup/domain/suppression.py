"""The suppression list's rules: one entry per organization and address, and
who may lift it.

An erased person's entries stay, keyed by a one-way digest of the address
instead of the address (``erased_suppression_id``): a registration that
brings the address back is still refused what the old unsubscribe or bounce
refused, and nobody can read the address off the list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from turnout_common.emails import normalize_email
from turnout_common.privacy import email_digest

UNSUBSCRIBED = "unsubscribed"  # the person's own unsubscribe
ORGANIZER = "organizer"  # an organizer blocked the address
HARD_BOUNCE = "hard_bounce"  # the mail system said the address does not exist


def suppression_id(org_id: str, email: str) -> str:
    """The entry's key: the organization and the address's comparison key."""
    return f"{org_id}:{normalize_email(email)}"


def erased_suppression_id(org_id: str, email_key: str) -> str:
    """The key an erased person's entry is kept under: the organization and the address's digest."""
    return f"{org_id}:{email_digest(org_id, email_key)}"


def suppression_ids(org_id: str, email: str) -> tuple[str, str]:
    """Both keys an address may be suppressed under (plain, and as an erased person's digest)."""
    return suppression_id(org_id, email), erased_suppression_id(org_id, normalize_email(email))


def erased_suppression_entry(doc: dict[str, Any], stand_in: str, now: datetime) -> dict[str, Any]:
    """An entry of an erased person: the reason and date stay; the address becomes its digest."""
    org_id = str(doc["org_id"])
    key = str(doc.get("email_norm") or normalize_email(str(doc.get("email") or "")))
    return {
        "org_id": org_id,
        "email": None,
        "email_norm": None,
        "email_digest": email_digest(org_id, key),
        "reason": doc.get("reason"),
        "detail": "",
        "person_id": stand_in,
        "created_at": doc.get("created_at") or now,
        "erased_at": now,
    }


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
