"""What an organizer does with win-back drafts: read them (with why each person is
at risk), edit the note, approve one or several, discard one; and the funnel
(drafted, approved, sent, came back). The drafts themselves are written by the
scheduler's daily scan (``followup.service_layer.scheduling.scan_win_back``).

An approval moves a draft into a send batch of its own, due at the next daytime
opening of the person's last gathering's place, and announces it
(``followup.scheduled``); from there it is an ordinary nudge: the sender decides
it again at send time (consent, unsubscribe, suppression, erasure, the switch,
"came back meanwhile") and sends it at most once. There is no audit trail in
follow-up; who approved, edited or discarded a draft, and when, is kept on the
nudge itself (``approved_by``/``approved_at``, ``edited_by``, ``discarded_by``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from followup.domain.audience import unreachable_reason
from followup.domain.nudges import NudgeKind, NudgeState
from followup.domain.schedule import zone
from followup.domain.winback import (
    WinbackMode,
    came_back,
    draft_refusal,
    edit_refusal,
    funnel,
    mode_of,
)
from followup.service_layer import messages
from followup.service_layer.content import contact_facts, is_suppressed, load_settings, load_suppressed
from followup.service_layer.context import Services
from followup.service_layer.repositories import Tx
from followup.service_layer.tracking import NotFound
from turnout_common.clock import to_rfc3339_or_none as _t
from turnout_common.privacy import is_pseudonym
from turnout_common.types import Doc

MAX_BULK = 500  # ids in one bulk approval


class Refused(RuntimeError):
    """The action does not fit the draft's state (or the organization's choice)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def mode(svc: Services, org_id: str) -> WinbackMode:
    settings = load_settings(svc, org_id, None)
    return mode_of(settings.win_back, settings.enabled(NudgeKind.WIN_BACK))


def _draft(svc: Services, org_id: str, followup: str) -> Doc:
    doc = svc.store.nudges.in_org(org_id, followup)
    if doc is None or doc.get("kind") != NudgeKind.WIN_BACK:
        raise NotFound("no such win-back in your organization")
    return doc


def _name(contact: Doc | None) -> str:
    if contact is None:
        return ""
    return f"{contact.get('first_name') or ''} {contact.get('last_name') or ''}".strip()


def _view(doc: Doc, contact: Doc | None, may_email: str | None) -> dict[str, Any]:
    risk = doc.get("at_risk") or {}
    note = doc.get("winback_note") or {}
    return {
        "id": doc["_id"],
        "person_id": doc["person_id"],
        "name": _name(contact),
        "email": (contact or {}).get("email"),
        "state": doc["state"],
        "subject": note.get("subject", ""),
        "body": note.get("body", ""),
        "why": {
            "visits": risk.get("visits"),
            "days_quiet": risk.get("days_quiet"),
            "usual_gap_days": risk.get("usual_gap_days"),
            "threshold_days": risk.get("threshold_days"),
            "last_seen": _t(risk.get("last_seen")),
            "habit": risk.get("habit"),
        },
        "cannot_email": may_email,
        "drafted_at": _t(doc.get("drafted_at") or doc.get("created_at")),
        "edited_by": doc.get("edited_by"),
        "approved_at": _t(doc.get("approved_at")),
        "approved_by": doc.get("approved_by"),
        "sent_at": _t(doc.get("sent_at")),
    }


def overview(svc: Services, org_id: str, limit: int = 200) -> dict[str, Any]:
    """The drafts waiting (oldest first, at most ``limit``), the organization's choice, and the funnel."""
    docs = svc.store.nudges.win_backs(org_id)
    drafts = [d for d in docs if d["state"] == NudgeState.DRAFT and not is_pseudonym(str(d["person_id"]))][:limit]
    contacts = {c["_id"]: c for c in svc.store.contacts.by_ids(d["person_id"] for d in drafts)}
    suppressed = load_suppressed(svc, [(org_id, str(c.get("email") or "")) for c in contacts.values()])
    views = []
    for doc in drafts:
        contact = contacts.get(doc["person_id"])
        facts = contact_facts(contact, is_suppressed(suppressed, org_id, (contact or {}).get("email")))
        views.append(_view(doc, contact, unreachable_reason(facts)))
    return {"mode": mode(svc, org_id).value, "drafts": views, "funnel": _funnel(svc, docs)}


def _funnel(svc: Services, docs: Sequence[Doc]) -> dict[str, int]:
    sent = {d["_id"]: d for d in docs if d.get("sent_at") is not None}
    checkins: dict[str, list[datetime]] = {}
    for row in svc.store.attendance.of_people({d["person_id"] for d in sent.values()}):
        if row.get("checked_in_at") is not None:
            checkins.setdefault(row["person_id"], []).append(row["checked_in_at"])
    returned = {fid for fid, d in sent.items() if came_back(d["sent_at"], checkins.get(d["person_id"], []))}
    return funnel(docs, returned).as_dict()


