"""Recording what happened to handed-over messages: ``sent`` (settled in bulk),
the other outcomes one by one (with their ``followup.*`` messages and any
suppression), the nudges a claim gives back, and what a dead sender's
journal says (see ``followup.service_layer.sending``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from followup.domain import consent
from followup.domain.delivery import (
    ACCEPTED,
    CRASH_DOUBT,
    announces_failure,
    journal_id,
    journal_ids_of,
    outcome_fields,
    sort_leftovers,
)
from followup.domain.nudges import NudgeState, Transition, is_followup
from followup.domain.suppression import (
    HARD_BOUNCE,
    erased_suppression_entry,
    erased_suppression_id,
    suppression_entry,
    suppression_id,
)
from followup.service_layer import messages
from followup.service_layer.context import Services
from followup.service_layer.repositories import Store, Tx
from turnout_common.emails import normalize_email as entry_key
from turnout_common.privacy import is_pseudonym
from turnout_common.types import Doc

log = logging.getLogger("followup.sender")

OUTCOMES = ("sent", "failed", "bounced", "retry", "skipped", "delivery_unknown")


@dataclass
class BatchReport:
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    retry: int = 0
    skipped: int = 0
    delivery_unknown: int = 0
    waiting: int = 0

    def add(self, state: str, count: int = 1) -> None:
        if hasattr(self, state):
            setattr(self, state, getattr(self, state) + count)

    def include(self, other: BatchReport) -> None:
        for name in OUTCOMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.bounced + self.retry + self.skipped + self.delivery_unknown


@dataclass(frozen=True, slots=True)
class Handover:
    """A message the transport accepted, not yet settled."""

    nudge: Doc
    attempt: int
    at: datetime
    response: str


def accepted_entry(handover: Handover, token: str) -> Doc:
    """The journal's ``...:accepted`` entry for a handover."""
    return {
        "_id": journal_id(handover.nudge["_id"], handover.attempt, ACCEPTED),
        "claim": token,
        "at": handover.at,
        "response": handover.response,
    }


def settle_sent(svc: Services, accepted: list[Handover], transport: str) -> int:
    """Record accepted messages as ``sent`` and publish ``followup.sent``, in one transaction.

    Conditioned on the attempt, not on a claim: the journal's ``...:sending``
    made this attempt this sender's alone, so its acceptance is the truth even
    if the batch was taken over meanwhile (and it turns a ``delivery_unknown``
    that a takeover assumed into ``sent``).
    """
    if not accepted:
        return 0
    by_id = {h.nudge["_id"]: h for h in accepted}
    by_attempt: dict[int, list[str]] = {}
    for handover in accepted:
        by_attempt.setdefault(handover.attempt, []).append(handover.nudge["_id"])
    settled_at = svc.now()
    unsettled = [NudgeState.CLAIMED.value, NudgeState.DELIVERY_UNKNOWN.value]

    def work(tx: Tx) -> int:
        nudges = tx.store.nudges
        current: list[str] = []
        for attempt, ids in by_attempt.items():
            found = nudges.settled_candidates(ids, attempt, unsettled)
            if found:
                nudges.mark_sent(found, attempt, unsettled, settled_at, transport)
                current.extend(found)
        if not current:
            return 0
        tx.store.in_doubt.remove(current)
        # Announced under whom the nudge is for now: an erasure may have replaced the person's
        # id while the message was on its way (see ``followup.service_layer.privacy``).
        people = nudges.people_of(current)
        for followup in current:
            handover = by_id[followup]
            if is_followup(handover.nudge["kind"]):
                nudge = {**handover.nudge, "person_id": people.get(followup, handover.nudge["person_id"])}
                tx.publish(messages.followup_sent(nudge, handover.at, transport))
        return len(current)

    return svc.transaction(work)


