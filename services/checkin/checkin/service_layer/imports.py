"""CSV imports of registrations as background jobs.

``start_import`` parses the upload in the request (fast, pure) and stores a
job in ``imports`` with the parsed rows in ``import_rows`` (chunks of 500, far
below MongoDB's 16 MB document limit). The checkin worker then runs
``process_pending_imports``: it claims one job at a time with a lease (owner +
lease_until), so two workers never process the same job and a crashed
worker's job is resumed by another once the lease expires.

Each batch of rows is registered in one transaction that also stages one
``attendee.registered`` outbox message per new registration and advances the
job's cursor and counters, guarded by the lease: a batch is counted exactly
once, whoever crashes when. (One transaction per row, through
``registrations.register``, was far slower: see bench/README.md.)
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checkin.adapters.ids import new_id
from checkin.domain.imports import ImportRow, ParsedImport, RowProblem, parse_import, safe_filename
from checkin.domain.model import EventStatus, RuleBroken, registration_status
from checkin.service_layer.context import Context
from checkin.service_layer.messages import registered_message
from checkin.service_layer.ports import StorageRefused, Store, Transaction
from checkin.service_layer.registrations import new_person_doc, new_registration_doc
from turnout_common.clock import utcnow
from turnout_common.emails import normalize_email
from turnout_common.types import Doc

log = logging.getLogger("checkin.imports")
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
CHUNK_ROWS = 500
MAX_STORED_PROBLEMS = 1000
DEFAULT_BATCH = 200
LEASE_SECONDS = 60.0
SOURCE = "import"


class LeaseLost(RuntimeError):
    """Another worker holds this job now (our lease expired); stop touching it."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    handled: int  # rows registered, already registered or failed in this batch
    finished: bool  # the job is done (or failed) now


# -- starting -------------------------------------------------------------------


def _scheduled_event(ctx: Context, org_id: str, event_id: str) -> Doc:
    event = ctx.store.events.get_scoped(event_id, org_id)
    if event is None:
        raise RuleBroken("event_not_found", "no such event in your organization")
    if event["status"] != EventStatus.SCHEDULED.value:
        raise RuleBroken("event_closed", f"this event is {event['status']}; registration is closed")
    return event


def start_import(
    ctx: Context,
    org_id: str,
    event_id: str,
    raw_bytes: bytes,
    filename: str | None,
    fmt: str = "auto",
    mapping: dict[str, Any] | None = None,
    *,
    user_id: str | None = None,
) -> Doc:
    """Parse an upload and queue it; return the stored job. Raises ``ImportRejected``
    (a ``RuleBroken``) for a file that cannot be imported at all."""
    _scheduled_event(ctx, org_id, event_id)
    parsed = parse_import(raw_bytes, fmt, mapping)
    return _store_job(ctx, org_id, event_id, parsed, safe_filename(filename), user_id)


def _store_job(
    ctx: Context, org_id: str, event_id: str, parsed: ParsedImport, filename: str, user_id: str | None
) -> Doc:
    now = utcnow()
    job_id = new_id()
    pending = len(parsed.rows)
    chunks = [parsed.rows[start : start + CHUNK_ROWS] for start in range(0, pending, CHUNK_ROWS)]
    # Rows first, then the job: a worker never sees a job without its rows.
    if chunks:
        ctx.store.imports.add_rows(
            [
                {"_id": _chunk_id(job_id, number), "job_id": job_id, "rows": [row.to_doc() for row in chunk]}
                for number, chunk in enumerate(chunks)
            ]
        )
    rejected = sorted(parsed.rejected, key=lambda problem: problem.row)
    skipped = sorted(parsed.skipped, key=lambda problem: problem.row)
    job: Doc = {
        "_id": job_id,
        "org_id": org_id,
        "event_id": event_id,
        "filename": filename,
        "format": parsed.format,
        "encoding": parsed.encoding,
        "delimiter": parsed.delimiter,
        "mapping": parsed.mapping,
        "status": QUEUED if pending else DONE,
        "total": parsed.total,
        "pending": pending,  # rows to register
        "cursor": 0,  # how many of them are handled
        "processed": len(rejected) + len(skipped),
        "created": 0,
        "already_registered": 0,
        "failed": len(rejected),
        "rejected_at_parse": len(rejected),
        "name_only_rows": parsed.name_only,  # rows to register without an email
        "name_only": 0,  # of those, rows registered (or already registered) so far
        "waitlisted": 0,  # rows put on the waitlist
        "skipped": len(skipped),
        "errors": [problem.to_doc() for problem in rejected[:MAX_STORED_PROBLEMS]],
        "errors_count": len(rejected),
        "skipped_rows": [problem.to_doc() for problem in skipped[:MAX_STORED_PROBLEMS]],
        "failure": None,
        "lease_owner": None,
        "lease_until": None,
        "created_by": user_id,
        "created_at": now,
        "started_at": None,
        "finished_at": None if pending else now,
    }
    ctx.store.imports.add(job)
    return job


