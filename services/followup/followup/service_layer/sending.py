"""Sending due nudges exactly once: the ``Sender`` loop.

A sender claims a *send batch* (a lease on one small document), decides each
due nudge again from the current facts, renders the ones still due, stores
them exactly as they will be handed over, marks them ``claimed``, and then,
on one transport connection, for each message:

1. appends ``<followup>:<attempt>:sending`` to the *delivery journal* (in the
   same insert as the previous message's ``...:accepted``) — only then
   hands the message to the transport;
2. on acceptance, keeps going; on a refusal or doubt, records the outcome
   (with its ``followup.*`` messages) at once.
The accepted ones are then settled: ``sent`` and ``followup.sent`` in one
transaction.

Why this is exactly once:
- The journal's ids are unique, so each attempt of each nudge can be handed
  over by one sender only: a sender that lost its lease (paused, cut off)
  and a sender that took over cannot both write ``...:sending`` for the same
  attempt. The loser stops.
- After a crash, a nudge still ``claimed`` is settled from the journal:
  ``accepted`` -> ``sent``; ``sending`` without ``accepted`` -> the transport
  may or may not have taken it: ``delivery_unknown`` (never resent
  automatically; shown to organizers, counted in ``/metrics``, resolved by a
  person); no entry -> it never left: ``scheduled`` again. Outcomes are
  written before the next message starts, so at most one message per crash
  is in doubt.
- The journal is append-only small documents: two inserts per message in one
  round trip, far cheaper than updating the nudge itself (which the batch
  settles in bulk).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import Binary
from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError

from followup.adapters.mongo import (
    CONTACTS,
    DELIVERIES,
    FIGURES,
    IN_DOUBT,
    NUDGES,
    RENDERED,
    SEND_BATCHES,
    SUPPRESSIONS,
)
from followup.domain.audience import decide_at_send_time
from followup.domain.mail import Accepted, NotSent, Outcome, OutgoingMail
from followup.domain.nudges import PENDING, NudgeState, Transition, after_attempt
from followup.service_layer import messages
from followup.service_layer.content import (
    BatchFacts,
    draft_for,
    load_batch_facts,
    normalize_email,
    send_facts,
    suppression_id,
)
from followup.service_layer.context import Services
from followup.service_layer.ports import MailSession, TransportUnavailable
from turnout_common.mongo import UnitOfWork

log = logging.getLogger("followup.sender")

Doc = dict[str, Any]
PENDING_VALUES = [state.value for state in PENDING]
CLAIMED = NudgeState.CLAIMED.value
# Settle accepted messages at least this often during a long batch (fresher UI, smaller replays).
SETTLE_EVERY = 100


def journal_id(followup: str, attempt: int, step: str) -> str:
    """``<followup>:<attempt>:sending`` / ``...:accepted`` — unique per attempt and step."""
    return f"{followup}:{attempt}:{step}"


class FaultInjector:
    """Crash on purpose at one step (``FOLLOWUP_FAULT_AT``), like a SIGKILL, for the fault tests."""

    def __init__(self, point: str, after_messages: int = 0) -> None:
        self.point = point
        self.after_messages = after_messages

    def hit(self, point: str, messages_so_far: int = 0) -> None:
        if point == self.point and messages_so_far >= self.after_messages:
            log.error("fault injection: exiting", extra={"fault_at": point, "messages": messages_so_far})
            sys.stderr.flush()
            os._exit(137)


class _NoFaults(FaultInjector):
    def __init__(self) -> None:
        super().__init__("", 0)

    def hit(self, point: str, messages_so_far: int = 0) -> None:
        return None


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


class Sender:
    """Claims due send batches and delivers them; several may run (threads or processes)."""

    def __init__(self, svc: Services, name: str = "sender", faults: FaultInjector | None = None) -> None:
        if svc.transport is None:
            raise ValueError("a sender needs a mail transport")
        self.svc = svc
        self.transport = svc.transport
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{name}"
        self.faults = faults or _NoFaults()
        self.handed_over = 0  # messages given to the transport by this sender
        self.totals = BatchReport()
        self.claimed_last = False
        self._connect_failures = 0
        self._last_recovery = 0.0
        self._renew_at = 0.0
        self._rng = random.Random()
        self._lost = False  # this batch was taken over: leave its leftovers to recovery

    # -- the loop ------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        backoff = 0.0
        while not stop.is_set():
            try:
                worked = self.send_once(stop)
                backoff = 0.0
            except PyMongoError as exc:
                backoff = min(10.0, max(0.5, backoff * 2))
                log.warning("database trouble while sending; retrying", extra={"error": repr(exc)})
                stop.wait(backoff)
                continue
            except Exception:
                backoff = min(10.0, max(0.5, backoff * 2))
                log.exception("sender loop error", extra={"backoff_s": backoff})
                stop.wait(backoff)
                continue
            if not worked and not self.claimed_last:
                stop.wait(self.svc.settings.sender_idle_seconds)

    def send_once(self, stop: threading.Event) -> int:
        """Recover abandoned batches now and then, then deliver one due batch; return nudges handled."""
        now = self.svc.now()
        if time.monotonic() - self._last_recovery > min(5.0, self.svc.settings.lease_seconds / 2):
            self._last_recovery = time.monotonic()
            recover_abandoned_batches(self.svc, now)
        batch = self._claim(now)
        self.claimed_last = batch is not None
        if batch is None:
            return 0
        return self.process(batch, stop).handled

    # -- claiming ------------------------------------------------------------------
    def _claim(self, now: datetime) -> Doc | None:
        candidates = list(
            self.svc.db[SEND_BATCHES]
            .find({"state": "ready", "due_at": {"$lte": now}}, {"_id": 1})
            .sort("due_at", 1)
            .limit(8)
        )
        # Several senders start from different candidates, so they rarely collide.
        self._rng.shuffle(candidates)
        for candidate in candidates:
            token = f"{self.owner}:{uuid.uuid4().hex[:12]}"
            result = self.svc.db[SEND_BATCHES].update_one(
                {"_id": candidate["_id"], "state": "ready"},
                {
                    "$set": {
                        "state": "claimed",
                        "lease_owner": token,
                        "lease_until": now + self.svc.lease,
                        "claimed_at": now,
                    }
                },
            )
            if result.modified_count == 1:
                self._renew_at = time.monotonic() + self.svc.settings.lease_seconds / 3
                return {"_id": candidate["_id"], "lease_owner": token}
        return None

    def _keep_lease(self, batch_id: str, token: str) -> bool:
        if time.monotonic() < self._renew_at:
            return True
        result = self.svc.db[SEND_BATCHES].update_one(
            {"_id": batch_id, "state": "claimed", "lease_owner": token},
            {"$set": {"lease_until": self.svc.now() + self.svc.lease}},
        )
        if result.modified_count != 1:
            return False
        self._renew_at = time.monotonic() + self.svc.settings.lease_seconds / 3
        return True

    # -- one batch -----------------------------------------------------------------
    def process(self, batch: Doc, stop: threading.Event) -> BatchReport:
        svc = self.svc
        batch_id, token = batch["_id"], batch["lease_owner"]
        report = BatchReport()
        self._lost = False
        now = svc.now()
        nudges = list(svc.db[NUDGES].find({"batch_id": batch_id}))
        due = [n for n in nudges if n["state"] in PENDING_VALUES and n["send_at"] <= now]
        if not due:
            release_batch(svc, batch_id, token)
            return report
        facts = load_batch_facts(svc, due, now)
        to_send = self._decide(due, facts, now, report)
        if not to_send:
            self._finish(batch_id, token, report)
            return report
        try:
            session: MailSession | None = self.transport.open()
            self._connect_failures = 0
        except TransportUnavailable as exc:
            self._connect_failures += 1
            delay = min(60.0, 2.0 ** min(self._connect_failures, 6))
            log.warning(
                "mail transport unavailable; batch postponed",
                extra={"error": str(exc), "retry_in_s": delay, "batch_id": batch_id},
            )
            release_batch(svc, batch_id, token, not_before=now + timedelta(seconds=delay))
            return report
        try:
            mails = self._render(to_send, facts, now, report)
            claimed = self._mark_claimed(mails, token, now)
            self.faults.hit("after_claim", self.handed_over)
            session = self._deliver(batch_id, token, claimed, session, stop, report)
        finally:
            if session is not None:
                session.close()
        self._finish(batch_id, token, report)
        return report

    def _decide(self, due: list[Doc], facts: BatchFacts, now: datetime, report: BatchReport) -> list[Doc]:
        """Skip what no longer applies, postpone what must wait; return what goes out now."""
        to_send: list[Doc] = []
        changes: list[UpdateOne] = []
        for nudge in due:
            decision = decide_at_send_time(send_facts(self.svc, facts, nudge), now)
            if decision.action == "send":
                to_send.append(nudge)
            elif decision.action == "skip":
                report.skipped += 1
                changes.append(
                    UpdateOne(
                        {"_id": nudge["_id"], "state": {"$in": PENDING_VALUES}},
                        {
                            "$set": {
                                "state": NudgeState.SKIPPED.value,
                                "skip_reason": decision.reason,
                                "skipped_at": now,
                            }
                        },
                    )
                )
            else:
                report.waiting += 1
                changes.append(
                    UpdateOne(
                        {"_id": nudge["_id"], "state": {"$in": PENDING_VALUES}},
                        {"$set": {"send_at": decision.until, "waiting_for": decision.reason}},
                    )
                )
        if changes:
            self.svc.db[NUDGES].bulk_write(changes, ordered=False)
        return to_send

    def _render(
        self, nudges: list[Doc], facts: BatchFacts, now: datetime, report: BatchReport
    ) -> list[tuple[Doc, OutgoingMail]]:
        """Render every message and store it exactly as it will be handed over."""
        rendered: list[tuple[Doc, OutgoingMail]] = []
        stored: list[ReplaceOne[Doc]] = []
        for nudge in nudges:
            attempt = int(nudge["attempts"]) + 1
            try:
                mail = self.svc.renderer.render(draft_for(self.svc, facts, nudge))
            except Exception as exc:  # a template bug must not stall the batch: fail this one, loudly
                log.exception("rendering failed", extra={"followup_id": nudge["_id"]})
                transition = Transition(NudgeState.FAILED, error=f"rendering failed: {exc!r}", permanent=True)
                record_outcome(self.svc, nudge, transition, attempt, None, now)
                report.failed += 1
                continue
            rendered_id = f"{nudge['_id']}:{attempt}"
            stored.append(
                ReplaceOne(
                    {"_id": rendered_id},
                    {
                        "_id": rendered_id,
                        "followup_id": nudge["_id"],
                        "org_id": nudge["org_id"],
                        "attempt": attempt,
                        "subject": mail.subject,
                        "to": mail.to_address,
                        "raw": Binary(zlib.compress(mail.raw, 6)),
                        "rendered_at": now,
                    },
                    upsert=True,
                )
            )
            rendered.append((nudge, mail))
        if stored:
            self.svc.db[RENDERED].bulk_write(stored, ordered=False)
        return rendered

    def _mark_claimed(
        self, mails: list[tuple[Doc, OutgoingMail]], token: str, now: datetime
    ) -> list[tuple[Doc, OutgoingMail]]:
        if not mails:
            return []
        ids = [nudge["_id"] for nudge, _ in mails]
        result = self.svc.db[NUDGES].update_many(
            {"_id": {"$in": ids}, "state": {"$in": PENDING_VALUES}},
            {"$set": {"state": CLAIMED, "claim": token, "claimed_at": now}, "$inc": {"attempts": 1}},
        )
        if result.modified_count == len(ids):
            return mails
        mine = {
            doc["_id"]
            for doc in self.svc.db[NUDGES].find({"_id": {"$in": ids}, "state": CLAIMED, "claim": token}, {"_id": 1})
        }
        return [(nudge, mail) for nudge, mail in mails if nudge["_id"] in mine]

    def _deliver(
        self,
        batch_id: str,
        token: str,
        mails: list[tuple[Doc, OutgoingMail]],
        session: MailSession | None,
        stop: threading.Event,
        report: BatchReport,
    ) -> MailSession | None:
        svc = self.svc
        journal = svc.db[DELIVERIES]
        accepted: list[Handover] = []
        unjournaled: Handover | None = None  # accepted, its journal entry rides with the next write
        for index, (nudge, mail) in enumerate(mails):
            attempt = int(nudge["attempts"]) + 1
            if stop.is_set():
                release_unsent(svc, [n for n, _ in mails[index:]], token)
                break
            if not self._keep_lease(batch_id, token):
                # Taken over: whoever has the batch settles the rest from the journal.
                log.warning("lost the batch lease; stopping", extra={"batch_id": batch_id})
                self._lost = True
                break
            entries: list[Doc] = []
            if unjournaled is not None:
                entries.append(_journal_accepted(unjournaled, token))
            entries.append({"_id": journal_id(nudge["_id"], attempt, "sending"), "claim": token, "at": svc.now()})
            try:
                journal.insert_many(entries, ordered=True)
            except BulkWriteError as exc:
                if not _only_duplicates(exc):
                    raise
                # Another sender owns this attempt (the batch was taken over while this one
                # stalled). Stop; the lease lapses and recovery settles the rest from the journal.
                log.warning("another sender owns this attempt; stopping", extra={"batch_id": batch_id})
                if unjournaled is not None and exc.details.get("nInserted", 0) < 1:
                    accepted.remove(unjournaled)
                self._lost = True
                break
            unjournaled = None
            outcome, session = self._hand_over(mail, session)
            now = svc.now()
            if isinstance(outcome, Accepted):
                self.faults.hit("after_send_before_record", self.handed_over - 1)
                unjournaled = Handover(nudge, attempt, now, outcome.detail[:500])
                accepted.append(unjournaled)
                if len(accepted) >= SETTLE_EVERY:
                    report.sent += settle_sent(svc, accepted, self.transport.name)
                    accepted, unjournaled = [], None
                continue
            transition = after_attempt(outcome, attempt, now, svc.retry_policy, self._rng)
            if record_outcome(svc, nudge, transition, attempt, token, now):
                report.add(transition.state.value)
            if transition.state == NudgeState.DELIVERY_UNKNOWN:
                log.error(
                    "delivery unknown: the transport may or may not have accepted this message; not resending",
                    extra={"followup_id": nudge["_id"], "error": transition.error},
                )
            if session is None:
                # The transport went away: the rest waits for the next claim.
                release_unsent(svc, [n for n, _ in mails[index + 1 :]], token)
                break
        if accepted:
            report.sent += settle_sent(svc, accepted, self.transport.name)
        return session

    def _hand_over(self, mail: OutgoingMail, session: MailSession | None) -> tuple[Outcome, MailSession | None]:
        """Send on the open session, reconnecting once when the connection broke before the message left."""
        outcome: Outcome = NotSent("not attempted")
        for attempt in range(2):
            if session is None or not session.usable:
                if session is not None:
                    session.close()
                try:
                    session = self.transport.open()
                except TransportUnavailable as exc:
                    return NotSent(f"transport unavailable: {exc}"), None
            self.faults.hit("before_send", self.handed_over)
            outcome = session.send(mail)
            self.handed_over += 1
            if isinstance(outcome, NotSent) and not session.usable and attempt == 0:
                continue  # provably not sent: once more on a fresh connection
            return outcome, session
        return outcome, session

    def _finish(self, batch_id: str, token: str, report: BatchReport) -> None:
        count_outcomes(self.svc, report)
        if not self._lost:
            release_batch(self.svc, batch_id, token)
        for name in ("sent", "failed", "bounced", "retry", "skipped", "delivery_unknown"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(report, name))


def _journal_accepted(handover: Handover, token: str) -> Doc:
    return {
        "_id": journal_id(handover.nudge["_id"], handover.attempt, "accepted"),
        "claim": token,
        "at": handover.at,
        "response": handover.response,
    }


def _only_duplicates(error: BulkWriteError) -> bool:
    return all(item.get("code") == 11000 for item in error.details.get("writeErrors", []))


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
    unsettled = [CLAIMED, NudgeState.DELIVERY_UNKNOWN.value]

    def work(uow: UnitOfWork) -> int:
        session = uow.session
        current: list[str] = []
        for attempt, ids in by_attempt.items():
            condition = {"_id": {"$in": ids}, "attempts": attempt, "state": {"$in": unsettled}}
            found = [doc["_id"] for doc in uow.db[NUDGES].find(condition, {"_id": 1}, session=session)]
            if found:
                uow.db[NUDGES].update_many(
                    {**condition, "_id": {"$in": found}},
                    {"$set": {"state": NudgeState.SENT.value, "sent_at": settled_at, "transport": transport}},
                    session=session,
                )
                current.extend(found)
        if not current:
            return 0
        uow.db[IN_DOUBT].delete_many({"_id": {"$in": current}}, session=session)
        for followup in current:
            handover = by_id[followup]
            uow.publish(messages.followup_sent(handover.nudge, handover.at, transport))
        return len(current)

    return svc.uow().run(work)


def record_outcome(
    svc: Services, nudge: Doc, transition: Transition, attempts: int, token: str | None, now: datetime
) -> bool:
    """Store a non-sent outcome with its ``followup.*`` messages (and suppression) atomically."""
    state = transition.state

    def work(uow: UnitOfWork) -> bool:
        session = uow.session
        fields: dict[str, Any] = {"state": state.value, "last_error": (transition.error or "")[:1000]}
        if state == NudgeState.RETRY:
            fields["send_at"] = transition.retry_at
            fields["claim"] = None
        elif state == NudgeState.DELIVERY_UNKNOWN:
            fields["unknown_at"] = now
        else:
            fields["failed_at"] = now
        if transition.bounce:
            fields.update(bounced_at=now, bounce_type="hard")
        condition: dict[str, Any] = {"_id": nudge["_id"]}
        if token is None:  # never handed over (a rendering failure): only while still pending
            condition["state"] = {"$in": PENDING_VALUES}
        else:  # this attempt was journaled as ours: its outcome is ours to record
            condition.update(attempts=attempts, state=CLAIMED)
        if uow.db[NUDGES].update_one(condition, {"$set": fields}, session=session).modified_count != 1:
            return False
        if state == NudgeState.DELIVERY_UNKNOWN:
            mark_in_doubt(uow, nudge, now)
        if state in (NudgeState.RETRY, NudgeState.FAILED, NudgeState.BOUNCED):
            uow.publish(
                messages.followup_failed(nudge, now, transition.error or state.value, transition.permanent, attempts)
            )
        if transition.bounce:
            uow.publish(
                messages.followup_bounced(
                    nudge["org_id"], nudge["person_id"], nudge, now, "hard", transition.error or "rejected"
                )
            )
        if transition.suppress_address:
            contact = uow.db[CONTACTS].find_one({"_id": nudge["person_id"]}, {"email": 1}, session=session)
            email = str((contact or {}).get("email") or "")
            if email:
                suppress(uow, nudge["org_id"], email, "hard_bounce", transition.error or "", now, nudge["person_id"])
        return True

    return svc.uow().run(work)


def mark_in_doubt(uow: UnitOfWork, nudge: Doc, now: datetime) -> None:
    """Keep ``delivery_unknown`` nudges in a small list of their own (for /metrics and the UI)."""
    uow.db[IN_DOUBT].update_one(
        {"_id": nudge["_id"]},
        {"$setOnInsert": {"org_id": nudge["org_id"], "event_id": nudge.get("event_id"), "since": now}},
        upsert=True,
        session=uow.session,
    )


def suppress(
    uow: UnitOfWork, org_id: str, email: str, reason: str, detail: str, now: datetime, person_id: str | None
) -> None:
    """Add an address to the organization's suppression list (inside ``uow``)."""
    uow.db[SUPPRESSIONS].update_one(
        {"_id": suppression_id(org_id, email)},
        {
            "$setOnInsert": {
                "org_id": org_id,
                "email": email,
                "email_norm": normalize_email(email),
                "reason": reason,
                "detail": detail[:1000],
                "person_id": person_id,
                "created_at": now,
            }
        },
        upsert=True,
        session=uow.session,
    )


