"""First load of a 10,000-person roster on a kiosk.

Starts SecantusDB on a free port, creates an event with ``--people``
registrations (through the CSV import path, the fast way in), pairs a kiosk,
then times ``GET /api/v1/kiosk/roster`` through the real Flask app and the
real database (server side: what the tablet waits for before its first offline
badge check), and the name search a kiosk runs on every keystroke.

    .venv/bin/python bench/kiosk_roster.py [--people 10000] [--searches 200]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from turnout_local.processes import database_uri, free_port, start_database


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="turnout-bench-roster-"))
    port = free_port()
    database = start_database(port, workdir / "db", workdir / "logs")
    try:
        os.environ.update(
            MONGODB_URI=database_uri(port),
            KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",  # not needed for these calls
            LOG_LEVEL="WARNING",
            # Searches back to back from one kiosk: far above a door's pace (the
            # default limit, TURNOUT_RATE_LIMIT_KIOSK_SEARCH, would refuse them).
            TURNOUT_RATE_LIMIT_KIOSK_SEARCH="100000 per minute",
        )
        from checkin import create_app
        from checkin.service_layer import imports, organizations

        app = create_app()
        ctx = app.extensions["checkin"]
        org = organizations.create_organization(ctx, "Bench Org", "bench@example.org", "Bench", "bench-password-1")
        client = app.test_client()
        token = client.post(
            "/api/v1/auth/login", json={"email": "bench@example.org", "password": "bench-password-1"}
        ).get_json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        now = datetime.now(UTC)
        event = client.post(
            "/api/v1/events",
            json={
                "title": "Bench gala",
                "kind": "networking",
                "starts_at": (now - timedelta(minutes=5)).isoformat(),
                "ends_at": (now + timedelta(hours=3)).isoformat(),
                "timezone": "UTC",
            },
            headers=auth,
        ).get_json()
        first = ["Amber", "José", "Mei", "Tomasz", "Aisha", "Liam", "Sofía", "Kwame", "Noor", "Ivan"]
        last = ["Nguyen", "García", "Okafor", "Kowalski", "Haddad", "Murphy", "Rossi", "Mensah", "Khan", "Petrov"]
        lines = ["First Name,Last Name,Email"]
        for index in range(args.people):
            lines.append(f"{first[index % 10]},{last[(index // 10) % 10]}{index},p{index}@example.org")
        started = time.perf_counter()
        imports.start_import(
            ctx,
            org["_id"],
            event["id"],
            "\n".join(lines).encode(),
            "bench.csv",
            "generic",
            {"first_name": "First Name", "last_name": "Last Name", "email": "Email"},
        )
        imports.process_pending_imports(ctx, batch=500)
        print(f"registered {args.people} people in {time.perf_counter() - started:.1f} s (import path)")

        kiosk = client.post(
            f"/api/v1/events/{event['id']}/kiosks", json={"name": "Door", "staff_pin": "2468"}, headers=auth
        ).get_json()
        device = client.post("/api/v1/kiosk/pair", json={"code": kiosk["pairing_code"]}).get_json()["token"]
        kiosk_auth = {"Authorization": f"Bearer {device}"}

        loads = []
        size = gzipped = 0
        for _ in range(5):
            started = time.perf_counter()
            answer = client.get("/api/v1/kiosk/roster", headers=kiosk_auth)
            loads.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200 and len(answer.get_json()["people"]) == args.people
            size = len(answer.data)
            gzipped = len(gzip.compress(answer.data))
        print(
            f"roster of {args.people}: first load {loads[0]:.0f} ms, median of 5 {statistics.median(loads):.0f} ms, "
            f"{size / 1e6:.2f} MB JSON ({gzipped / 1e6:.2f} MB gzipped)"
        )

        queries = ["am", "amber", "jsoe", "garc", "mei ok", "tomasz k", "noor", "ivan pet", "sof", "kwa"]
        timings = []
        for index in range(args.searches):
            started = time.perf_counter()
            answer = client.get(f"/api/v1/kiosk/search?q={queries[index % len(queries)]}", headers=kiosk_auth)
            timings.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200
        print(
            f"name search over {args.people}: p50 {percentile(timings, 0.5):.1f} ms, "
            f"p95 {percentile(timings, 0.95):.1f} ms, p99 {percentile(timings, 0.99):.1f} ms "
            f"({args.searches} searches, server side)"
        )
        ctx.client.close()
        return 0
    finally:
        database.stop()


if __name__ == "__main__":
    sys.exit(main())
