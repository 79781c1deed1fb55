"""Contacts as follow-up sees them: built only from checkin's messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from turnout_common.emails import normalize_email


def contact_from_registration(data: dict[str, Any]) -> dict[str, Any]:
    """The fields a registration sets on the contact.

    Consent is taken from the latest registration only when given: a person
    who consented once and registers again without ticking the box has not
    withdrawn consent (withdrawal is the unsubscribe link); someone who never
    consented is never assumed to have.
    """
    email = data.get("email") or None  # None: a name-only person, never sent anything
    fields: dict[str, Any] = {
        "org_id": data["org_id"],
        "email": email,
        "email_norm": normalize_email(str(email)) if email else None,
        "first_name": data["first_name"],
        "last_name": data["last_name"],
    }
    return fields


def consent_update(data: dict[str, Any]) -> dict[str, Any]:
    """Consent given at this registration (never taken away by one without it; none without an address)."""
    if data["consent_email"] and data.get("email"):
        return {"consent_email": True, "consent_source": f"registration:{data['registration_id']}"}
    return {}


def details_replace(current_at: datetime | None, message_at: datetime | None) -> bool:
    """A message's name and address replace the contact's unless the contact holds newer ones
    (a correction made after a registration wins over that registration replayed later)."""
    if current_at is None or message_at is None:
        return True
    return message_at >= current_at


DETAIL_FIELDS = ("email", "email_norm", "first_name", "last_name")


def corrected_details(data: dict[str, Any]) -> dict[str, Any]:
    """The fields a ``person.updated`` sets on the contact (a person may have no address)."""
    email = data.get("email")
    return {
        "email": email,
        "email_norm": normalize_email(str(email)) if email else None,
        "first_name": data["first_name"],
        "last_name": data.get("last_name") or "",
    }


KIOSK_CONSENT = "kiosk"  # the consent history's "by": given at the kiosk with the address


def consent_given_with_address(data: dict[str, Any]) -> dict[str, Any]:
    """The consent a ``person.updated`` grants: only when the person gave their address
    themselves (at the kiosk) and ticked the box; never assumed, never taken away here."""
    if data.get("consent_email") is True and data.get("email"):
        return {"consent_email": True, "consent_source": f"kiosk:{data.get('registration_id') or ''}".rstrip(":")}
    return {}