def edit(svc: Services, org_id: str, followup: str, subject: str, body: str, by: str) -> dict[str, Any]:
    """Change a draft's subject and note (only while it is a draft)."""
    doc = _draft(svc, org_id, followup)
    wrong = edit_refusal(subject, body)
    if wrong is not None:
        raise Refused(wrong[1], wrong[0])
    refusal = draft_refusal(doc["state"], "edit")
    if refusal is not None:
        raise Refused(refusal)
    changes: Doc = {
        "winback_note": {"subject": subject.strip(), "body": body.strip()},
        "edited_by": by,
        "edited_at": svc.now(),
    }
    if not svc.transaction(lambda tx: tx.store.nudges.resolve(followup, NudgeState.DRAFT.value, changes)):
        raise Refused("the draft changed meanwhile; look again")
    return _view({**doc, **changes}, svc.store.contacts.get(doc["person_id"]), None)


def discard(svc: Services, org_id: str, followup: str, by: str) -> None:
    """A draft the organizer does not want sent: skipped for good (reason ``discarded``)."""
    doc = _draft(svc, org_id, followup)
    refusal = draft_refusal(doc["state"], "discard")
    if refusal is not None:
        raise Refused(refusal)
    now = svc.now()
    changes: Doc = {
        "state": NudgeState.SKIPPED.value,
        "skip_reason": "discarded",
        "skipped_at": now,
        "discarded_at": now,
        "discarded_by": by,
    }
    if not svc.transaction(lambda tx: tx.store.nudges.resolve(followup, NudgeState.DRAFT.value, changes)):
        raise Refused("the draft changed meanwhile; look again")


def approve(svc: Services, org_id: str, followups: Iterable[str], by: str) -> dict[str, Any]:
    """Approve drafts: each goes out once, through the normal sender. Returns the ids
    approved, the others of the organization's with why not (not a draft any more),
    and how many ids named no win-back of the organization."""
    wanted = list(dict.fromkeys(followups))
    if mode(svc, org_id) == WinbackMode.OFF:
        raise Refused("win-back is switched off for your organization: nothing can be approved", "mode")
    docs: dict[str, Doc] = {}
    refused: list[dict[str, str]] = []
    unknown = 0  # not echoed back: an id of another organization's stays unconfirmed
    for fid in wanted:
        doc = svc.store.nudges.in_org(org_id, fid)
        if doc is None or doc.get("kind") != NudgeKind.WIN_BACK:
            unknown += 1
        elif (why := draft_refusal(doc["state"], "approve")) is not None:
            refused.append({"id": fid, "reason": why})
        elif is_pseudonym(str(doc["person_id"])):
            refused.append({"id": fid, "reason": "this person's data was erased: nothing is sent to them"})
        else:
            docs[fid] = doc
    now = svc.now()
    # Each goes out at the next daytime opening where the person's last gathering took place.
    anchors = svc.store.events.by_ids(d["anchor_event_id"] for d in docs.values())
    zones = {e["_id"]: e.get("timezone", "UTC") for e in anchors}
    send_at = {
        fid: svc.window.next_allowed(now, zone(zones.get(d["anchor_event_id"], "UTC"))) for fid, d in docs.items()
    }

    def work(tx: Tx) -> list[str]:
        batch_id = uuid.uuid4().hex
        approved = []
        for fid, doc in docs.items():
            changes: Doc = {
                "state": NudgeState.SCHEDULED.value,
                "batch_id": batch_id,
                "send_at": send_at[fid],
                "approved_at": now,
                "approved_by": by,
                "claim": None,
            }
            if tx.store.nudges.resolve(fid, NudgeState.DRAFT.value, changes):
                approved.append(fid)
                tx.publish(messages.followup_scheduled({**doc, **changes}, now))
        if approved:
            tx.store.batches.add(
                {
                    "_id": batch_id,
                    "org_id": org_id,
                    "event_id": None,
                    "state": "ready",
                    "due_at": min(send_at[fid] for fid in approved),
                    "size": len(approved),
                    "created_at": now,
                    "lease_owner": None,
                    "lease_until": None,
                }
            )
        return approved

    approved = svc.transaction(work) if docs else []
    refused += [{"id": fid, "reason": "the draft changed meanwhile; look again"} for fid in docs if fid not in approved]
    return {"approved": approved, "refused": refused, "not_found": unknown}
