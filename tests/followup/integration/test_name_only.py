"""A name-only registrant (a Meetup roster without addresses) on the real SecantusDB and a real
SMTP server: no follow-up of any kind and no guessed address; once they give an address at
the kiosk with the consent box ticked, they are a normal contact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from followup.adapters.mongo import CONSENT_HISTORY, CONTACTS, NUDGES
from followup.bootstrap import MongoServices
from followup.service_layer.scheduling import run_scheduler_once
from followup.service_layer.sending import send_due_nudges
from tests.followup.helpers import SOURCE, Gathering, SmtpServer, person_updated
from tests.followup.integration.conftest import apply
from turnout_common.envelope import Envelope, new_envelope

pytestmark = pytest.mark.integration


def name_only(registered: Envelope) -> Envelope:
    """The same registration as checkin publishes it for a person without an address."""
    data: dict[str, Any] = {**registered.data, "email": None, "consent_email": False, "source": "import"}
    return new_envelope("attendee.registered", source=SOURCE, subject=registered.subject, data=data)


def kiosk_address(org_id: str, person_id: str, email: str, *, consent: bool, registration_id: str) -> Envelope:
    message = person_updated(org_id, person_id, "Pat", email, last_name="Doe", at=datetime.now(UTC))
    data = {**message.data, "consent_email": consent, "registration_id": registration_id}
    data.pop("updated_by")
    return new_envelope("person.updated", source=SOURCE, subject=person_id, data=data)


def test_a_name_only_registrant_gets_nothing_until_they_give_an_address_and_consent(
    svc: MongoServices, smtp: SmtpServer, org_id: str
) -> None:
    first = Gathering(org_id, kind="networking", starts_at=datetime.now(UTC) - timedelta(days=3))
    pat, ada = f"p-{uuid.uuid4().hex[:12]}", f"p-{uuid.uuid4().hex[:12]}"
    apply(
        svc,
        [
            first.scheduled(),
            name_only(first.registered(pat, "Pat", "unused@example.org", last_name="Doe")),
            first.registered(ada, "Ada", "ada@example.org"),
            first.checked_in(pat, first_time=True),
            first.checked_in(ada),
            first.ended(),
        ],
    )
    contact = svc.db[CONTACTS].find_one({"_id": pat})
    assert contact is not None and contact["email"] is None and contact["email_norm"] is None
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    # Ada (an address, consent) is thanked; Pat gets no email of any kind, to no address.
    assert {item.to for item in smtp.handler.received} == {"ada@example.org"}
    assert svc.db[NUDGES].count_documents({"person_id": pat, "state": "sent"}) == 0

    # At the next gathering Pat gives an address at the kiosk, without ticking the box: still nothing.
    second = Gathering(org_id, kind="networking", title="Second evening")
    registration_id = f"r-{pat}-{second.event_id}"[:64]
    apply(svc, [second.scheduled(), name_only(second.registered(pat, "Pat", "x@example.org", last_name="Doe"))])
    apply(
        svc,
        [
            second.checked_in(pat),
            kiosk_address(org_id, pat, "pat@example.org", consent=False, registration_id=registration_id),
        ],
    )
    contact = svc.db[CONTACTS].find_one({"_id": pat})
    assert contact is not None and (contact["email"], bool(contact.get("consent_email"))) == ("pat@example.org", False)

    # Ticked: consent is granted, recorded as given at the kiosk, and the next email goes to that address.
    apply(svc, [kiosk_address(org_id, pat, "pat@example.org", consent=True, registration_id=registration_id)])
    contact = svc.db[CONTACTS].find_one({"_id": pat})
    assert contact is not None and contact["consent_email"] is True
    (entry,) = svc.db[CONSENT_HISTORY].find({"person_id": pat})
    assert (entry["change"], entry["by"]) == ("granted", "kiosk")
    apply(svc, [second.ended()])
    run_scheduler_once(svc, "test")
    send_due_nudges(svc)
    assert [item.to for item in smtp.handler.received if item.to != "ada@example.org"] == ["pat@example.org"]