def release_unsent(svc: Services, nudges: list[Doc], token: str) -> None:
    """Give back nudges this claim rendered but never handed over."""
    if not nudges:
        return
    svc.db[NUDGES].update_many(
        {"_id": {"$in": [n["_id"] for n in nudges]}, "state": CLAIMED, "claim": token},
        {"$set": {"state": NudgeState.SCHEDULED.value, "claim": None}, "$inc": {"attempts": -1}},
    )


def release_batch(svc: Services, batch_id: str, token: str, not_before: datetime | None = None) -> None:
    """End a claim: ``ready`` again when nudges are still pending (due at the earliest), else ``done``."""
    pending = list(svc.db[NUDGES].find({"batch_id": batch_id, "state": {"$in": PENDING_VALUES}}, {"send_at": 1}))
    if pending:
        due = min(doc["send_at"] for doc in pending)
        if not_before is not None:
            due = max(due, not_before)
        changes: dict[str, Any] = {"state": "ready", "due_at": due}
    else:
        changes = {"state": "done", "finished_at": svc.now()}
    svc.db[SEND_BATCHES].update_one(
        {"_id": batch_id, "lease_owner": token},
        {"$set": {**changes, "lease_owner": None, "lease_until": None}},
    )


def settle_from_journal(svc: Services, batch_id: str, dead: str, now: datetime) -> BatchReport:
    """Settle the nudges a dead claim left ``claimed``, from what the journal says happened."""
    report = BatchReport()
    left = list(svc.db[NUDGES].find({"batch_id": batch_id, "state": CLAIMED, "claim": dead}))
    if not left:
        return report
    ids = [journal_id(n["_id"], int(n["attempts"]), step) for n in left for step in ("sending", "accepted")]
    journal = {doc["_id"]: doc for doc in svc.db[DELIVERIES].find({"_id": {"$in": ids}})}
    accepted: list[Handover] = []
    doubtful: list[Doc] = []
    never: list[Doc] = []
    for nudge in left:
        attempt = int(nudge["attempts"])
        done = journal.get(journal_id(nudge["_id"], attempt, "accepted"))
        if done is not None:
            accepted.append(Handover(nudge, attempt, done["at"], str(done.get("response", ""))))
        elif journal_id(nudge["_id"], attempt, "sending") in journal:
            doubtful.append(nudge)
        else:
            never.append(nudge)
    report.sent = settle_sent(svc, accepted, svc.transport.name if svc.transport else "smtp")
    # Rendered but never handed over: schedule again.
    release_unsent(svc, never, dead)
    for nudge in doubtful:
        transition = Transition(
            NudgeState.DELIVERY_UNKNOWN,
            error="the sender stopped while handing this message to the transport; it may have been delivered",
        )
        if record_outcome(svc, nudge, transition, int(nudge["attempts"]), dead, now):
            report.delivery_unknown += 1
    if doubtful:
        log.error(
            "delivery unknown after a sender crash; not resending",
            extra={"batch_id": batch_id, "followup_ids": [n["_id"] for n in doubtful]},
        )
    return report


