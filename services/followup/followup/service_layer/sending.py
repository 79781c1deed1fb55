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
import threading
import time
from datetime import timedelta

from followup.domain.delivery import SENDING, journal_id
from followup.domain.mail import Accepted
from followup.domain.nudges import PENDING, NudgeState, after_attempt
from followup.domain.privacy import ERASURE_FENCE
from followup.service_layer.content import load_batch_facts
from followup.service_layer.context import Services
from followup.service_layer.courier import Courier
from followup.service_layer.leasing import BatchLease, recover_abandoned_batches, release_batch
from followup.service_layer.outcomes import (
    BatchReport,
    Handover,
    accepted_entry,
    count_outcomes,
    record_outcome,
    release_unsent,
    settle_sent,
)
from followup.service_layer.ports import MailSession, Pause, TransportUnavailable, pause_until_due
from followup.service_layer.preparing import Prepared, claim, decide, render
from followup.service_layer.probe import NoProbe, SendProbe
from turnout_common.types import Doc

log = logging.getLogger("followup.sender")

PENDING_VALUES = [state.value for state in PENDING]
# Settle accepted messages at least this often during a long batch (fresher UI, smaller replays).
SETTLE_EVERY = 100
MAX_LOOP_PAUSE = 10.0

__all__ = ["BatchReport", "Sender", "journal_id", "send_due_nudges"]


