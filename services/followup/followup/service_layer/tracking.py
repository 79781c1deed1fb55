"""What people do with the emails: unsubscribe, open, click, rate, accept an
introduction; and what comes back from the mail system: bounces.

Each records its fact and publishes its message in one transaction, and
each is idempotent: a mail scanner fetching a link twice, or a provider
retrying a webhook, publishes nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from followup.domain import consent, engagement
from followup.domain.engagement import Fetch
from followup.domain.nudges import NudgeKind, NudgeState, followup_from_message_id, is_followup
from followup.domain.privacy import ERASED_INTRODUCTION
from followup.domain.schedule import zone
from followup.domain.suppression import HARD_BOUNCE, UNSUBSCRIBED
from followup.service_layer import messages
from followup.service_layer.context import Services
from followup.service_layer.outcomes import suppress, withdrawn_by_bounce
from followup.service_layer.repositories import Tx
from followup.service_layer.scheduling import NudgeSpec, insert_nudges
from turnout_common.emails import normalize_email
from turnout_common.privacy import is_pseudonym
from turnout_common.types import Doc

BOUNCE_MATCHES = 100  # contacts a bounce without a message id may match


class NotFound(LookupError):
    """The link points at a follow-up or introduction that does not exist (any more)."""


def _nudge(svc: Services, followup: str) -> Doc:
    doc = svc.store.nudges.get(followup)
    if doc is None:
        raise NotFound("no such follow-up")
    return doc


def org_of(svc: Services, followup: str) -> str:
    """The organization a follow-up was sent for (``NotFound`` when there is no such follow-up)."""
    return str(_nudge(svc, followup)["org_id"])


@dataclass(frozen=True, slots=True)
class IntroductionStatus:
    accepted: bool  # this person said yes
    agreed: bool  # both did


def _gone(doc: Doc | None, person_id: str) -> bool:
    """No such introduction for this person (any more: one of the two was erased)."""
    return doc is None or person_id not in doc["people"] or doc.get("state") == ERASED_INTRODUCTION


def introduction_status(svc: Services, introduction_id: str, person_id: str) -> IntroductionStatus:
    doc = svc.store.introductions.get(introduction_id)
    if _gone(doc, person_id):
        raise NotFound("no such introduction")
    assert doc is not None
    return IntroductionStatus(person_id in doc.get("accepted_by", []), doc.get("state") == "agreed")


def _proves_delivery(tx: Tx, nudge: Doc, now: datetime, how: str) -> None:
    """An open or a click proves a ``delivery_unknown`` message arrived: it was sent."""
    if nudge["state"] != NudgeState.DELIVERY_UNKNOWN.value:
        return
    resolved = tx.store.nudges.resolve(
        nudge["_id"],
        NudgeState.DELIVERY_UNKNOWN.value,
        {
            "state": NudgeState.SENT.value,
            "sent_at": nudge.get("unknown_at") or now,
            "transport": nudge.get("transport") or "smtp",
            "resolved_by": how,
        },
    )
    if resolved:
        tx.store.in_doubt.remove([nudge["_id"]])
        tx.publish(messages.followup_sent(nudge, nudge.get("unknown_at") or now, nudge.get("transport") or "smtp"))


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    org_id: str
    person_id: str
    newly: bool


def unsubscribe(svc: Services, followup: str, via: str) -> Unsubscribed:
    """Stop every later email of the organization to this person (``via``: link or one_click)."""
    nudge = _nudge(svc, followup)
    now = svc.now()
    if erased(nudge):  # nothing is kept about them to unsubscribe, nothing is sent to them
        return Unsubscribed(nudge["org_id"], nudge["person_id"], False)

    def work(tx: Tx) -> bool:
        contact = tx.store.contacts.get(nudge["person_id"])
        email = str((contact or {}).get("email") or nudge.get("to_email") or "")
        changed = tx.store.contacts.unsubscribe(nudge["person_id"], now, via)
        if email:
            suppress(tx.store, nudge["org_id"], email, UNSUBSCRIBED, f"via {via}", now, nudge["person_id"])
        if changed:
            message = messages.contact_unsubscribed(nudge["org_id"], nudge["person_id"], now, via)
            tx.publish(message)
            tx.store.consent.add(
                [
                    consent.entry(
                        nudge["org_id"],
                        nudge["person_id"],
                        consent.WITHDRAWN,
                        consent.UNSUBSCRIBE_LINK,
                        now,
                        message_id=message.id,
                        entry_id=message.id,
                        detail=via,
                        followup_id=nudge["_id"],
                    )
                ]
            )
            return True
        return False

    newly = svc.transaction(work)
    return Unsubscribed(nudge["org_id"], nudge["person_id"], newly)


def erased(nudge: Doc) -> bool:
    """The nudge's person was erased: their links record nothing any more."""
    return is_pseudonym(str(nudge["person_id"]))


def record_open(svc: Services, followup: str, fetch: Fetch | None = None) -> bool:
    """The open pixel was fetched; the first open publishes ``followup.opened``.

    A machine's fetch (``followup.domain.engagement``) is kept apart: its first
    publishes ``followup.opened`` with ``machine: true``. ``fetch`` None (not a
    web request) counts as a person's."""
    nudge = _nudge(svc, followup)
    now = svc.now()
    if erased(nudge):
        return False
    verdict = engagement.classify_open(fetch) if fetch is not None else engagement.HUMAN

    def work(tx: Tx) -> bool:
        if not tx.store.nudges.first_open(followup, now, verdict.reason):
            tx.store.nudges.count_open(followup, verdict.machine)
            return False
        _proves_delivery(tx, nudge, now, "opened")
        tx.publish(messages.followup_opened(nudge, now, verdict))
        return True

    return svc.transaction(work)