def _chunk_id(job_id: str, number: int) -> str:
    return f"{job_id}:{number:05d}"


# -- reading --------------------------------------------------------------------


def get_import(ctx: Context, org_id: str, import_id: str) -> Doc:
    job = ctx.store.imports.get_scoped(import_id, org_id)
    if job is None:
        raise RuleBroken("import_not_found", "no such import in your organization")
    return job


def list_imports(ctx: Context, org_id: str, event_id: str, limit: int = 100) -> list[Doc]:
    if not ctx.store.events.exists_in_org(event_id, org_id):
        raise RuleBroken("event_not_found", "no such event in your organization")
    return ctx.store.imports.of_event(org_id, event_id, limit)


def percent(job: Doc) -> int:
    if job["status"] == DONE or not job["total"]:
        return 100
    return min(100, int(job["processed"]) * 100 // int(job["total"]))


# -- processing -----------------------------------------------------------------


def claim_import(ctx: Context, owner: str, lease_seconds: float = LEASE_SECONDS) -> Doc | None:
    """Lease the oldest queued job, or a running one whose worker's lease expired."""
    now = utcnow()
    # The worker asks every second. Few jobs are queued or running at any
    # time: read those (the status index), pick the oldest free one here, and
    # lease it with an update conditional on what was read.
    free = sorted(
        (job for job in ctx.store.imports.open_jobs() if job.get("lease_until") is None or job["lease_until"] < now),
        key=lambda job: (job["created_at"], job["_id"]),
    )
    until = now + timedelta(seconds=lease_seconds)
    for candidate in free:
        unchanged = {
            "_id": candidate["_id"],
            "status": candidate["status"],
            "lease_until": candidate.get("lease_until"),
        }
        if not ctx.store.imports.lease(unchanged, owner, until):
            continue  # another worker took it since
        job = ctx.store.imports.get(candidate["_id"])
        if job is not None and job.get("started_at") is None:
            ctx.store.imports.mark_started(job["_id"], now)
        return job
    return None


def _load_rows(ctx: Context, job_id: str, start: int, end: int) -> list[ImportRow]:
    first, last = start // CHUNK_ROWS, (end - 1) // CHUNK_ROWS
    ids = [_chunk_id(job_id, number) for number in range(first, last + 1)]
    by_id = ctx.store.imports.row_chunks(ids)
    rows: list[Doc] = []
    for chunk_id in ids:
        if chunk_id not in by_id:
            raise RuleBroken("import_rows_missing", "the import's stored rows are missing")
        rows.extend(by_id[chunk_id])
    offset = first * CHUNK_ROWS
    return [ImportRow.from_doc(doc) for doc in rows[start - offset : end - offset]]


def _register_rows(
    ctx: Context, job: Doc, owner: str, start: int, rows: Sequence[ImportRow], lease_seconds: float
) -> tuple[int, int]:
    """Register ``rows`` (the job's rows from ``start``) in one transaction, with
    one outbox message per new registration and the job's counters; returns
    (created, already_registered). Mirrors ``registrations.register``."""
    org_id, event_id = job["org_id"], job["event_id"]

    def work(tx: Transaction) -> tuple[int, int]:
        now = utcnow()
        store = tx.store
        event = store.events.get_in_org(event_id, org_id)
        if event is None:
            raise RuleBroken("event_not_found", "the event was deleted")
        if event["status"] != EventStatus.SCHEDULED.value:
            raise RuleBroken("event_closed", f"the event is {event['status']}; registration is closed")
        matched = _match_people(store, org_id, rows, now)
        person_ids = [person["_id"] for person in matched]
        existing = store.registrations.of_people(event_id, person_ids)
        capacity = event.get("capacity")
        registered_count = event.get("registered_count", 0)
        counted = 0
        new: list[tuple[Doc, Doc]] = []
        replaced: list[str] = []
        already = name_only = waitlisted = 0
        for row, person in zip(rows, matched, strict=True):
            prior = existing.get(person["_id"])
            if not person.get("email"):
                name_only += 1
            if prior is not None and prior["status"] != "cancelled":
                already += 1
                continue
            # A Meetup "Waitlist" row joins the waitlist (after those already on it, in the file's order).
            status = "waitlisted" if row.waitlist else registration_status(capacity, registered_count + counted)
            if status == "waitlisted":
                waitlisted += 1
            if status == "registered" and capacity is not None:
                counted += 1
            registration = new_registration_doc(
                event,
                person,
                status=status,
                consent_email=row.consent_email,
                offers=row.offers,
                seeks=row.seeks,
                source=SOURCE,
                now=now,
                party=row.party,
            )
            if prior is not None:
                replaced.append(prior["_id"])
            new.append((registration, person))
        if replaced:
            store.registrations.remove_many(replaced)
        if new:
            store.registrations.add_many([registration for registration, _ in new])
        if counted:
            store.events.add_to_registered_count(event_id, counted)
        for registration, person in new:
            tx.publish(registered_message(registration, person, event))
        advanced = store.imports.advance(
            job["_id"],
            owner,
            start,
            {"cursor": start + len(rows), "lease_until": now + timedelta(seconds=lease_seconds)},
            {
                "processed": len(rows),
                "created": len(new),
                "already_registered": already,
                "name_only": name_only,
                "waitlisted": waitlisted,
            },
        )
        if not advanced:
            raise LeaseLost(f"import {job['_id']}: lease lost before row index {start}")
        return len(new), already

    return ctx.uow().run(work)


def _match_people(store: Store, org_id: str, rows: Sequence[ImportRow], now: datetime) -> list[Doc]:
    """Each row's person, created if new: by email, else by Meetup member id; a row with
    neither is a new name-only person (never merged with anyone on the name alone).

    New people go in one insert (rows are unique by email and by member id); a
    person someone registers concurrently makes it fail, and the batch is
    retried row by row.
    """
    by_email = store.people.by_emails(org_id, [normalize_email(row.email) for row in rows if row.email])
    member_ids = [row.meetup_member_id for row in rows if row.meetup_member_id]
    by_member = store.people.by_meetup_ids(org_id, member_ids) if member_ids else {}
    matched: list[Doc] = []
    newcomers: list[Doc] = []
    for row in rows:
        person = by_email.get(normalize_email(row.email)) if row.email else None
        if person is None and row.meetup_member_id:
            person = by_member.get(row.meetup_member_id)
        if person is None:
            person = new_person_doc(
                org_id, row.email, row.first_name, row.last_name, now, meetup_member_id=row.meetup_member_id
            )
            newcomers.append(person)
        matched.append(person)
    if newcomers:
        store.people.add_many(newcomers)
    return matched


def _record_row_failure(ctx: Context, job: Doc, owner: str, start: int, row: ImportRow, reason: str) -> None:
    problem = RowProblem(row.row, reason, row.email, f"{row.first_name} {row.last_name}".strip()).to_doc()
    if not ctx.store.imports.record_failure(job["_id"], owner, start, problem, MAX_STORED_PROBLEMS):
        raise LeaseLost(f"import {job['_id']}: lease lost before row index {start}")


def _finish(ctx: Context, job: Doc, owner: str, status: str, failure: str | None = None) -> None:
    now = utcnow()
    update: Doc = {"status": status, "finished_at": now, "lease_owner": None, "lease_until": None}
    if failure is not None:
        update["failure"] = failure
    if not ctx.store.imports.finish(job["_id"], owner, update):
        raise LeaseLost(f"import {job['_id']}: lease lost before finishing")
    ctx.store.imports.drop_rows(job["_id"])
    log.info(
        "import finished",
        extra={"import_id": job["_id"], "status": status, "failure": failure, "event_id": job["event_id"]},
    )


def process_import_batch(
    ctx: Context,
    job_id: str,
    batch: int = DEFAULT_BATCH,
    *,
    owner: str,
    lease_seconds: float = LEASE_SECONDS,
) -> BatchOutcome:
    """Register the next ``batch`` rows of a job ``owner`` has claimed; raises
    ``LeaseLost`` if another worker took the job over."""
    job = ctx.store.imports.get(job_id)
    if job is None or job["status"] != RUNNING or job.get("lease_owner") != owner:
        raise LeaseLost(f"import {job_id} is not leased to {owner}")
    start = job["cursor"]
    end = min(start + max(1, batch), job["pending"])
    if start >= end:
        _finish(ctx, job, owner, DONE)
        return BatchOutcome(0, True)
    try:
        rows = _load_rows(ctx, job_id, start, end)
    except RuleBroken as exc:
        _finish(ctx, job, owner, FAILED, exc.message)
        return BatchOutcome(0, True)
    try:
        try:
            _register_rows(ctx, job, owner, start, rows, lease_seconds)
        except StorageRefused:
            _rows_one_by_one(ctx, job, owner, start, rows, lease_seconds)
        except (ValueError, TypeError, KeyError) as exc:  # e.g. a message its contract refuses
            if isinstance(exc, RuleBroken):
                raise
            _rows_one_by_one(ctx, job, owner, start, rows, lease_seconds)
    except RuleBroken as exc:  # the event is gone or closed: nothing more can be registered
        _finish(ctx, job, owner, FAILED, exc.message)
        return BatchOutcome(0, True)
    if end >= job["pending"]:
        _finish(ctx, job, owner, DONE)
        return BatchOutcome(len(rows), True)
    return BatchOutcome(len(rows), False)


def _rows_one_by_one(
    ctx: Context, job: Doc, owner: str, start: int, rows: Sequence[ImportRow], lease_seconds: float
) -> None:
    """A batch failed as a whole: register its rows singly to find (and report) the bad one(s)."""
    for offset, row in enumerate(rows):
        try:
            _register_rows(ctx, job, owner, start + offset, [row], lease_seconds)
        except StorageRefused as exc:
            log.warning("import row failed", extra={"import_id": job["_id"], "row": row.row, "error": repr(exc)})
            _record_row_failure(ctx, job, owner, start + offset, row, "could not be registered (database refused it)")
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, RuleBroken):
                raise
            log.warning("import row failed", extra={"import_id": job["_id"], "row": row.row, "error": repr(exc)})
            _record_row_failure(ctx, job, owner, start + offset, row, "could not be registered (invalid data)")


