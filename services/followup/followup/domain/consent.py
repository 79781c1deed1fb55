"""Consent history: every change of a person's consent to follow-up email,
append-only, with what caused it.

The *current* consent is the contact's (consent given, not unsubscribed, the
address not suppressed); each nudge is decided on it at send time. The
history only tells how it came to be: granted at a registration, an import
or a walk-in; withdrawn by the unsubscribe link, a hard bounce or an
organizer; granted again when an organizer lifts their own block.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

GRANTED = "granted"
WITHDRAWN = "withdrawn"

# What changed it.
REGISTRATION = "registration"  # the registration form or the API
IMPORT = "import"  # a CSV import
WALK_IN = "walk-in"  # registered at the kiosk as a walk-in
UNSUBSCRIBE_LINK = "unsubscribe_link"  # the link (or one-click header) in an email
BOUNCE = "bounce"  # the address does not exist (the mail system said so)
ORGANIZER = "organizer"  # an organizer blocked the address, or lifted their block

_BY_SOURCE = {"import": IMPORT, "walk-in": WALK_IN, "api": REGISTRATION, "public": REGISTRATION}


def registration_source(source: str | None) -> str:
    """What a registration's ``source`` counts as in the history."""
    return _BY_SOURCE.get(str(source or ""), REGISTRATION)


def granted_by_registration(current: Mapping[str, Any] | None, consent_given: bool) -> bool:
    """A registration grants consent when it gives it and the contact had not (a later
    registration without the box ticked withdraws nothing: that is the unsubscribe link)."""
    return consent_given and not bool((current or {}).get("consent_email"))


def entry(
    org_id: str,
    person_id: str,
    change: str,
    by: str,
    at: datetime,
    *,
    message_id: str | None,
    entry_id: str,
    detail: str = "",
    followup_id: str | None = None,
) -> dict[str, Any]:
    """One line of the history (``entry_id`` keeps a redone step from writing it twice)."""
    return {
        "_id": entry_id,
        "org_id": org_id,
        "person_id": person_id,
        "change": change,
        "by": by,
        "at": at,
        "message_id": message_id,
        "followup_id": followup_id,
        "detail": detail[:200],
    }
