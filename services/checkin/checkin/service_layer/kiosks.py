"""Kiosks: pairing a tablet to one event, the fleet view, and what a kiosk reads
(its event's roster and the name search)."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from checkin.adapters.mongo import KIOSKS, REGISTRATIONS
from checkin.bootstrap import Context
from checkin.domain.kiosks import (
    PAIRING_MINUTES,
    NameIndex,
    SearchEntry,
    badge_digest,
    new_pairing_code,
    normalize_pairing_code,
    pin_digest,
    registration_hint,
)
from checkin.domain.model import RuleBroken, display_name
from turnout_common.auth import Principal
from turnout_common.clock import to_rfc3339, utcnow

Doc = dict[str, Any]


def create_kiosk(ctx: Context, org_id: str, event_id: str, name: str, staff_pin: str) -> Doc:
    event = ctx.events.get(org_id, event_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    kiosk_id = str(ObjectId())
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
    ctx.db[KIOSKS].insert_one(kiosk)
    return kiosk


def new_code(ctx: Context, org_id: str, kiosk_id: str) -> Doc:
    """A fresh one-time code; pairing with it replaces the tablet paired before."""
    now = utcnow()
    code = new_pairing_code()
    result = ctx.db[KIOSKS].update_one(
        {"_id": kiosk_id, "org_id": org_id, "status": {"$ne": "revoked"}},
        {"$set": {"pairing_code": code, "pairing_expires_at": now + timedelta(minutes=PAIRING_MINUTES)}},
    )
    if result.matched_count != 1:
        raise RuleBroken("kiosk_not_found", "no such kiosk in your organization (or it was revoked)")
    return get_kiosk(ctx, org_id, kiosk_id)


def get_kiosk(ctx: Context, org_id: str, kiosk_id: str) -> Doc:
    kiosk = ctx.db[KIOSKS].find_one({"_id": kiosk_id, "org_id": org_id})
    if kiosk is None:
        raise RuleBroken("kiosk_not_found", "no such kiosk in your organization")
    return kiosk


def revoke(ctx: Context, org_id: str, kiosk_id: str) -> Doc:
    result = ctx.db[KIOSKS].update_one(
        {"_id": kiosk_id, "org_id": org_id},
        {"$set": {"status": "revoked", "session_id": None, "pairing_code": None, "revoked_at": utcnow()}},
    )
    if result.matched_count != 1:
        raise RuleBroken("kiosk_not_found", "no such kiosk in your organization")
    ctx.kiosk_sessions.forget(kiosk_id)
    return get_kiosk(ctx, org_id, kiosk_id)


def pair(ctx: Context, code: str) -> tuple[str, Doc, Doc]:
    """Exchange a one-time code for a device token: (token, kiosk, event)."""
    normalized = normalize_pairing_code(code)
    kiosk = ctx.db[KIOSKS].find_one({"pairing_code": normalized, "status": {"$ne": "revoked"}})
    if kiosk is None or not normalized:
        raise RuleBroken("invalid_pairing_code", "that pairing code is not valid; ask the organizer for a new one")
    now = utcnow()
    if kiosk["pairing_expires_at"] < now:
        raise RuleBroken("pairing_code_expired", "that pairing code has expired; ask the organizer for a new one")
    session_id = secrets.token_urlsafe(12)
    # One-time: the update only succeeds for the first tablet to present the code.
    result = ctx.db[KIOSKS].update_one(
        {"_id": kiosk["_id"], "pairing_code": normalized},
        {
            "$set": {
                "status": "paired",
                "pairing_code": None,
                "session_id": session_id,
                "paired_at": now,
                "last_seen_at": now,
            }
        },
    )
    if result.modified_count != 1:
        raise RuleBroken("invalid_pairing_code", "that pairing code was just used; ask the organizer for a new one")
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


class KioskSessions:
    """Checks a kiosk token is still the current pairing (cached briefly per process)."""

    def __init__(self, ctx_db: Any, ttl: float = 2.0) -> None:
        self.db = ctx_db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def current_session(self, kiosk_id: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(kiosk_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        kiosk = self.db[KIOSKS].find_one({"_id": kiosk_id}, {"session_id": 1, "status": 1})
        session = kiosk["session_id"] if kiosk and kiosk.get("status") == "paired" else None
        with self._lock:
            self._cache[kiosk_id] = (now, session)
        return session

    def forget(self, kiosk_id: str) -> None:
        with self._lock:
            self._cache.pop(kiosk_id, None)


def heartbeat(ctx: Context, kiosk_id: str, queue_length: int) -> None:
    ctx.db[KIOSKS].update_one({"_id": kiosk_id}, {"$set": {"last_seen_at": utcnow(), "queue_length": queue_length}})


def list_kiosks(ctx: Context, org_id: str, event_id: str) -> list[Doc]:
    kiosks = list(ctx.db[KIOSKS].find({"org_id": org_id, "event_id": event_id}).sort("created_at", ASCENDING))
    if not kiosks:
        return []
    start_of_day = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    counts = {
        row["_id"]: row["n"]
        for row in ctx.db[REGISTRATIONS].aggregate(
            [
                {
                    "$match": {
                        "event_id": event_id,
                        "checkin.kiosk_id": {"$in": [k["_id"] for k in kiosks]},
                        "checkin.received_at": {"$gte": start_of_day},
                    }
                },
                {"$group": {"_id": "$checkin.kiosk_id", "n": {"$sum": 1}}},
            ]
        )
    }
    for kiosk in kiosks:
        kiosk["checkins_today"] = counts.get(kiosk["_id"], 0)
    return kiosks


def public_kiosk(kiosk: Doc) -> Doc:
    def t(value: datetime | None) -> str | None:
        return to_rfc3339(value) if value else None

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

_ROSTER_FIELDS = {
    "first_name": 1,
    "last_name": 1,
    "name_folded": 1,
    "badge_code": 1,
    "checkin": 1,
    "checkout": 1,
    "registered_at": 1,
    "email_hint": 1,
    "person_id": 1,
    "status": 1,
}


def roster(ctx: Context, org_id: str, event_id: str) -> list[Doc]:
    """Everyone a kiosk may see for its event: enough to verify badges and search offline."""
    people = []
    for reg in ctx.db[REGISTRATIONS].find(
        {"event_id": event_id, "org_id": org_id, "status": {"$in": ["registered", "waitlisted"]}}, _ROSTER_FIELDS
    ):
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
            }
        )
    return people


@dataclass(slots=True)
class _CachedRoster:
    built_at: float
    people: list[Doc]
    by_id: dict[str, Doc]
    index: NameIndex
    refreshing: bool = False


class RosterCache:
    """Per-process search index of each event's names.

    Served stale while a background thread rebuilds it (every ``ttl``
    seconds), so no keystroke waits for a 10,000-person rebuild; whether a
    result is checked in is read fresh for the few results shown.
    """

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, _CachedRoster] = {}
        self._lock = threading.Lock()

    def _build(self, ctx: Context, org_id: str, event_id: str) -> _CachedRoster:
        people = roster(ctx, org_id, event_id)
        index = NameIndex([SearchEntry(p["registration_id"], p["name_folded"]) for p in people])
        return _CachedRoster(time.monotonic(), people, {p["registration_id"]: p for p in people}, index)

    def get(self, ctx: Context, org_id: str, event_id: str) -> _CachedRoster:
        with self._lock:
            cached = self._entries.get(event_id)
            stale = cached is not None and time.monotonic() - cached.built_at > self.ttl
            if stale and cached is not None and not cached.refreshing:
                cached.refreshing = True
                threading.Thread(target=self._refresh, args=(ctx, org_id, event_id), daemon=True).start()
        if cached is not None:
            return cached
        built = self._build(ctx, org_id, event_id)
        with self._lock:
            if len(self._entries) > 200:
                self._entries.clear()
            self._entries[event_id] = built
        return built

    def _refresh(self, ctx: Context, org_id: str, event_id: str) -> None:
        try:
            built = self._build(ctx, org_id, event_id)
        except Exception:  # noqa: BLE001 - keep serving the old index; the next call retries
            with self._lock:
                if event_id in self._entries:
                    self._entries[event_id].refreshing = False
            return
        with self._lock:
            self._entries[event_id] = built

    def forget(self, event_id: str) -> None:
        with self._lock:
            self._entries.pop(event_id, None)


def search(ctx: Context, org_id: str, event_id: str, query: str, limit: int = 10) -> list[Doc]:
    cached = ctx.rosters.get(ctx, org_id, event_id)
    ids = cached.index.search(query, limit)
    fresh = (
        {
            doc["_id"]: bool(doc.get("checkin"))
            for doc in ctx.db[REGISTRATIONS].find({"_id": {"$in": ids}}, {"checkin": 1})
        }
        if ids
        else {}
    )
    results = [
        {
            "registration_id": rid,
            "name": cached.by_id[rid]["name"],
            "hint": cached.by_id[rid]["hint"],
            "checked_in": fresh.get(rid, cached.by_id[rid]["checked_in"]),
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
