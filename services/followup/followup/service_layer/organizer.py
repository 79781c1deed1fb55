"""What organizers do and see: settings, the suppression list, the messages of
a gathering (with their status and the email exactly as sent), previews,
and resolving a ``delivery_unknown``. Everything is scoped to one organization."""

from __future__ import annotations

import email
import email.policy
import zlib
from datetime import datetime
from typing import Any

from followup.adapters.mongo import (
    CONTACTS,
    DELIVERIES,
    EVENTS,
    FIGURES,
    IN_DOUBT,
    INTRODUCTIONS,
    NUDGES,
    RENDERED,
    SEND_BATCHES,
    SETTINGS,
    SUPPRESSIONS,
)
from followup.domain.mail import OutgoingMail
from followup.domain.nudges import (
    ALL_KINDS,
    NudgeKind,
    NudgeState,
    display_status,
    followup_id,
    message_id,
    nudge_key,
)
from followup.domain.settings import FollowupSettings
from followup.service_layer import messages
from followup.service_layer.content import draft_for, load_batch_facts, load_settings, normalize_email
from followup.service_layer.context import Services
from followup.service_layer.sending import suppress
from followup.service_layer.tracking import NotFound
from turnout_common.clock import to_rfc3339
from turnout_common.mongo import UnitOfWork

Doc = dict[str, Any]


class Conflict(RuntimeError):
    """The action does not fit the current state (e.g. resending a sent message)."""


def _t(value: datetime | None) -> str | None:
    return to_rfc3339(value) if value is not None else None


def event_of(svc: Services, org_id: str, event_id: str) -> Doc:
    event = svc.db[EVENTS].find_one({"_id": event_id, "org_id": org_id})
    if event is None:
        raise NotFound("no such gathering in your organization")
    return event


# -- settings ------------------------------------------------------------------------


def _settings_view(settings: FollowupSettings, event_level: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"nudges": {kind.value: settings.enabled(kind) for kind in ALL_KINDS}}
    if event_level:
        view["overrides"] = dict(settings.event_switches)
        view["content"] = {"note": settings.note, "photos_url": settings.photos_url}
    else:
        b = settings.branding
        view["branding"] = {
            "name": b.name,
            "primary_color": b.primary_color,
            "accent_color": b.accent_color,
            "postal_address": b.postal_address,
            "reply_to": b.reply_to,
            "website_url": b.website_url,
        }
        view["introductions_per_person"] = settings.introductions_per_person
        view["win_back"] = {
            "min_events": settings.win_back.min_events,
            "quiet_days": settings.win_back.quiet_days,
            "max_quiet_days": settings.win_back.max_quiet_days,
        }
    return view


