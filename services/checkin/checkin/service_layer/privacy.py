"""Data requests: a person's export or erasure across the three services.

- ``request_export`` / ``request_erasure``: one transaction stores the
  request, does checkin's own part (its export part; or the erasure of the
  person from every checkin collection) and stages ``person.export_requested``
  / ``person.erasure_requested`` for followup and analytics.
- ``apply_privacy_answers``: the consumer of ``turnout.privacy`` records each
  service's answer (a part in chunks, or an erasure's counts); the request is
  complete once checkin, followup and analytics have all answered.
- ``archive``: the complete export, every service's part.
- The self-service link: ``request_data_link`` (the public privacy page; an
  email goes out only when the address belongs to a person), ``open_link``
  and ``confirm_link`` (the person confirms; never on a GET).
- ``sweep_inactive_people``: an erasure, requested by the retention schedule,
  for each person inactive longer than their organization's period.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from checkin.adapters.ids import new_id
from checkin.domain import privacy as rules
from checkin.domain.audit import (
    PERSON_ERASURE_REQUESTED,
    PERSONAL_DATA_EXPORTED,
    RETENTION_SCHEDULE,
    Actor,
    Subject,
    person_actor,
)
from checkin.domain.model import RuleBroken, new_badge_code
from checkin.service_layer import audit, signed
from checkin.service_layer.context import Context
from checkin.service_layer.messages import SOURCE
from checkin.service_layer.ports import AlreadyStored, Store, Transaction
from turnout_common.clock import parse_rfc3339, to_rfc3339, utcnow
from turnout_common.emails import normalize_email
from turnout_common.envelope import Envelope, new_envelope
from turnout_common.privacy import DEFAULT_RETENTION, RetentionPeriods, months_ago, pseudonym
from turnout_common.types import Doc

log = logging.getLogger("checkin.privacy")

PRIVACY_TYPES = ("person.data_exported", "person.erased")
LINK_SALT = "turnout.privacy-link.v1"
MAX_TOKEN_LENGTH = 1000
# How many audit entries and earlier requests an export part lists.
AUDIT_ENTRIES_EXPORTED = 1000
REQUESTS_EXPORTED = 100
# The sweep files at most this many erasures per organization and run, reading the
# organization's people this many at a time.
SWEEP_BATCH = 200
SWEEP_PAGE = 500


# -- requests -------------------------------------------------------------------------------------------------


def _absent(store: Store, org_id: str, person_id: str) -> RuleBroken:
    if store.erased_people.get(pseudonym(org_id, person_id)) is not None:
        return RuleBroken("person_erased", "this person was erased; there is nothing left to export or erase")
    return RuleBroken("person_not_found", "no such person in your organization")


def _request_message(event_type: str, person: Doc, request: Doc) -> Envelope:
    return new_envelope(
        event_type,
        source=SOURCE,
        subject=person["_id"],
        data={
            "org_id": person["org_id"],
            "person_id": person["_id"],
            "request_id": request["_id"],
            "email": person.get("email") or None,
            "requested_at": to_rfc3339(request["requested_at"]),
            "requested_by": request["requested_by"],
        },
    )


def request_export(
    ctx: Context,
    org_id: str,
    person_id: str,
    asked_by: Doc,
    actor: Actor,
    *,
    now: datetime | None = None,
    link_nonce: str | None = None,
) -> Doc:
    """Export everything about the person: checkin's part now, the others' when they answer."""

    def work(tx: Transaction) -> Doc:
        moment = now or utcnow()
        store = tx.store
        person = store.person_data.person(org_id, person_id)
        if person is None:
            raise _absent(store, org_id, person_id)
        found = store.person_data.registrations(org_id, person_id)
        events = store.person_data.events(org_id, sorted({reg["event_id"] for reg in found}))
        entries = store.audit.of_person(org_id, person_id, AUDIT_ENTRIES_EXPORTED)
        earlier = store.data_requests.of_person(org_id, person_id, REQUESTS_EXPORTED)
        off_site = store.hour_entries.of_person(org_id, person_id)
        part = rules.checkin_part(person, found, events, entries, earlier, off_site)
        email_norm = person.get("email_norm") or ""
        part.update(
            rules.greeting_part(
                store.welcomes.of_person(org_id, person_id),
                store.greeters.with_email(org_id, email_norm) if email_norm else [],
                events,
            )
        )
        request_id = new_id()
        store.export_parts.add(rules.chunk_docs(request_id, org_id, "checkin", rules.part_text(part), moment))
        request = rules.new_request(
            request_id,
            org_id,
            "export",
            person_id,
            asked_by,
            moment,
            rules.done(moment, summary=rules.summary(part)),
            link_nonce,
        )
        store.data_requests.add(request)
        audit.record(
            store,
            org_id,
            actor,
            PERSONAL_DATA_EXPORTED,
            Subject("person", person_id),
            at=moment,
            details={"request_id": request_id},
        )
        tx.publish(_request_message("person.export_requested", person, request))
        return request

    return ctx.uow().run(work)


def request_erasure(
    ctx: Context,
    org_id: str,
    person_id: str,
    asked_by: Doc,
    actor: Actor,
    *,
    now: datetime | None = None,
    link_nonce: str | None = None,
) -> Doc:
    """Erase the person from checkin (in this transaction) and ask followup and analytics to do the same.

    Kept, under the pseudonym and stripped of everything personal: the
    registrations (the events' counts). Deleted: the person, their door
    answers (``checkin_requests``), their off-site hours, their exports; rewritten: the audit
    entries naming them, import reports listing their address. Remembered: a
    tombstone (the pseudonym and a digest of the address). The request, its
    audit entry and every later answer name the pseudonym only; the message to
    the other services carries the id and address they need to find them.
    """

    def work(tx: Transaction) -> Doc:
        moment = now or utcnow()
        store = tx.store
        person = store.person_data.person(org_id, person_id)
        if person is None:
            raise _absent(store, org_id, person_id)
        stand_in = pseudonym(org_id, person_id)
        request_id = new_id()
        email_norm = person.get("email_norm") or normalize_email(str(person.get("email") or "")) or None
        found = store.person_data.registrations(org_id, person_id)
        counts = {
            "people": 1,
            "registrations": store.person_data.replace_registrations(
                [rules.erased_registration(reg, stand_in, f"erased-{new_badge_code()}", moment) for reg in found]
            ),
            "checkin_requests": store.person_data.forget_checkin_requests(org_id, [reg["_id"] for reg in found]),
            "import_reports": _scrub_imports(store, org_id, email_norm) if email_norm else 0,
            "audit_entries": store.audit.pseudonymize_person(org_id, person_id, stand_in),
            "hour_entries": store.hour_entries.remove_of_person(org_id, person_id),
            # Welcomed as a first-timer: kept for the welcomed counts, under the pseudonym.
            "welcomes": store.welcomes.pseudonymize_person(org_id, person_id, stand_in),
            # Named as a volunteer greeter with this address: removed (their link stops working).
            "greeters": store.greeters.remove_with_email(org_id, email_norm) if email_norm else 0,
        }
        exports = store.data_requests.remove_exports_of(org_id, person_id)
        store.export_parts.remove_of_requests(exports)
        counts["export_requests"] = len(exports)
        store.person_data.remove_person(person_id)
        store.erased_people.add(rules.tombstone(org_id, person_id, email_norm, moment, request_id))
        request = rules.new_request(
            request_id,
            org_id,
            "erasure",
            stand_in,
            asked_by,
            moment,
            rules.done(moment, counts=counts),
            link_nonce,
        )
        store.data_requests.add(request)
        audit.record(
            store,
            org_id,
            actor,
            PERSON_ERASURE_REQUESTED,
            Subject("person", stand_in),
            at=moment,
            details={"request_id": request_id},
        )
        tx.publish(_request_message("person.erasure_requested", person, request))
        return request

    return ctx.uow().run(work)


def _scrub_imports(store: Store, org_id: str, email_norm: str) -> int:
    """Import reports (failed and skipped rows) listing the person's address: name and address replaced."""
    changed = 0
    for job in store.person_data.imports_with_problems(org_id):
        errors, in_errors = rules.scrubbed_problems(list(job.get("errors") or []), email_norm)
        skipped, in_skipped = rules.scrubbed_problems(list(job.get("skipped_rows") or []), email_norm)
        if in_errors or in_skipped:
            store.person_data.set_import_problems(job["_id"], errors, skipped)
            changed += in_errors + in_skipped
    return changed


def get_request(ctx: Context, org_id: str, request_id: str) -> Doc:
    request = ctx.store.data_requests.get_in_org(request_id, org_id)
    if request is None:
        raise RuleBroken("request_not_found", "no such data request in your organization")
    return request


def list_requests(ctx: Context, org_id: str, *, skip: int, limit: int) -> tuple[list[Doc], int]:
    """The organization's data requests, newest first; and how many there are."""
    return ctx.store.data_requests.page_of_org(org_id, skip, limit)


def person_names(ctx: Context, org_id: str, requests: list[Doc]) -> dict[str, str]:
    """The name of each exported person still known, by request id (an erasure names nobody)."""
    names: dict[str, str] = {}
    for request in requests:
        if request["kind"] != "export":
            continue
        person = ctx.store.person_data.person(org_id, request["person_id"])
        if person is not None:
            names[request["_id"]] = f"{person.get('first_name', '')} {person.get('last_name', '')}".strip()
    return names


def archive(ctx: Context, org_id: str, request_id: str) -> tuple[Doc, Doc]:
    """A complete export's request and every service's part ({"checkin": ..., "followup": ..., "analytics": ...})."""
    request = get_request(ctx, org_id, request_id)
    if request["kind"] != "export":
        raise RuleBroken("not_an_export", "only an export has an archive")
    if request["status"] != rules.COMPLETE:
        answered = sum(rules.has_answered(request, service) for service in rules.SERVICES)
        raise RuleBroken(
            "request_working",
            f"the export is not complete yet: {answered} of {len(rules.SERVICES)} services have answered",
        )
    parts: Doc = {}
    for service in rules.SERVICES:
        answer = request["services"].get(service) or {}
        text = rules.joined(ctx.store.export_parts.of_service(request_id, service))
        if answer.get("status") == rules.FAILED or text is None:
            parts[service] = {"error": answer.get("error") or "this service's part is missing"}
            continue
        try:
            parts[service] = rules.parse_part(text)
        except rules.PartUnreadable as exc:
            parts[service] = {"error": str(exc)}
    return request, parts


# -- the answers on turnout.privacy ------------------------------------------------------------------------


def apply_privacy_answers(tx: Transaction, messages: Sequence[Envelope]) -> None:
    """Record each service's answer (the consumer has checked these messages were never applied)."""
    for envelope in messages:
        if envelope.type in PRIVACY_TYPES:
            _apply_answer(tx, envelope)


def _apply_answer(tx: Transaction, envelope: Envelope) -> None:
    data = envelope.data
    org_id, request_id, service = data["org_id"], data["request_id"], data["service"]
    store = tx.store
    request = store.data_requests.get_in_org(request_id, org_id)
    about = {"request_id": request_id, "service": service, "type": envelope.type, "message_id": envelope.id}
    if request is None:
        # Unknown here: another organization's id, or an export removed by the person's erasure since.
        log.info("answer to an unknown data request ignored", extra=about)
        return
    if rules.has_answered(request, service):
        return
    now = utcnow()
    wanted_kind = "erasure" if envelope.type == "person.erased" else "export"
    if request["kind"] != wanted_kind:
        log.warning("answer of the wrong kind ignored", extra={**about, "kind": request["kind"]})
        return
    if envelope.type == "person.erased":
        answer = rules.done(_moment(data["erased_at"], now), counts=dict(data.get("counts") or {}))
    else:
        index, count = int(data["chunk_index"]), int(data["chunk_count"])
        if index >= count:
            log.warning(
                "export chunk out of range ignored", extra={**about, "chunk_index": index, "chunk_count": count}
            )
            return
        store.export_parts.add([rules.chunk_doc(request_id, org_id, service, index, count, data["chunk"], now)])
        if store.export_parts.count(request_id, service) < count:
            return
        text = rules.joined(store.export_parts.of_service(request_id, service))
        if text is None:
            return
        try:
            answer = rules.done(_moment(data["exported_at"], now), summary=rules.summary(rules.parse_part(text)))
        except rules.PartUnreadable as exc:
            log.warning("an export part could not be read", extra={**about, "error": str(exc)[:200]})
            answer = rules.failed(now, str(exc)[:300])
    store.data_requests.set_answer(request_id, service, answer)
    request["services"][service] = answer
    if rules.is_complete(request):
        store.data_requests.set_complete(request_id, now)


def _moment(text: str, fallback: datetime) -> datetime:
    try:
        return parse_rfc3339(text)
    except (ValueError, OverflowError):
        return fallback


# -- the self-service link ------------------------------------------------------------------------------------


def link_token(ctx: Context, link: rules.Link) -> str:
    return signed.sign(ctx, LINK_SALT, rules.link_claims(link))


def read_link_token(ctx: Context, token: str, now: datetime | None = None) -> rules.Link:
    """The link a token names (``rules.LinkRefused``: forged, malformed or expired)."""
    try:
        claims = signed.unsign(ctx, LINK_SALT, token, MAX_TOKEN_LENGTH)
    except signed.Unreadable as exc:
        message = "This link is not valid." if exc.blank else "This link is not valid. Check that you copied all of it."
        raise rules.LinkRefused("invalid", message) from exc
    return rules.read_link(claims, now or utcnow())


def link_url(ctx: Context, token: str) -> str:
    return f"{ctx.settings.public_url}/privacy/requests/{token}"


def organization_by_slug(ctx: Context, slug: str) -> Doc:
    org = ctx.store.organizations.by_slug(slug) if 0 < len(slug) <= 100 else None
    if org is None:
        raise RuleBroken("organization_not_found", "no such organization")
    return org


def request_data_link(ctx: Context, org: Doc, email: str, purpose: str, now: datetime | None = None) -> bool:
    """Email the person a signed link for ``purpose`` if the address is one of the organization's people.

    Returns whether a link went out; the caller answers the same either way
    (the page must not tell who is a member). A second request for the same
    purpose within ``LINK_RESEND_AFTER`` sends nothing new.
    """
    if purpose not in rules.KINDS:
        raise RuleBroken("invalid_field", "purpose must be export or erasure", "purpose")
    email_norm = normalize_email(email)

    def work(tx: Transaction) -> bool:
        moment = now or utcnow()
        person = tx.store.person_data.by_email(org["_id"], email_norm)
        if person is None or not rules.may_send_link(person, purpose, moment):
            return False
        link = rules.Link(org["_id"], person["_id"], purpose, secrets.token_urlsafe(12), moment + rules.LINK_LIFETIME)
        tx.store.person_data.note_link_sent(person["_id"], purpose, moment)
        data: Doc = {
            "org_id": org["_id"],
            "person_id": person["_id"],
            "email": person["email"],
            "first_name": person.get("first_name") or "there",
            "purpose": purpose,
            "link": link_url(ctx, link_token(ctx, link)),
            "expires_at": to_rfc3339(link.expires_at),
            "requested_at": to_rfc3339(moment),
        }
        if org.get("name"):
            data["organization_name"] = str(org["name"])[:200]
        tx.publish(new_envelope("person.data_link_requested", source=SOURCE, subject=person["_id"], data=data))
        return True

    return ctx.uow().run(work)


@dataclass(frozen=True, slots=True)
class LinkState:
    """What a link's page shows: the link, its organization, and the request it made (None: not yet confirmed)."""

    link: rules.Link
    organization_name: str
    request: Doc | None


def open_link(ctx: Context, token: str, now: datetime | None = None) -> LinkState:
    """The link's state; ``LinkRefused`` for a bad token, ``RuleBroken`` (``link_used_up``) when
    the person it names is gone and it made no request."""
    link = read_link_token(ctx, token, now)
    org_name = ctx.store.organizations.name_of(link.org_id) or "the organization"
    request = _request_of(ctx.store, link)
    if request is None and ctx.store.person_data.person(link.org_id, link.person_id) is None:
        raise RuleBroken("link_used_up", "This link no longer works: there is no data left to act on.")
    return LinkState(link, org_name, request)


def _request_of(store: Store, link: rules.Link) -> Doc | None:
    request = store.data_requests.by_link_nonce(link.nonce)
    return request if request is not None and request["org_id"] == link.org_id else None


def confirm_link(ctx: Context, token: str, now: datetime | None = None) -> Doc:
    """The person confirmed: make the link's request (once; confirming again answers the same request)."""
    link = read_link_token(ctx, token, now)
    existing = _request_of(ctx.store, link)
    if existing is not None:
        return existing
    asked_by = rules.requested_by("person")
    try:
        if link.purpose == "export":
            return request_export(
                ctx, link.org_id, link.person_id, asked_by, person_actor(link.person_id), now=now, link_nonce=link.nonce
            )
        stand_in = pseudonym(link.org_id, link.person_id)
        return request_erasure(
            ctx, link.org_id, link.person_id, asked_by, person_actor(stand_in), now=now, link_nonce=link.nonce
        )
    except AlreadyStored:
        # A second click won the race: that request is the one.
        existing = _request_of(ctx.store, link)
        if existing is None:
            raise
        return existing
    except RuleBroken as broken:
        if broken.code in ("person_not_found", "person_erased"):
            raise RuleBroken("link_used_up", "This link no longer works: there is no data left to act on.") from broken
        raise


# -- inactive people ----------------------------------------------------------------------------------------


def _periods(stored: object) -> RetentionPeriods:
    if not isinstance(stored, dict):
        return DEFAULT_RETENTION
    try:
        return RetentionPeriods.from_dict(stored)
    except (TypeError, ValueError):
        log.warning("stored retention periods are not valid; the defaults apply")
        return DEFAULT_RETENTION


def _always() -> bool:
    return True


def sweep_inactive_people(
    ctx: Context,
    now: datetime | None = None,
    batch: int = SWEEP_BATCH,
    page: int = SWEEP_PAGE,
    keep_going: Callable[[], bool] = _always,
) -> int:
    """File an erasure (requested by the retention schedule) for every person whose
    latest registration, visit or first sighting is older than their organization's
    ``inactive_people`` period, at most ``batch`` per organization and run (the rest
    the next run); returns how many were filed.

    ``keep_going`` is asked before each page and each erasure (the worker's stop
    event: a long sweep stops when the process does, and shows it is alive).
    """
    moment = now or utcnow()
    filed = 0
    for org in ctx.store.person_data.organizations():
        if not keep_going():
            break
        filed += _sweep_organization(ctx, org, moment, batch, page, keep_going)
    if filed:
        log.info("erasures filed for inactive people", extra={"count": filed})
    return filed


def _sweep_organization(
    ctx: Context, org: Doc, now: datetime, batch: int, page: int, keep_going: Callable[[], bool]
) -> int:
    org_id = org["_id"]
    cutoff = months_ago(now, _periods(org.get("retention_periods")).inactive_people)
    active: set[str] | None = None  # read once, when there is a first candidate
    filed, after = 0, ""
    while filed < batch and keep_going():
        candidates = ctx.store.person_data.seen_before(org_id, cutoff, after, page)
        if not candidates:
            break
        after = candidates[-1]["email_norm"]
        if active is None:
            recent = ctx.store.person_data.recent_registrations(org_id, cutoff - rules.EVENT_MARGIN)
            active = {reg["person_id"] for reg in recent if rules.active_since(reg, cutoff)}
        for person in candidates:
            if filed >= batch or not keep_going():
                break
            if not rules.is_inactive(person, cutoff, active):
                continue
            try:
                request_erasure(
                    ctx, org_id, person["_id"], rules.requested_by("retention"), RETENTION_SCHEDULE, now=now
                )
            except RuleBroken as broken:  # erased meanwhile (by their own request): nothing to do
                log.info("inactive person not erased", extra={"org_id": org_id, "reason": broken.code})
                continue
            filed += 1
    return filed
