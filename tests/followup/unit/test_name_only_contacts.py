"""A person known by name only (a Meetup roster): follow-up keeps them as a contact
without an address, never guesses one, and takes consent only when given with the address."""

from __future__ import annotations

from typing import Any

from followup.domain.audience import ContactFacts, unreachable_reason
from followup.domain.contacts import (
    consent_given_with_address,
    consent_update,
    contact_from_registration,
    corrected_details,
)


def registration(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "org_id": "org-1",
        "registration_id": "reg-1",
        "person_id": "p-1",
        "first_name": "Pat",
        "last_name": "Doe",
        "email": None,
        "consent_email": False,
        "source": "import",
    }
    data.update(changes)
    return data


def test_a_name_only_registration_makes_a_contact_without_any_address() -> None:
    fields = contact_from_registration(registration())
    assert fields["email"] is None and fields["email_norm"] is None  # never "none", never a guess
    assert (fields["first_name"], fields["last_name"]) == ("Pat", "Doe")


def test_consent_without_an_address_grants_nothing() -> None:
    assert consent_update(registration(consent_email=True)) == {}
    assert consent_update(registration(email="pat@example.org", consent_email=True))["consent_email"] is True


def test_a_contact_without_an_address_is_unreachable_even_with_consent() -> None:
    assert unreachable_reason(ContactFacts(email=None, consent=True)) == "no_contact"
    assert unreachable_reason(ContactFacts(email="", consent=True)) == "no_contact"


def update(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "org_id": "org-1",
        "person_id": "p-1",
        "first_name": "Pat",
        "last_name": "Doe",
        "email": "pat@example.org",
        "updated_at": "2026-04-11T18:07:41Z",
    }
    data.update(changes)
    return data


def test_an_address_given_at_the_kiosk_with_the_box_ticked_grants_consent() -> None:
    granted = consent_given_with_address(update(consent_email=True, registration_id="reg-1"))
    assert granted == {"consent_email": True, "consent_source": "kiosk:reg-1"}
    assert corrected_details(update())["email_norm"] == "pat@example.org"


def test_an_address_without_the_box_or_a_correction_grants_no_consent() -> None:
    assert consent_given_with_address(update(consent_email=False, registration_id="reg-1")) == {}
    assert consent_given_with_address(update()) == {}  # an organizer's correction never changes consent
    assert consent_given_with_address(update(email=None, consent_email=True)) == {}
