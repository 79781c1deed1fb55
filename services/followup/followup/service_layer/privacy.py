"""A person's data in follow-up: exporting it, erasing it, correcting it, and
the link a person asks for to do either. Each runs inside the consumer's
unit of work for the message that asked (checkin's ``person.*`` messages),
so the effect, its answer on ``turnout.privacy`` and the message id recorded
as applied are stored together.

**Erasure and the senders.** An unsent nudge of the person is skipped (reason
``erased``) in the erasure's transaction. One a sender has already claimed
(rendered, about to hand over) is *fenced*: the erasure writes that attempt's
``<followup>:<attempt>:sending`` into the delivery journal itself, so the
sender's own entry for the attempt fails on the unique id and the sender
moves on without handing the message over (``sending.Sender._deliver``). The
only message that can still leave is one whose ``sending`` the sender wrote
*before* the erasure committed: it is being handed to the mail server at that
very moment (or was, and its answer is not recorded yet). It cannot be called
back; its outcome is recorded when it comes, under the pseudonym.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from followup.domain import consent
from followup.domain.contacts import KIOSK_CONSENT, consent_given_with_address, corrected_details, details_replace
from followup.domain.delivery import ACCEPTED, SENDING, journal_id
from followup.domain.introductions import pair_key
from followup.domain.nudges import NudgeKind, followup_id, nudge_key
from followup.domain.privacy import (
    ATTENDANCE_PERSONAL_FIELDS,
    ERASURE_FENCE,
    chunk_text,
    erase_introduction,
    erase_nudge,
    part_json,
    plain,
)
from followup.domain.suppression import (
    UNSUBSCRIBED,
    erased_suppression_entry,
    erased_suppression_id,
    suppression_entry,
    suppression_id,
)
from followup.service_layer import messages
from followup.service_layer.organizer import parse_rendered
from followup.service_layer.repositories import Store, Tx
from turnout_common.clock import parse_rfc3339, utcnow
from turnout_common.emails import normalize_email
from turnout_common.envelope import Envelope
from turnout_common.privacy import ERASED_NAME, email_digest, pseudonym
from turnout_common.types import Doc

log = logging.getLogger("followup.privacy")

PERSON_TYPES = (
    "person.export_requested",
    "person.erasure_requested",
    "person.updated",
    "person.data_link_requested",
)
# What an export leaves out of a message: the sender's bookkeeping.
INTERNAL_NUDGE_FIELDS = ("claim", "batch_id", "key", "waiting_for")


def _addresses(contact: Doc | None, *more: object) -> list[str]:
    """The person's address keys (normalized), the contact's first."""
    keys: list[str] = []
    for value in ((contact or {}).get("email_norm"), *more):
        if isinstance(value, str) and value:
            key = normalize_email(value)
            if key and key not in keys:
                keys.append(key)
    return keys


def _nudges_of(store: Store, org_id: str, person_id: str) -> list[Doc]:
    """Every message of the person: about the gatherings they registered for, and
    those tied to none (win-back, their data links)."""
    events: list[str | None] = [row["event_id"] for row in store.attendance.of_person(org_id, person_id)]
    found = store.nudges.of_person(person_id, [*events, None])
    return sorted((n for n in found if n.get("org_id") == org_id), key=lambda n: (str(n.get("created_at")), n["_id"]))


def _attempt_ids(nudge: Doc) -> list[int]:
    return list(range(1, int(nudge.get("attempts") or 0) + 1))


# -- export ----------------------------------------------------------------------------------


def _short_name(contact: Doc | None) -> str:
    if contact is None:
        return ERASED_NAME
    last = str(contact.get("last_name") or "").strip()
    return f"{contact.get('first_name', '')} {last[:1] + '.' if last else ''}".strip()


def _rendered_view(doc: Doc) -> dict[str, Any]:
    view: dict[str, Any] = {
        "attempt": doc.get("attempt"),
        "rendered_at": doc.get("rendered_at"),
        "to": doc.get("to"),
        "subject": doc.get("subject"),
    }
    raw = doc.get("raw")
    if raw is None:
        view["body_removed_at"] = doc.get("body_removed_at")
        return view
    parsed = parse_rendered(raw)
    view.update(headers=parsed["headers"], text=parsed["text"], html=parsed["html"])
    return view


def gather_part(store: Store, org_id: str, person_id: str, email: str | None, now: datetime) -> dict[str, Any]:
    """Everything follow-up holds about the person, as one JSON-ready object."""
    contact = store.contacts.in_org(org_id, person_id)
    nudges = _nudges_of(store, org_id, person_id)
    ids = [n["_id"] for n in nudges]
    rendered: dict[str, list[Doc]] = {}
    for doc in store.rendered.of_ids([f"{n['_id']}:{a}" for n in nudges for a in _attempt_ids(n)]):
        rendered.setdefault(doc["followup_id"], []).append(doc)
    journal = store.journal.by_ids(
        [journal_id(n["_id"], a, step) for n in nudges for a in _attempt_ids(n) for step in (SENDING, ACCEPTED)]
    )
    in_doubt = {doc["_id"]: doc for doc in store.in_doubt.of_ids(ids)} if ids else {}
    events = {doc["_id"]: doc for doc in store.events.by_ids(str(n["event_id"]) for n in nudges if n.get("event_id"))}
    message_views = []
    for nudge in nudges:
        view = {k: v for k, v in nudge.items() if k not in INTERNAL_NUDGE_FIELDS}
        event = events.get(nudge.get("event_id") or "")
        view["event_title"] = event.get("title") if event else None
        view["emails"] = [
            _rendered_view(doc) for doc in sorted(rendered.get(nudge["_id"], []), key=lambda d: d.get("attempt", 0))
        ]
        view["deliveries"] = [
            {"id": entry_id, "at": entry.get("at"), "response": entry.get("response")}
            for entry_id, entry in sorted(journal.items())
            if entry_id.startswith(f"{nudge['_id']}:")
        ]
        view["in_doubt"] = in_doubt.get(nudge["_id"])
        message_views.append(view)
    introductions = store.introductions.of_people_in_org(org_id, [person_id])
    partners = {
        doc["_id"]: doc
        for doc in store.contacts.by_ids(p for i in introductions for p in i["people"] if p != person_id)
    }
    introduction_views = []
    for doc in introductions:
        other = next((p for p in doc["people"] if p != person_id), "")
        introduction_views.append(
            {
                "id": doc["_id"],
                "event_id": doc.get("event_id"),
                "state": doc.get("state"),
                "with": _short_name(partners.get(other)),
                "you_offer": doc["offers"].get(person_id, []),
                "they_offer": doc["offers"].get(other, []),
                "you_accepted": person_id in doc.get("accepted_by", []),
                "suggested_at": doc.get("created_at"),
                "agreed_at": doc.get("agreed_at"),
            }
        )
    suppressions = [
        {
            "email": doc.get("email"),
            "reason": doc.get("reason"),
            "detail": doc.get("detail"),
            "created_at": doc.get("created_at"),
        }
        for doc in store.suppressions.of_person(org_id, _addresses(contact, email), person_id)
    ]
    history = [
        {k: doc.get(k) for k in ("change", "by", "at", "message_id", "followup_id", "detail")}
        for doc in store.consent.of_person(org_id, person_id)
    ]
    contact_view = None
    if contact is not None:
        contact_view = {
            "person_id": contact["_id"],
            "first_name": contact.get("first_name"),
            "last_name": contact.get("last_name"),
            "email": contact.get("email"),
            "consent_email": bool(contact.get("consent_email")),
            "consent_source": contact.get("consent_source"),
            "unsubscribed": bool(contact.get("unsubscribed")),
            "unsubscribed_at": contact.get("unsubscribed_at"),
            "unsubscribed_via": contact.get("unsubscribed_via"),
            "details_at": contact.get("details_at"),
        }
    attendance = [{k: v for k, v in row.items() if k != "_id"} for row in store.attendance.of_person(org_id, person_id)]
    part: dict[str, Any] = plain(
        {
            "service": messages.SERVICE,
            "org_id": org_id,
            "person_id": person_id,
            "exported_at": now,
            "contact": contact_view,
            "consent_history": history,
            "attendance": attendance,
            "messages": message_views,
            "introductions": introduction_views,
            "suppressions": suppressions,
        }
    )
    return part


def export_person(tx: Tx, message: Envelope, now: datetime) -> int:
    """Stage follow-up's part of the export, in chunks; how many chunks."""
    data = message.data
    part = gather_part(tx.store, data["org_id"], data["person_id"], data.get("email"), now)
    chunks = chunk_text(part_json(part))
    for index, chunk in enumerate(chunks):
        tx.publish(messages.person_data_exported(data["org_id"], data["request_id"], index, len(chunks), chunk, now))
    return len(chunks)


