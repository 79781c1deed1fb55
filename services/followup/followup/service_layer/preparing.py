"""Before a batch is handed over: decide each due nudge again from the current
facts, render the ones still due, store each exactly as it will be handed
over, and claim them (one more attempt each)."""

from __future__ import annotations

import logging
from datetime import datetime

from followup.domain.audience import decide_at_send_time
from followup.domain.mail import OutgoingMail
from followup.domain.nudges import NudgeState, Transition
from followup.domain.privacy import ERASED
from followup.service_layer.content import BatchFacts, draft_for, send_facts
from followup.service_layer.context import Services
from followup.service_layer.outcomes import BatchReport, record_outcome
from turnout_common.types import Doc

log = logging.getLogger("followup.sender")

Prepared = list[tuple[Doc, OutgoingMail]]


def decide(svc: Services, due: list[Doc], facts: BatchFacts, now: datetime, report: BatchReport) -> list[Doc]:
    """Skip what no longer applies, postpone what must wait; return what goes out now."""
    to_send: list[Doc] = []
    skips: list[tuple[str, str]] = []
    waits: list[tuple[str, datetime, str]] = []
    for nudge in due:
        decision = decide_at_send_time(send_facts(svc, facts, nudge), now)
        if decision.action == "send":
            to_send.append(nudge)
        elif decision.action == "skip":
            report.skipped += 1
            skips.append((nudge["_id"], str(decision.reason)))
        else:
            report.waiting += 1
            assert decision.until is not None
            waits.append((nudge["_id"], decision.until, str(decision.reason)))
    if skips or waits:
        svc.store.nudges.decide_pending(skips, waits, now)
    return to_send


def render(svc: Services, nudges: list[Doc], facts: BatchFacts, now: datetime, report: BatchReport) -> Prepared:
    """Render every message and store it exactly as it will be handed over."""
    rendered: Prepared = []
    stored: list[Doc] = []
    for nudge in nudges:
        attempt = int(nudge["attempts"]) + 1
        try:
            mail = svc.renderer.render(draft_for(svc, facts, nudge))
        except Exception as exc:  # a template bug must not stall the batch: fail this one, loudly
            log.exception("rendering failed", extra={"followup_id": nudge["_id"]})
            transition = Transition(NudgeState.FAILED, error=f"rendering failed: {exc!r}", permanent=True)
            record_outcome(svc, nudge, transition, attempt, None, now)
            report.failed += 1
            continue
        stored.append(
            {
                "_id": f"{nudge['_id']}:{attempt}",
                "followup_id": nudge["_id"],
                "org_id": nudge["org_id"],
                "attempt": attempt,
                "subject": mail.subject,
                "to": mail.to_address,
                "raw": mail.raw,
                "rendered_at": now,
            }
        )
        rendered.append((nudge, mail))
    if stored:
        svc.store.rendered.store(stored)
    return rendered


def claim(svc: Services, mails: Prepared, token: str, now: datetime) -> Prepared:
    """Claim the rendered messages for ``token``; those another claim took meanwhile drop out."""
    if not mails:
        return []
    ids = [nudge["_id"] for nudge, _ in mails]
    if svc.store.nudges.claim(ids, token, now) == len(ids):
        return mails
    mine = svc.store.nudges.claimed_by(ids, token)
    lost = [nudge_id for nudge_id in ids if nudge_id not in mine]
    # Skipped meanwhile because the person was erased: what this sender rendered from the
    # facts it read before the erasure must not stay behind.
    erased = svc.store.nudges.skipped_for(lost, ERASED)
    if erased:
        svc.store.rendered.remove(
            [f"{nudge['_id']}:{int(nudge['attempts']) + 1}" for nudge, _ in mails if nudge["_id"] in erased]
        )
    return [(nudge, mail) for nudge, mail in mails if nudge["_id"] in mine]