def _flatten(patch: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"branding": {"name": "x"}}`` -> ``{"branding.name": "x"}`` (a partial update)."""
    flat: dict[str, Any] = {}
    for key, value in patch.items():
        if isinstance(value, dict) and key in ("nudges", "branding", "win_back", "content"):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def org_settings(svc: Services, org_id: str) -> dict[str, Any]:
    return _settings_view(load_settings(svc, org_id, None), event_level=False)


def update_org_settings(svc: Services, org_id: str, patch: dict[str, Any]) -> dict[str, Any]:
    svc.db[SETTINGS].update_one(
        {"_id": f"org:{org_id}"},
        {"$set": {**_flatten(patch), "org_id": org_id, "updated_at": svc.now()}},
        upsert=True,
    )
    return org_settings(svc, org_id)


def event_settings(svc: Services, org_id: str, event_id: str) -> dict[str, Any]:
    event_of(svc, org_id, event_id)
    return _settings_view(load_settings(svc, org_id, event_id), event_level=True)


def update_event_settings(svc: Services, org_id: str, event_id: str, patch: dict[str, Any]) -> dict[str, Any]:
    event_of(svc, org_id, event_id)
    svc.db[SETTINGS].update_one(
        {"_id": f"event:{event_id}"},
        {"$set": {**_flatten(patch), "org_id": org_id, "event_id": event_id, "updated_at": svc.now()}},
        upsert=True,
    )
    return event_settings(svc, org_id, event_id)


# -- suppression list --------------------------------------------------------------------


def _suppression_view(doc: Doc) -> dict[str, Any]:
    return {
        "email": doc["email"],
        "reason": doc["reason"],
        "detail": doc.get("detail"),
        "person_id": doc.get("person_id"),
        "created_at": _t(doc.get("created_at")),
    }


def list_suppressions(svc: Services, org_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
    found = svc.db[SUPPRESSIONS].find({"org_id": org_id}).sort("created_at", -1).skip(offset).limit(limit)
    return [_suppression_view(doc) for doc in found]


def add_suppression(svc: Services, org_id: str, address: str, detail: str) -> dict[str, Any]:
    """The organizer stops all email to an address (publishes ``contact.unsubscribed`` for its contacts)."""
    now = svc.now()

    def work(uow: UnitOfWork) -> None:
        suppress(uow, org_id, address, "organizer", detail, now, None)
        for contact in uow.db[CONTACTS].find(
            {"org_id": org_id, "email_norm": normalize_email(address), "unsubscribed": {"$ne": True}},
            session=uow.session,
        ):
            uow.db[CONTACTS].update_one(
                {"_id": contact["_id"]},
                {"$set": {"unsubscribed": True, "unsubscribed_at": now, "unsubscribed_via": "organizer"}},
                session=uow.session,
            )
            uow.publish(messages.contact_unsubscribed(org_id, contact["_id"], now, "organizer"))

    svc.uow().run(work)
    doc = svc.db[SUPPRESSIONS].find_one({"_id": f"{org_id}:{normalize_email(address)}"})
    assert doc is not None
    return _suppression_view(doc)


def remove_suppression(svc: Services, org_id: str, address: str) -> None:
    """Lift a bounce or organizer suppression; a person's own unsubscribe cannot be lifted for them."""
    doc = svc.db[SUPPRESSIONS].find_one({"_id": f"{org_id}:{normalize_email(address)}"})
    if doc is None:
        raise NotFound("this address is not on your suppression list")
    if doc["reason"] == "unsubscribed":
        raise Conflict("this person unsubscribed themselves; only they can subscribe again")
    svc.db[SUPPRESSIONS].delete_one({"_id": doc["_id"]})
    if doc["reason"] == "organizer":
        svc.db[CONTACTS].update_many(
            {"org_id": org_id, "email_norm": doc["email_norm"], "unsubscribed_via": "organizer"},
            {"$set": {"unsubscribed": False}},
        )


# -- messages --------------------------------------------------------------------------

STATUS_QUERIES: dict[str, dict[str, Any]] = {
    "scheduled": {"state": NudgeState.SCHEDULED.value},
    "retry": {"state": NudgeState.RETRY.value},
    "sending": {"state": {"$in": [NudgeState.CLAIMED.value, NudgeState.SENDING.value]}},
    "sent": {"state": NudgeState.SENT.value},
    "failed": {"state": NudgeState.FAILED.value},
    "bounced": {"$or": [{"state": NudgeState.BOUNCED.value}, {"bounced_at": {"$ne": None}}]},
    "opened": {"opened_at": {"$ne": None}},
    "clicked": {"$or": [{"clicked_at": {"$ne": None}}, {"feedback_at": {"$ne": None}}]},
    "delivery_unknown": {"state": NudgeState.DELIVERY_UNKNOWN.value},
    "skipped": {"state": NudgeState.SKIPPED.value},
}


def status_of(doc: Doc) -> str:
    return display_status(
        doc["state"],
        opened=doc.get("opened_at") is not None,
        clicked=doc.get("clicked_at") is not None,
        bounced=doc.get("bounced_at") is not None,
        feedback=doc.get("feedback_at") is not None,
    )


def message_summary(doc: Doc, contact: Doc | None) -> dict[str, Any]:
    contact = contact or {}
    return {
        "id": doc["_id"],
        "event_id": doc.get("event_id"),
        "person_id": doc["person_id"],
        "name": f"{contact.get('first_name', '')} {contact.get('last_name', '')}".strip() or None,
        "email": doc.get("to_email") or contact.get("email"),
        "kind": doc["kind"],
        "status": status_of(doc),
        "state": doc["state"],
        "send_at": _t(doc.get("send_at")),
        "sent_at": _t(doc.get("sent_at")),
        "attempts": doc.get("attempts", 0),
        "last_error": doc.get("last_error") or None,
        "skip_reason": doc.get("skip_reason"),
        "message_id": doc.get("message_id"),
        "opened_at": _t(doc.get("opened_at")),
        "clicked_at": _t(doc.get("clicked_at")),
        "bounced_at": _t(doc.get("bounced_at")),
        "feedback_rating": doc.get("feedback_rating"),
    }


