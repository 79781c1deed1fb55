"""The pieces of the fault-injection scenario: simulated kiosks with offline
queues, a fault injector with a supervisor's restarts, and the read-outs
(checkin's database, analytics' API, the SMTP server, the dead-letter topics)."""

from __future__ import annotations

import email.policy
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import Any

import requests
from kafka import KafkaConsumer, TopicPartition

from turnout_common.contracts import CHECKIN_TOPIC
from turnout_common.kafka import dlq_topic, make_producer
from turnout_local.stack import Stack
from turnout_local.supervisor import Supervisor

REQUEST_TIMEOUT = 5.0  # a kiosk gives up on an answer after this and queues the scan again
RETRY_DELAYS = (0.5, 1.0, 2.0, 3.0)  # a kiosk's offline queue retries later, not at once

# -- profiles ------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    scans: int  # scan requests at the doors, duplicates included (replays not counted)
    kills: dict[str, int]  # stack child (or "checkin-web-worker") -> SIGKILLs; checkin-worker runs the relay
    broker_pause: float  # seconds
    database_pause: float  # seconds
    rate: float  # scans per second over all kiosks (the door's pace)
    kiosks: int = 16
    duplicate_share: float = 0.10
    no_show_share: float = 0.05  # registered, never scanned (a "we missed you")
    consent_every: int = 3  # every third person agreed to email


SHORT = Profile(
    "short",
    scans=1000,
    kills={"checkin-worker": 1, "analytics-worker": 1, "followup-worker": 1, "checkin-web-worker": 1},
    broker_pause=5.0,
    database_pause=3.0,
    rate=35.0,
)
FULL = Profile(
    "full",
    scans=10_000,
    kills={"checkin-worker": 3, "analytics-worker": 3, "followup-worker": 2, "checkin-web-worker": 1},
    broker_pause=10.0,
    database_pause=5.0,
    rate=70.0,
)


# -- the kiosks ------------------------------------------------------------------


@dataclass
class Scan:
    client_key: str
    badge_code: str
    registration_id: str
    due: float  # monotonic time the person stands at the kiosk
    scanned_at: str | None = None  # the kiosk's clock at the scan (kept for every retry)
    attempts: int = 0
    next_try: float = 0.0


@dataclass
class Tally:
    """What the kiosks saw, shared by all of them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    told_ok: Counter[str] = field(default_factory=Counter)  # registration id -> scans answered 200/201
    ok_keys: set[str] = field(default_factory=set)
    replayed_answers: int = 0  # answers marked "replayed" (a client key seen before)
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # client keys never answered by the end

    def note(self, outcome: str) -> None:
        with self.lock:
            self.requests += 1
            self.statuses[outcome] += 1


class Kiosk(threading.Thread):
    """A paired tablet: scans at the door's pace, queues what failed (timeout,
    connection error, 5xx) and retries it later with the same client key and
    scan time. An *offline* kiosk queues from ``offline_from`` on and only
    sends its queue (plus the last answered scans again) when ``go_online`` is set."""

    def __init__(
        self,
        index: int,
        base_url: str,
        token: str,
        scans: list[Scan],
        tally: Tally,
        *,
        offline_from: int | None = None,
        go_online: threading.Event | None = None,
        deadline: float,
    ) -> None:
        super().__init__(name=f"kiosk-{index}", daemon=True)
        self.url = f"{base_url}/api/v1/kiosk/checkins"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.scans = scans
        self.tally = tally
        self.offline_from = offline_from
        self.go_online = go_online
        self.deadline = deadline
        self.queue: list[Scan] = []
        self.answered: list[Scan] = []
        self.replayed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _run(self) -> None:
        offline: list[Scan] = []
        for number, scan in enumerate(self.scans):
            self._retry_due()
            pause = scan.due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            scan.scanned_at = datetime.now(UTC).isoformat()
            if self.offline_from is not None and number >= self.offline_from:
                offline.append(scan)  # no network: into the queue
                continue
            self._send(scan)
        if self.go_online is not None:
            self.go_online.wait()
            # Back online, late: the queue goes out with its old scan times, and
            # the last scans that were answered go again (the tablet never
            # stored their answers): same client keys.
            again = self.answered[-20:]
            self.replayed = len(again)
            for scan in [*again, *offline]:
                self._send(scan)
        while self.queue and time.monotonic() < self.deadline:
            self._retry_due()
            time.sleep(0.05)
        with self.tally.lock:
            self.tally.unanswered.extend(scan.client_key for scan in self.queue)

    def _retry_due(self) -> None:
        now = time.monotonic()
        due = [scan for scan in self.queue if scan.next_try <= now]
        for scan in due:
            self.queue.remove(scan)
            self._send(scan)

    def _send(self, scan: Scan) -> None:
        scan.attempts += 1
        body = {"client_key": scan.client_key, "badge_code": scan.badge_code, "scanned_at": scan.scanned_at}
        try:
            answer = self.session.post(self.url, json=body, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            self.tally.note(type(exc).__name__)
            self._later(scan)
            return
        status = answer.status_code
        self.tally.note(str(status))
        if status in (200, 201):
            with self.tally.lock:
                self.tally.told_ok[scan.registration_id] += 1
                self.tally.ok_keys.add(scan.client_key)
                self.tally.replayed_answers += bool(answer.json().get("replayed"))
            self.answered.append(scan)
        elif status >= 500:
            self._later(scan)
        else:
            with self.tally.lock:
                self.tally.refused.append((scan.client_key, status, answer.text[:200]))

    def _later(self, scan: Scan) -> None:
        delay = RETRY_DELAYS[min(scan.attempts - 1, len(RETRY_DELAYS) - 1)]
        scan.next_try = time.monotonic() + delay
        self.queue.append(scan)


def plan_scans(profile: Profile, attendees: list[dict[str, Any]], start: float, rng: random.Random) -> list[Scan]:
    """Every attendee once, plus ``duplicate_share`` of the scans again (a second
    tap, a new client key), at the door's pace from ``start``."""
    duplicates = round(profile.scans * profile.duplicate_share)
    firsts = [(reg["badge_code"], reg["id"]) for reg in attendees]
    rng.shuffle(firsts)
    order = list(firsts)
    for _ in range(duplicates):
        # A duplicate comes after the person's first scan.
        first = rng.randrange(len(firsts))
        order.insert(rng.randrange(first + 1, len(order) + 1), firsts[first])
    return [
        Scan(f"chaos-{uuid.uuid4().hex}", badge, registration, start + number / profile.rate)
        for number, (badge, registration) in enumerate(order)
    ]


