"""Planning nudges: who gets what, and when.

For each ended gathering the scheduler
1. *plans* the per-person nudges as soon as the gathering ends (thank you, we
   missed you, first-timer welcome, volunteer hours), at ended + delay inside
   the daytime window, so organizers see what is scheduled;
2. *reconsiders* people whose facts changed after that (late check-ins),
   adding what is now due; the sender re-checks every nudge at send time
   anyway, so a "we missed you" to someone who turned up after all is skipped;
3. at send time, *matches introductions* among those who attended (late
   arrivals included) and schedules the introduction requests;
4. after that, matches people who check in late (*late rounds*), within the
   gathering's follow-up window, against everyone who attended, and asks both
   sides of each new pair in a request of that round.
Separately, a daily scan drafts win-back notes for regulars at risk (``scan_win_back``;
see ``followup.domain.winback``).

Nudges are inserted in chunks, one transaction each (nudges + their send
batch + their ``followup.scheduled`` messages), skipping keys that exist, so
a crash half-way and a re-run leave exactly one nudge per key.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from followup.domain.audience import (
    INTRODUCTION_EVENT_KINDS,
    event_nudges,
    missed_you_after_all,
    unreachable_reason,
)
from followup.domain.introductions import (
    Candidate,
    Proposal,
    late_matching_open,
    late_round,
    propose_introductions,
)
from followup.domain.nudges import NudgeKind, NudgeState, followup_id, message_id, no_longer_due, nudge_key
from followup.domain.plans import AWAITING_INTRODUCTIONS, PENDING_PLAN, PLANNED, STALE
from followup.domain.privacy import ERASED_INTRODUCTION
from followup.domain.schedule import first_send_time, zone
from followup.domain.settings import FollowupSettings
from followup.domain.winback import (
    AtRisk,
    AttendanceHistory,
    PastVisit,
    WinbackMode,
    compose_note,
    cooled_down,
    describe_habit,
    first_state,
    mode_of,
    regulars_at_risk,
)
from followup.service_layer import messages
from followup.service_layer.content import (
    attendance_facts,
    contact_facts,
    is_suppressed,
    load_settings,
    load_suppressed,
)
from followup.service_layer.context import Services
from followup.service_layer.ports import pause_until_due
from followup.service_layer.repositories import DuplicateRecord, Tx
from turnout_common.clock import as_utc
from turnout_common.types import Doc

log = logging.getLogger("followup.scheduler")

PLANS_AT_ONCE = 20
DIRTY_AT_ONCE = 50


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
    introduction_round: str | None = None  # an introduction_request of a late round
    extra: Doc | None = None  # more fields of the nudge (a win-back's note and why)

    @property
    def key(self) -> str:
        return nudge_key(self.event_id, self.person_id, self.kind, self.discriminator)


def insert_nudges(
    tx: Tx,
    svc: Services,
    specs: Sequence[NudgeSpec],
    send_at: datetime,
    now: datetime,
    *,
    batch_event: str | None,
) -> int:
    """Inside ``tx``: insert the nudges whose keys are new, as one send batch, with
    their ``followup.scheduled`` messages; return how many were new."""
    existing = tx.store.nudges.existing_keys([spec.key for spec in specs])
    fresh = [spec for spec in specs if spec.key not in existing]
    if not fresh:
        return 0
    batch_id = uuid.uuid4().hex
    docs = [_nudge_doc(svc, spec, batch_id, send_at, now) for spec in fresh]
    tx.store.nudges.add(docs)
    tx.store.batches.add(
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
        }
    )
    for doc in docs:
        tx.publish(messages.followup_scheduled(doc, now))
    return len(docs)


def create_nudges(
    svc: Services, specs: Sequence[NudgeSpec], send_at: datetime, now: datetime, *, batch_event: str | None
) -> int:
    """Insert the nudges whose keys are new, one transaction per send batch; return how many were new."""
    created = 0
    size = max(1, svc.settings.batch_size)
    for start in range(0, len(specs), size):
        chunk = list(specs[start : start + size])

        def work(tx: Tx, chunk: list[NudgeSpec] = chunk) -> int:
            return insert_nudges(tx, svc, chunk, send_at, now, batch_event=batch_event)

        created += svc.transaction(work)
    return created


def _nudge_doc(svc: Services, spec: NudgeSpec, batch_id: str | None, send_at: datetime | None, now: datetime) -> Doc:
    fid = followup_id(spec.key)
    doc: Doc = {
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
    if spec.introduction_round is not None:
        doc["introduction_round"] = spec.introduction_round
    if spec.extra:
        doc.update(spec.extra)
    return doc


# -- plans ---------------------------------------------------------------------


def _claim_plan(svc: Services, plan_id: str, owner: str, now: datetime) -> bool:
    """Lease a plan that is unleased or whose lease expired."""
    return svc.store.plans.claim(plan_id, owner, now, now + svc.lease)


def _release_plan(svc: Services, plan_id: str, owner: str, changes: dict[str, Any]) -> None:
    svc.store.plans.release(plan_id, owner, changes)


def _reachable_people(svc: Services, org_id: str, people: Iterable[str]) -> tuple[dict[str, Doc], set[str]]:
    """Contacts of ``people``, and which of them may be emailed (consent, not unsubscribed or suppressed)."""
    contacts = {doc["_id"]: doc for doc in svc.store.contacts.by_ids(people)}
    suppressed = load_suppressed(svc, ((org_id, str(c.get("email") or "")) for c in contacts.values()))
    reachable = {
        person
        for person, contact in contacts.items()
        if unreachable_reason(contact_facts(contact, is_suppressed(suppressed, org_id, contact.get("email")))) is None
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
    event = svc.store.events.get(plan["_id"])
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
    rows = svc.store.attendance.of_event(event["_id"])
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
    event = svc.store.events.get(plan["_id"])
    if event is None or plan["state"] == STALE:
        return 0
    settings = load_settings(svc, event["org_id"], event["_id"])
    tz = zone(event.get("timezone", "UTC"))
    due_at = first_send_time(plan.get("due_at") or now, timedelta(0), svc.window, tz, now)
    rows = svc.store.attendance.of_people(people, event["_id"])
    _, reachable = _reachable_people(svc, event["org_id"], people)
    existing = svc.store.nudges.of_people_at(event["_id"], people)
    thank_you = {doc["person_id"]: doc["state"] for doc in existing if doc["kind"] == NudgeKind.THANK_YOU}
    # An undone check-in makes a no-show again; one who got the thank-you already hears nothing more.
    specs = [
        spec
        for spec in _event_specs(event, rows, reachable, settings)
        if missed_you_after_all(spec.kind, thank_you.get(spec.person_id))
    ]
    created = create_nudges(svc, specs, due_at, now, batch_event=event["_id"])
    wanted = {spec.key for spec in specs}
    stale_ids = [doc["_id"] for doc in existing if no_longer_due(doc["kind"], doc["key"], doc["state"], wanted)]
    if stale_ids:
        svc.store.nudges.skip_pending(stale_ids, "no_longer_applies", now)
    return created


def match_introductions(svc: Services, plan: Doc, now: datetime) -> int:
    """At send time: suggest introductions among attendees and schedule the requests."""
    event = svc.store.events.get(plan["_id"])
    if event is None:
        return 0
    settings = load_settings(svc, event["org_id"], event["_id"])
    if not settings.enabled(NudgeKind.INTRODUCTION_REQUEST):
        return 0
    org_id = event["org_id"]
    rows = [
        row
        for row in svc.store.attendance.of_event(event["_id"], checked_in=True)
        if row.get("offers") or row.get("seeks")
    ]
    _, reachable = _reachable_people(svc, org_id, (row["person_id"] for row in rows))
    candidates = [
        Candidate.of(row["person_id"], row.get("offers") or [], row.get("seeks") or [])
        for row in rows
        if row["person_id"] in reachable and _safe_key(row["person_id"])
    ]
    ids = [c.person_id for c in candidates]
    earlier = svc.store.introductions.of_people_in_org(org_id, ids)
    # An introduction whose partner was erased since is neither kept nor suggested again.
    kept_docs = [doc for doc in earlier if doc["event_id"] == event["_id"] and doc.get("state") != ERASED_INTRODUCTION]
    already = {doc["pair_key"] for doc in earlier if doc["event_id"] != event["_id"]}
    kept = [_proposal_of(doc) for doc in kept_docs]
    fresh = propose_introductions(candidates, settings.introductions_per_person, already_paired=already, kept=kept)
    if fresh:
        docs = [_introduction_doc(org_id, event["_id"], proposal, now) for proposal in fresh]

        def store(tx: Tx) -> None:
            tx.store.introductions.add(docs)

        try:
            svc.transaction(store)
        except DuplicateRecord:
            # Another gathering's matching took one of these pairs meanwhile: match again next round.
            log.warning("introduction pair taken concurrently; rematching", extra={"event_id": event["_id"]})
            raise
    # (Suggestions of late rounds have their own requests.)
    first_round = [proposal for proposal, doc in zip(kept, kept_docs, strict=True) if not doc.get("round")]
    people_with_suggestions = sorted({p for proposal in [*first_round, *fresh] for p in (proposal.a, proposal.b)})
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


LATE_ROUND_ATTEMPTS = 3


def match_late_introductions(svc: Services, plan_id: str, people: Sequence[str], now: datetime) -> int:
    """A late round: ``people`` changed after the gathering's introductions were matched
    (late check-ins); match those now checked in against everyone who attended, with the
    same rules, while the follow-up window (``FOLLOWUP_MAX_EVENT_AGE_HOURS`` after the
    end) is open. Returns how many requests were created."""
    plan = svc.store.plans.get(plan_id)  # as it is now, under our lease
    if plan is None or plan.get("state") != PLANNED or plan.get("introductions_at") is None:
        return 0  # not matched yet (the first round will see them), or nothing to match
    event = svc.store.events.get(plan_id)
    if event is None or event["kind"] not in INTRODUCTION_EVENT_KINDS:
        return 0
    ended_at = plan.get("ended_at") or event.get("ended_at") or now
    if not late_matching_open(ended_at, now, timedelta(hours=svc.settings.max_event_age_hours)):
        log.info("late check-ins after the follow-up window: no introductions", extra={"event_id": plan_id})
        return 0
    settings = load_settings(svc, event["org_id"], event["_id"])
    if not settings.enabled(NudgeKind.INTRODUCTION_REQUEST):
        return 0
    for _ in range(LATE_ROUND_ATTEMPTS):
        try:
            return _late_round(svc, plan, event, set(people), settings, now)
        except DuplicateRecord:
            # Another gathering (or scheduler) took one of these pairs meanwhile: match again.
            log.warning("introduction pair taken concurrently; rematching late arrivals", extra={"event_id": plan_id})
    return 0


def _late_round(
    svc: Services, plan: Doc, event: Doc, people: set[str], settings: FollowupSettings, now: datetime
) -> int:
    org_id = event["org_id"]
    # Cheap first: only people now checked in, with something to offer or seek, make a round.
    if not any(
        row.get("checked_in_at") and (row.get("offers") or row.get("seeks"))
        for row in svc.store.attendance.of_people(people, event["_id"])
    ):
        return 0
    rows = [
        row
        for row in svc.store.attendance.of_event(event["_id"], checked_in=True)
        if row.get("offers") or row.get("seeks")
    ]
    _, reachable = _reachable_people(svc, org_id, (row["person_id"] for row in rows))
    candidates = [
        Candidate.of(row["person_id"], row.get("offers") or [], row.get("seeks") or [])
        for row in rows
        if row["person_id"] in reachable and _safe_key(row["person_id"])
    ]
    newcomers = {c.person_id for c in candidates} & people
    if not newcomers:
        return 0
    earlier = svc.store.introductions.of_people_in_org(org_id, [c.person_id for c in candidates])
    kept_docs = [doc for doc in earlier if doc["event_id"] == event["_id"] and doc.get("state") != ERASED_INTRODUCTION]
    already = {doc["pair_key"] for doc in earlier if doc["event_id"] != event["_id"]}
    fresh = propose_introductions(
        candidates,
        settings.introductions_per_person,
        already_paired=already,
        kept=[_proposal_of(doc) for doc in kept_docs],
        newcomers=newcomers,
    )
    # A round stored before a crash, its requests not yet made, is made whole now.
    rounds: dict[str, set[str]] = {}
    for doc in kept_docs:
        if doc.get("round") and newcomers & set(doc["people"]):
            rounds.setdefault(doc["round"], set()).update(doc["people"])
    round_id = late_round(proposal.key for proposal in fresh) if fresh else None
    if round_id is not None:
        rounds.setdefault(round_id, set()).update(p for proposal in fresh for p in (proposal.a, proposal.b))
    if not rounds:
        return 0
    docs = [_introduction_doc(org_id, event["_id"], proposal, now, round_id) for proposal in fresh]
    specs = [
        NudgeSpec(org_id, event["_id"], person, NudgeKind.INTRODUCTION_REQUEST, discriminator=r, introduction_round=r)
        for r, persons in sorted(rounds.items())
        for person in sorted(persons)
    ]
    tz = zone(event.get("timezone", "UTC"))
    send_at = svc.window.next_allowed(max(now, plan.get("due_at") or now), tz)

    def store(tx: Tx) -> int:
        # The round's suggestions and their requests together: all or nothing.
        if docs:
            tx.store.introductions.add(docs)
        return insert_nudges(tx, svc, specs, send_at, now, batch_event=event["_id"])

    created = svc.transaction(store)
    log.info(
        "suggested introductions to late arrivals",
        extra={"event_id": event["_id"], "introductions": len(fresh), "requests": created, "round": round_id},
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


def _introduction_doc(
    org_id: str, event_id: str, proposal: Proposal, now: datetime, round_id: str | None = None
) -> Doc:
    doc: Doc = {
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
    if round_id is not None:
        doc["round"] = round_id  # a late round (the first round has none)
    return doc


# -- win-back --------------------------------------------------------------------


def scan_win_back(svc: Services, now: datetime, force: bool = False) -> int:
    """Draft (or, when the organization chose ``automatic``, schedule) one win-back per
    regular at risk who may be emailed and had none within the cool-down (at most one
    scan per interval); how many were created."""
    interval = timedelta(seconds=svc.settings.win_back_scan_seconds)
    if not force and not svc.store.scans.claim("win_back", now, now + interval):
        return 0
    by_org: dict[str, list[AttendanceHistory]] = {}
    for row in svc.store.attendance.history():
        entry = AttendanceHistory(
            person_id=row["_id"],
            org_id=row["org_id"],
            attended=int(row["attended"]),
            last_attended_at=row["last"],
            last_event_id=row["last_event"],
            visit_times=tuple(row.get("times") or ()),
        )
        by_org.setdefault(entry.org_id, []).append(entry)
    created = 0
    for org_id, entries in by_org.items():
        settings = load_settings(svc, org_id, None)
        mode = mode_of(settings.win_back, settings.enabled(NudgeKind.WIN_BACK))
        if mode == WinbackMode.OFF:
            continue
        created += _draft_win_backs(svc, org_id, settings, mode, regulars_at_risk(entries, settings.win_back, now), now)
    if created:
        log.info("drafted win-back notes", extra={"count": created})
    return created


def _draft_win_backs(
    svc: Services, org_id: str, settings: FollowupSettings, mode: WinbackMode, at_risk: list[AtRisk], now: datetime
) -> int:
    if not at_risk:
        return 0
    contacts, reachable = _reachable_people(svc, org_id, (r.history.person_id for r in at_risk))
    previous: dict[str, list[datetime]] = {}
    for doc in svc.store.nudges.win_backs(org_id):
        previous.setdefault(doc["person_id"], []).append(doc["created_at"])
    chosen = [
        r
        for r in at_risk
        if r.history.person_id in reachable
        and cooled_down(previous.get(r.history.person_id, []), now, settings.win_back.cooldown_days)
    ]
    if not chosen:
        return 0
    rows = svc.store.attendance.of_people(r.history.person_id for r in chosen)
    events = {doc["_id"]: doc for doc in svc.store.events.by_ids({row["event_id"] for row in rows})}
    visits: dict[str, list[PastVisit]] = {}
    for row in rows:
        event = events.get(row["event_id"])
        if row.get("checked_in_at") is None or event is None:
            continue
        local = as_utc(event.get("starts_at") or row["checked_in_at"]).astimezone(zone(event.get("timezone", "UTC")))
        visits.setdefault(row["person_id"], []).append(PastVisit(event["title"], event["kind"], local))
    by_zone: dict[str, list[NudgeSpec]] = {}
    for risk in chosen:
        person = risk.history.person_id
        tz_name = events.get(risk.history.last_event_id, {}).get("timezone", "UTC")
        subject, body = compose_note(
            str(contacts[person].get("first_name") or ""),
            settings.branding.name,
            visits.get(person, []),
            now.astimezone(zone(tz_name)),
        )
        extra: Doc = {
            "winback_note": {"subject": subject, "body": body},
            "at_risk": {
                "days_quiet": risk.days_quiet,
                "usual_gap_days": risk.usual_gap_days,
                "threshold_days": risk.threshold_days,
                "visits": risk.history.attended,
                "last_seen": risk.history.last_attended_at,
                "habit": describe_habit(visits.get(person, [])),
            },
        }
        if mode == WinbackMode.AUTOMATIC:
            extra.update(approved_at=now, approved_by="automatic")
        by_zone.setdefault(tz_name, []).append(
            NudgeSpec(
                org_id,
                None,
                person,
                NudgeKind.WIN_BACK,
                discriminator=risk.history.last_event_id,
                anchor_event_id=risk.history.last_event_id,
                extra=extra,
            )
        )
    created = 0
    for tz_name, specs in by_zone.items():
        if first_state(mode) == NudgeState.DRAFT:

            def store(tx: Tx, specs: list[NudgeSpec] = specs) -> int:
                return insert_drafts(tx, svc, specs, now)

            created += svc.transaction(store)
        else:
            created += create_nudges(svc, specs, svc.window.next_allowed(now, zone(tz_name)), now, batch_event=None)
    return created


def insert_drafts(tx: Tx, svc: Services, specs: Sequence[NudgeSpec], now: datetime) -> int:
    """Inside ``tx``: the win-backs whose keys are new, as drafts: in no send batch (no sender
    sees them) and not announced (``followup.scheduled`` goes out when one is approved)."""
    existing = tx.store.nudges.existing_keys([spec.key for spec in specs])
    docs = [
        {**_nudge_doc(svc, spec, None, None, now), "state": NudgeState.DRAFT.value, "drafted_at": now}
        for spec in specs
        if spec.key not in existing
    ]
    if docs:
        tx.store.nudges.add(docs)
    return len(docs)


# -- the loop ----------------------------------------------------------------------


def run_scheduler_once(svc: Services, owner: str, now: datetime | None = None) -> int:
    """One pass: plan ended gatherings, reconsider changed people, match introductions
    that are due, scan for win-backs when due. Returns how many nudges were created."""
    return scheduler_pass(svc, owner, now).created


@dataclass(slots=True)
class SchedulerPass:
    created: int = 0  # nudges
    plans: int = 0  # plans worked on (planned, reconsidered, matched)


def scheduler_pass(svc: Services, owner: str, now: datetime | None = None) -> SchedulerPass:
    """``run_scheduler_once``, telling also how many plans were worked on."""
    now = now or svc.now()
    done = SchedulerPass()
    for plan in svc.store.plans.pending(PLANS_AT_ONCE):
        if not _claim_plan(svc, plan["_id"], owner, now):
            continue
        done.plans += 1
        try:
            changes = plan_event(svc, plan, now)
            done.created += int(changes.get("planned_nudges", 0))
        except svc.storage_errors:
            _release_plan(svc, plan["_id"], owner, {})
            raise
        _release_plan(svc, plan["_id"], owner, changes)
    for plan in svc.store.plans.dirty(DIRTY_AT_ONCE):
        if plan["state"] == PENDING_PLAN or not _claim_plan(svc, plan["_id"], owner, now):
            continue
        done.plans += 1
        people = list(plan.get("dirty") or [])
        try:
            if plan["state"] != STALE:
                done.created += reconsider_people(svc, plan, people, now)
                done.created += match_late_introductions(svc, plan["_id"], people, now)
        finally:
            svc.store.plans.clean(plan["_id"], people)
            _release_plan(svc, plan["_id"], owner, {})
    for plan in svc.store.plans.due_for_introductions(now, PLANS_AT_ONCE):
        if not _claim_plan(svc, plan["_id"], owner, now):
            continue
        done.plans += 1
        try:
            done.created += match_introductions(svc, plan, now)
        except DuplicateRecord:
            _release_plan(svc, plan["_id"], owner, {})
            continue
        _release_plan(svc, plan["_id"], owner, {"state": PLANNED, "introductions_at": now})
    done.created += scan_win_back(svc, now)
    return done


def next_scheduled_work(svc: Services) -> datetime | None:
    """When time alone makes work for the scheduler: introductions falling due, the next win-back scan."""
    times = [t for t in (svc.store.plans.next_introductions_at(), svc.store.scans.next_at("win_back")) if t]
    return min(times, default=None)


def run_scheduler(svc: Services, owner: str, stop: threading.Event) -> None:
    """The scheduler's loop. Idle, it sleeps until a plan is created or changed
    (a gathering ended, a late check-in), until its next time-based work falls
    due (introductions, the win-back scan), or for a safety poll (plans whose
    scheduler died are taken over when their lease expires)."""
    interval = svc.settings.scheduler_interval_seconds
    pause = svc.signals.plans(busy_pause=interval, max_sleep=svc.idle_poll_seconds)
    try:
        while not stop.is_set():
            try:
                done = scheduler_pass(svc, owner)
                due_in = _due_in(svc, interval) if not done.plans and pause.sleeping else None
            except Exception:
                log.exception("scheduler pass failed")
                pause.wake()
                stop.wait(interval)
                continue
            if done.plans:
                pause.pause(stop, True)
            else:
                pause_until_due(pause, stop, due_in, svc.idle_poll_seconds)
    finally:
        pause.close()


def _due_in(svc: Services, interval: float) -> float | None:
    due = next_scheduled_work(svc)
    if due is None:
        return None
    return max(interval, (due - svc.now()).total_seconds())
