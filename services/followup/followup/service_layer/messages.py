"""The messages follow-up publishes (through its outbox) on ``turnout.followup``.

A nudge's lifecycle messages get *deterministic* ids (UUIDv5 of the nudge
and the step), so doing a step twice — after a crash, or by two workers —
produces the same message id, and consumers drop the copy.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from followup.domain.engagement import HUMAN, Verdict
from turnout_common.clock import to_rfc3339
from turnout_common.envelope import Envelope, schema_uri
from turnout_common.types import Doc

SOURCE = "/turnout/followup"
_NAMESPACE = uuid.UUID("8d7f4a52-2f0b-4b7e-9a55-6f1d3c0e8a11")


def _envelope(event_type: str, subject: str, data: dict[str, Any], at: datetime, seed: str | None) -> Envelope:
    message_id = str(uuid.uuid5(_NAMESPACE, f"{event_type}:{seed}")) if seed else str(uuid.uuid4())
    return Envelope(
        type=event_type,
        source=SOURCE,
        subject=subject,
        data=data,
        dataschema=schema_uri(event_type, 1),
        id=message_id,
        time=to_rfc3339(at),
    )


def _about(nudge: Doc) -> dict[str, Any]:
    return {
        "org_id": nudge["org_id"],
        "event_id": nudge.get("event_id"),
        "person_id": nudge["person_id"],
        "followup_id": nudge["_id"],
        "nudge_kind": nudge["kind"],
    }


def followup_scheduled(nudge: Doc, at: datetime) -> Envelope:
    data = {**_about(nudge), "send_at": to_rfc3339(nudge["send_at"])}
    return _envelope("followup.scheduled", nudge["person_id"], data, at, nudge["_id"])


def followup_sent(nudge: Doc, sent_at: datetime, transport: str) -> Envelope:
    data = {**_about(nudge), "sent_at": to_rfc3339(sent_at), "transport": transport}
    return _envelope("followup.sent", nudge["person_id"], data, sent_at, nudge["_id"])


def followup_failed(nudge: Doc, failed_at: datetime, error: str, permanent: bool, attempts: int) -> Envelope:
    data = {
        **_about(nudge),
        "failed_at": to_rfc3339(failed_at),
        "error": error[:1000],
        "permanent": permanent,
        "attempts": max(1, attempts),
    }
    return _envelope("followup.failed", nudge["person_id"], data, failed_at, f"{nudge['_id']}:{attempts}")


def followup_bounced(
    org_id: str,
    person_id: str,
    nudge: Doc | None,
    bounced_at: datetime,
    bounce_type: str,
    reason: str,
    event_id: str | None = None,
) -> Envelope:
    data = {
        "org_id": org_id,
        "event_id": nudge.get("event_id") if nudge else event_id,
        "person_id": person_id,
        "followup_id": nudge["_id"] if nudge else None,
        "nudge_kind": nudge["kind"] if nudge else None,
        "bounced_at": to_rfc3339(bounced_at),
        "bounce_type": bounce_type,
        "reason": reason[:1000],
    }
    return _envelope("followup.bounced", person_id, data, bounced_at, None)


def _machine(verdict: Verdict) -> dict[str, Any]:
    # Left out for people: a consumer on the schema before the flag reads those as it always did.
    return {"machine": True, "machine_reason": verdict.reason} if verdict.machine else {}


def followup_opened(nudge: Doc, opened_at: datetime, verdict: Verdict = HUMAN) -> Envelope:
    data = {**_about(nudge), "opened_at": to_rfc3339(opened_at), **_machine(verdict)}
    seed = f"{nudge['_id']} machine" if verdict.machine else nudge["_id"]
    return _envelope("followup.opened", nudge["person_id"], data, opened_at, seed)


def followup_clicked(nudge: Doc, clicked_at: datetime, url: str, verdict: Verdict = HUMAN) -> Envelope:
    data = {**_about(nudge), "clicked_at": to_rfc3339(clicked_at), "url": url, **_machine(verdict)}
    seed = f"{nudge['_id']} {url}" + (" machine" if verdict.machine else "")
    return _envelope("followup.clicked", nudge["person_id"], data, clicked_at, seed)


def feedback_submitted(nudge: Doc, submitted_at: datetime, rating: int, comment: str | None) -> Envelope:
    data = {
        "org_id": nudge["org_id"],
        "event_id": nudge.get("event_id") or nudge.get("anchor_event_id"),
        "person_id": nudge["person_id"],
        "followup_id": nudge["_id"],
        "rating": rating,
        "submitted_at": to_rfc3339(submitted_at),
        "comment": comment,
    }
    return _envelope("feedback.submitted", nudge["person_id"], data, submitted_at, None)


def contact_unsubscribed(org_id: str, person_id: str, at: datetime, via: str) -> Envelope:
    data = {"org_id": org_id, "person_id": person_id, "unsubscribed_at": to_rfc3339(at), "via": via}
    return _envelope("contact.unsubscribed", person_id, data, at, None)


def introduction_accepted(introduction: Doc, person_id: str, at: datetime, both: bool) -> Envelope:
    other = next(p for p in introduction["people"] if p != person_id)
    data = {
        "org_id": introduction["org_id"],
        "event_id": introduction["event_id"],
        "introduction_id": introduction["_id"],
        "person_id": person_id,
        "other_person_id": other,
        "accepted_at": to_rfc3339(at),
        "both_accepted": both,
    }
    return _envelope("introduction.accepted", person_id, data, at, f"{introduction['_id']}:{person_id}")


# -- answers to checkin's data requests (on turnout.privacy) -------------------------------------

SERVICE = "followup"


def person_data_exported(
    org_id: str, request_id: str, index: int, count: int, chunk: str, exported_at: datetime
) -> Envelope:
    """One chunk of follow-up's part of a person's export (the same id however often it is made)."""
    data = {
        "org_id": org_id,
        "request_id": request_id,
        "service": SERVICE,
        "chunk_index": index,
        "chunk_count": count,
        "chunk": chunk,
        "exported_at": to_rfc3339(exported_at),
    }
    return _envelope("person.data_exported", request_id, data, exported_at, f"{request_id}:{index}")


def person_erased(org_id: str, request_id: str, erased_at: datetime, counts: dict[str, int]) -> Envelope:
    """Follow-up erased (or anonymised) the person of this request."""
    data = {
        "org_id": org_id,
        "request_id": request_id,
        "service": SERVICE,
        "erased_at": to_rfc3339(erased_at),
        "counts": dict(counts),
    }
    return _envelope("person.erased", request_id, data, erased_at, request_id)
