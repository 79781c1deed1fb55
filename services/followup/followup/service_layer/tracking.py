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

from followup.adapters.mongo import CONTACTS, EVENTS, IN_DOUBT, INTRODUCTIONS, NUDGES
from followup.domain.nudges import NudgeKind, NudgeState, followup_from_message_id
from followup.domain.schedule import zone
from followup.service_layer import messages
from followup.service_layer.context import Services
from followup.service_layer.scheduling import NudgeSpec, insert_nudges
from followup.service_layer.sending import suppress
from turnout_common.mongo import UnitOfWork

Doc = dict[str, Any]


class NotFound(LookupError):
    """The link points at a follow-up or introduction that does not exist (any more)."""


def _nudge(svc: Services, followup: str) -> Doc:
    doc = svc.db[NUDGES].find_one({"_id": followup})
    if doc is None:
        raise NotFound("no such follow-up")
    return doc


def _proves_delivery(uow: UnitOfWork, nudge: Doc, now: datetime, how: str) -> None:
    """An open or a click proves a ``delivery_unknown`` message arrived: it was sent."""
    if nudge["state"] != NudgeState.DELIVERY_UNKNOWN.value:
        return
    resolved = uow.db[NUDGES].update_one(
        {"_id": nudge["_id"], "state": NudgeState.DELIVERY_UNKNOWN.value},
        {
            "$set": {
                "state": NudgeState.SENT.value,
                "sent_at": nudge.get("unknown_at") or now,
                "transport": nudge.get("transport") or "smtp",
                "resolved_by": how,
            }
        },
        session=uow.session,
    )
    if resolved.modified_count == 1:
        uow.db[IN_DOUBT].delete_one({"_id": nudge["_id"]}, session=uow.session)
        uow.publish(messages.followup_sent(nudge, nudge.get("unknown_at") or now, nudge.get("transport") or "smtp"))


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    org_id: str
    person_id: str
    newly: bool


def unsubscribe(svc: Services, followup: str, via: str) -> Unsubscribed:
    """Stop every later email of the organization to this person (``via``: link or one_click)."""
    nudge = _nudge(svc, followup)
    now = svc.now()

    def work(uow: UnitOfWork) -> bool:
        session = uow.session
        contact = uow.db[CONTACTS].find_one({"_id": nudge["person_id"]}, session=session)
        email = str((contact or {}).get("email") or nudge.get("to_email") or "")
        changed = uow.db[CONTACTS].update_one(
            {"_id": nudge["person_id"], "unsubscribed": {"$ne": True}},
            {"$set": {"unsubscribed": True, "unsubscribed_at": now, "unsubscribed_via": via}},
            session=session,
        )
        if email:
            suppress(uow, nudge["org_id"], email, "unsubscribed", f"via {via}", now, nudge["person_id"])
        if changed.modified_count == 1:
            uow.publish(messages.contact_unsubscribed(nudge["org_id"], nudge["person_id"], now, via))
            return True
        return False

    newly = svc.uow().run(work)
    return Unsubscribed(nudge["org_id"], nudge["person_id"], newly)


def record_open(svc: Services, followup: str) -> bool:
    """The open pixel was fetched; the first open publishes ``followup.opened``."""
    nudge = _nudge(svc, followup)
    now = svc.now()

    def work(uow: UnitOfWork) -> bool:
        first = uow.db[NUDGES].update_one(
            {"_id": followup, "opened_at": None},
            {"$set": {"opened_at": now}, "$inc": {"open_count": 1}},
            session=uow.session,
        )
        if first.modified_count != 1:
            uow.db[NUDGES].update_one({"_id": followup}, {"$inc": {"open_count": 1}}, session=uow.session)
            return False
        _proves_delivery(uow, nudge, now, "opened")
        uow.publish(messages.followup_opened(nudge, now))
        return True

    return svc.uow().run(work)


def record_click(svc: Services, followup: str, url: str) -> bool:
    """A signed link was followed; each destination publishes ``followup.clicked`` once."""
    nudge = _nudge(svc, followup)
    now = svc.now()

    def work(uow: UnitOfWork) -> bool:
        result = uow.db[NUDGES].update_one(
            {"_id": followup, "clicked_urls": {"$ne": url}},
            {"$addToSet": {"clicked_urls": url}, "$min": {"clicked_at": now}, "$inc": {"click_count": 1}},
            session=uow.session,
        )
        if result.modified_count != 1:
            uow.db[NUDGES].update_one({"_id": followup}, {"$inc": {"click_count": 1}}, session=uow.session)
            return False
        _proves_delivery(uow, nudge, now, "clicked")
        uow.publish(messages.followup_clicked(nudge, now, url))
        return True

    return svc.uow().run(work)