# -- erasure ---------------------------------------------------------------------------------


def _masker(person_id: str, stand_in: str, addresses: list[str]) -> Any:
    """Rewrites a not-yet-relayed message about the person to name the stand-in instead."""
    lowered = [a.lower() for a in addresses]

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            if value == person_id:
                return stand_in
            if any(a in value.lower() for a in lowered):
                return ERASED_NAME
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    def mask(envelope: Doc) -> Doc | None:
        if str(envelope.get("type", "")).startswith("person."):
            return envelope  # an answer to checkin (an export part): checkin's to erase
        data = scrub(envelope.get("data") or {})
        if "comment" in data:
            data["comment"] = None  # what they wrote
        return {**envelope, "subject": scrub(envelope.get("subject")), "data": data}

    return mask


def _erase_nudges(store: Store, nudges: list[Doc], stand_in: str, now: datetime, counts: Counter[str]) -> None:
    claimed = [n for n in nudges if n.get("state") == "claimed"]
    journal = store.journal.by_ids([journal_id(n["_id"], int(n.get("attempts") or 0), SENDING) for n in claimed])
    rendered: list[str] = []
    journal_ids: list[str] = []
    for nudge in nudges:
        attempts = int(nudge.get("attempts") or 0)
        handed_over = journal_id(nudge["_id"], attempts, SENDING) in journal
        plan = erase_nudge(nudge, stand_in, now, handed_over)
        if plan.fence_attempt is not None:
            fence = {"_id": journal_id(nudge["_id"], plan.fence_attempt, SENDING), "claim": ERASURE_FENCE, "at": now}
            if not store.journal.fence(fence):
                plan = erase_nudge(nudge, stand_in, now, True)
            else:
                counts["fenced"] += 1
        if plan.in_flight:
            counts["in_flight"] += 1
            log.warning(
                "erasure: a message to this person was being handed to the mail server; it cannot be recalled",
                extra={"followup_id": nudge["_id"]},
            )
        store.nudges.rewrite(nudge["_id"], plan.set, plan.unset)
        # The journal of the current attempt stays while the nudge is claimed (the fence, or
        # what recovery settles an in-flight message from); everything else of theirs goes.
        current = attempts if nudge.get("state") == "claimed" else None
        for attempt in _attempt_ids(nudge):
            rendered.append(f"{nudge['_id']}:{attempt}")
            if attempt != current:
                journal_ids += [journal_id(nudge["_id"], attempt, step) for step in (SENDING, ACCEPTED)]
    counts["messages"] += len(nudges)
    counts["rendered_messages"] += store.rendered.remove(rendered)
    counts["delivery_journal"] += store.journal.delete(journal_ids)[0]


