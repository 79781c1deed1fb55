"""Faults under load: nothing is lost, nothing is doubled.

The whole local stack (the processes ``make run`` starts) on free ports. 16
paired kiosks check people in through the kiosk API at the door's pace, with
10 % duplicate scans; two kiosks go offline and replay their queues late
(same client keys, old scan times). Meanwhile the relay, the analytics worker,
the follow-up worker and a checkin gunicorn worker are SIGKILLed (and
restarted, as a supervisor would; gunicorn's master restarts its own worker),
and the broker and the database are paused (SIGSTOP, then SIGCONT). Then the
event ends and the follow-ups go to a real SMTP server (aiosmtpd).

Afterwards, with everything drained:

- the stored check-ins are exactly the people kiosks were told are in (200/201);
- analytics' figures for the event equal checkin's own counts;
- every person gets each nudge they are due exactly once (SMTP server's count,
  by recipient and ``X-Turnout-Nudge``);
- the dead-letter topics hold only the two messages this test made invalid.

Short form (1,000 scans, one kill of each kind, shorter pauses) runs in
``make test``. Full form (10,000 scans, relay ×3, analytics worker ×3,
follow-up worker ×2, gunicorn worker ×1, broker 10 s, database 5 s)::

    TURNOUT_CHAOS=full .venv/bin/pytest tests/chaos -s
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from pymongo import MongoClient

from tests.chaos.harness import (
    FULL,
    SHORT,
    Injector,
    Kiosk,
    Profile,
    Scan,
    Tally,
    fault_plan,
    nudge_kind,
    plan_scans,
    publish_invalid,
    read_dead_letters,
    settle,
    wait_for,
)
from tests.e2e.stack import stack_with_mail
from tests.followup.helpers import SmtpServer
from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC
from turnout_local.stack import Stack
from turnout_local.supervisor import Supervisor

PROFILE: Profile = FULL if os.environ.get("TURNOUT_CHAOS", "short") == "full" else SHORT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600 if PROFILE is FULL else 600)]
PASSWORD = "chaos-test-password"
STAFF_PIN = "4321"


@dataclass
class ChaosStack:
    stack: Stack
    smtp: SmtpServer
    token: str

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.config.url_of(service)}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(method, self.url(service, path), headers=self.headers, timeout=30, **kwargs)
        assert answer.status_code < 300, (path, answer.status_code, answer.text[:500])
        return answer.json()


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[ChaosStack]:
    with stack_with_mail("turnout-chaos-", "Chaos Community Kitchen", PASSWORD, scheduler_interval="0.5") as (
        stack,
        smtp,
        token,
    ):
        yield ChaosStack(stack, smtp, token)


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def register_people(cs: ChaosStack, event_id: str, count: int, consent_every: int) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]
    session = requests.Session()
    session.headers.update(cs.headers)

    def register(index: int) -> dict[str, Any]:
        body = {
            "first_name": f"Guest{index}",
            "last_name": "Chaos",
            "email": f"guest{index}.{tag}@example.org",
            "consent_email": index % consent_every == 0,
        }
        answer = session.post(cs.url("checkin", f"/api/v1/events/{event_id}/registrations"), json=body, timeout=30)
        assert answer.status_code == 201, answer.text
        return {**answer.json(), "email": body["email"]}

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(register, range(count)))


def pair_kiosks(cs: ChaosStack, event_id: str, count: int) -> list[str]:
    tokens = []
    for number in range(count):
        created = cs.call(
            "POST",
            "checkin",
            f"/api/v1/events/{event_id}/kiosks",
            json={"name": f"Door {number + 1}", "staff_pin": STAFF_PIN},
        )
        paired = requests.post(
            cs.url("checkin", "/api/v1/kiosk/pair"), json={"code": created["pairing_code"]}, timeout=10
        )
        assert paired.status_code == 200, paired.text
        tokens.append(paired.json()["token"])
    return tokens


def stored_checkins(cs: ChaosStack, event_id: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Checkin's own records, read from its database: the event's registrations and the people's visit counts."""
    client: MongoClient[dict[str, Any]] = MongoClient(cs.stack.config.mongo, serverSelectionTimeoutMS=20_000)
    try:
        db = client["turnout_checkin"]
        registrations = list(db["registrations"].find({"event_id": event_id}))
        people = {
            p["_id"]: int(p.get("visits") or 0)
            for p in db["people"].find({"_id": {"$in": [r["person_id"] for r in registrations]}})
        }
        return registrations, people
    finally:
        client.close()


def analytics_figures(cs: ChaosStack, event_id: str) -> dict[str, Any]:
    try:
        answer = requests.get(
            cs.url("analytics", f"/api/v1/events/{event_id}/attendance"), headers=cs.headers, timeout=10
        )
    except requests.RequestException:
        return {}  # restarting
    return dict(answer.json()) if answer.status_code == 200 else {}