def record_feedback(svc: Services, followup: str, rating: int, comment: str | None = None) -> bool:
    """A 1-5 rating (and maybe a comment); a new answer publishes ``feedback.submitted``."""
    nudge = _nudge(svc, followup)
    now = svc.now()
    comment = (comment or "").strip()[:2000] or None

    def work(uow: UnitOfWork) -> bool:
        condition: dict[str, Any] = {"_id": followup}
        if comment is None:
            condition["feedback_rating"] = {"$ne": rating}
        result = uow.db[NUDGES].update_one(
            condition,
            {"$set": {"feedback_rating": rating, "feedback_comment": comment, "feedback_at": now}},
            session=uow.session,
        )
        if result.modified_count != 1:
            return False
        _proves_delivery(uow, nudge, now, "feedback")
        uow.publish(messages.feedback_submitted(nudge, now, rating, comment))
        return True

    return svc.uow().run(work)


@dataclass(frozen=True, slots=True)
class Acceptance:
    introduction: Doc
    newly: bool
    both: bool
    other_first_name: str


def accept_introduction(svc: Services, introduction_id: str, person_id: str) -> Acceptance:
    """Double opt-in: record one side's yes; when both said yes, schedule both introductions."""
    now = svc.now()

    def work(uow: UnitOfWork) -> tuple[Doc, bool, bool]:
        session = uow.session
        doc = uow.db[INTRODUCTIONS].find_one({"_id": introduction_id}, session=session)
        if doc is None or person_id not in doc["people"]:
            raise NotFound("no such introduction")
        if person_id in doc.get("accepted_by", []):
            return doc, False, doc.get("state") == "agreed"
        both = set(doc.get("accepted_by", [])) | {person_id} == set(doc["people"])
        changes: dict[str, Any] = {f"accepted_at.{person_id}": now}
        if both:
            changes.update(state="agreed", agreed_at=now)
        result = uow.db[INTRODUCTIONS].update_one(
            {"_id": introduction_id, "accepted_by": {"$ne": person_id}},
            {"$addToSet": {"accepted_by": person_id}, "$set": changes},
            session=session,
        )
        if result.modified_count != 1:
            return doc, False, doc.get("state") == "agreed"
        uow.publish(messages.introduction_accepted(doc, person_id, now, both))
        if both:
            event = uow.db[EVENTS].find_one({"_id": doc["event_id"]}, {"timezone": 1}, session=session) or {}
            send_at = svc.window.next_allowed(now, zone(event.get("timezone", "UTC")))
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
            insert_nudges(uow, svc, specs, send_at, now, batch_event=doc["event_id"])
        return doc, True, both

    doc, newly, both = svc.uow().run(work)
    other = next(p for p in doc["people"] if p != person_id)
    contact = svc.db[CONTACTS].find_one({"_id": other}, {"first_name": 1}) or {}
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
    nudge = svc.db[NUDGES].find_one({"_id": followup}) if followup else None
    email_norm = email.strip().lower()
    targets: list[tuple[str, str, Doc | None]]
    if nudge is not None:
        targets = [(nudge["org_id"], nudge["person_id"], nudge)]
    else:
        targets = [
            (doc["org_id"], doc["_id"], None)
            for doc in svc.db[CONTACTS].find({"email_norm": email_norm}, {"org_id": 1}).limit(100)
        ]
    suppressed = 0
    for org_id, person_id, matched in targets:

        def work(
            uow: UnitOfWork, org_id: str = org_id, person_id: str = person_id, matched: Doc | None = matched
        ) -> int:
            session = uow.session
            first = True
            if matched is not None:
                field = "bounced_at" if bounce_type == "hard" else "soft_bounced_at"
                result = uow.db[NUDGES].update_one(
                    {"_id": matched["_id"], field: None},
                    {"$set": {field: now, "bounce_type": bounce_type, "bounce_reason": reason[:1000]}},
                    session=session,
                )
                first = result.modified_count == 1
            added = 0
            if bounce_type == "hard":
                before = uow.db["suppressions"].count_documents({"_id": f"{org_id}:{email_norm}"}, session=session)
                suppress(uow, org_id, email, "hard_bounce", reason, now, person_id)
                added = 0 if before else 1
                first = first and (matched is not None or added == 1)
            if first:
                uow.publish(messages.followup_bounced(org_id, person_id, matched, now, bounce_type, reason))
            return added

        suppressed += svc.uow().run(work)
    return BounceReport(matched=len(targets), suppressed=suppressed)