def _erase_introductions(
    store: Store, org_id: str, person_id: str, stand_in: str, now: datetime, counts: Counter[str]
) -> None:
    """Introductions name two people: the other person's keep their place, this person's is
    taken by the stand-in; the other's emails that named this person lose their bodies."""
    for doc in store.introductions.of_people_in_org(org_id, [person_id]):
        others = [p for p in doc["people"] if p != person_id]
        other = others[0] if others else stand_in
        store.introductions.rewrite(doc["_id"], erase_introduction(doc, person_id, stand_in, pair_key(stand_in, other)))
        counts["introductions"] += 1
        naming = [
            n
            for n in store.nudges.of_person(other, [doc.get("event_id")])
            if n["kind"] == NudgeKind.INTRODUCTION_REQUEST
            or (n["kind"] == NudgeKind.INTRODUCTION and n.get("introduction_id") == doc["_id"])
        ]
        ids = [f"{n['_id']}:{a}" for n in naming for a in _attempt_ids(n)]
        stripped, _ = store.rendered.strip(ids, now, subject=True)  # "Meet Alicia": the subject too
        counts["messages_to_others_naming_them"] += stripped


def _erase_suppressions(
    store: Store, org_id: str, person_id: str, stand_in: str, addresses: list[str], now: datetime, counts: Counter[str]
) -> None:
    """Each entry stays, under the address's digest: the address stays blocked if it comes back."""
    for doc in store.suppressions.of_person(org_id, addresses, person_id):
        key = doc.get("email_norm")
        if not key:
            continue  # kept as a digest already
        store.suppressions.replace(
            doc["_id"], erased_suppression_id(org_id, str(key)), erased_suppression_entry(doc, stand_in, now)
        )
        counts["suppressions"] += 1


