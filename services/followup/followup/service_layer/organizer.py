"""What organizers do and see: settings, the suppression list, the messages of
a gathering (with their status and the email exactly as sent), previews,
and resolving a ``delivery_unknown``. Everything is scoped to one organization."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterable
from typing import Any

from followup.domain import consent
from followup.domain.audience import unreachable_reason
from followup.domain.delivery import ACCEPTED, journal_id
from followup.domain.mail import OutgoingMail
from followup.domain.nudges import (
    DISPLAY_STATUSES,
    SWITCHABLE_KINDS,
    NudgeKind,
    NudgeState,
    display_status,
    followup_id,
    is_followup,
    message_id,
    nudge_key,
    resolution_refusal,
)
from followup.domain.nudges import RESOLUTIONS as RESOLUTION_RULES
from followup.domain.settings import FollowupSettings
from followup.domain.suppression import (
    ORGANIZER,
    lift_refusal,
    lifts_contact_unsubscribe,
    suppression_id,
    suppression_ids,
)
from followup.domain.winback import mode_of
from followup.service_layer import messages
from followup.service_layer.content import (
    contact_facts,
    draft_for,
    is_suppressed,
    load_batch_facts,
    load_settings,
    load_suppressed,
)
from followup.service_layer.context import Services
from followup.service_layer.outcomes import suppress
from followup.service_layer.repositories import Tx
from followup.service_layer.tracking import NotFound
from turnout_common.clock import to_rfc3339_or_none as _t
from turnout_common.emails import normalize_email
from turnout_common.privacy import ERASED_NAME, is_pseudonym
from turnout_common.types import Doc

STATUSES = DISPLAY_STATUSES


class Conflict(RuntimeError):
    """The action does not fit the current state (e.g. resending a sent message)."""


def event_of(svc: Services, org_id: str, event_id: str) -> Doc:
    event = svc.store.events.in_org(org_id, event_id)
    if event is None:
        raise NotFound("no such gathering in your organization")
    return event


# -- contacts ------------------------------------------------------------------------


def list_contacts(svc: Services, org_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
    return [
        {
            "person_id": doc["_id"],
            "first_name": doc.get("first_name"),
            "last_name": doc.get("last_name"),
            "email": doc.get("email"),
            "consent_email": bool(doc.get("consent_email")),
            "unsubscribed": bool(doc.get("unsubscribed")),
        }
        for doc in svc.store.contacts.page(org_id, limit, offset)
    ]


def consent_of(svc: Services, org_id: str, person_id: str) -> dict[str, Any]:
    """A contact's consent to follow-up email as it stands (what every nudge is decided on),
    and how it came to be (the append-only history)."""
    contact = svc.store.contacts.in_org(org_id, person_id)
    if contact is None:
        raise NotFound("no such contact in your organization")
    email = contact.get("email")
    suppressed = is_suppressed(load_suppressed(svc, [(org_id, str(email or ""))]), org_id, email)
    facts = contact_facts(contact, suppressed)
    return {
        "person_id": person_id,
        "consent": {
            "given": bool(contact.get("consent_email")),
            "unsubscribed": bool(contact.get("unsubscribed")),
            "suppressed": suppressed,
            "may_email": unreachable_reason(facts) is None,
        },
        "history": [
            {
                "change": doc["change"],
                "by": doc["by"],
                "at": _t(doc.get("at")),
                "message_id": doc.get("message_id"),
                "followup_id": doc.get("followup_id"),
                "detail": doc.get("detail") or None,
            }
            for doc in svc.store.consent.of_person(org_id, person_id)
        ],
    }


# -- settings ------------------------------------------------------------------------


def _settings_view(settings: FollowupSettings, event_level: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"nudges": {kind.value: settings.enabled(kind) for kind in SWITCHABLE_KINDS}}
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
            "mode": mode_of(settings.win_back, settings.enabled(NudgeKind.WIN_BACK)).value,
            "cooldown_days": settings.win_back.cooldown_days,
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
    svc.store.settings.update(f"org:{org_id}", {**_flatten(patch), "org_id": org_id, "updated_at": svc.now()})
    return org_settings(svc, org_id)


def event_settings(svc: Services, org_id: str, event_id: str) -> dict[str, Any]:
    event_of(svc, org_id, event_id)
    return _settings_view(load_settings(svc, org_id, event_id), event_level=True)


def update_event_settings(svc: Services, org_id: str, event_id: str, patch: dict[str, Any]) -> dict[str, Any]:
    event_of(svc, org_id, event_id)
    svc.store.settings.update(
        f"event:{event_id}", {**_flatten(patch), "org_id": org_id, "event_id": event_id, "updated_at": svc.now()}
    )
    return event_settings(svc, org_id, event_id)


# -- suppression list --------------------------------------------------------------------


def _suppression_view(doc: Doc) -> dict[str, Any]:
    return {
        # An erased person's entry keeps only the address's digest: it still blocks the address.
        "email": doc.get("email") or ERASED_NAME,
        "reason": doc["reason"],
        "detail": doc.get("detail"),
        "person_id": doc.get("person_id"),
        "created_at": _t(doc.get("created_at")),
    }


def list_suppressions(svc: Services, org_id: str, limit: int, offset: int) -> list[dict[str, Any]]:
    return [_suppression_view(doc) for doc in svc.store.suppressions.page(org_id, limit, offset)]


def add_suppression(svc: Services, org_id: str, address: str, detail: str) -> dict[str, Any]:
    """The organizer stops all email to an address (publishes ``contact.unsubscribed`` for its contacts)."""
    now = svc.now()

    def work(tx: Tx) -> None:
        suppress(tx.store, org_id, address, ORGANIZER, detail, now, None)
        for person_id in tx.store.contacts.unsubscribe_address(org_id, normalize_email(address), now, ORGANIZER):
            message = messages.contact_unsubscribed(org_id, person_id, now, ORGANIZER)
            tx.publish(message)
            tx.store.consent.add(
                [
                    consent.entry(
                        org_id,
                        person_id,
                        consent.WITHDRAWN,
                        consent.ORGANIZER,
                        now,
                        message_id=message.id,
                        entry_id=message.id,
                        detail="the address was added to the suppression list",
                    )
                ]
            )

    svc.transaction(work)
    doc = svc.store.suppressions.get(suppression_id(org_id, address))
    assert doc is not None
    return _suppression_view(doc)


def remove_suppression(svc: Services, org_id: str, address: str) -> None:
    """Lift a bounce or organizer suppression; a person's own unsubscribe cannot be lifted for them."""
    doc = next(filter(None, (svc.store.suppressions.get(key) for key in suppression_ids(org_id, address))), None)
    if doc is None:
        raise NotFound("this address is not on your suppression list")
    refusal = lift_refusal(doc["reason"])
    if refusal is not None:
        raise Conflict(refusal)
    now = svc.now()

    def work(tx: Tx) -> None:
        tx.store.suppressions.remove(doc["_id"])
        if not lifts_contact_unsubscribe(doc["reason"]):
            return
        lifted = tx.store.contacts.resubscribe_address(org_id, normalize_email(address), ORGANIZER)
        tx.store.consent.add(
            [
                consent.entry(
                    org_id,
                    person_id,
                    consent.GRANTED,
                    consent.ORGANIZER,
                    now,
                    message_id=None,
                    entry_id=f"lifted:{doc['_id']}:{person_id}:{now.isoformat()}",
                    detail="the organizer lifted their block of the address",
                )
                for person_id in lifted
            ]
        )

    svc.transaction(work)


