"""Follow-up send benchmark: a 10,000-attendee gathering's follow-ups into a local SMTP server.

Starts its own SecantusDB and Tansu on free ports (in a temporary directory),
a local SMTP server (aiosmtpd) that counts what it accepts, and follow-up's
real ``worker`` (scheduler + senders) and ``relay`` processes. It loads the
gathering's facts through follow-up's own consumer handler (10,000
registrations, 8,500 check-ins: 8,500 thank-yous and 1,500 we-missed-yous),
ends it, and measures

- planning: from ``event.ended`` until every nudge is scheduled;
- sending: from the planned send time until the SMTP server accepted the
  last message; messages per second over that window;

and checks that every follow-up arrived exactly once.

Usage: .venv/bin/python bench/followup_send.py [--attendees 10000] [--senders 2] [--batch 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "deploy" / "local") not in sys.path:
    sys.path.append(str(REPO / "deploy" / "local"))  # when the venv lacks the editable install

from turnout_local.processes import Child, database_uri, free_port, start_broker, start_database  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class CountingHandler:
    """Accepts everything; remembers each follow-up id and when its message was accepted."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.first: float | None = None
        self.last: float | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        marker = content.find(b"X-Turnout-Followup-Id: ")
        followup = content[marker + 23 : marker + 55].decode() if marker >= 0 else "?"
        now = time.time()
        with self.lock:
            self.accepted[followup] += 1
            self.first = self.first or now
            self.last = now
        return "250 2.0.0 OK"


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attendees", type=int, default=10_000)
    parser.add_argument("--show-rate", type=float, default=0.85, help="share of registrations that check in")
    parser.add_argument("--senders", type=int, default=2, help="sender threads in the worker")
    parser.add_argument("--batch", type=int, default=200, help="nudges per send batch")
    parser.add_argument("--no-relay", action="store_true", help="do not run follow-up's outbox relay")
    parser.add_argument(
        "--delay",
        type=int,
        default=0,
        help="send delay after the end, s (default: long enough to plan and publish the plan first, "
        "as the production default of 2 hours does)",
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="turnout-bench-followup-"))
    children: list[Child] = []
    controller: Controller | None = None
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        kafka_port, mongodb_port, smtp_port = free_port(), free_port(), free_port()
        log("starting SecantusDB, Tansu and the SMTP server")
        children.append(start_database(mongodb_port, workdir / "mongodb", workdir / "logs"))
        children.append(start_broker(kafka_port, workdir / "logs"))
        handler = CountingHandler()
        controller = Controller(handler, hostname="127.0.0.1", port=smtp_port, ready_timeout=10)
        controller.start()
        database = f"bench_followup_{uuid.uuid4().hex[:6]}"
        env = {
            "MONGODB_URI": database_uri(mongodb_port),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
            "FOLLOWUP_MONGODB_DATABASE": database,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "FOLLOWUP_WINDOW_START": "00:00",
            "FOLLOWUP_WINDOW_END": "24:00",
            "FOLLOWUP_SENDER_THREADS": str(args.senders),
            "FOLLOWUP_BATCH_SIZE": str(args.batch),
            "FOLLOWUP_WORKER_LOOPS": "scheduler,sender",
            "FOLLOWUP_SCHEDULER_INTERVAL_SECONDS": "0.2",
            "FOLLOWUP_SENDER_IDLE_SECONDS": "0.1",
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        from turnout_common.kafka import ensure_topics

        ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], 6)

        from followup.adapters.repositories import in_transaction
        from followup.bootstrap import build_services
        from followup.config import Settings
        from followup.service_layer.handlers import apply_checkin_messages as apply_on_tx
        from turnout_common.envelope import new_envelope
        from turnout_common.mongo import UnitOfWork

        svc = build_services(Settings.from_env(), "bench-followup")
        client, db = svc.mongo
        # The consumer's handler, as the consumer runs it: in one transaction, on the repositories.
        apply_checkin_messages = in_transaction(apply_on_tx)

        def apply(messages: list[Any]) -> None:
            UnitOfWork(client, db).run(lambda uow: apply_checkin_messages(uow, messages))

        org_id, event_id = uuid.uuid4().hex[:24], uuid.uuid4().hex[:24]
        starts = datetime.now(UTC) - timedelta(hours=3)
        base = {
            "org_id": org_id,
            "event_id": event_id,
            "title": "Big community workshop",
            "kind": "workshop",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "timezone": "America/Chicago",
        }

        def envelope(kind: str, data: dict[str, Any]) -> Any:
            return new_envelope(kind, source="/turnout/checkin", subject=event_id, data=data)

        facts = [
            envelope(
                "event.scheduled",
                {
                    **base,
                    "venue": "Hall",
                    "capacity": None,
                    "checkin_opens_at": (starts - timedelta(hours=1)).isoformat(),
                    "checkin_closes_at": (starts + timedelta(hours=3)).isoformat(),
                    "status": "scheduled",
                    "description": None,
                },
            )
        ]
        shows = int(args.attendees * args.show_rate)
        for n in range(args.attendees):
            person = f"p{n:06d}"
            facts.append(
                envelope(
                    "attendee.registered",
                    {
                        "org_id": org_id,
                        "event_id": event_id,
                        "registration_id": f"r{n:06d}",
                        "person_id": person,
                        "first_name": f"Guest{n}",
                        "last_name": "Bench",
                        "email": f"guest{n}@bench.example.org",
                        "consent_email": True,
                        "offers": [],
                        "seeks": [],
                        "source": "import",
                        "status": "registered",
                        "registered_at": (starts - timedelta(days=2)).isoformat(),
                        "event_kind": "workshop",
                    },
                )
            )
            if n < shows:
                facts.append(
                    envelope(
                        "attendee.checked_in",
                        {
                            "org_id": org_id,
                            "event_id": event_id,
                            "registration_id": f"r{n:06d}",
                            "person_id": person,
                            "kiosk_id": None,
                            "method": "qr",
                            "scanned_at": (starts + timedelta(minutes=5)).isoformat(),
                            "received_at": (starts + timedelta(minutes=5)).isoformat(),
                            "first_time_ever": False,
                            "event_kind": "workshop",
                            "event_starts_at": starts.isoformat(),
                        },
                    )
                )
        log(f"loading {len(facts):,} facts through follow-up's consumer handler")
        loaded = time.monotonic()
        for start in range(0, len(facts), 500):
            apply(facts[start : start + 500])
        log(f"facts loaded in {time.monotonic() - loaded:.1f}s")

        # By default, send when planning is done and the relay has published the plan's
        # followup.scheduled messages (production waits 2 hours; this is about 20 ms per nudge).
        expected: int = args.attendees
        delay = args.delay or max(30, int(expected * (0.004 if args.no_relay else 0.02)))
        env["FOLLOWUP_SEND_DELAY_SECONDS"] = str(delay)
        for name in ("worker", "relay"):
            if name == "relay" and args.no_relay:
                continue
            child = Child(
                f"followup-{name}",
                [sys.executable, "-m", f"followup.entrypoints.{name}"],
                workdir / "logs" / f"followup-{name}.log",
                env=env,
            ).start()
            children.append(child)
        ended_at = datetime.now(UTC)
        apply(
            [
                envelope(
                    "event.ended", {**base, "capacity": None, "ended_at": ended_at.isoformat(), "ended_by": "organizer"}
                )
            ]
        )
        log(f"event ended; follow-ups due {delay}s later")
        wait(
            lambda: (db["followup_plans"].find_one({"_id": event_id}) or {}).get("state") == "planned", 300, "planning"
        )
        plan = db["followup_plans"].find_one({"_id": event_id}) or {}
        planned_at = plan["planned_at"].timestamp()
        due_at = plan["due_at"].timestamp()
        planned = db["nudges"].count_documents({"event_id": event_id})
        log(f"{planned:,} nudges planned in {planned_at - ended_at.timestamp():.1f}s; waiting for the send")
        drained_at = None
        if not args.no_relay:

            def drained() -> bool:
                return int(db["outbox"].count_documents({"state": {"$ne": "published"}})) == 0

            wait(drained, 600, "the outbox to drain", interval=1.0)
            drained_at = time.time()
            log(f"followup.scheduled published {drained_at - ended_at.timestamp():.1f}s after the end")
            if drained_at > due_at:
                log("WARNING: the relay was still publishing the plan at send time; figures include that contention")

        def progress() -> bool:
            if stopping:
                raise KeyboardInterrupt
            return len(handler.accepted) >= expected

        last_report = [time.monotonic()]

        def report_progress() -> bool:
            done = progress()
            if time.monotonic() - last_report[0] > 10:
                last_report[0] = time.monotonic()
                log(f"  {len(handler.accepted):,} accepted")
            return done

        wait(report_progress, args.timeout, f"{expected} messages")
        time.sleep(3.0)  # a late duplicate would show up here
        first, last = handler.first or 0.0, handler.last or 0.0
        window = last - due_at
        duplicates = sum(n - 1 for n in handler.accepted.values() if n > 1)
        states = Counter(doc["state"] for doc in db["nudges"].find({"event_id": event_id}, {"state": 1}))
        backlog = db["outbox"].count_documents({"state": {"$ne": "published"}})
        figures = {
            "date": datetime.now(UTC).date().isoformat(),
            "machine": f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}",
            "attendees": args.attendees,
            "messages_expected": expected,
            "messages_accepted": len(handler.accepted),
            "duplicates": duplicates,
            "nudge_states": dict(states),
            "planning_s": round(planned_at - ended_at.timestamp(), 2),
            "plan_published_s": round(drained_at - ended_at.timestamp(), 2) if drained_at else None,
            "send_delay_s": delay,
            "first_accept_after_send_time_s": round(first - due_at, 2),
            "send_time_to_last_accept_s": round(window, 2),
            "messages_per_s": round(expected / window, 1) if window > 0 else None,
            "senders": args.senders,
            "batch": args.batch,
            "relay": not args.no_relay,
            "outbox_not_yet_published_at_end": backlog,
        }
        target_met = figures["duplicates"] == 0 and window <= 120 and len(handler.accepted) == expected
        print()
        print(f"Follow-up send benchmark ({figures['machine']})")
        print(f"  gathering: {args.attendees:,} registered, {int(args.attendees * args.show_rate):,} checked in")
        print(f"  planning (event.ended -> all {planned:,} nudges scheduled): {figures['planning_s']} s")
        if drained_at:
            print(f"  event.ended -> every followup.scheduled published by the relay: {figures['plan_published_s']} s")
        print(f"  send time -> first message accepted: {figures['first_accept_after_send_time_s']} s")
        print(f"  send time -> last message accepted:  {figures['send_time_to_last_accept_s']} s")
        print(
            f"  throughput: {figures['messages_per_s']} messages/s ({args.senders} sender threads, batch {args.batch})"
        )
        print(f"  accepted {len(handler.accepted):,} distinct, duplicates {duplicates}, states {dict(states)}")
        print(f"  target: 10,000 follow-ups within 120 s, none twice: {'met' if target_met else 'NOT met'}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return 0 if target_met else 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for child in reversed(children):
            child.stop(timeout=20)
        if controller is not None:
            controller.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        asyncio.set_event_loop(None)


if __name__ == "__main__":
    sys.exit(main())