def recover_abandoned_batches(svc: Services, now: datetime) -> int:
    """Take over batches whose sender died (lease expired) and settle their nudges."""
    recovered = 0
    for batch in list(svc.db[SEND_BATCHES].find({"state": "claimed", "lease_until": {"$lt": now}}).limit(50)):
        token = f"recovery:{uuid.uuid4().hex[:12]}"
        taken = svc.db[SEND_BATCHES].update_one(
            {"_id": batch["_id"], "state": "claimed", "lease_owner": batch["lease_owner"]},
            {"$set": {"lease_owner": token, "lease_until": now + svc.lease}},
        )
        if taken.modified_count != 1:
            continue
        count_outcomes(svc, settle_from_journal(svc, batch["_id"], batch["lease_owner"], now))
        release_batch(svc, batch["_id"], token)
        recovered += 1
    return recovered


def count_outcomes(svc: Services, report: BatchReport) -> None:
    """Running totals for ``/metrics`` (one write per batch)."""
    increments = {
        name: getattr(report, name)
        for name in ("sent", "failed", "bounced", "retry", "skipped", "delivery_unknown")
        if getattr(report, name)
    }
    if increments:
        svc.db[FIGURES].update_one({"_id": "totals"}, {"$inc": increments}, upsert=True)


def send_due_nudges(svc: Services, stop: threading.Event | None = None, name: str = "sender") -> BatchReport:
    """Deliver every batch due now (for tests and one-off runs); return the totals."""
    sender = Sender(svc, name)
    stop = stop or threading.Event()
    while True:
        sender.send_once(stop)
        if not sender.claimed_last:
            return sender.totals