def test_faults_under_load_lose_and_double_nothing(chaos_stack: ChaosStack) -> None:
    cs, profile = chaos_stack, PROFILE
    rng = random.Random(20261206)
    started = time.monotonic()
    now = datetime.now(UTC)
    event_id = cs.call(
        "POST",
        "checkin",
        "/api/v1/events",
        json={
            "title": "Chaos community dinner",
            "kind": "workshop",
            "starts_at": (now - timedelta(minutes=10)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "timezone": "Europe/Berlin",
        },
    )["id"]

    duplicates = round(profile.scans * profile.duplicate_share)
    attendee_count = profile.scans - duplicates
    no_shows = round(attendee_count * profile.no_show_share)
    people = register_people(cs, event_id, attendee_count + no_shows, profile.consent_every)
    attendees = people[:attendee_count]
    tokens = pair_kiosks(cs, event_id, profile.kiosks)
    log(f"{profile.name}: {len(people)} registered ({no_shows} no-shows), {profile.kiosks} kiosks paired")

    invalid = publish_invalid(cs.stack.config.bootstrap, event_id)

    # The door: scans dealt to the kiosks round robin; the last two go offline part-way.
    span = profile.scans / profile.rate
    scans = plan_scans(profile, attendees, time.monotonic() + 1.0, rng)
    tally = Tally()
    go_online = threading.Event()
    deadline = time.monotonic() + 3 * span + 300  # a busy machine answers slowly
    kiosks = []
    for number, token in enumerate(tokens):
        mine = scans[number :: profile.kiosks]
        offline = number >= profile.kiosks - 2
        kiosks.append(
            Kiosk(
                number,
                cs.stack.config.url_of("checkin"),
                token,
                mine,
                tally,
                offline_from=len(mine) // 3 if offline else None,
                go_online=go_online if offline else None,
                deadline=deadline,
            )
        )
    supervisor = Supervisor(cs.stack)
    supervisor.start()
    injector = Injector(cs.stack, supervisor, fault_plan(profile), profile, span)
    try:
        for kiosk in kiosks:
            kiosk.start()
        injector.start()
        _door(tally, kiosks, injector, go_online, started)
        _afterwards(
            cs,
            profile,
            event_id,
            people,
            attendees,
            scans,
            duplicates,
            tally,
            kiosks,
            injector,
            supervisor,
            invalid,
            started,
        )
    finally:
        supervisor.stop()


def _door(tally: Tally, kiosks: list[Kiosk], injector: Injector, go_online: threading.Event, started: float) -> None:
    online, offline_kiosks = kiosks[:-2], kiosks[-2:]
    for kiosk in online:
        kiosk.join()
    injector.join()
    log(f"door done in {time.monotonic() - started:.0f}s; faults: {injector.done}; the offline kiosks come back")
    go_online.set()
    for kiosk in offline_kiosks:
        kiosk.join()
    for kiosk in kiosks:
        assert kiosk.error is None, f"{kiosk.name}: {kiosk.error!r}"
    assert injector.error is None, f"fault injector: {injector.error!r}"
    assert not tally.refused, tally.refused[:5]
    assert not tally.unanswered, f"{len(tally.unanswered)} scans never answered"
    log(f"{tally.requests} requests: {dict(tally.statuses)}")


def _afterwards(
    cs: ChaosStack,
    profile: Profile,
    event_id: str,
    people: list[dict[str, Any]],
    attendees: list[dict[str, Any]],
    scans: list[Scan],
    duplicates: int,
    tally: Tally,
    kiosks: list[Kiosk],
    injector: Injector,
    supervisor: Supervisor,
    invalid: set[tuple[str, int, int]],
    started: float,
) -> None:
    # Every process up again (nothing left dead), then the event ends.
    wait_for(lambda: all(child.alive() for child in cs.stack.children.values()), 30, "every process to run")
    planned = Counter(target for kind, target in injector.faults if kind == "kill" and target != "checkin-web-worker")
    unplanned = Counter(r.name for r in supervisor.restarts) - planned
    if unplanned:
        log(f"processes that died without being killed by the test (restarted): {dict(unplanned)}")
    cs.call("POST", "checkin", f"/api/v1/events/{event_id}/end")

    registrations, visits = stored_checkins(cs, event_id)
    stored = {r["_id"] for r in registrations if r.get("checkin")}
    told = set(tally.told_ok)
    visit_doubles = sum(max(0, visits.get(r["person_id"], 0) - 1) for r in registrations if r.get("checkin"))

    # Analytics catches up with checkin's own counts.
    own = cs.call("GET", "checkin", f"/api/v1/events/{event_id}")
    checkin_counts = {"checked_in": own["checked_in_count"], "registered": own["registered_count"]}
    assert checkin_counts == {"checked_in": len(stored), "registered": len(registrations)}, checkin_counts
    figures = settle(
        lambda: {name: analytics_figures(cs, event_id).get(name) for name in (*checkin_counts, "status")},
        timeout=240,
        quiet=3,
        done=lambda value: value.get("checked_in") == len(stored) and value.get("status") == "ended",
    )

    # The nudges each person is due, from checkin's records: an attendee who
    # agreed gets a thank-you and (a first visit, new organization) a welcome;
    # a registered no-show who agreed gets a "we missed you".
    email_of = {p["id"]: p["email"] for p in people}
    due: Counter[tuple[str, str]] = Counter()
    for registration in registrations:
        if not registration["consent_email"]:
            continue
        address = email_of[registration["_id"]]
        if registration.get("checkin"):
            due[(address, "thank_you")] += 1
            due[(address, "first_timer_welcome")] += 1
        elif registration["status"] == "registered":
            due[(address, "we_missed_you")] += 1

    # Each message's headers are read once, outside the SMTP handler's lock
    # (re-parsing thousands of messages every poll would slow the server down).
    seen: list[tuple[str, str]] = []

    def mailed() -> Counter[tuple[str, str]]:
        with cs.smtp.handler.lock:
            fresh = cs.smtp.handler.received[len(seen) :]
        seen.extend((item.to, nudge_kind(item.raw)) for item in fresh)
        return Counter(seen)

    # A busy SecantusDB sends a dozen follow-ups a second in the full form: give it time.
    mail_timeout = max(300.0, sum(due.values()) / 8)
    got = settle(mailed, timeout=mail_timeout, quiet=5, done=lambda value: sum(value.values()) >= sum(due.values()))

    dead_letters = read_dead_letters(cs.stack.config.bootstrap, (CHECKIN_TOPIC, FOLLOWUP_TOPIC))
    originals = Counter(
        (
            d.get("dlq.original_topic", "?"),
            int(d.get("dlq.original_partition", -1)),
            int(d.get("dlq.original_offset", -1)),
        )
        for d in dead_letters
    )

    # The table.
    lost_checkins = len(told - stored)
    doubled_checkins = len(stored - told) + visit_doubles
    analytics_count = int(figures.get("checked_in") or 0)
    lost_mail = sum((due - got).values())
    doubled_mail = sum((got - due).values())
    rows = [
        ("faults injected", len(injector.done), ", ".join(f"{k} ×{v}" for k, v in Counter(injector.done).items())),
        ("unplanned restarts", sum(unplanned.values()), ", ".join(f"{k} ×{v}" for k, v in unplanned.items())),
        ("requests sent", tally.requests, ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items()))),
        (
            "scans (duplicates, replays)",
            len(scans),
            f"{duplicates} duplicates, {sum(k.replayed for k in kiosks)} replayed late by the offline kiosks",
        ),
        (
            "accepted (200/201), distinct people",
            len(told),
            f"{sum(tally.told_ok.values())} answers, {tally.replayed_answers} of them replays of a client key",
        ),
        ("stored check-ins", len(stored), "checkin's database"),
        ("counted by analytics", analytics_count, f"registered {figures.get('registered')} vs {len(registrations)}"),
        (
            "nudges due",
            sum(due.values()),
            "thank-you + welcome per consenting attendee, we-missed-you per consenting no-show",
        ),
        ("emailed", sum(got.values()), "SMTP server, by recipient and X-Turnout-Nudge"),
        ("dead letters", len(dead_letters), f"{len(invalid)} invalid messages published by the test"),
        ("lost", lost_checkins + max(0, len(stored) - analytics_count) + lost_mail, ""),
        ("doubled", doubled_checkins + max(0, analytics_count - len(stored)) + doubled_mail, ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    table = "\n".join(
        [
            f"| {'measure':<{width}} | {'count':>7} | detail |",
            f"|{'-' * (width + 2)}|{'-' * 8}:|--------|",
            *(f"| {name:<{width}} | {value:>7} | {note} |" for name, value, note in rows),
        ]
    )
    log(f"{profile.name} form, {time.monotonic() - started:.0f}s\n{table}")

    assert told == set(r["id"] for r in attendees), "some attendee was never told they are in"
    assert stored == told, f"lost {sorted(told - stored)[:5]}, never told {sorted(stored - told)[:5]}"
    assert visit_doubles == 0
    assert {name: figures.get(name) for name in checkin_counts} == checkin_counts, figures
    assert got == due, f"lost {dict(list((due - got).items())[:5])}, doubled {dict(list((got - due).items())[:5])}"
    assert set(originals) <= invalid, f"unexpected dead letters: {set(originals) - invalid}"
    groups = Counter(
        (d.get("dlq.original_topic"), d.get("dlq.original_offset"), d.get("dlq.consumer_group")) for d in dead_letters
    )
    assert len(groups) == 2 * len(invalid), groups  # each invalid message, once per consuming group
