"""Analytics benchmarks: the dashboard API with a big organization loaded, the
projection rebuild's throughput, and check-in-to-dashboard latency under load.

    .venv/bin/python bench/analytics_dashboard.py                 # all three (about 10 minutes on 2 cores)
    .venv/bin/python bench/analytics_dashboard.py --only api      # api | rebuild | latency
    .venv/bin/python bench/analytics_dashboard.py --events 1000 --checkins 1000000 --registration-facts-seconds 240

1. Dashboard API p50/p95: starts a SecantusDB of its own and writes the
   projections of one organization with ``--events`` events and ``--checkins``
   check-ins (people's visits, event figures with arrival curves and lanes,
   cohort and funnel cells) straight into it, plus the per-registration facts
   for as many check-ins as fit in ``--registration-facts-seconds`` (inserting
   is ~0.2 ms a document on SecantusDB; the dashboard never reads them, so the
   remainder is extrapolated and said so). Then runs the analytics web under
   gunicorn and times every dashboard endpoint.
2. Rebuild throughput: archives ``--archive-messages`` generated messages and
   runs the real rebuild; prints messages per second and what that means for
   the 1,000,000-check-in archive.
3. Check-in-to-dashboard latency: starts the whole stack (as the end-to-end
   tests do), opens the live view's Server-Sent Events stream, and checks people
   in through checkin's API from ``--clients`` concurrent clients; the latency of
   the k-th check-in is the time from its HTTP answer until the stream shows at
   least k check-ins.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from analytics.adapters.mongo import (  # noqa: E402
    COHORTS,
    EVENT_FIGURES,
    EVENT_LANES,
    FUNNEL,
    LOYALTY,
    PEOPLE,
    PEOPLE_SUMMARY,
    REGISTRATION_FACTS,
    MongoProjections,
    ensure_indexes,
)
from analytics.domain.events import EventMeta  # noqa: E402
from analytics.domain.facts import add_into  # noqa: E402
from analytics.domain.people import (  # noqa: E402
    FollowupFact,
    PersonState,
    Visit,
    cohort_counters,
    funnel_counters,
    loyalty_counters,
)
from analytics.domain.registrations import RegistrationState, Scan, arrival_bucket  # noqa: E402
from turnout_common.auth import Principal, TokenSigner  # noqa: E402
from turnout_common.config import secret_key  # noqa: E402
from turnout_local.processes import database_uri, free_port, start_database, wait_until  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def insert_batches(collection: Any, docs: Any, size: int = 1000, deadline: float | None = None) -> int:
    batch: list[dict[str, Any]] = []
    written = 0
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            collection.insert_many(batch, ordered=False)
            written += len(batch)
            batch = []
            if deadline is not None and time.monotonic() > deadline:
                return written
    if batch:
        collection.insert_many(batch, ordered=False)
        written += len(batch)
    return written


# -- 1. the dashboard API --------------------------------------------------------------------------


def load_projections(db: Any, org_id: str, events: int, checkins: int, facts_seconds: float) -> dict[str, Any]:
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    per_event = max(1, checkins // events)
    people_count = max(per_event * 2, checkins // 20)  # about 20 visits a person
    kinds = ["volunteer_shift", "networking", "workshop", "meeting"]
    starts = [now - timedelta(days=3 * 365) + timedelta(hours=26 * i) for i in range(events)]
    event_ids = [f"ev{i:06d}" for i in range(events)]
    people: dict[int, PersonState] = {}
    event_docs = []
    lanes: dict[str, dict[str, Any]] = {}
    figures: dict[str, Any] = {}
    started = time.monotonic()
    log(f"generating {events:,} events, {people_count:,} people, {per_event * events:,} check-ins ...")
    for index, (event_id, start) in enumerate(zip(event_ids, starts, strict=True)):
        kind = kinds[index % len(kinds)]
        meta = EventMeta(event_id, org_id, f"Event {index}", kind, start, start + timedelta(hours=3), "UTC", "Hall")
        meta.snapshot = (start, event_id)
        meta.status = "ended" if start < now else "scheduled"
        counters: dict[str, Any] = {"arrivals": {}, "methods": {"qr": per_event}}
        attendees = rng.sample(range(people_count), per_event)
        for person_index in attendees:
            at = start + timedelta(minutes=rng.gauss(5, 12))
            bucket = str(arrival_bucket(at, start))
            counters["arrivals"][bucket] = counters["arrivals"].get(bucket, 0) + 1
            lane = f"{event_id}|kiosk-{person_index % 3}"
            lane_doc = lanes.setdefault(
                lane, {"_id": lane, "org_id": org_id, "event_id": event_id, "lane": lane[-7:], "checked_in": 0}
            )
            lane_doc["checked_in"] += 1
            lane_doc.setdefault("arrivals", {})[bucket] = lane_doc.setdefault("arrivals", {}).get(bucket, 0) + 1
            person = people.setdefault(
                person_index, PersonState(f"p{person_index:07d}", org_id, "Person", str(person_index))
            )
            person.visits[event_id] = Visit(event_id, at, "m", start, kind, not person.visits, None, "", 300)
        figures = {
            "registered": per_event + per_event // 5,
            "checked_in": per_event,
            "first_timers": per_event // 10,
            "returning": per_event - per_event // 10,
            "not_arrived": per_event // 5,
            "checked_out": per_event,
            "volunteer_centihours": per_event * 300,
        }
        event_docs.append({"_id": event_id, **meta.fields(), **figures, **counters})
    for person in people.values():
        if rng.random() < 0.5:
            sent = rng.choice(starts) + timedelta(days=1)
            person.followups["f" + person.person_id] = FollowupFact(
                "f" + person.person_id, rng.choice(["thank_you", "we_missed_you", "win_back"]), None, sent, sent
            )
    log(f"generated in {time.monotonic() - started:.0f}s; inserting ...")
    timings: dict[str, Any] = {}
    t0 = time.monotonic()
    insert_batches(db[EVENT_FIGURES], event_docs)
    insert_batches(db[EVENT_LANES], lanes.values())
    cohorts: dict[str, dict[str, int]] = {}
    funnel: dict[str, dict[str, int]] = {}
    loyalty: dict[str, dict[str, int]] = {}
    for person in people.values():
        for key, cell in cohort_counters(person).items():
            add_into(cohorts, key, cell)
        for key, cell in loyalty_counters(person).items():
            add_into(loyalty, key, cell)
        for key, cell in funnel_counters(person).items():
            add_into(funnel, key, cell)
    insert_batches(db[PEOPLE], (person.to_doc() for person in people.values()), size=500)
    insert_batches(db[PEOPLE_SUMMARY], (person.summary_doc() for person in people.values()), size=1000)
    timings["people_and_events_s"] = round(time.monotonic() - t0, 1)
    db[COHORTS].insert_many([{"_id": f"{org_id}|{k}", "org_id": org_id, "cohort": k, **v} for k, v in cohorts.items()])
    db[LOYALTY].insert_many(
        [{"_id": f"{org_id}|{k}", "org_id": org_id, "events_attended": int(k), **v} for k, v in loyalty.items()]
    )
    db[FUNNEL].insert_many(
        [
            {"_id": f"{org_id}|{k}", "org_id": org_id, "month": k.split("|")[0], "kind": k.split("|")[1], **v}
            for k, v in funnel.items()
        ]
    )

    def facts() -> Any:
        for person in people.values():
            for visit in person.visits.values():
                state = RegistrationState(uuid.uuid4().hex, visit.event_id, org_id, person.person_id, 2)
                state.checkin = Scan(visit.checkin_at, "m", "kiosk-1", "qr", False, visit.starts_at)  # type: ignore[arg-type]
                yield state.to_doc()

    t1 = time.monotonic()
    written = insert_batches(db[REGISTRATION_FACTS], facts(), deadline=t1 + facts_seconds)
    elapsed = time.monotonic() - t1
    total_visits = sum(len(p.visits) for p in people.values())
    timings.update(
        registration_facts_written=written,
        registration_facts_total=total_visits,
        registration_facts_rate_per_s=round(written / elapsed),
        registration_facts_extrapolated_s=round(total_visits / (written / elapsed)),
    )
    ensure_indexes(db)
    busiest = max(people.values(), key=lambda person: len(person.visits))
    return {
        "people": len(people),
        "checkins": total_visits,
        "events": events,
        "event_ids": event_ids,
        "person_id": busiest.person_id,
        **timings,
    }


def bench_api(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="turnout-bench-analytics-"))
    port, web_port = free_port(), free_port()
    database = start_database(port, workdir / "mongodb", workdir / "logs")
    uri = database_uri(port)
    web = None
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
        db = client["bench_analytics"]
        org_id = "benchorg0000000000000001"
        loaded = load_projections(db, org_id, args.events, args.checkins, args.registration_facts_seconds)
        log(f"loaded: {json.dumps({k: v for k, v in loaded.items() if k not in ('event_ids', 'person_id')})}")
        env = {
            **os.environ,
            "MONGODB_URI": uri,
            "ANALYTICS_MONGODB_DATABASE": "bench_analytics",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "BIND": f"127.0.0.1:{web_port}",
            "WEB_CONCURRENCY": "1",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(REPO / "services/analytics/gunicorn.conf.py"),
                "analytics.wsgi:app",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "web.log", "w"),  # noqa: SIM115
        )
        base = f"http://127.0.0.1:{web_port}"
        wait_until(lambda: _up(f"{base}/healthz"), 30, "the analytics web")
        token = TokenSigner(secret_key()).issue(Principal("user", "bench", org_id, "viewer", "Bench"))
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        recent = loaded["event_ids"][-10]
        year_ago = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()
        endpoints = {
            "overview (all time)": "/api/v1/overview",
            "overview (last year, one kind)": f"/api/v1/overview?from={year_ago}&kind=workshop",
            "events list": "/api/v1/events",
            "events CSV": "/api/v1/events?format=csv",
            "trend": "/api/v1/trends",
            "retention": "/api/v1/retention",
            "funnel": "/api/v1/funnel",
            "people at risk": "/api/v1/people/at-risk",
            "people (page 1)": "/api/v1/people",
            "people (page 250 of 500)": "/api/v1/people?offset=24900",
            "people loyalty": "/api/v1/people/loyalty",
            "one person": f"/api/v1/people/{loaded['person_id']}",
            "event report": f"/api/v1/events/{recent}/report",
            "event figures": f"/api/v1/events/{recent}/attendance",
        }
        results = {}
        for name, path in endpoints.items():
            session.get(base + path, timeout=60).raise_for_status()  # warm
            times = []
            for _ in range(args.requests):
                started = time.perf_counter()
                answer = session.get(base + path, timeout=60)
                times.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    log((workdir / "web.log").read_text()[-3000:])
                    raise AssertionError(f"{path}: {answer.status_code} {answer.text[:200]}")
            results[name] = {"p50_ms": round(percentile(times, 0.5), 1), "p95_ms": round(percentile(times, 0.95), 1)}
            log(f"  {name:34s} p50 {results[name]['p50_ms']:8.1f} ms   p95 {results[name]['p95_ms']:8.1f} ms")
        return {
            "loaded": {k: v for k, v in loaded.items() if k not in ("event_ids", "person_id")},
            "endpoints": results,
        }
    finally:
        if web is not None:
            web.terminate()
            web.wait(20)
        database.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


# -- 2. rebuild throughput --------------------------------------------------------------------------


def bench_rebuild(args: argparse.Namespace) -> dict[str, Any]:
    from analytics.service_layer.rebuild import rebuild
    from tests.analytics.history import History

    workdir = Path(tempfile.mkdtemp(prefix="turnout-bench-rebuild-"))
    port = free_port()
    database = start_database(port, workdir / "mongodb", workdir / "logs")
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(database_uri(port), tz_aware=True)
        db = client["bench_rebuild"]
        ensure_indexes(db)
        history = History(validate=False)  # the tests validate the same generator's messages
        rng = random.Random(3)
        # About 7 visits a person: more people than the rebuild keeps in memory at once.
        people = [uuid.uuid4().hex[:24] for _ in range(max(50, args.archive_messages // 20))]
        day = datetime.now(UTC) - timedelta(days=400)
        log(f"generating {args.archive_messages:,} archived messages ...")
        index = 0
        while len(history.messages) < args.archive_messages:
            event = history.event(f"Event {index}", "volunteer_shift", day + timedelta(days=index))
            for person in rng.sample(people, min(len(people), 40)):
                history.register(event, person)
                history.check_in(event, person, rng.randint(-20, 40), kiosk=f"k{rng.randint(1, 3)}")
                history.check_out(event, person, 3.0)
            history.end(event)
            index += 1
        messages = history.messages[: args.archive_messages]
        started = time.monotonic()
        # Archived as the worker does, applied over the last 400 days (a batch a few
        # minutes apart), so the rebuild reads it window by window as it would a real one.
        applied = datetime.now(UTC) - timedelta(days=400)
        step = timedelta(days=399) / max(1, len(messages) // 500)
        for start in range(0, len(messages), 500):
            at = applied + step * (start // 500)
            db["archive"].insert_many(
                [
                    {
                        "_id": m.id,
                        "type": m.type,
                        "applied_at": at,
                        "envelope": m.to_dict(),
                        "subject": m.subject,
                        "time": m.time,
                    }
                    for m in messages[start : start + 500]
                ]
            )
        insert_rate = len(messages) / (time.monotonic() - started)
        log(f"archived at {insert_rate:,.0f} messages/s; rebuilding ...")
        report = rebuild(
            MongoProjections(client, db),
            on_progress=lambda p: log(f"  [{p.phase}] {p.done:,}/{p.total:,} {p.rate:,.0f} msg/s"),
            progress_every=5,
            switch_grace=0,
        )
        return {
            "messages": report.messages,
            "seconds": round(report.seconds, 1),
            "messages_per_s": round(report.rate),
            "archive_insert_per_s": round(insert_rate),
            "extrapolated_1m_checkins_minutes": round(3_000_000 / report.rate / 60, 1),
        }
    finally:
        database.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# -- 3. check-in to dashboard latency ------------------------------------------------------------------


def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    from turnout_local.stack import Stack, StackConfig

    data_dir = Path(tempfile.mkdtemp(prefix="turnout-bench-latency-"))
    config = StackConfig.on_free_ports(data_dir)
    stack = Stack(config)
    try:
        stack.start_infrastructure()
        email, password = "bench@turnout.localhost", "bench-password-2026"
        subprocess.run(
            [sys.executable, "-m", "checkin.entrypoints.cli", "load-demo", "--email", email, "--password", password],
            env={**os.environ, **stack.service_env("checkin")},
            check=True,
            capture_output=True,
        )
        stack.start_services()
        stack.wait_ready()
        checkin = config.url_of("checkin")
        token = requests.post(f"{checkin}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10)
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        now = datetime.now(UTC)
        event = requests.post(
            f"{checkin}/api/v1/events",
            json={
                "title": "Latency bench",
                "kind": "networking",
                "starts_at": (now - timedelta(minutes=5)).isoformat(),
                "ends_at": (now + timedelta(hours=3)).isoformat(),
                "timezone": "UTC",
            },
            headers=headers,
            timeout=10,
        ).json()
        session = requests.Session()
        session.headers.update(headers)

        def register(i: int) -> dict[str, Any]:
            body = {"first_name": f"G{i}", "last_name": "B", "email": f"g{i}.{uuid.uuid4().hex[:6]}@example.org"}
            answer = session.post(
                f"{checkin}/api/v1/events/{event['id']}/registrations", json={**body, "consent_email": True}, timeout=30
            )
            return dict(answer.json())

        with ThreadPoolExecutor(8) as pool:
            registrations = list(pool.map(register, range(args.latency_checkins)))
        analytics = config.url_of("analytics")
        wait_until(
            lambda: (
                requests.get(f"{analytics}/api/v1/events/{event['id']}/attendance", headers=headers, timeout=5).ok
                and requests.get(
                    f"{analytics}/api/v1/events/{event['id']}/attendance", headers=headers, timeout=5
                ).json()["registered"]
                >= args.latency_checkins
            ),
            120,
            "analytics to see the registrations",
        )
        seen: list[tuple[float, int]] = []
        stop = threading.Event()

        def listen() -> None:
            with requests.get(
                f"{analytics}/api/v1/events/{event['id']}/live", headers=headers, stream=True, timeout=600
            ) as answer:
                # chunk_size=None: each line as soon as it arrives (the default, 512
                # bytes, held a small event back until the next one filled the chunk).
                for line in answer.iter_lines(chunk_size=None, decode_unicode=True):
                    if stop.is_set():
                        return
                    if line and line.startswith("data: "):
                        figures = json.loads(line[6:])
                        if "checked_in" in figures:
                            seen.append((time.monotonic(), int(figures["checked_in"])))

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        time.sleep(1)
        answered: list[float] = []
        lock = threading.Lock()

        def check_in(registration: dict[str, Any]) -> None:
            answer = session.post(
                f"{checkin}/api/v1/events/{event['id']}/checkins",
                json={"badge_code": registration["badge_code"], "client_key": f"b-{uuid.uuid4().hex}"},
                timeout=30,
            )
            with lock:
                if answer.status_code == 201:
                    answered.append(time.monotonic())

        started = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(check_in, registrations))
        duration = time.monotonic() - started
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1][1] < len(answered)):
            time.sleep(0.1)
        stop.set()
        answered.sort()
        latencies = []
        for k, at in enumerate(answered, start=1):
            shown = next((when for when, count in seen if count >= k), None)
            if shown is not None:
                latencies.append(max(0.0, shown - at) * 1000)
        return {
            "checkins": len(answered),
            "clients": args.clients,
            "checkins_per_s": round(len(answered) / duration, 1),
            "p50_ms": round(percentile(latencies, 0.5)),
            "p95_ms": round(percentile(latencies, 0.95)),
            "p99_ms": round(percentile(latencies, 0.99)),
            "max_ms": round(max(latencies)) if latencies else None,
            "mean_ms": round(statistics.mean(latencies)) if latencies else None,
        }
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["api", "rebuild", "latency"], action="append")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--checkins", type=int, default=1_000_000)
    parser.add_argument("--registration-facts-seconds", type=float, default=180)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per endpoint")
    parser.add_argument("--archive-messages", type=int, default=300_000)
    parser.add_argument("--latency-checkins", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen = args.only or ["api", "rebuild", "latency"]
    results: dict[str, Any] = {}
    if "api" in chosen:
        log("== dashboard API with a big organization loaded")
        results["api"] = bench_api(args)
    if "rebuild" in chosen:
        log("== projection rebuild throughput")
        results["rebuild"] = bench_rebuild(args)
    if "latency" in chosen:
        log("== check-in to dashboard latency under load")
        results["latency"] = bench_latency(args)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
