"""Contacts as follow-up sees them: built only from checkin's messages."""

from __future__ import annotations

from typing import Any

from turnout_common.emails import normalize_email


def contact_from_registration(data: dict[str, Any]) -> dict[str, Any]:
    """The fields a registration sets on the contact.

    Consent is taken from the latest registration only when given: a person
    who consented once and registers again without ticking the box has not
    withdrawn consent (withdrawal is the unsubscribe link); someone who never
    consented is never assumed to have.
    """
    fields: dict[str, Any] = {
        "org_id": data["org_id"],
        "email": data["email"],
        "email_norm": normalize_email(str(data["email"])),
        "first_name": data["first_name"],
        "last_name": data["last_name"],
    }
    return fields


def consent_update(data: dict[str, Any]) -> dict[str, Any]:
    """Consent given at this registration (never taken away by one without it)."""
    if data["consent_email"]:
        return {"consent_email": True, "consent_source": f"registration:{data['registration_id']}"}
    return {}