# -- messages --------------------------------------------------------------------------


def status_of(doc: Doc) -> str:
    return display_status(
        doc["state"],
        opened=doc.get("opened_at") is not None,
        clicked=doc.get("clicked_at") is not None,
        bounced=doc.get("bounced_at") is not None,
        feedback=doc.get("feedback_at") is not None,
    )


def engagement_counts(docs: Iterable[Doc]) -> dict[str, int]:
    """Messages opened and clicked by people, and those only machines opened or clicked
    (what a naive count would add: "12 clicked · +30 by link scanners")."""
    out = {"opened": 0, "clicked": 0, "machine_opened": 0, "machine_clicked": 0}
    for doc in docs:
        clicked = doc.get("clicked_at") is not None
        opened = doc.get("opened_at") is not None or clicked
        out["opened"] += opened
        out["clicked"] += clicked
        out["machine_opened"] += not opened and doc.get("machine_opened_at") is not None
        out["machine_clicked"] += not clicked and doc.get("machine_clicked_at") is not None
    return out


def message_summary(doc: Doc, contact: Doc | None) -> dict[str, Any]:
    contact = contact or {}
    return {
        "id": doc["_id"],
        "event_id": doc.get("event_id"),
        "person_id": doc["person_id"],
        "name": ERASED_NAME
        if is_pseudonym(str(doc["person_id"]))
        else f"{contact.get('first_name', '')} {contact.get('last_name', '')}".strip() or None,
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
        # Link scanners' and image proxies' fetches (``followup.domain.engagement``): not in the status.
        "machine_opened_at": _t(doc.get("machine_opened_at")),
        "machine_clicked_at": _t(doc.get("machine_clicked_at")),
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
    docs = svc.store.nudges.listing(org_id, event_id, status=status, kind=kind, limit=limit, offset=offset)
    contacts = {doc["_id"]: doc for doc in svc.store.contacts.by_ids(d["person_id"] for d in docs)}
    counts: dict[str, int] = {}
    fields = svc.store.nudges.status_fields(org_id, event_id)
    for doc in fields:
        status_name = status_of(doc)
        counts[status_name] = counts.get(status_name, 0) + 1
    plan = svc.store.plans.get(event_id) or {}
    return {
        "event": {"id": event["_id"], "title": event["title"], "kind": event["kind"], "status": event.get("status")},
        "plan": {"state": plan.get("state"), "due_at": _t(plan.get("due_at"))} if plan else None,
        "counts": counts,
        "engagement": engagement_counts(fields),
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
    return svc.store.rendered.raw(f"{doc['_id']}:{doc['attempts']}")


def message_detail(svc: Services, org_id: str, followup: str) -> dict[str, Any]:
    doc = svc.store.nudges.in_org(org_id, followup)
    if doc is None:
        raise NotFound("no such message in your organization")
    contact = svc.store.contacts.get(doc["person_id"])
    detail = message_summary(doc, contact)
    raw = rendered_raw(svc, doc)
    detail["rendered"] = parse_rendered(raw) if raw is not None else None
    if raw is None and doc.get("attempts"):
        # Past the organization's retention for message bodies: what was sent, to whom and when stays.
        stored = svc.store.rendered.of_ids([f"{doc['_id']}:{doc['attempts']}"])
        detail["body_removed_at"] = _t(stored[0].get("body_removed_at")) if stored else None
    detail["transport"] = doc.get("transport")
    journal = (
        svc.store.journal.get(journal_id(followup, int(doc["attempts"]), ACCEPTED)) if doc.get("attempts") else None
    )
    detail["transport_response"] = (journal or {}).get("response")
    detail["open_count"] = doc.get("open_count", 0)
    detail["click_count"] = doc.get("click_count", 0)
    detail["clicked_urls"] = doc.get("clicked_urls", [])
    detail["machine_open_count"] = doc.get("machine_open_count", 0)
    detail["machine_click_count"] = doc.get("machine_click_count", 0)
    detail["machine_clicked_urls"] = doc.get("machine_clicked_urls", [])
    detail["machine_reasons"] = sorted(
        {str(r) for r in (doc.get("machine_open_reason"), doc.get("machine_click_reason")) if r}
    )
    return detail


def message_html(svc: Services, org_id: str, followup: str) -> str | None:
    """The HTML part of one message as it was last rendered (None before it is rendered)."""
    doc = svc.store.nudges.in_org(org_id, followup)
    if doc is None:
        raise NotFound("no such message in your organization")
    raw = rendered_raw(svc, doc)
    if raw is None:
        return None
    html: str = parse_rendered(raw)["html"]
    return html


def preview(svc: Services, org_id: str, event_id: str, kind: NudgeKind, person_id: str) -> OutgoingMail:
    """Render any nudge for any attendee of a gathering, as it would go out now."""
    event = event_of(svc, org_id, event_id)
    if not svc.store.attendance.registered(event_id, person_id):
        raise NotFound("this person is not registered for this gathering")
    if svc.store.contacts.in_org(org_id, person_id) is None:
        raise NotFound("no such contact in your organization")
    introduction = None
    if kind == NudgeKind.INTRODUCTION:
        introduction = svc.store.introductions.first_of_person_at(event_id, person_id)
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


RESOLUTIONS = tuple(RESOLUTION_RULES)


def resolve(svc: Services, org_id: str, followup: str, action: str, note: str = "") -> dict[str, Any]:
    """A person decides what a ``delivery_unknown`` (or ``failed``) message becomes.

    ``resend`` sends it again with the same Message-ID (a receiving system
    that keeps the first copy drops the second); ``mark_sent`` records that it
    arrived (the recipient confirmed, or the provider's log shows it);
    ``mark_failed`` gives up.
    """
    doc = svc.store.nudges.in_org(org_id, followup)
    if doc is None:
        raise NotFound("no such message in your organization")
    refusal = resolution_refusal(action, doc["state"])
    if refusal is not None:
        raise Conflict(refusal)
    if is_pseudonym(str(doc["person_id"])):
        raise Conflict("this person's data was erased: nothing more is sent to them")
    now = svc.now()

    def work(tx: Tx) -> bool:
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
        if not tx.store.nudges.resolve(followup, doc["state"], changes):
            return False
        tx.store.in_doubt.remove([followup])
        announced = is_followup(doc["kind"])
        if action == "mark_sent" and announced:
            transport = doc.get("transport") or svc.settings.transport
            tx.publish(messages.followup_sent(doc, doc.get("unknown_at") or now, transport))
        if action == "resend":
            tx.store.batches.reopen(doc["batch_id"], now)
        if action == "mark_failed" and announced:
            tx.publish(
                messages.followup_failed(
                    doc, now, "delivery unknown; marked failed by an organizer", True, max(1, doc.get("attempts", 1))
                )
            )
        return True

    if not svc.transaction(work):
        raise Conflict("the message changed meanwhile; look again")
    return message_detail(svc, org_id, followup)


def figures(svc: Services) -> dict[str, int]:
    """Totals for ``/metrics``: outcomes so far, and what is in doubt or due right now."""
    totals = svc.store.figures.totals()
    return {
        "sent": int(totals.get("sent", 0)),
        "failed": int(totals.get("failed", 0)),
        "bounced": int(totals.get("bounced", 0)),
        "retry": int(totals.get("retry", 0)),
        "skipped": int(totals.get("skipped", 0)),
        "delivery_unknown_total": int(totals.get("delivery_unknown", 0)),
        "delivery_unknown_now": svc.store.in_doubt.count(),
        "due_batches": svc.store.batches.count_due(svc.now()),
    }