def erase_person(tx: Tx, message: Envelope, now: datetime) -> dict[str, int]:
    """Erase the person from every collection (keeping what the figures need under the
    pseudonym), remember the tombstone, and stage ``person.erased``; the counts."""
    data = message.data
    org_id, person_id = data["org_id"], data["person_id"]
    store = tx.store
    stand_in = pseudonym(org_id, person_id)
    contact = store.contacts.in_org(org_id, person_id)
    addresses = _addresses(contact, data.get("email"))
    counts: Counter[str] = Counter()
    _erase_nudges(store, _nudges_of(store, org_id, person_id), stand_in, now, counts)
    counts["attendance"] += store.attendance.pseudonymise(org_id, person_id, stand_in, ATTENDANCE_PERSONAL_FIELDS)
    _erase_introductions(store, org_id, person_id, stand_in, now, counts)
    _erase_suppressions(store, org_id, person_id, stand_in, addresses, now, counts)
    counts["consent_history"] += store.consent.forget(org_id, person_id)
    if contact is not None:
        counts["contacts"] += store.contacts.forget(person_id)
    counts["plans"] += store.plans.forget_dirty(person_id)
    originals = [str(v) for v in ((contact or {}).get("email"), data.get("email")) if v]
    needles = [person_id.encode(), *{a.encode() for a in [*addresses, *originals]}]
    counts["dead_letters"] += store.leftovers.forget_dead_letters(needles)
    counts["outbox"] += store.leftovers.mask_outbox(needles, _masker(person_id, stand_in, [*addresses, *originals]))
    digests = [email_digest(org_id, key) for key in addresses]
    requested_at = parse_rfc3339(data["requested_at"])
    store.erased.remember(
        {
            "_id": stand_in,
            "org_id": org_id,
            "email_digest": digests[0] if digests else None,
            "email_digests": digests,
            "erased_at": now,
            "requested_at": requested_at,
            "request_id": data["request_id"],
        }
    )
    answer = {name: int(n) for name, n in sorted(counts.items()) if name not in ("fenced", "in_flight")}
    tx.publish(messages.person_erased(org_id, data["request_id"], now, answer))
    log.info(
        "person erased",
        extra={"request_id": data["request_id"], "counts": answer, "fenced": counts["fenced"]},
    )
    return dict(counts)


# -- correction ------------------------------------------------------------------------------