class Sender:
    """Claims due send batches and delivers them; several may run (threads or processes).

    The parts: ``BatchLease`` (claiming and keeping a batch), ``preparing``
    (decide, render, claim the nudges), ``Courier`` (the transport, with its
    reconnects and pauses), ``outcomes`` (recording what happened). ``probe``
    is told how far the sender got (the fault tests stop it there).
    """

    def __init__(self, svc: Services, name: str = "sender", probe: SendProbe | None = None) -> None:
        if svc.transport is None:
            raise ValueError("a sender needs a mail transport")
        self.svc = svc
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{name}"
        self.probe: SendProbe = probe or NoProbe()
        self.courier = Courier(svc.transport, self.probe)
        self._rng = random.Random()
        self.lease = BatchLease(svc, self.owner, self._rng)
        self.totals = BatchReport()
        self.claimed_last = False
        self._last_recovery = 0.0
        self._lost = False  # this batch was taken over: leave its leftovers to recovery
        self.idle: Pause | None = None  # how the loop waits (set by ``run``)

    @property
    def handed_over(self) -> int:
        """Messages given to the transport by this sender."""
        return self.courier.handed_over

    # -- the loop ------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Deliver batches until ``stop``. While none is due, sleep until one is
        created or made ready (the batches' change feed), until the earliest
        ready one falls due, or for a safety poll (abandoned leases are
        recovered on that clock: at most half a lease)."""
        settings = self.svc.settings
        pause = self.svc.signals.batches(busy_pause=settings.sender_idle_seconds, max_sleep=self.svc.idle_poll_seconds)
        self.idle = pause
        backoff = 0.0
        try:
            while not stop.is_set():
                try:
                    self.send_once(stop)
                    due_in = self._due_in() if not self.claimed_last and pause.sleeping else None
                    backoff = 0.0
                except self.svc.storage_errors as exc:
                    backoff = min(MAX_LOOP_PAUSE, max(0.5, backoff * 2))
                    log.warning("database trouble while sending; retrying", extra={"error": repr(exc)})
                    pause.wake()
                    stop.wait(backoff)
                    continue
                except Exception:
                    backoff = min(MAX_LOOP_PAUSE, max(0.5, backoff * 2))
                    log.exception("sender loop error", extra={"backoff_s": backoff})
                    pause.wake()
                    stop.wait(backoff)
                    continue
                if self.claimed_last:
                    pause.wake()  # more may be due: look again at once
                    continue
                pause_until_due(pause, stop, due_in, self.svc.idle_poll_seconds)
        finally:
            pause.close()

    def _due_in(self) -> float | None:
        """Seconds until the earliest ready batch falls due (None: no batch is ready)."""
        due_at = self.svc.store.batches.next_due_at()
        if due_at is None:
            return None
        return max(self.svc.settings.sender_idle_seconds, (due_at - self.svc.now()).total_seconds())

    def send_once(self, stop: threading.Event) -> int:
        """Recover abandoned batches now and then, then deliver one due batch; return nudges handled."""
        now = self.svc.now()
        if time.monotonic() - self._last_recovery >= min(5.0, self.svc.idle_poll_seconds):
            self._last_recovery = time.monotonic()
            recover_abandoned_batches(self.svc, now)
        claimed = self.lease.claim(now)
        self.claimed_last = claimed is not None
        if claimed is None:
            return 0
        batch_id, token = claimed
        return self.process(batch_id, token, stop).handled

    # -- one batch -----------------------------------------------------------------
    def process(self, batch_id: str, token: str, stop: threading.Event) -> BatchReport:
        svc = self.svc
        report = BatchReport()
        self._lost = False
        now = svc.now()
        due = [n for n in svc.store.nudges.of_batch(batch_id) if n["state"] in PENDING_VALUES and n["send_at"] <= now]
        if not due:
            release_batch(svc, batch_id, token)
            return report
        facts = load_batch_facts(svc, due, now)
        to_send = decide(svc, due, facts, now, report)
        if not to_send:
            self._finish(batch_id, token, report)
            return report
        try:
            session: MailSession | None = self.courier.open()
        except TransportUnavailable as exc:
            delay = self.courier.connect_pause()
            log.warning(
                "mail transport unavailable; batch postponed",
                extra={"error": str(exc), "retry_in_s": delay, "batch_id": batch_id},
            )
            release_batch(svc, batch_id, token, not_before=now + timedelta(seconds=delay))
            return report
        try:
            mails = claim(svc, render(svc, to_send, facts, now, report), token, now)
            self.probe.reached("after_claim", self.handed_over)
            session = self._deliver(batch_id, token, mails, session, stop, report)
        finally:
            if session is not None:
                session.close()
        self._finish(batch_id, token, report)
        return report

    def _deliver(
        self,
        batch_id: str,
        token: str,
        mails: Prepared,
        session: MailSession | None,
        stop: threading.Event,
        report: BatchReport,
    ) -> MailSession | None:
        """Journal ``sending``, hand over, record: one message after the other."""
        svc = self.svc
        accepted: list[Handover] = []
        unjournaled: Handover | None = None  # accepted, its journal entry rides with the next write
        for index, (nudge, mail) in enumerate(mails):
            attempt = int(nudge["attempts"]) + 1
            if stop.is_set():
                release_unsent(svc, [n for n, _ in mails[index:]], token)
                break
            if not self.lease.keep(batch_id, token):
                # Taken over: whoever has the batch settles the rest from the journal.
                log.warning("lost the batch lease; stopping", extra={"batch_id": batch_id})
                self._lost = True
                break
            entries = self._journal_entries(nudge, attempt, token, unjournaled)
            inserted = svc.store.journal.append(entries)
            if inserted == len(entries) - 1 and self._fenced(nudge, attempt):
                # The person was erased after this batch was claimed: the erasure took
                # this attempt, so the message is not handed over (its rendering goes too).
                svc.store.rendered.remove([f"{nudge['_id']}:{attempt}"])
                report.skipped += 1
                unjournaled = None
                continue
            if inserted < len(entries):
                # Another sender owns this attempt (the batch was taken over while this one
                # stalled). Stop; the lease lapses and recovery settles the rest from the journal.
                log.warning("another sender owns this attempt; stopping", extra={"batch_id": batch_id})
                if unjournaled is not None and inserted < 1:
                    accepted.remove(unjournaled)
                self._lost = True
                break
            unjournaled = None
            outcome, session = self.courier.hand_over(mail, session)
            now = svc.now()
            if isinstance(outcome, Accepted):
                self.probe.reached("after_send_before_record", self.handed_over - 1)
                unjournaled = Handover(nudge, attempt, now, outcome.detail[:500])
                accepted.append(unjournaled)
                if len(accepted) >= SETTLE_EVERY:
                    report.sent += settle_sent(svc, accepted, self.courier.name)
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
            report.sent += settle_sent(svc, accepted, self.courier.name)
        return session

    def _fenced(self, nudge: Doc, attempt: int) -> bool:
        """Whether an erasure wrote this attempt's ``sending`` (see ``followup.service_layer.privacy``)."""
        entry = self.svc.store.journal.get(journal_id(nudge["_id"], attempt, SENDING))
        return entry is not None and entry.get("claim") == ERASURE_FENCE

    def _journal_entries(self, nudge: Doc, attempt: int, token: str, unjournaled: Handover | None) -> list[Doc]:
        """``...:sending`` for this attempt, after the previous message's ``...:accepted``
        (one write for both)."""
        entries: list[Doc] = []
        if unjournaled is not None:
            entries.append(accepted_entry(unjournaled, token))
        entries.append({"_id": journal_id(nudge["_id"], attempt, SENDING), "claim": token, "at": self.svc.now()})
        return entries

    def _finish(self, batch_id: str, token: str, report: BatchReport) -> None:
        count_outcomes(self.svc, report)
        if not self._lost:
            release_batch(self.svc, batch_id, token)
        self.totals.include(report)


def send_due_nudges(svc: Services, stop: threading.Event | None = None, name: str = "sender") -> BatchReport:
    """Deliver every batch due now (for tests and one-off runs); return the totals."""
    sender = Sender(svc, name)
    stop = stop or threading.Event()
    while True:
        sender.send_once(stop)
        if not sender.claimed_last:
            return sender.totals
