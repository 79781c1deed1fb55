"""People of an organization: finding them, reading one (audited) and correcting their name or email.

A correction writes the person and the copies on their registrations in one
transaction, records ``person.corrected`` (which fields, never the values)
and publishes ``person.updated`` (with ``previous_email`` when the address
changed), so followup writes to the new address under the new name and
analytics shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from checkin.domain import privacy as rules
from checkin.domain.audit import PERSON_CORRECTED, PERSONAL_DATA_VIEWED, Actor, Subject
from checkin.domain.model import RuleBroken, fold_name
from checkin.service_layer import audit
from checkin.service_layer.context import Context
from checkin.service_layer.messages import SOURCE
from checkin.service_layer.ports import AlreadyStored, Transaction
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.emails import normalize_email
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.types import Doc

MAX_QUERY_LENGTH = 100
MAX_PAGE_SIZE = 200
# How many of a person's data requests their page lists.
REQUESTS_SHOWN = 20


def _name_pattern(text: str) -> str | None:
    """Names with a word starting with the folded text ("jos" finds "José")."""
    folded = " ".join(fold_name(text).split())
    return r"(?:^|\s)" + re.escape(folded) if folded else None


def search(ctx: Context, org_id: str, text: str, *, skip: int, limit: int) -> tuple[list[Doc], int]:
    """The organization's people whose name has a word starting with ``text`` or
    whose email starts with it (all people for no text), by email; and the total."""
    text = text.strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise RuleBroken("invalid_query", f"q is limited to {MAX_QUERY_LENGTH} characters", "q")
    if not text.isprintable():
        raise RuleBroken("invalid_query", "q contains characters that cannot be searched for", "q")
    if not text:
        return ctx.store.person_data.search(org_id, None, None, skip, min(limit, MAX_PAGE_SIZE))
    return ctx.store.person_data.search(
        org_id, normalize_email(text), _name_pattern(text), skip, min(limit, MAX_PAGE_SIZE)
    )


@dataclass(frozen=True, slots=True)
class PersonView:
    """A person with their registrations (newest last), each registration's event, and their data requests."""

    person: Doc
    registrations: list[Doc]
    events: dict[str, Doc]
    requests: list[Doc]


def view(ctx: Context, org_id: str, person_id: str, viewer: Actor, *, what: str = "person page") -> PersonView:
    """The person (404 for another organization's) and their records; records ``personal_data.viewed``."""

    def work(tx: Transaction) -> PersonView:
        store = tx.store
        person = store.person_data.person(org_id, person_id)
        if person is None:
            raise RuleBroken("person_not_found", "no such person in your organization")
        found = store.person_data.registrations(org_id, person_id)
        events = store.person_data.events(org_id, sorted({reg["event_id"] for reg in found}))
        requests = store.data_requests.of_person(org_id, person_id, REQUESTS_SHOWN)
        audit.record(store, org_id, viewer, PERSONAL_DATA_VIEWED, Subject("person", person_id), details={"what": what})
        return PersonView(person, found, events, requests)

    return ctx.uow().run(work)


def correct(
    ctx: Context, org_id: str, person_id: str, wanted: Doc, by: Actor, now: datetime | None = None
) -> tuple[Doc, tuple[str, ...]]:
    """Correct the person's first_name, last_name and/or email; returns (the person now, the fields changed).

    ``RuleBroken``: ``person_not_found`` (404), ``invalid_field`` (400),
    ``email_taken`` (409: another person of the organization has that address).
    Nothing changed: nothing is written or published.
    """

    def work(tx: Transaction) -> tuple[Doc, tuple[str, ...]]:
        moment = now or utcnow()
        store = tx.store
        person = store.person_data.person(org_id, person_id)
        if person is None:
            raise RuleBroken("person_not_found", "no such person in your organization")
        change = rules.correction(person, wanted)
        if not change.fields:
            return person, ()
        if change.email_changed:
            other = store.person_data.by_email(org_id, change.person_changes["email_norm"])
            if other is not None and other["_id"] != person_id:
                raise RuleBroken("email_taken", "another person of your organization has this email address", "email")
        try:
            store.person_data.correct(person_id, {**change.person_changes, "updated_at": moment})
        except AlreadyStored as exc:
            raise RuleBroken(
                "email_taken", "another person of your organization has this email address", "email"
            ) from exc
        registrations = store.person_data.registrations(org_id, person_id)
        store.person_data.correct_registrations([reg["_id"] for reg in registrations], change.registration_changes)
        updated = {**person, **change.person_changes, "updated_at": moment}
        audit.record(
            store,
            org_id,
            by,
            PERSON_CORRECTED,
            Subject("person", person_id),
            at=moment,
            details={"fields": list(change.fields)},
        )
        tx.publish(updated_message(updated, change.previous_email, moment, by))
        return updated, change.fields

    return ctx.uow().run(work)


