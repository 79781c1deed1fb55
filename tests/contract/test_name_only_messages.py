"""Messages about a person known by name only (a Meetup roster): what checkin produces
passes the contracts, and analytics folds them without an address."""

from __future__ import annotations

from datetime import UTC, datetime

from checkin.domain.audit import Actor
from checkin.service_layer.messages import registered_message
from checkin.service_layer.people import updated_message
from checkin.service_layer.registrations import new_person_doc, new_registration_doc
from tests.contract.test_producers import _event, _fold
from turnout_common.contracts import registry

NOW = datetime(2026, 4, 4, 9, 30, tzinfo=UTC)


def test_a_name_only_registration_is_a_valid_message_with_a_null_email() -> None:
    event = _event()
    person = new_person_doc(event["org_id"], None, "Pat", "Doe", NOW, meetup_member_id="301100001")
    assert person["email"] is None and person["email_norm"] == "~meetup:301100001"
    registration = new_registration_doc(
        event, person, status="registered", consent_email=True, offers=None, seeks=None, source="import", now=NOW
    )
    assert (
        registration["consent_email"] is False and registration["email_hint"] is None
    )  # no consent without an address
    message = registered_message(registration, person, event)
    registry().validate(message)
    assert message.data["email"] is None
    assert event["_id"] in _fold(message).events  # analytics counts them like anyone


def test_an_address_given_at_the_kiosk_carries_the_answer_to_the_consent_box() -> None:
    person = {"_id": "p1", "org_id": "o1", "first_name": "Pat", "last_name": "Doe", "email": "pat@example.org"}
    kiosk = Actor(kind="kiosk", id="k1", label="Front door")
    for consent in (True, False):
        message = updated_message(person, None, NOW, kiosk, consent_email=consent, registration_id="r1")
        registry().validate(message)
        assert (message.data["consent_email"], message.data["registration_id"]) == (consent, "r1")
        assert "updated_by" not in message.data
    organizer = updated_message(person, "old@example.org", NOW, Actor(kind="user", id="u1", label="Owner"))
    assert "consent_email" not in organizer.data  # a correction never changes consent
