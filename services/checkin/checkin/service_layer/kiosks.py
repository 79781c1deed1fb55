"""Kiosks: pairing a tablet to one event, the fleet view, and what a kiosk reads
(its event's roster and the name search). Pairing and revoking are audited
(``kiosk.paired``, ``kiosk.revoked``)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from checkin.adapters.ids import new_id
from checkin.domain.audit import KIOSK_PAIRED, KIOSK_REVOKED, Actor, Subject
from checkin.domain.kiosks import (
    PAIRING_MINUTES,
    badge_digest,
    new_pairing_code,
    normalize_pairing_code,
    pin_digest,
    registration_hint,
)
from checkin.domain.model import RuleBroken, display_name
from checkin.service_layer import audit
from checkin.service_layer.caches import KioskSessions, RosterCache
from checkin.service_layer.context import Context
from checkin.service_layer.ports import Transaction
from turnout_common.auth import Principal
from turnout_common.clock import to_rfc3339_or_none, utcnow
from turnout_common.types import Doc

__all__ = ["KioskSessions", "RosterCache"]


def create_kiosk(ctx: Context, org_id: str, event_id: str, name: str, staff_pin: str) -> Doc:
    event = ctx.events.get(org_id, event_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    kiosk_id = new_id()
    now = utcnow()
    kiosk = {
        "_id": kiosk_id,
        "org_id": org_id,
        "event_id": event_id,
        "name": name.strip(),
        "status": "unpaired",
        "pairing_code": new_pairing_code(),
        "pairing_expires_at": now + timedelta(minutes=PAIRING_MINUTES),
        "staff_pin_sha256": pin_digest(kiosk_id, staff_pin),
        "session_id": None,
        "created_at": now,
        "paired_at": None,
        "last_seen_at": None,
        "queue_length": 0,
    }
    ctx.store.kiosks.add(kiosk)
    return kiosk


def new_code(ctx: Context, org_id: str, kiosk_id: str) -> Doc:
    """A fresh one-time code; pairing with it replaces the tablet paired before."""
    now = utcnow()
    code = new_pairing_code()
    expires_at = now + timedelta(minutes=PAIRING_MINUTES)
    if not ctx.store.kiosks.set_pairing_code(kiosk_id, org_id, code, expires_at):
        raise RuleBroken("kiosk_not_found", "no such kiosk in your organization (or it was revoked)")
    return get_kiosk(ctx, org_id, kiosk_id)


def get_kiosk(ctx: Context, org_id: str, kiosk_id: str) -> Doc:
    kiosk = ctx.store.kiosks.get_scoped(kiosk_id, org_id)
    if kiosk is None:
        raise RuleBroken("kiosk_not_found", "no such kiosk in your organization")
    return kiosk


def revoke(ctx: Context, org_id: str, kiosk_id: str, by: Actor) -> Doc:
    """Revoke a kiosk (its token stops working at once); audited as ``kiosk.revoked``."""

    def work(tx: Transaction) -> None:
        now = utcnow()
        kiosk = tx.store.kiosks.get_scoped(kiosk_id, org_id)
        if kiosk is None or not tx.store.kiosks.revoke(kiosk_id, org_id, now):
            raise RuleBroken("kiosk_not_found", "no such kiosk in your organization")
        audit.record(
            tx.store,
            org_id,
            by,
            KIOSK_REVOKED,
            Subject("kiosk", kiosk_id),
            at=now,
            event_id=kiosk["event_id"],
            details={"name": kiosk["name"], "status_before": kiosk["status"]},
        )

    ctx.uow().run(work)
    ctx.kiosk_sessions.forget(kiosk_id)
    return get_kiosk(ctx, org_id, kiosk_id)


def pair(ctx: Context, code: str) -> tuple[str, Doc, Doc]:
    """Exchange a one-time code for a device token: (token, kiosk, event)."""
    normalized = normalize_pairing_code(code)
    kiosk = ctx.store.kiosks.by_pairing_code(normalized)
    if kiosk is None or not normalized:
        raise RuleBroken("invalid_pairing_code", "that pairing code is not valid; ask the organizer for a new one")
    now = utcnow()
    if kiosk["pairing_expires_at"] < now:
        raise RuleBroken("pairing_code_expired", "that pairing code has expired; ask the organizer for a new one")
    session_id = secrets.token_urlsafe(12)

    def work(tx: Transaction) -> None:
        # One-time: the update only succeeds for the first tablet to present the code.
        if not tx.store.kiosks.pair(kiosk["_id"], normalized, session_id, now):
            raise RuleBroken("invalid_pairing_code", "that pairing code was just used; ask the organizer for a new one")
        audit.record(
            tx.store,
            kiosk["org_id"],
            Actor("kiosk", kiosk["_id"], kiosk["name"]),
            KIOSK_PAIRED,
            Subject("kiosk", kiosk["_id"]),
            at=now,
            event_id=kiosk["event_id"],
            details={"name": kiosk["name"], "repaired": kiosk.get("paired_at") is not None},
        )

    ctx.uow().run(work)
    ctx.kiosk_sessions.forget(kiosk["_id"])
    event = ctx.events.get(kiosk["org_id"], kiosk["event_id"])
    if event is None:
        raise RuleBroken("event_not_found", "the kiosk's event no longer exists")
    token = ctx.signer.issue(
        Principal(
            kind="kiosk",
            subject_id=kiosk["_id"],
            org_id=kiosk["org_id"],
            role="kiosk",
            name=kiosk["name"],
            event_id=kiosk["event_id"],
            session_id=session_id,
        )
    )
    return token, kiosk, event


def heartbeat(ctx: Context, kiosk_id: str, queue_length: int) -> None:
    ctx.store.kiosks.heartbeat(kiosk_id, utcnow(), queue_length)


def list_kiosks(ctx: Context, org_id: str, event_id: str) -> list[Doc]:
    kiosks = ctx.store.kiosks.of_event(org_id, event_id)
    if not kiosks:
        return []
    start_of_day = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = ctx.store.registrations.checkins_today_by_kiosk(event_id, [k["_id"] for k in kiosks], start_of_day)
    for kiosk in kiosks:
        kiosk["checkins_today"] = counts.get(kiosk["_id"], 0)
    return kiosks


def public_kiosk(kiosk: Doc) -> Doc:
    t = to_rfc3339_or_none
    answer: Doc = {
        "id": kiosk["_id"],
        "event_id": kiosk["event_id"],
        "name": kiosk["name"],
        "status": kiosk["status"],
        "paired_at": t(kiosk.get("paired_at")),
        "last_seen_at": t(kiosk.get("last_seen_at")),
        "queue_length": kiosk.get("queue_length", 0),
        "checkins_today": kiosk.get("checkins_today", 0),
    }
    if kiosk["status"] != "revoked" and kiosk.get("pairing_code"):
        answer["pairing_code"] = kiosk["pairing_code"]
        answer["pairing_expires_at"] = t(kiosk.get("pairing_expires_at"))
    return answer


# -- what a kiosk reads ---------------------------------------------------------


def roster(ctx: Context, org_id: str, event_id: str) -> list[Doc]:
    """Everyone a kiosk may see for its event: enough to verify badges and search offline."""
    people = []
    for reg in ctx.store.registrations.roster(org_id, event_id):
        people.append(
            {
                "registration_id": reg["_id"],
                "name": display_name(reg["first_name"], reg["last_name"]),
                "first_name": reg["first_name"],
                "name_folded": reg["name_folded"],
                "badge_sha256": badge_digest(reg["badge_code"]),
                "checked_in": bool(reg.get("checkin")),
                "checked_out": bool(reg.get("checkout")),
                "hint": registration_hint(reg["registered_at"]),
                # False: known by name only (a Meetup roster); the kiosk may ask for an address once.
                "has_email": bool(reg.get("email_hint")),
            }
        )
    return people


def search(ctx: Context, org_id: str, event_id: str, query: str, limit: int = 10) -> list[Doc]:
    cached = ctx.rosters.get(lambda org, event: roster(ctx, org, event), org_id, event_id)
    ids = cached.index.search(query, limit)
    fresh = ctx.store.registrations.checked_in_flags(ids) if ids else {}
    results = [
        {
            "registration_id": rid,
            "name": cached.by_id[rid]["name"],
            "hint": cached.by_id[rid]["hint"],
            "checked_in": fresh.get(rid, cached.by_id[rid]["checked_in"]),
            "has_email": cached.by_id[rid].get("has_email", True),
        }
        for rid in ids
    ]
    # Same name and same hint (registered in the same minute): number them.
    keys = [(r["name"], r["hint"]) for r in results]
    seen: dict[tuple[str, str], int] = {}
    for result, key in zip(results, keys, strict=True):
        if keys.count(key) > 1:
            seen[key] = seen.get(key, 0) + 1
            result["hint"] = f"{result['hint']} · #{seen[key]}"
    return results