def give_email_at_kiosk(
    ctx: Context,
    org_id: str,
    event_id: str,
    registration_id: str,
    email: str,
    consent_email: bool,
    by: Actor,
    now: datetime | None = None,
) -> Doc:
    """A name-only person who just checked in at the kiosk gives their address (asked once,
    skippable): they become a normal contact, with consent to follow-up email only if they
    ticked the box. Returns the registration as it is now.

    ``RuleBroken``: ``registration_not_found`` (404: not this kiosk's event),
    ``not_checked_in`` (409), ``email_already_set`` (409: the person has an address; a
    correction is the organizer's, on the person's page), ``email_taken`` (409: another
    person of the organization has it), ``invalid_field`` (400: not an address).
    Publishes ``person.updated`` with ``consent_email`` and the ``registration_id``.
    """

    def work(tx: Transaction) -> Doc:
        moment = now or utcnow()
        store = tx.store
        registration = store.registrations.get_in_org(registration_id, org_id)
        if registration is None or registration["event_id"] != event_id:
            raise RuleBroken("registration_not_found", "no such registration at this kiosk's event")
        if not registration.get("checkin"):
            raise RuleBroken("not_checked_in", "this person has not checked in here; check them in first")
        person = store.person_data.person(org_id, registration["person_id"])
        if person is None:
            raise RuleBroken("registration_not_found", "no such registration at this kiosk's event")
        if person.get("email"):
            raise RuleBroken(
                "email_already_set", "this person already has an email address; an organizer can correct it", "email"
            )
        change = rules.correction(person, {"email": email})
        taken = "email_taken", "another person of your organization has this email address"
        other = store.person_data.by_email(org_id, change.person_changes["email_norm"])
        if other is not None and other["_id"] != person["_id"]:
            raise RuleBroken(*taken, "email")
        try:
            store.person_data.correct(person["_id"], {**change.person_changes, "updated_at": moment})
        except AlreadyStored as exc:
            raise RuleBroken(*taken, "email") from exc
        registrations = store.person_data.registrations(org_id, person["_id"])
        store.person_data.correct_registrations([reg["_id"] for reg in registrations], change.registration_changes)
        consent = bool(consent_email)
        if consent:
            store.registrations.set_fields(registration_id, {"consent_email": True})
        updated = {**person, **change.person_changes, "updated_at": moment}
        audit.record(
            store,
            org_id,
            by,
            PERSON_CORRECTED,
            Subject("person", person["_id"]),
            at=moment,
            event_id=event_id,
            registration_id=registration_id,
            person_id=person["_id"],
            details={"fields": ["email"], "given_at_kiosk": True, "consent_email": consent},
        )
        message = updated_message(updated, None, moment, by, consent_email=consent, registration_id=registration_id)
        tx.publish(message)
        return {
            **registration,
            **change.registration_changes,
            "consent_email": registration["consent_email"] or consent,
        }

    return ctx.uow().run(work)


def updated_message(
    person: Doc,
    previous_email: str | None,
    at: datetime,
    by: Actor,
    *,
    consent_email: bool | None = None,
    registration_id: str | None = None,
) -> Envelope:
    data: Doc = {
        "org_id": person["org_id"],
        "person_id": person["_id"],
        "first_name": person["first_name"],
        "last_name": person.get("last_name", ""),
        "email": person.get("email"),
        "updated_at": to_rfc3339(at),
    }
    if previous_email is not None:
        data["previous_email"] = previous_email
    if by.kind == "user" and by.id:
        data["updated_by"] = by.id[:64]
    if consent_email is not None:  # the person gave the address themselves (the kiosk): their answer
        data["consent_email"] = consent_email
        if registration_id:
            data["registration_id"] = registration_id
    return new_envelope("person.updated", source=SOURCE, subject=person["_id"], data=data)