# -- faults ----------------------------------------------------------------------


@dataclass(eq=False)
class Injector(threading.Thread):
    """Runs the faults in order, spread over ``span`` seconds. The supervisor
    restarts a killed process (a gunicorn master restarts its own worker)."""

    stack: Stack
    supervisor: Supervisor  # restarts what was killed
    faults: list[tuple[str, str]]  # ("kill", child) | ("pause", "kafka"|"mongodb")
    profile: Profile
    span: float
    done: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        super().__init__(name="fault-injector", daemon=True)

    def run(self) -> None:
        try:
            gap = self.span / (len(self.faults) + 1)
            start = time.monotonic()
            for number, (kind, target) in enumerate(self.faults, 1):
                pause = start + number * gap - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if kind == "kill":
                    self._kill(target)
                else:
                    self._pause(target)
                self.done.append(f"{kind} {target}")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _kill(self, target: str) -> None:
        if target == "checkin-web-worker":
            master = self.stack.children["checkin-web"]
            workers = master.child_pids()
            assert workers, "checkin's gunicorn has no workers to kill"
            os.kill(workers[0], signal.SIGKILL)
            wait_for(
                lambda: workers[0] not in master.child_pids() and len(master.child_pids()) >= len(workers),
                30,
                "gunicorn to replace its worker",
            )
            return
        before = self.supervisor.restarts_of(target)
        self.stack.children[target].kill()
        wait_for(lambda: self.supervisor.restarts_of(target) > before, 60, f"the supervisor to restart {target}")

    def _pause(self, target: str) -> None:
        seconds = self.profile.broker_pause if target == "kafka" else self.profile.database_pause
        child = self.stack.children[target]
        child.pause()
        try:
            time.sleep(seconds)
        finally:
            child.resume()


def fault_plan(profile: Profile) -> list[tuple[str, str]]:
    """Kills of each kind interleaved, the two pauses among them."""
    remaining = dict(profile.kills)
    kills: list[tuple[str, str]] = []
    while any(remaining.values()):
        for target in list(remaining):
            if remaining[target]:
                kills.append(("kill", target))
                remaining[target] -= 1
    third = max(1, len(kills) // 3)
    return [*kills[:third], ("pause", "kafka"), *kills[third : 2 * third], ("pause", "mongodb"), *kills[2 * third :]]


# -- dead letters ------------------------------------------------------------------


def publish_invalid(bootstrap: str, event_id: str) -> set[tuple[str, int, int]]:
    """Two messages no consumer can accept (not JSON; a contract violation); their (topic, partition, offset)."""
    producer = make_producer(bootstrap, "chaos-invalid")
    broken_envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/turnout/checkin",
        "type": "attendee.checked_in",
        "subject": event_id,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {"event_id": event_id, "note": "required fields missing"},
    }
    sent: set[tuple[str, int, int]] = set()
    try:
        for value in (b"\xff not json {", json.dumps(broken_envelope).encode()):
            meta = producer.send(CHECKIN_TOPIC, value=value, key=event_id.encode()).get(timeout=30)
            sent.add((meta.topic, meta.partition, meta.offset))
    finally:
        producer.close(timeout=10)
    return sent


def read_dead_letters(bootstrap: str, topics: tuple[str, ...]) -> list[dict[str, str]]:
    """Every record on the topics' ``.dlq`` topics, as their dlq.* headers."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    try:
        partitions = [
            TopicPartition(dlq_topic(topic), number)
            for topic in topics
            for number in sorted(consumer.partitions_for_topic(dlq_topic(topic)) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: list[dict[str, str]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    found.append({name: raw.decode() for name, raw in record.headers or []})
        return found
    finally:
        consumer.close()


def nudge_kind(raw: bytes) -> str:
    """A sent message's ``X-Turnout-Nudge`` header (headers only: cheap)."""
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    return str(headers["X-Turnout-Nudge"])


# -- waiting ---------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def settle(read: Callable[[], Any], timeout: float, quiet: float, done: Callable[[Any], bool]) -> Any:
    """Poll ``read`` until ``done`` holds and the value stays the same for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        fresh = read()
        if fresh != value:
            value, since = fresh, time.monotonic()
        elif done(value) and time.monotonic() - since >= quiet:
            return value
    return value
