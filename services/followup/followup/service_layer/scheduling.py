"""Planning nudges: who gets what, and when.

For each ended gathering the scheduler
1. *plans* the per-person nudges as soon as the gathering ends (thank you, we
   missed you, first-timer welcome, volunteer hours), at ended + delay inside
   the daytime window, so organizers see what is scheduled;
2. *reconsiders* people whose facts changed after that (late check-ins),
   adding what is now due; the sender re-checks every nudge at send time
   anyway, so a "we missed you" to someone who turned up after all is skipped;
3. at send time, *matches introductions* among those who attended (late
   arrivals included) and schedules the introduction requests.
Separately, a periodic scan schedules win-back nudges for drifted regulars.

Nudges are inserted in chunks, one transaction each (nudges + their send
batch + their ``followup.scheduled`` messages), skipping keys that exist, so
a crash half-way and a re-run leave exactly one nudge per key.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from followup.adapters.mongo import ATTENDANCE, CONTACTS, EVENTS, INTRODUCTIONS, NUDGES, PLANS, SCANS, SEND_BATCHES
from followup.domain.audience import (
    INTRODUCTION_EVENT_KINDS,
    AttendanceHistory,
    drifted_regulars,
    event_nudges,
    unreachable_reason,
)
from followup.domain.introductions import Candidate, Proposal, propose_introductions
from followup.domain.nudges import PENDING, NudgeKind, NudgeState, followup_id, message_id, nudge_key
from followup.domain.schedule import first_send_time, zone
from followup.domain.settings import FollowupSettings
from followup.service_layer import messages
from followup.service_layer.content import (
    attendance_facts,
    contact_facts,
    find_in,
    load_settings,
    load_suppressed,
    suppression_id,
)
from followup.service_layer.context import Services
from turnout_common.mongo import UnitOfWork

log = logging.getLogger("followup.scheduler")

Doc = dict[str, Any]

PENDING_PLAN = "pending"
AWAITING_INTRODUCTIONS = "awaiting_introductions"
PLANNED = "planned"
STALE = "stale"


@dataclass(frozen=True, slots=True)
class NudgeSpec:
    """A nudge to create (if its key does not exist yet)."""

    org_id: str
    event_id: str | None
    person_id: str
    kind: NudgeKind
    discriminator: str | None = None
    anchor_event_id: str | None = None
    introduction_id: str | None = None

    @property
    def key(self) -> str:
        return nudge_key(self.event_id, self.person_id, self.kind, self.discriminator)


def insert_nudges(
    uow: UnitOfWork,
    svc: Services,
    specs: Sequence[NudgeSpec],
    send_at: datetime,
    now: datetime,
    *,
    batch_event: str | None,
) -> int:
    """Inside ``uow``: insert the nudges whose keys are new, as one send batch, with
    their ``followup.scheduled`` messages; return how many were new."""
    session = uow.session
    keys = [spec.key for spec in specs]
    existing = {doc["key"] for doc in uow.db[NUDGES].find({"key": {"$in": keys}}, {"key": 1}, session=session)}
    fresh = [spec for spec in specs if spec.key not in existing]
    if not fresh:
        return 0
    batch_id = uuid.uuid4().hex
    docs = [_nudge_doc(svc, spec, batch_id, send_at, now) for spec in fresh]
    uow.db[NUDGES].insert_many(docs, ordered=True, session=session)
    uow.db[SEND_BATCHES].insert_one(
        {
            "_id": batch_id,
            "org_id": fresh[0].org_id,
            "event_id": batch_event,
            "state": "ready",
            "due_at": send_at,
            "size": len(docs),
            "created_at": now,
            "lease_owner": None,
            "lease_until": None,
        },
        session=session,
    )
    for doc in docs:
        uow.publish(messages.followup_scheduled(doc, now))
    return len(docs)


def create_nudges(
    svc: Services, specs: Sequence[NudgeSpec], send_at: datetime, now: datetime, *, batch_event: str | None
) -> int:
    """Insert the nudges whose keys are new, one transaction per send batch; return how many were new."""
    created = 0
    size = max(1, svc.settings.batch_size)
    for start in range(0, len(specs), size):
        chunk = list(specs[start : start + size])

        def work(uow: UnitOfWork, chunk: list[NudgeSpec] = chunk) -> int:
            return insert_nudges(uow, svc, chunk, send_at, now, batch_event=batch_event)

        created += svc.uow().run(work)
    return created


def _nudge_doc(svc: Services, spec: NudgeSpec, batch_id: str, send_at: datetime, now: datetime) -> Doc:
    fid = followup_id(spec.key)
    return {
        "_id": fid,
        "key": spec.key,
        "org_id": spec.org_id,
        "event_id": spec.event_id,
        "anchor_event_id": spec.anchor_event_id or spec.event_id,
        "person_id": spec.person_id,
        "kind": str(spec.kind),
        "introduction_id": spec.introduction_id,
        "batch_id": batch_id,
        "state": NudgeState.SCHEDULED.value,
        "send_at": send_at,
        "created_at": now,
        "attempts": 0,
        "claim": None,
        "message_id": message_id(fid, svc.settings.mail_domain),
    }


# -- plans ---------------------------------------------------------------------


def _claim_plan(svc: Services, plan_id: str, owner: str, now: datetime) -> bool:
    # Unleased, else lease expired: two _id-bounded updates, not one "$or",
    # which SecantusDB answers with a scan of every plan ever made (~20 ms of
    # database CPU per claim at 3,000 plans, against ~1 ms).
    lease = {"$set": {"lease_owner": owner, "lease_until": now + svc.lease}}
    for free in (None, {"$lt": now}):
        if svc.db[PLANS].update_one({"_id": plan_id, "lease_until": free}, lease).modified_count == 1:
            return True
    return False


def _release_plan(svc: Services, plan_id: str, owner: str, changes: dict[str, Any]) -> None:
    svc.db[PLANS].update_one(
        {"_id": plan_id, "lease_owner": owner},
        {"$set": {**changes, "lease_owner": None, "lease_until": None}},
    )


def _reachable_people(svc: Services, org_id: str, people: Iterable[str]) -> tuple[dict[str, Doc], set[str]]:
    """Contacts of ``people``, and which of them may be emailed (consent, not unsubscribed or suppressed)."""
    contacts = {doc["_id"]: doc for doc in find_in(svc, CONTACTS, "_id", people)}
    suppressed = load_suppressed(svc, ((org_id, str(c.get("email") or "")) for c in contacts.values()))
    reachable = {
        person
        for person, contact in contacts.items()
        if unreachable_reason(
            contact_facts(contact, suppression_id(org_id, str(contact.get("email") or "")) in suppressed)
        )
        is None
    }
    return contacts, reachable


def _event_specs(event: Doc, rows: Iterable[Doc], reachable: set[str], settings: FollowupSettings) -> list[NudgeSpec]:
    specs: list[NudgeSpec] = []
    for row in rows:
        facts = attendance_facts(row)
        if facts is None or row["person_id"] not in reachable:
            continue
        for kind in event_nudges(event["kind"], facts, settings.enabled):
            specs.append(NudgeSpec(event["org_id"], event["_id"], row["person_id"], kind))
    return specs


def plan_event(svc: Services, plan: Doc, now: datetime) -> dict[str, Any]:
    """Schedule an ended gathering's per-person nudges; return the plan's new fields."""
    event = svc.db[EVENTS].find_one({"_id": plan["_id"]})
    if event is None:
        return {"state": STALE, "reason": "unknown gathering"}
    ended_at = plan.get("ended_at") or event.get("ended_at") or now
    if now - ended_at > timedelta(hours=svc.settings.max_event_age_hours):
        # Replays and late consumers must not thank people for last season's gatherings.
        log.info("gathering ended too long ago: no follow-ups", extra={"event_id": event["_id"]})
        return {"state": STALE, "reason": "ended too long ago", "planned_at": now}
    settings = load_settings(svc, event["org_id"], event["_id"])
    tz = zone(event.get("timezone", "UTC"))
    due_at = first_send_time(ended_at, svc.send_delay, svc.window, tz, now)
    rows = list(svc.db[ATTENDANCE].find({"event_id": event["_id"]}))
    _, reachable = _reachable_people(svc, event["org_id"], (row["person_id"] for row in rows))
    specs = _event_specs(event, rows, reachable, settings)
    created = create_nudges(svc, specs, due_at, now, batch_event=event["_id"])
    log.info("planned follow-ups", extra={"event_id": event["_id"], "nudges": created, "due_at": str(due_at)})
    wants_introductions = event["kind"] in INTRODUCTION_EVENT_KINDS and settings.enabled(NudgeKind.INTRODUCTION_REQUEST)
    return {
        "state": AWAITING_INTRODUCTIONS if wants_introductions else PLANNED,
        "due_at": due_at,
        "planned_at": svc.now(),
        "planned_nudges": created,
    }


def reconsider_people(svc: Services, plan: Doc, people: list[str], now: datetime) -> int:
    """Facts changed for ``people`` after planning: add the nudges now due, skip those no longer due."""
    event = svc.db[EVENTS].find_one({"_id": plan["_id"]})
    if event is None or plan["state"] == STALE:
        return 0
    settings = load_settings(svc, event["org_id"], event["_id"])
    tz = zone(event.get("timezone", "UTC"))
    due_at = first_send_time(plan.get("due_at") or now, timedelta(0), svc.window, tz, now)
    rows = find_in(svc, ATTENDANCE, "person_id", people, event_id=event["_id"])
    _, reachable = _reachable_people(svc, event["org_id"], people)
    specs = _event_specs(event, rows, reachable, settings)
    created = create_nudges(svc, specs, due_at, now, batch_event=event["_id"])
    wanted = {spec.key for spec in specs}
    simple = [
        NudgeKind.THANK_YOU,
        NudgeKind.WE_MISSED_YOU,
        NudgeKind.FIRST_TIMER_WELCOME,
        NudgeKind.VOLUNTEER_HOURS,
    ]
    stale_ids = [
        doc["_id"]
        for doc in find_in(svc, NUDGES, "person_id", people, event_id=event["_id"])
        if doc["kind"] in simple and doc["key"] not in wanted and doc["state"] in PENDING
    ]
    if stale_ids:
        svc.db[NUDGES].update_many(
            {"_id": {"$in": stale_ids}, "state": {"$in": [s.value for s in PENDING]}},
            {"$set": {"state": NudgeState.SKIPPED.value, "skip_reason": "no_longer_applies", "skipped_at": now}},
        )
    return created


def match_introductions(svc: Services, plan: Doc, now: datetime) -> int:
    """At send time: suggest introductions among attendees and schedule the requests."""
    event = svc.db[EVENTS].find_one({"_id": plan["_id"]})
    if event is None:
        return 0
    settings = load_settings(svc, event["org_id"], event["_id"])
    if not settings.enabled(NudgeKind.INTRODUCTION_REQUEST):
        return 0
    org_id = event["org_id"]
    rows = [
        row
        for row in svc.db[ATTENDANCE].find({"event_id": event["_id"], "checked_in_at": {"$ne": None}})
        if row.get("offers") or row.get("seeks")
    ]
    _, reachable = _reachable_people(svc, org_id, (row["person_id"] for row in rows))
    candidates = [
        Candidate.of(row["person_id"], row.get("offers") or [], row.get("seeks") or [])
        for row in rows
        if row["person_id"] in reachable and _safe_key(row["person_id"])
    ]
    ids = [c.person_id for c in candidates]
    earlier = find_in(svc, INTRODUCTIONS, "people", ids, org_id=org_id)
    kept_docs = [doc for doc in earlier if doc["event_id"] == event["_id"]]
    already = {doc["pair_key"] for doc in earlier if doc["event_id"] != event["_id"]}
    kept = [_proposal_of(doc) for doc in kept_docs]
    fresh = propose_introductions(candidates, settings.introductions_per_person, already_paired=already, kept=kept)
    if fresh:
        docs = [_introduction_doc(org_id, event["_id"], proposal, now) for proposal in fresh]

        def store(uow: UnitOfWork) -> None:
            uow.db[INTRODUCTIONS].insert_many(docs, ordered=True, session=uow.session)

        try:
            svc.uow().run(store)
        except DuplicateKeyError:
            # Another gathering's matching took one of these pairs meanwhile: match again next round.
            log.warning("introduction pair taken concurrently; rematching", extra={"event_id": event["_id"]})
            raise
    people_with_suggestions = sorted({p for proposal in [*kept, *fresh] for p in (proposal.a, proposal.b)})
    specs = [
        NudgeSpec(org_id, event["_id"], person, NudgeKind.INTRODUCTION_REQUEST) for person in people_with_suggestions
    ]
    tz = zone(event.get("timezone", "UTC"))
    send_at = svc.window.next_allowed(max(now, plan.get("due_at") or now), tz)
    created = create_nudges(svc, specs, send_at, now, batch_event=event["_id"])
    log.info(
        "suggested introductions",
        extra={"event_id": event["_id"], "introductions": len(fresh), "requests": created},
    )
    return created


def _safe_key(person_id: str) -> bool:
    # Person ids become field names in an introduction's ``offers``.
    return "." not in person_id and not person_id.startswith("$")


def _proposal_of(doc: Doc) -> Proposal:
    a, b = doc["people"]
    return Proposal(a, b, tuple(doc["offers"].get(a, [])), tuple(doc["offers"].get(b, [])))


def introduction_id(event_id: str, pair: str) -> str:
    return followup_id(f"{event_id}|introduction|{pair}")


def _introduction_doc(org_id: str, event_id: str, proposal: Proposal, now: datetime) -> Doc:
    return {
        "_id": introduction_id(event_id, proposal.key),
        "org_id": org_id,
        "event_id": event_id,
        "pair_key": proposal.key,
        "people": [proposal.a, proposal.b],
        "offers": {proposal.a: list(proposal.a_offers_b), proposal.b: list(proposal.b_offers_a)},
        "score": proposal.score,
        "accepted_by": [],
        "state": "suggested",
        "created_at": now,
    }


# -- win-back --------------------------------------------------------------------


def scan_win_back(svc: Services, now: datetime, force: bool = False) -> int:
    """Schedule win-back nudges for regulars who drifted (at most one scan per interval)."""
    interval = timedelta(seconds=svc.settings.win_back_scan_seconds)
    if not force:
        svc.db[SCANS].update_one({"_id": "win_back"}, {"$setOnInsert": {"next_at": now, "last_at": None}}, upsert=True)
        claimed = svc.db[SCANS].update_one(
            {"_id": "win_back", "next_at": {"$lte": now}}, {"$set": {"next_at": now + interval, "last_at": now}}
        )
        if claimed.modified_count != 1:
            return 0
    history = [
        AttendanceHistory(
            person_id=row["_id"],
            org_id=row["org_id"],
            attended=int(row["attended"]),
            last_attended_at=row["last"],
            last_event_id=row["last_event"],
        )
        for row in svc.db[ATTENDANCE].aggregate(
            [
                {"$match": {"checked_in_at": {"$ne": None}}},
                {"$sort": {"checked_in_at": 1}},
                {
                    "$group": {
                        "_id": "$person_id",
                        "org_id": {"$last": "$org_id"},
                        "attended": {"$sum": 1},
                        "last": {"$last": "$checked_in_at"},
                        "last_event": {"$last": "$event_id"},
                    }
                },
            ]
        )
    ]
    by_org: dict[str, list[AttendanceHistory]] = {}
    for entry in history:
        by_org.setdefault(entry.org_id, []).append(entry)
    created = 0
    for org_id, entries in by_org.items():
        settings = load_settings(svc, org_id, None)
        if not settings.enabled(NudgeKind.WIN_BACK):
            continue
        rule = settings.win_back
        drifted = drifted_regulars(
            entries,
            min_events=rule.min_events,
            quiet_days=rule.quiet_days,
            max_quiet_days=rule.max_quiet_days,
            now=now,
        )
        if not drifted:
            continue
        _, reachable = _reachable_people(svc, org_id, (h.person_id for h in drifted))
        anchors = {doc["_id"]: doc for doc in find_in(svc, EVENTS, "_id", (h.last_event_id for h in drifted))}
        by_zone: dict[str, list[NudgeSpec]] = {}
        for entry in drifted:
            if entry.person_id not in reachable:
                continue
            tz_name = anchors.get(entry.last_event_id, {}).get("timezone", "UTC")
            by_zone.setdefault(tz_name, []).append(
                NudgeSpec(
                    org_id,
                    None,
                    entry.person_id,
                    NudgeKind.WIN_BACK,
                    discriminator=entry.last_event_id,
                    anchor_event_id=entry.last_event_id,
                )
            )
        for tz_name, specs in by_zone.items():
            send_at = svc.window.next_allowed(now, zone(tz_name))
            created += create_nudges(svc, specs, send_at, now, batch_event=None)
    if created:
        log.info("scheduled win-back nudges", extra={"count": created})
    return created


# -- the loop ----------------------------------------------------------------------


def run_scheduler_once(svc: Services, owner: str, now: datetime | None = None) -> int:
    """One pass: plan ended gatherings, reconsider changed people, match introductions
    that are due, scan for win-backs when due. Returns how many nudges were created."""
    now = now or svc.now()
    created = 0
    for plan in list(svc.db[PLANS].find({"state": PENDING_PLAN}).limit(20)):
        if not _claim_plan(svc, plan["_id"], owner, now):
            continue
        try:
            changes = plan_event(svc, plan, now)
            created += int(changes.get("planned_nudges", 0))
        except PyMongoError:
            _release_plan(svc, plan["_id"], owner, {})
            raise
        _release_plan(svc, plan["_id"], owner, changes)
    for plan in list(svc.db[PLANS].find({"has_dirty": True}).limit(50)):
        if plan["state"] == PENDING_PLAN or not _claim_plan(svc, plan["_id"], owner, now):
            continue
        people = list(plan.get("dirty") or [])
        try:
            if plan["state"] != STALE:
                created += reconsider_people(svc, plan, people, now)
        finally:
            svc.db[PLANS].update_one({"_id": plan["_id"]}, {"$pullAll": {"dirty": people}})
            svc.db[PLANS].update_one({"_id": plan["_id"], "dirty": {"$size": 0}}, {"$set": {"has_dirty": False}})
            _release_plan(svc, plan["_id"], owner, {})
    for plan in list(svc.db[PLANS].find({"state": AWAITING_INTRODUCTIONS, "due_at": {"$lte": now}}).limit(20)):
        if not _claim_plan(svc, plan["_id"], owner, now):
            continue
        try:
            created += match_introductions(svc, plan, now)
        except DuplicateKeyError:
            _release_plan(svc, plan["_id"], owner, {})
            continue
        _release_plan(svc, plan["_id"], owner, {"state": PLANNED, "introductions_at": now})
    created += scan_win_back(svc, now)
    return created