def correct_person(tx: Tx, message: Envelope) -> bool:
    """The person's name or address was corrected in checkin: the next message goes to
    the new address under the new name. An older correction arriving late changes nothing."""
    data = message.data
    org_id, person_id = data["org_id"], data["person_id"]
    store = tx.store
    updated_at = parse_rfc3339(data["updated_at"])
    contact = store.contacts.get(person_id)
    if contact is not None and contact.get("org_id") != org_id:
        return False
    if contact is not None and not details_replace(contact.get("details_at"), updated_at):
        return False
    details = corrected_details(data)
    granted = consent_given_with_address(data)
    store.contacts.correct(person_id, org_id, {**details, **granted}, updated_at)
    if granted and not (contact or {}).get("consent_email"):
        store.consent.add(
            [
                consent.entry(
                    org_id,
                    person_id,
                    consent.GRANTED,
                    KIOSK_CONSENT,
                    updated_at,
                    message_id=message.id,
                    entry_id=message.id,
                    detail=f"address given at the kiosk, registration {data.get('registration_id', '')}".strip(),
                )
            ]
        )
    new_key = details["email_norm"]
    old_keys = [k for k in _addresses(contact, data.get("previous_email")) if k != new_key]
    if new_key and old_keys:
        # Records kept by address: the person's own unsubscribe follows them to the new
        # address (a bounce, or an organizer's block, is about the old address and stays there).
        for doc in store.suppressions.of_person(org_id, old_keys, person_id):
            if doc.get("reason") == UNSUBSCRIBED and doc.get("person_id") == person_id and doc.get("email_norm"):
                store.suppressions.remove(doc["_id"])
                moved = suppression_entry(
                    org_id,
                    str(details["email"]),
                    UNSUBSCRIBED,
                    "moved with a corrected address",
                    now_of(doc),
                    person_id,
                )
                store.suppressions.add(suppression_id(org_id, str(details["email"])), moved)
    return True


def now_of(doc: Doc) -> datetime:
    created: datetime | None = doc.get("created_at")
    return created or utcnow()


# -- the link a person asked for -------------------------------------------------------------


def schedule_data_link(tx: Tx, message: Envelope, now: datetime) -> bool:
    """Queue the email with the person's data link (once per request); whether it is new."""
    data = message.data
    org_id, person_id = data["org_id"], data["person_id"]
    key = nudge_key(None, person_id, NudgeKind.DATA_LINK, f"{data['purpose']}:{data['requested_at']}")
    store = tx.store
    if store.nudges.existing_keys([key]):
        return False
    fid = followup_id(key)
    batch_id = f"data-link-{fid}"
    store.nudges.add(
        [
            {
                "_id": fid,
                "key": key,
                "org_id": org_id,
                "event_id": None,
                "anchor_event_id": None,
                "person_id": person_id,
                "kind": NudgeKind.DATA_LINK.value,
                "introduction_id": None,
                "batch_id": batch_id,
                "state": "scheduled",
                "send_at": now,
                "created_at": now,
                "attempts": 0,
                "claim": None,
                "message_id": None,  # made from the id and the mail domain when rendered
                "to_email": data["email"],
                "first_name": data["first_name"],
                "organization_name": data.get("organization_name") or None,
                "purpose": data["purpose"],
                "link": data["link"],
                "expires_at": parse_rfc3339(data["expires_at"]),
                "requested_at": parse_rfc3339(data["requested_at"]),
            }
        ]
    )
    store.batches.add(
        {
            "_id": batch_id,
            "org_id": org_id,
            "event_id": None,
            "state": "ready",
            "due_at": now,
            "size": 1,
            "created_at": now,
            "lease_owner": None,
            "lease_until": None,
        }
    )
    return True


# -- tombstones ------------------------------------------------------------------------------


def message_time(message: Envelope) -> datetime | None:
    try:
        return parse_rfc3339(message.time)
    except (TypeError, ValueError):
        return None


def registration_consent(message: Envelope, current: Doc | None) -> Doc | None:
    """The consent history's entry for a registration that grants consent, if it does."""
    data = message.data
    if not consent.granted_by_registration(current, bool(data.get("consent_email"))):
        return None
    return consent.entry(
        data["org_id"],
        data["person_id"],
        consent.GRANTED,
        consent.registration_source(data.get("source")),
        message_time(message) or utcnow(),
        message_id=message.id,
        entry_id=message.id,
        detail=f"registration {data.get('registration_id', '')}".strip(),
    )