def record_click(svc: Services, followup: str, url: str, fetch: Fetch | None = None) -> bool:
    """A signed link was followed; each destination publishes ``followup.clicked`` once
    for people and once for machines (``machine: true``, see ``followup.domain.engagement``).
    ``fetch`` None (not a web request) counts as a person's."""
    nudge = _nudge(svc, followup)
    now = svc.now()
    if erased(nudge):
        return False
    verdict = engagement.HUMAN
    if fetch is not None:
        last = nudge.get("last_click_at")
        verdict = engagement.classify_click(
            fetch,
            url,
            delivered_at=nudge.get("sent_at") or nudge.get("unknown_at"),
            last_click=engagement.LastClick(str(nudge.get("last_click_url") or ""), last) if last else None,
            thresholds=svc.scanner_thresholds,
        )

    def work(tx: Tx) -> bool:
        tx.store.nudges.note_fetch(followup, url, now)
        if not tx.store.nudges.first_click(followup, url, now, verdict.reason):
            tx.store.nudges.count_click(followup, verdict.machine)
            return False
        _proves_delivery(tx, nudge, now, "clicked")
        tx.publish(messages.followup_clicked(nudge, now, url, verdict))
        return True

    return svc.transaction(work)


def record_feedback(svc: Services, followup: str, rating: int, comment: str | None = None) -> bool:
    """A 1-5 rating (and maybe a comment); a new answer publishes ``feedback.submitted``."""
    nudge = _nudge(svc, followup)
    now = svc.now()
    if erased(nudge):  # nothing they write comes back
        return False
    comment = (comment or "").strip()[:2000] or None

    def work(tx: Tx) -> bool:
        if not tx.store.nudges.record_feedback(followup, rating, comment, now):
            return False
        _proves_delivery(tx, nudge, now, "feedback")
        tx.publish(messages.feedback_submitted(nudge, now, rating, comment))
        return True

    return svc.transaction(work)


@dataclass(frozen=True, slots=True)
class Acceptance:
    introduction: Doc
    newly: bool
    both: bool
    other_first_name: str


def accept_introduction(svc: Services, introduction_id: str, person_id: str) -> Acceptance:
    """Double opt-in: record one side's yes; when both said yes, schedule both introductions."""
    now = svc.now()

    def work(tx: Tx) -> tuple[Doc, bool, bool]:
        doc = tx.store.introductions.get(introduction_id)
        if _gone(doc, person_id):
            raise NotFound("no such introduction")
        assert doc is not None
        if person_id in doc.get("accepted_by", []):
            return doc, False, doc.get("state") == "agreed"
        both = set(doc.get("accepted_by", [])) | {person_id} == set(doc["people"])
        changes: dict[str, Any] = {f"accepted_at.{person_id}": now}
        if both:
            changes.update(state="agreed", agreed_at=now)
        if not tx.store.introductions.accept(introduction_id, person_id, changes):
            return doc, False, doc.get("state") == "agreed"
        tx.publish(messages.introduction_accepted(doc, person_id, now, both))
        if both:
            send_at = svc.window.next_allowed(now, zone(tx.store.events.timezone_of(doc["event_id"]) or "UTC"))
            specs = [
                NudgeSpec(
                    doc["org_id"],
                    doc["event_id"],
                    person,
                    NudgeKind.INTRODUCTION,
                    discriminator=doc["_id"],
                    introduction_id=doc["_id"],
                )
                for person in doc["people"]
            ]
            insert_nudges(tx, svc, specs, send_at, now, batch_event=doc["event_id"])
        return doc, True, both

    doc, newly, both = svc.transaction(work)
    other = next(p for p in doc["people"] if p != person_id)
    contact = svc.store.contacts.get(other) or {}
    return Acceptance(doc, newly, both, str(contact.get("first_name") or "them"))


@dataclass(frozen=True, slots=True)
class BounceReport:
    matched: int
    suppressed: int


def record_bounce(
    svc: Services,
    *,
    email: str,
    bounce_type: str,
    reason: str,
    followup: str | None = None,
    message_id: str | None = None,
) -> BounceReport:
    """An inbound bounce notification: hard bounces suppress the address; both publish ``followup.bounced``."""
    now = svc.now()
    followup = followup or (followup_from_message_id(message_id) if message_id else None)
    nudge = svc.store.nudges.get(followup) if followup else None
    email_norm = normalize_email(email)
    targets: list[tuple[str, str, Doc | None]]
    if nudge is not None:
        targets = [(nudge["org_id"], nudge["person_id"], nudge)]
    else:
        targets = [
            (doc["org_id"], doc["_id"], None) for doc in svc.store.contacts.with_email(email_norm, BOUNCE_MATCHES)
        ]
    suppressed = 0
    for org_id, person_id, matched in targets:

        def work(tx: Tx, org_id: str = org_id, person_id: str = person_id, matched: Doc | None = matched) -> int:
            first = True
            if matched is not None:
                field = "bounced_at" if bounce_type == "hard" else "soft_bounced_at"
                first = tx.store.nudges.record_bounce(matched["_id"], field, now, bounce_type, reason[:1000])
            added = 0
            if bounce_type == "hard":
                added = 1 if suppress(tx.store, org_id, email, HARD_BOUNCE, reason, now, person_id) else 0
                first = first and (matched is not None or added == 1)
                if added and not is_pseudonym(person_id) and tx.store.contacts.get(person_id) is not None:
                    withdrawn_by_bounce(tx.store, org_id, person_id, now, matched["_id"] if matched else None)
            if first and (matched is None or is_followup(matched["kind"])):
                tx.publish(messages.followup_bounced(org_id, person_id, matched, now, bounce_type, reason))
            return added

        suppressed += svc.transaction(work)
    return BounceReport(matched=len(targets), suppressed=suppressed)