def list_messages(
    svc: Services,
    org_id: str,
    event_id: str,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    event = event_of(svc, org_id, event_id)
    query: dict[str, Any] = {"event_id": event_id, "org_id": org_id}
    if kind:
        query["kind"] = kind
    if status:
        query.update(STATUS_QUERIES[status])
    docs = list(svc.db[NUDGES].find(query).sort([("created_at", 1), ("_id", 1)]).skip(offset).limit(limit))
    contacts = {
        doc["_id"]: doc for doc in svc.db[CONTACTS].find({"_id": {"$in": sorted({d["person_id"] for d in docs})}})
    }
    counts: dict[str, int] = {}
    for doc in svc.db[NUDGES].find(
        {"event_id": event_id, "org_id": org_id},
        {"state": 1, "opened_at": 1, "clicked_at": 1, "bounced_at": 1, "feedback_at": 1},
    ):
        status_name = status_of(doc)
        counts[status_name] = counts.get(status_name, 0) + 1
    plan = svc.db["followup_plans"].find_one({"_id": event_id}) or {}
    return {
        "event": {"id": event["_id"], "title": event["title"], "kind": event["kind"], "status": event.get("status")},
        "plan": {"state": plan.get("state"), "due_at": _t(plan.get("due_at"))} if plan else None,
        "counts": counts,
        "messages": [message_summary(doc, contacts.get(doc["person_id"])) for doc in docs],
    }


def parse_rendered(raw: bytes) -> dict[str, Any]:
    """A stored email split into what an organizer reads: headers, text, HTML, source."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    return {
        "subject": str(parsed["Subject"] or ""),
        "headers": [{"name": name, "value": str(value)} for name, value in parsed.items()],
        "text": text_part.get_content() if text_part is not None else "",
        "html": html_part.get_content() if html_part is not None else "",
        "raw": raw.decode("utf-8", errors="replace"),
    }


def rendered_raw(svc: Services, doc: Doc) -> bytes | None:
    """The bytes of the latest rendered attempt (what was handed to the transport)."""
    if not doc.get("attempts"):
        return None
    stored = svc.db[RENDERED].find_one({"_id": f"{doc['_id']}:{doc['attempts']}"})
    if stored is None:
        return None
    return zlib.decompress(bytes(stored["raw"]))


def message_detail(svc: Services, org_id: str, followup: str) -> dict[str, Any]:
    doc = svc.db[NUDGES].find_one({"_id": followup, "org_id": org_id})
    if doc is None:
        raise NotFound("no such message in your organization")
    contact = svc.db[CONTACTS].find_one({"_id": doc["person_id"]})
    detail = message_summary(doc, contact)
    raw = rendered_raw(svc, doc)
    detail["rendered"] = parse_rendered(raw) if raw is not None else None
    detail["transport"] = doc.get("transport")
    journal = (
        svc.db[DELIVERIES].find_one({"_id": f"{followup}:{doc['attempts']}:accepted"}) if doc.get("attempts") else None
    )
    detail["transport_response"] = (journal or {}).get("response")
    detail["open_count"] = doc.get("open_count", 0)
    detail["clicked_urls"] = doc.get("clicked_urls", [])
    return detail


def preview(svc: Services, org_id: str, event_id: str, kind: NudgeKind, person_id: str) -> OutgoingMail:
    """Render any nudge for any attendee of a gathering, as it would go out now."""
    event = event_of(svc, org_id, event_id)
    if svc.db["attendance"].find_one({"event_id": event_id, "person_id": person_id}) is None:
        raise NotFound("this person is not registered for this gathering")
    if svc.db[CONTACTS].find_one({"_id": person_id, "org_id": org_id}) is None:
        raise NotFound("no such contact in your organization")
    introduction = None
    if kind == NudgeKind.INTRODUCTION:
        introduction = svc.db[INTRODUCTIONS].find_one({"event_id": event_id, "people": person_id})
    discriminator = introduction["_id"] if introduction else None
    key = nudge_key(None if kind == NudgeKind.WIN_BACK else event_id, person_id, kind, discriminator)
    fid = followup_id(key)
    now = svc.now()
    nudge = {
        "_id": fid,
        "key": key,
        "org_id": org_id,
        "event_id": None if kind == NudgeKind.WIN_BACK else event_id,
        "anchor_event_id": event["_id"],
        "person_id": person_id,
        "kind": kind.value,
        "introduction_id": discriminator,
        "send_at": now,
        "message_id": message_id(fid, svc.settings.mail_domain),
        "attempts": 0,
        "state": NudgeState.SCHEDULED.value,
    }
    facts = load_batch_facts(svc, [nudge], now)
    draft = draft_for(svc, facts, nudge)
    if kind == NudgeKind.INTRODUCTION_REQUEST and not draft.context.get("suggestions"):
        draft.context["suggestions"] = [
            {"name": "Sam P. (example)", "they_offer": ["grant writing"], "you_offer": ["design"], "accept_url": "#"}
        ]
    if kind == NudgeKind.INTRODUCTION and introduction is None:
        draft.context["introduction"] = {
            "name": "Sam Park (example)",
            "first_name": "Sam",
            "email": "sam@example.org",
            "they_offer": ["grant writing"],
            "you_offer": ["design"],
        }
    return svc.renderer.render(draft)


RESOLUTIONS = ("resend", "mark_sent", "mark_failed")


def resolve(svc: Services, org_id: str, followup: str, action: str, note: str = "") -> dict[str, Any]:
    """A person decides what a ``delivery_unknown`` (or ``failed``) message becomes.

    ``resend`` sends it again with the same Message-ID (a receiving system
    that keeps the first copy drops the second); ``mark_sent`` records that it
    arrived (the recipient confirmed, or the provider's log shows it);
    ``mark_failed`` gives up.
    """
    doc = svc.db[NUDGES].find_one({"_id": followup, "org_id": org_id})
    if doc is None:
        raise NotFound("no such message in your organization")
    allowed = {
        "resend": (NudgeState.DELIVERY_UNKNOWN.value, NudgeState.FAILED.value),
        "mark_sent": (NudgeState.DELIVERY_UNKNOWN.value,),
        "mark_failed": (NudgeState.DELIVERY_UNKNOWN.value,),
    }[action]
    if doc["state"] not in allowed:
        raise Conflict(f"a {doc['state']} message cannot be resolved with {action}")
    now = svc.now()

    def work(uow: UnitOfWork) -> bool:
        session = uow.session
        changes: dict[str, Any] = {"resolved_by": f"organizer:{action}", "resolution_note": note[:500]}
        if action == "resend":
            changes.update(state=NudgeState.SCHEDULED.value, send_at=now, claim=None)
        elif action == "mark_sent":
            changes.update(
                state=NudgeState.SENT.value,
                sent_at=doc.get("unknown_at") or now,
                transport=doc.get("transport") or svc.settings.transport,
            )
        else:
            changes.update(state=NudgeState.FAILED.value, failed_at=now)
        result = uow.db[NUDGES].update_one({"_id": followup, "state": doc["state"]}, {"$set": changes}, session=session)
        if result.modified_count != 1:
            return False
        uow.db[IN_DOUBT].delete_one({"_id": followup}, session=session)
        if action == "mark_sent":
            transport = doc.get("transport") or svc.settings.transport
            uow.publish(messages.followup_sent(doc, doc.get("unknown_at") or now, transport))
        if action == "resend":
            uow.db[SEND_BATCHES].update_one(
                {"_id": doc["batch_id"], "state": "done"}, {"$set": {"state": "ready", "due_at": now}}, session=session
            )
        if action == "mark_failed":
            uow.publish(
                messages.followup_failed(
                    doc, now, "delivery unknown; marked failed by an organizer", True, max(1, doc.get("attempts", 1))
                )
            )
        return True

    if not svc.uow().run(work):
        raise Conflict("the message changed meanwhile; look again")
    return message_detail(svc, org_id, followup)


def figures(svc: Services) -> dict[str, int]:
    """Totals for ``/metrics``: outcomes so far, and what is in doubt or due right now."""
    totals = svc.db[FIGURES].find_one({"_id": "totals"}) or {}
    return {
        "sent": int(totals.get("sent", 0)),
        "failed": int(totals.get("failed", 0)),
        "bounced": int(totals.get("bounced", 0)),
        "retry": int(totals.get("retry", 0)),
        "skipped": int(totals.get("skipped", 0)),
        "delivery_unknown_total": int(totals.get("delivery_unknown", 0)),
        "delivery_unknown_now": svc.db[IN_DOUBT].count_documents({}),
        "due_batches": svc.db[SEND_BATCHES].count_documents({"state": "ready", "due_at": {"$lte": svc.now()}}),
    }