def record_outcome(
    svc: Services, nudge: Doc, transition: Transition, attempts: int, token: str | None, now: datetime
) -> bool:
    """Store a non-sent outcome with its ``followup.*`` messages (and suppression) atomically.

    With no ``token`` the message was never handed over (a rendering failure):
    recorded only while the nudge is still pending."""
    state = transition.state

    def work(tx: Tx) -> bool:
        fields = outcome_fields(transition, now)
        if not tx.store.nudges.record_outcome(nudge["_id"], fields, None if token is None else attempts):
            return False
        # Whom it is for now (an erasure may have replaced the id while it was on its way).
        person_id = str(tx.store.nudges.people_of([nudge["_id"]]).get(nudge["_id"], nudge["person_id"]))
        current = {**nudge, "person_id": person_id}
        if state == NudgeState.DELIVERY_UNKNOWN:
            mark_in_doubt(tx.store, current, now)
        announced = is_followup(nudge["kind"])
        if announces_failure(state) and announced:
            tx.publish(
                messages.followup_failed(current, now, transition.error or state.value, transition.permanent, attempts)
            )
        if transition.bounce and announced:
            tx.publish(
                messages.followup_bounced(
                    current["org_id"], person_id, current, now, "hard", transition.error or "rejected"
                )
            )
        if transition.suppress_address:
            contact = tx.store.contacts.get(person_id)
            email = str((contact or {}).get("email") or nudge.get("to_email") or "")
            if email and not is_pseudonym(person_id):
                newly = suppress(tx.store, nudge["org_id"], email, HARD_BOUNCE, transition.error or "", now, person_id)
                if newly and contact is not None:
                    withdrawn_by_bounce(tx.store, nudge["org_id"], person_id, now, nudge["_id"])
        return True

    return svc.transaction(work)


def mark_in_doubt(store: Store, nudge: Doc, now: datetime) -> None:
    """Keep ``delivery_unknown`` nudges in a small list of their own (for /metrics and the UI)."""
    store.in_doubt.add(nudge["_id"], {"org_id": nudge["org_id"], "event_id": nudge.get("event_id"), "since": now})


def suppress(
    store: Store, org_id: str, email: str, reason: str, detail: str, now: datetime, person_id: str | None
) -> bool:
    """Add an address to the organization's suppression list (the first reason stays);
    whether it was not on the list before."""
    entry = suppression_entry(org_id, email, reason, detail, now, person_id)
    key = suppression_id(org_id, email)
    if person_id is not None and is_pseudonym(person_id):
        # About an erased person (a late bounce of their message): kept as the address's digest.
        entry = erased_suppression_entry({**entry, "_id": key}, person_id, now)
        key = erased_suppression_id(org_id, entry_key(email))
    before = store.suppressions.exists(key)
    store.suppressions.add(key, entry)
    return not before


def withdrawn_by_bounce(store: Store, org_id: str, person_id: str, now: datetime, followup: str | None) -> None:
    """A hard bounce stopped the person's emails: the consent history says so."""
    store.consent.add(
        [
            consent.entry(
                org_id,
                person_id,
                consent.WITHDRAWN,
                consent.BOUNCE,
                now,
                message_id=None,
                entry_id=f"bounce:{org_id}:{person_id}:{now.isoformat()}",
                followup_id=followup,
            )
        ]
    )


def release_unsent(svc: Services, nudges: list[Doc], token: str) -> None:
    """Give back nudges this claim rendered but never handed over."""
    if not nudges:
        return
    svc.store.nudges.unclaim([n["_id"] for n in nudges], token)


def settle_from_journal(svc: Services, batch_id: str, dead: str, now: datetime) -> BatchReport:
    """Settle the nudges a dead claim left ``claimed``, from what the journal says happened."""
    report = BatchReport()
    left = svc.store.nudges.left_claimed(batch_id, dead)
    if not left:
        return report
    journal = svc.store.journal.by_ids(journal_ids_of(left))
    sorted_out = sort_leftovers(left, journal)
    accepted = [
        Handover(nudge, int(nudge["attempts"]), entry["at"], str(entry.get("response", "")))
        for nudge, entry in sorted_out.accepted
    ]
    report.sent = settle_sent(svc, accepted, svc.transport.name if svc.transport else "smtp")
    # Rendered but never handed over: schedule again.
    release_unsent(svc, sorted_out.never_sent, dead)
    for nudge in sorted_out.in_doubt:
        transition = Transition(NudgeState.DELIVERY_UNKNOWN, error=CRASH_DOUBT)
        if record_outcome(svc, nudge, transition, int(nudge["attempts"]), dead, now):
            report.delivery_unknown += 1
    if sorted_out.in_doubt:
        log.error(
            "delivery unknown after a sender crash; not resending",
            extra={"batch_id": batch_id, "followup_ids": [n["_id"] for n in sorted_out.in_doubt]},
        )
    return report


def count_outcomes(svc: Services, report: BatchReport) -> None:
    """Running totals for ``/metrics`` (one write per batch)."""
    increments = {name: getattr(report, name) for name in OUTCOMES if getattr(report, name)}
    if increments:
        svc.store.figures.add(increments)