def _release(ctx: Context, job_id: str, owner: str, *, quiet: bool = False) -> None:
    """Hand a job back at once (on shutdown) instead of letting the lease run out."""
    ctx.store.imports.release(job_id, owner, quiet=quiet)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_pending_imports(
    ctx: Context,
    *,
    owner: str | None = None,
    batch: int = DEFAULT_BATCH,
    lease_seconds: float = LEASE_SECONDS,
    stop: threading.Event | None = None,
) -> int:
    """Run queued imports (and ones whose worker died) to the end, one job at a
    time; return how many rows were handled. Called by the worker's loop, and
    directly where no worker runs."""
    owner = owner or default_owner()
    handled = 0
    while stop is None or not stop.is_set():
        job = claim_import(ctx, owner, lease_seconds)
        if job is None:
            break
        log.info("import claimed", extra={"import_id": job["_id"], "cursor": job["cursor"], "pending": job["pending"]})
        while True:
            if stop is not None and stop.is_set():
                _release(ctx, job["_id"], owner)
                return handled
            try:
                outcome = process_import_batch(ctx, job["_id"], batch, owner=owner, lease_seconds=lease_seconds)
            except LeaseLost:
                log.warning("import lease lost to another worker", extra={"import_id": job["_id"]})
                break
            except BaseException:
                # e.g. the database went away: hand the job back so the next
                # attempt (any worker) resumes it without waiting for the lease.
                _release(ctx, job["_id"], owner, quiet=True)
                raise
            handled += outcome.handled
            if outcome.finished:
                break
    return handled


# -- views ----------------------------------------------------------------------


def sorted_problems(job: Doc, key: str = "errors") -> list[Doc]:
    return sorted(job.get(key) or [], key=lambda problem: problem["row"])
