"""Check-in load benchmark: throughput, latency, CPU per check-in against the floor, idle CPU,
duplicate scans, dashboard lag and memory, each target printed as met / not met.

Starts its own local stack (Tansu + SecantusDB + every service process) on free
ports in a temporary data directory, loads the demo data, signs in, and then:

1. for each concurrency level ("kiosks" = client threads, each with its own
   keep-alive ``requests.Session``) creates a fresh open event, registers
   ``--per-level`` people (not measured), lets the pipeline go idle, and checks
   everyone in. It reports check-ins/s, request latency percentiles, errors and
   the CPU time that every stack process (and its descendants) spent from the
   first check-in until analytics shows all of them (so the relay's and the
   consumers' work is included), per check-in, in total and per role;
2. right after each level, drives the floor (``bench/floor_app.py``: one
   gunicorn + Flask route writing a registration update and an outbox insert
   in one transaction, on the same SecantusDB, with checkin-web's gunicorn
   shape) with the same kiosk code, and reports Turnout's CPU per check-in as a
   multiple of the floor's CPU per write;
3. at 8 kiosks re-scans the badges already checked in (new client keys: real
   duplicate scans answered 200, not replays) and reports their latency;
4. paces ``--dashboard-count`` check-ins at ``--dashboard-rate`` per second and
   measures, for each, the time from its 201 answer until the analytics
   attendance API shows a count at least as high as its ordinal (polled every
   20 ms);
5. leaves the stack alone for ``--idle-seconds`` and reports the CPU all its
   processes used (% of one core), then checks people in one at a time and
   measures how soon each reaches the dashboard after the idle spell;
6. sums the resident memory (PSS) of the whole stack, prints every target with
   met / not met, and a side-by-side with pretix's published figures.

Usage: .venv/bin/python bench/checkin_load.py [--kiosks 1,8,32] [--per-level 600] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "deploy" / "local") not in sys.path:
    sys.path.append(str(REPO / "deploy" / "local"))  # when the venv lacks the editable install

from turnout_local.processes import Child, free_port, wait_until  # noqa: E402
from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD, Stack, StackConfig  # noqa: E402

# Stack children (``Stack.children`` keys) and the role their CPU and memory are booked to.
ROLE_OF_CHILD = {
    "mongodb": "secantus",
    "kafka": "tansu",
    "checkin-web": "checkin-web",
    "checkin-worker": "checkin-worker",
    "analytics-worker": "analytics-worker",
    "followup-worker": "followup-worker",
}
ROLES = ("secantus", "tansu", "checkin-web", "checkin-worker", "analytics-worker", "followup-worker", "other")

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

REQUEST_TIMEOUT = 30.0
DRAIN_TIMEOUT = 120.0  # longest wait for analytics to catch up with one level
IDLE_SECONDS = 3.0  # the short idle spell before each level (its rate gives the "idle share")
SETTLE_SECONDS = 2.0
DASHBOARD_POLL = 0.020
REGISTER_THREADS = 8  # concurrent registrations before each part
# The check-ins after the idle spell are spaced ``--after-idle-interval`` plus up to this many seconds at random.
AFTER_IDLE_JITTER = 1.0
DUPLICATE_KIOSKS = 8
DUPLICATE_ANSWER = "200 already_checked_in"  # status code and the answer's "status"
FLOOR_DATABASE = "bench_floor"
FLOOR_MAX_WRITES = 300  # per level: a stable figure (~1 s of CPU) within a short pause of the services
FLOOR_PAUSED_IDLE_SECONDS = 1.0
FLOOR_PAUSE_DEADLINE = 3.0  # no floor request starts later than this into a pause
FLOOR_WARMUP = 200  # unmeasured writes first: every worker connected, the collections warm, as Turnout is
CHECKIN_GUNICORN_CONF = REPO / "services" / "checkin" / "gunicorn.conf.py"

# The targets of issue #12 (2 cores, local stack).
TARGETS = {
    "cpu_ms_per_checkin_1": 8.0,  # at 1 kiosk
    "cpu_ms_per_checkin": 6.0,  # at 8 and 32 kiosks (and any other level)
    "checkins_per_s_at_32": 300.0,
    "p99_ms_at_8": 50.0,
    "duplicate_p99_ms": 30.0,
    "idle_pct_of_core": 2.0,
    "dashboard_p95_s": 1.0,
    "floor_multiple": 2.5,
    "memory_mb": 0.6 * 1024,
}

# pretix, measured on a 2-core box (PostgreSQL, Redis and Celery, 2 gunicorn workers).
PRETIX: dict[str, Any] = {
    "cpu_ms_per_checkin": 60.0,
    "checkins_per_s": 30.0,
    "p99_ms_at_8": (420.0, 590.0),
    "memory_mb": 1.4 * 1024,
    "floor_multiple": 23.0,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- /proc accounting ---------------------------------------------------------


@dataclass
class ProcInfo:
    ppid: int
    ticks: int  # utime + stime + cutime + cstime (reaped children's time stays counted)


def read_procs() -> dict[int, ProcInfo]:
    procs: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read().decode("ascii", "replace")
        except OSError:
            continue  # the process exited meanwhile
        # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
        rest = raw[raw.rfind(")") + 2 :].split()
        try:
            ppid = int(rest[1])
            ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        except (IndexError, ValueError):
            continue
        procs[int(entry)] = ProcInfo(ppid, ticks)
    return procs


def stack_roots(stack: Stack) -> dict[int, str]:
    return {child.pid: name for name, child in stack.children.items() if child.process is not None}


def stack_tree(stack: Stack, procs: dict[int, ProcInfo]) -> dict[int, str]:
    """Every live process that is a stack child or descends from one, mapped to that child's name."""
    return process_tree(stack_roots(stack), procs)


def process_tree(roots: dict[int, str], procs: dict[int, ProcInfo]) -> dict[int, str]:
    """Every live process that is one of ``roots`` or descends from one, mapped to that root's name."""
    owner: dict[int, str] = {}
    for pid in procs:
        current, depth = pid, 0
        while current > 1 and depth < 64:
            if current in roots:
                owner[pid] = roots[current]
                break
            info = procs.get(current)
            if info is None:
                break
            current, depth = info.ppid, depth + 1
    return owner


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU milliseconds so far, per stack child (summed over its process tree)."""
    return cpu_of(stack_roots(stack))


def cpu_of(roots: dict[int, str]) -> dict[str, float]:
    """CPU milliseconds so far, per root name (summed over each root's process tree)."""
    procs = read_procs()
    totals: dict[str, float] = dict.fromkeys(roots.values(), 0.0)
    for pid, name in process_tree(roots, procs).items():
        totals[name] += procs[pid].ticks * 1000.0 / CLK_TCK
    return totals


def by_role(per_child: dict[str, float]) -> dict[str, float]:
    roles = dict.fromkeys(ROLES, 0.0)
    for name, value in per_child.items():
        roles[ROLE_OF_CHILD.get(name, "other")] += value
    return roles


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}


def machine_busy_ms() -> float:
    """CPU milliseconds the whole machine has spent busy (all cores, from /proc/stat)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    # user nice system idle iowait irq softirq steal (guest time is already inside user)
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy * 1000.0 / CLK_TCK


def other_work_cores(busy_ms: float, counted_ms: float, seconds: float) -> float:
    """Cores' worth of CPU that neither the stack nor the benchmark used (others on the machine)."""
    return max(0.0, busy_ms - counted_ms) / (seconds * 1000.0) if seconds > 0 else 0.0


def own_cpu_ms() -> float:
    times = os.times()
    return (times.user + times.system) * 1000.0


def resident_kb(pid: int) -> tuple[int, str, int | None]:
    """PSS in kB from smaps_rollup (and its anonymous part), or RSS when that file cannot be read."""
    try:
        pss = anon = None
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Pss_Anon:"):
                    anon = int(line.split()[1])
        if pss is not None:
            return pss, "pss", anon
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE // 1024, "rss", None
    except (OSError, ValueError, IndexError):
        return 0, "none", None


def memory_snapshot(stack: Stack) -> dict[str, Any]:
    tree = stack_tree(stack, read_procs())
    per_child_kb: dict[str, int] = {name: 0 for name in stack.children}
    anon_kb: int | None = 0
    kinds: Counter[str] = Counter()
    for pid, name in tree.items():
        kb, kind, anon = resident_kb(pid)
        per_child_kb[name] += kb
        kinds[kind] += 1
        anon_kb = None if anon is None or anon_kb is None else anon_kb + anon
    per_child = {name: kb / 1024.0 for name, kb in per_child_kb.items()}
    total = sum(per_child.values())
    return {
        "total_mb": total,
        # The processes' own memory; the rest is program and library files mapped from disk, which
        # counts more the more of those files the page cache holds (a just-installed binary: all of it).
        "anon_mb": None if anon_kb is None else anon_kb / 1024.0,
        "file_mb": None if anon_kb is None else total - anon_kb / 1024.0,
        "per_role_mb": by_role(per_child),
        "per_process_mb": per_child,
        "processes": len(tree),
        "measure": "pss" if set(kinds) <= {"pss"} else f"mixed {dict(kinds)}",
    }


# -- statistics ---------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- the stack and its API ----------------------------------------------------


class Client:
    def __init__(self, stack: Stack, token: str, mail: MailSink | None = None) -> None:
        self.stack = stack
        self.headers = {"Authorization": f"Bearer {token}"}
        self.mail = mail
        # (people, seconds) of each batch of registrations before a part: not a
        # target, but a database stall while registering shows here.
        self.registrations: list[tuple[int, float]] = []

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.config.url_of(service)}{path}"

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.headers)
        return session

    def create_open_event(self, title: str) -> str:
        now = datetime.now(UTC)
        answer = requests.post(
            self.url("checkin", "/api/v1/events"),
            json={
                "title": title,
                "kind": "networking",
                "starts_at": (now - timedelta(minutes=10)).isoformat(),
                "ends_at": (now + timedelta(hours=3)).isoformat(),
                "timezone": "Europe/Berlin",
            },
            headers=self.headers,
            timeout=REQUEST_TIMEOUT,
        )
        if answer.status_code != 201:
            raise RuntimeError(f"creating an event answered {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()["id"])

    def register(self, event_id: str, count: int, threads: int = REGISTER_THREADS) -> list[str]:
        """Registers ``count`` people; returns their badge codes."""
        tag = uuid.uuid4().hex[:8]
        local = threading.local()

        def one(index: int) -> str:
            if not hasattr(local, "session"):
                local.session = self.session()
            answer = local.session.post(
                self.url("checkin", f"/api/v1/events/{event_id}/registrations"),
                json={
                    "first_name": f"Guest{index}",
                    "last_name": "Bench",
                    "email": f"guest{index}.{tag}@example.org",
                    "consent_email": index % 2 == 0,
                },
                timeout=REQUEST_TIMEOUT,
            )
            if answer.status_code not in (200, 201):
                raise RuntimeError(f"registration answered {answer.status_code}: {answer.text[:300]}")
            return str(answer.json()["badge_code"])

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, range(count)))

    def attendance(self, event_id: str, session: requests.Session | None = None) -> dict[str, Any] | None:
        getter = session.get if session is not None else requests.get
        try:
            answer = getter(
                self.url("analytics", f"/api/v1/events/{event_id}/attendance"),
                headers=self.headers,
                timeout=5,
            )
        except requests.RequestException:
            return None
        if answer.status_code != 200:
            return None
        return dict(answer.json())

    def wait_for(self, event_id: str, counter: str, expected: int, timeout: float, interval: float = 0.05) -> bool:
        """Polls analytics until ``counter`` >= ``expected``; False on timeout."""
        session = self.session()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            figures = self.attendance(event_id, session)
            if figures is not None and int(figures.get(counter, 0)) >= expected:
                return True
            time.sleep(interval)
        return False


class MailSink:
    """A local SMTP server (aiosmtpd) that accepts and drops what follow-up sends.

    In production follow-up has a mail server; without one here, its senders
    would retry the registrations' confirmation emails on a back-off and the
    idle figure would count those retries."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted = 0

        sink = self

        class Handler:
            async def handle_DATA(self, _server: object, _session: object, _envelope: object) -> str:
                sink.accepted += 1
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=10)

    def start(self) -> MailSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.controller.stop()

    def wait_quiet(self, quiet: float = 2.0, timeout: float = 120.0) -> int:
        """Wait until nothing has arrived for ``quiet`` seconds; return how many arrived meanwhile."""
        began, last, seen = time.monotonic(), time.monotonic(), self.accepted
        start = seen
        while time.monotonic() - last < quiet and time.monotonic() - began < timeout:
            time.sleep(0.2)
            if self.accepted != seen:
                seen, last = self.accepted, time.monotonic()
        return seen - start


def make_stack(data_dir: Path, mail: MailSink) -> Stack:
    config = StackConfig.on_free_ports(data_dir, {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mail.port)})
    return Stack(config)


def boot(stack: Stack) -> str:
    log("starting Tansu and SecantusDB")
    stack.start_infrastructure()
    log("loading demo data")
    stack.load_demo(quiet=True, timeout=180)
    log("starting services")
    stack.start_services()
    stack.wait_ready(timeout=90)
    answer = requests.post(
        f"{stack.config.url_of('checkin')}/api/v1/auth/login",
        json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD},
        timeout=REQUEST_TIMEOUT,
    )
    answer.raise_for_status()
    return str(answer.json()["token"])


def check_dead_children(stack: Stack) -> None:
    dead = [name for name, child in stack.children.items() if not child.alive()]
    if dead:
        details = "\n".join(f"--- {name}:\n{stack.children[name].tail(20)}" for name in dead)
        raise RuntimeError(f"stack process(es) exited: {', '.join(dead)}\n{details}")


# -- the load -----------------------------------------------------------------


@dataclass
class KioskResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ok_times: list[float] = field(default_factory=list)  # monotonic time of each 201, in completion order


def run_kiosks(
    client: Client,
    event_id: str,
    badges: list[str],
    kiosks: int,
    schedule: Callable[[int], float] | None = None,
    deadline: float = 240.0,
    base_url: str | None = None,
    ok_status: str = "201",
    with_body_status: bool = False,
) -> tuple[KioskResult, float]:
    """Checks every badge in with ``kiosks`` threads; returns the results and the wall time.

    ``schedule(i)``, when given, is the monotonic time before which the i-th check-in must not start.
    ``base_url`` (the floor app) replaces checkin's URL; ``ok_status`` is the answer counted as done.
    ``with_body_status`` adds the answer body's ``status`` to the status code (e.g. "200 already_checked_in"),
    read after the latency is taken.
    """
    result = KioskResult()
    lock = threading.Lock()
    next_index = 0
    sessions = [client.session() for _ in range(kiosks)]
    if base_url is None:
        url = client.url("checkin", f"/api/v1/events/{event_id}/checkins")
        ready_url = client.url("checkin", "/readyz")
    else:
        url, ready_url = f"{base_url}/checkins", f"{base_url}/readyz"
    # Open every keep-alive connection before the clock starts.
    for session in sessions:
        with contextlib.suppress(requests.RequestException):
            session.get(ready_url, timeout=REQUEST_TIMEOUT)
    barrier = threading.Barrier(kiosks + 1)
    stop_at = [0.0]

    def kiosk(session: requests.Session) -> None:
        nonlocal next_index
        barrier.wait(timeout=60)
        while True:
            with lock:
                index = next_index
                next_index += 1
            if index >= len(badges) or time.monotonic() > stop_at[0]:
                return
            if schedule is not None:
                wait = schedule(index) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            body = {"badge_code": badges[index], "client_key": f"bench-{uuid.uuid4().hex}"}
            started = time.perf_counter()
            answer = None
            try:
                answer = session.post(url, json=body, timeout=REQUEST_TIMEOUT)
                status = str(answer.status_code)
            except requests.RequestException as exc:
                status = type(exc).__name__
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            done = time.monotonic()
            if with_body_status and answer is not None:
                try:
                    status = f"{status} {answer.json().get('status')}"
                except ValueError:
                    status = f"{status} (no JSON)"
            with lock:
                result.latencies_ms.append(elapsed_ms)
                result.statuses[status] += 1
                if status == ok_status:
                    result.ok_times.append(done)

    threads = [threading.Thread(target=kiosk, args=(session,), daemon=True) for session in sessions]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + deadline
    barrier.wait(timeout=60)
    started = time.monotonic()
    for thread in threads:
        thread.join(timeout=max(0.0, stop_at[0] + REQUEST_TIMEOUT + 5 - time.monotonic()))
    wall = time.monotonic() - started
    for session in sessions:
        session.close()
    return result, wall


def prepare_event(client: Client, title: str, count: int) -> tuple[str, list[str]]:
    event_id = client.create_open_event(title)
    started = time.monotonic()
    badges = client.register(event_id, count)
    took = time.monotonic() - started
    client.registrations.append((count, took))
    log(f"  registered {count} in {took:.1f}s")
    if not client.wait_for(event_id, "registered", count, timeout=60, interval=0.2):
        log("  warning: analytics did not show every registration within 60s")
    if client.mail is not None:
        # The registrations' confirmation emails go out before the measurement
        # (people register days before an event, not during its door rush).
        log(f"  {client.mail.wait_quiet()} confirmation emails sent")
    return event_id, badges


def latency_figures(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def answer_figures(result: KioskResult, wall: float, ok: int, kiosks: int, unit: str) -> dict[str, Any]:
    """What each load phase reports of its answers: counts, statuses, rate, latency.

    ``unit`` names the count and the rate: checkins, writes or scans."""
    lat = result.latencies_ms
    return {
        "kiosks": kiosks,
        unit: len(lat),
        "ok": ok,
        "errors": len(lat) - ok,
        "statuses": dict(result.statuses),
        f"{unit}_per_s": len(lat) / wall if wall > 0 else None,
        "latency_ms": latency_figures(lat),
    }


def run_level(client: Client, stack: Stack, kiosks: int, per_level: int) -> tuple[dict[str, Any], str, list[str]]:
    """One concurrency level; returns its figures, the event and the badges checked in."""
    log(f"level: {kiosks} kiosk(s), {per_level} check-ins")
    event_id, badges = prepare_event(client, f"bench {kiosks} kiosks {uuid.uuid4().hex[:6]}", per_level)

    idle_before = cpu_snapshot(stack)
    time.sleep(IDLE_SECONDS)
    before = cpu_snapshot(stack)
    client_before = own_cpu_ms()
    machine_before = machine_busy_ms()
    idle_rate = {name: value / IDLE_SECONDS for name, value in delta(before, idle_before).items()}
    check_dead_children(stack)

    window_start = time.monotonic()
    result, wall = run_kiosks(client, event_id, badges, kiosks)
    requests_done = time.monotonic()
    ok = result.statuses.get("201", 0)
    drained = client.wait_for(event_id, "checked_in", ok, timeout=DRAIN_TIMEOUT, interval=0.05)
    window_end = time.monotonic()
    after = cpu_snapshot(stack)
    client_cpu = own_cpu_ms() - client_before
    machine_busy = machine_busy_ms() - machine_before
    if not drained:
        log(f"  warning: analytics did not reach checked_in={ok} within {DRAIN_TIMEOUT:.0f}s")
    # What is still being spent after the window (e.g. a consumer that lags behind analytics).
    time.sleep(SETTLE_SECONDS)
    tail = delta(cpu_snapshot(stack), after)
    check_dead_children(stack)

    window = window_end - window_start
    used = delta(after, before)
    per = max(ok, 1)
    used_roles = by_role(used)
    idle_roles = by_role(idle_rate)
    tail_roles = by_role(tail)
    level: dict[str, Any] = {
        **answer_figures(result, wall, ok, kiosks, "checkins"),
        "requests_seconds": wall,
        "pipeline_drain_seconds": window_end - requests_done,
        "drained": drained,
        "cpu_window_seconds": window,
        "cpu_ms_per_checkin": sum(used.values()) / per,
        "cpu_ms_per_checkin_by_role": {role: value / per for role, value in used_roles.items()},
        "cpu_ms_per_checkin_by_process": {name: value / per for name, value in used.items()},
        "cpu_ms_total_by_role": used_roles,
        "idle_cpu_ms_per_s_by_role": idle_roles,
        "idle_cpu_ms_in_window": sum(idle_rate.values()) * window,
        "tail_cpu_ms_2s_after_window_by_role": tail_roles,
        "load_generator_cpu_ms_per_checkin": client_cpu / per,
        "other_work_on_machine_cores": other_work_cores(machine_busy, sum(used.values()) + client_cpu, window),
    }
    log(
        f"  {level['checkins_per_s']:.0f}/s, p99 {level['latency_ms']['p99']:.1f} ms, "
        f"{level['cpu_ms_per_checkin']:.2f} CPU ms/check-in, errors {level['errors']}, "
        f"drain {level['pipeline_drain_seconds']:.2f}s"
    )
    return level, event_id, badges


# -- the floor ----------------------------------------------------------------


class Floor:
    """bench/floor_app.py under gunicorn, with checkin-web's own gunicorn.conf.py and
    environment (workers, threads, keep-alive), on the stack's SecantusDB."""

    def __init__(self, stack: Stack, data_dir: Path) -> None:
        self.stack = stack
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.child: Child | None = None
        self.ids: list[str] = []
        self.used = 0

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = dict(
            self.stack.service_env("checkin")
        )  # WEB_CONCURRENCY, GUNICORN_THREADS etc. as checkin-web gets them
        env.update(
            {
                "MONGODB_URI": self.stack.config.mongo,
                "FLOOR_DATABASE": FLOOR_DATABASE,
                "PORT": str(self.port),
                "BIND": f"127.0.0.1:{self.port}",
                "PROMETHEUS_MULTIPROC_DIR": str(self.data_dir / "floor-prometheus"),
            }
        )
        return env

    def shape(self) -> dict[str, Any]:
        """Workers and threads gunicorn reads from checkin's config file in this environment
        (the floor's and checkin-web's alike)."""
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import json, runpy, sys\n"
                "ns = runpy.run_path(sys.argv[1])\n"
                "print(json.dumps({k: ns.get(k) for k in ('workers', 'threads', 'worker_class', 'keepalive')}))\n",
                str(CHECKIN_GUNICORN_CONF),
            ],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        try:
            return dict(json.loads(probe.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"error": probe.stderr[-300:]}

    def start(self, count: int) -> None:
        sys.path.insert(0, str(REPO / "bench"))
        from floor_app import seed

        self.ids = [f"floor-{uuid.uuid4().hex}" for _ in range(count)]
        started = time.monotonic()
        seed(self.stack.config.mongo, FLOOR_DATABASE, self.ids)
        log(f"floor: seeded {count} registrations in {time.monotonic() - started:.1f}s; starting gunicorn")
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(CHECKIN_GUNICORN_CONF),
            "--pythonpath",
            str(REPO / "bench"),
            # gunicorn 27 would listen on (and at exit remove) ~/.gunicorn/gunicorn.ctl, shared by every gunicorn.
            "--no-control-socket",
            "floor_app:app",
        ]
        self.child = Child("floor-web", argv, self.data_dir / "logs" / "floor-web.log", env=self.env).start()
        child = self.child

        def ready() -> bool:
            try:
                return requests.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, 60, f"{self.url}/readyz to answer 200", child)

    def warm_up(self, client: Client, kiosks: int) -> None:
        """Unmeasured writes from ``kiosks`` clients (Turnout's web workers are warm from the registrations)."""
        result, _ = run_kiosks(client, "", self.take(FLOOR_WARMUP), kiosks, base_url=self.url)
        if result.statuses.get("201", 0) != FLOOR_WARMUP:
            raise RuntimeError(f"the floor's warm-up answered {dict(result.statuses)}; log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.child.tail(20) if self.child is not None else ""

    def take(self, count: int) -> list[str]:
        chosen = self.ids[self.used : self.used + count]
        self.used += len(chosen)
        return chosen

    def roots(self) -> dict[int, str]:
        assert self.child is not None
        roots = {self.child.pid: "floor-web"}
        database = self.stack.children.get("mongodb")
        if database is not None and database.process is not None:
            roots[database.pid] = "secantus"
        return roots

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None
        # Leave the database as it was (the memory figure is the stack's).
        with contextlib.suppress(Exception):
            from floor_app import connect

            mongo = connect(self.stack.config.mongo)
            try:
                mongo.drop_database(FLOOR_DATABASE)
            finally:
                mongo.close()


def service_children(stack: Stack) -> list[Child]:
    """Every stack process but the broker and the database (web, relays, workers)."""
    return [child for name, child in stack.children.items() if name not in ("kafka", "mongodb")]


def run_floor_level(client: Client, floor: Floor, kiosks: int, count: int, pause: bool) -> dict[str, Any]:
    """The floor at one level: the same kiosk code, CPU of floor-web + SecantusDB per write.

    With ``pause`` (the default), Turnout's service processes are stopped (SIGSTOP) for the
    floor's few seconds: on SecantusDB every write wakes every change-stream ``getMore``
    waiting anywhere on the server, so the floor's writes would otherwise make the stack's
    sleeping relays and workers poll, and SecantusDB's CPU for their polls would be counted
    as the floor's. The pause stays under the Kafka consumers' session timeout (6 s).
    SecantusDB's CPU in the window also includes the background it has anyway: the rate
    measured just before is subtracted for the idle-corrected figure; the raw figure is
    reported too."""
    ids = floor.take(count)
    if len(ids) < count:
        raise RuntimeError(f"the floor ran out of seeded registrations ({len(ids)} of {count} left)")
    idle_seconds = FLOOR_PAUSED_IDLE_SECONDS if pause else IDLE_SECONDS
    log(f"  floor: {kiosks} kiosk(s), {count} writes{', services paused' if pause else ''}")
    # The stack's other processes are watched too: they should stay idle while the floor writes.
    roots = {**stack_roots(floor.stack), **floor.roots()}
    paused = service_children(floor.stack) if pause else []
    for child in paused:
        child.pause()
    try:
        idle_start = cpu_of(roots)
        time.sleep(idle_seconds)
        before = cpu_of(roots)
        client_before, machine_before = own_cpu_ms(), machine_busy_ms()
        started = time.monotonic()
        result, wall = run_kiosks(
            client, "", ids, kiosks, base_url=floor.url, deadline=FLOOR_PAUSE_DEADLINE if pause else 240.0
        )
        window = time.monotonic() - started
        after = cpu_of(roots)
        client_cpu, machine_busy = own_cpu_ms() - client_before, machine_busy_ms() - machine_before
    finally:
        for child in paused:
            child.resume()
    idle_secantus_ms_per_s = (before.get("secantus", 0.0) - idle_start.get("secantus", 0.0)) / idle_seconds
    idle_floor_ms_per_s = (before["floor-web"] - idle_start["floor-web"]) / idle_seconds
    idle_others = {
        name: (before[name] - idle_start[name]) / idle_seconds
        for name in before
        if name not in ("secantus", "floor-web")
    }
    used = delta(after, before)
    others = {name: value for name, value in used.items() if name not in ("secantus", "floor-web")}
    ok = result.statuses.get("201", 0)
    per = max(ok, 1)
    secantus_raw = used.get("secantus", 0.0)
    secantus_idle = idle_secantus_ms_per_s * window
    secantus_corrected = max(0.0, secantus_raw - secantus_idle)
    web = used["floor-web"]
    figures: dict[str, Any] = {
        **answer_figures(result, wall, ok, kiosks, "writes"),
        "cpu_window_seconds": window,
        "cpu_ms_per_write_raw": (web + secantus_raw) / per,
        "cpu_ms_per_write": (web + secantus_corrected) / per,
        "web_cpu_ms_per_write": web / per,
        "secantus_cpu_ms_per_write_raw": secantus_raw / per,
        "secantus_cpu_ms_per_write": secantus_corrected / per,
        "services_paused": pause,
        "other_work_on_machine_cores": other_work_cores(machine_busy, sum(used.values()) + client_cpu, window),
        "secantus_idle_ms_per_s_subtracted": idle_secantus_ms_per_s,
        "floor_web_idle_ms_per_s": idle_floor_ms_per_s,
        # Not part of the floor: the rest of the stack in the same window (a relay or consumer woken
        # by the floor's writes would show here) and in the idle 3 s before, per second.
        "rest_of_stack_cpu_ms_in_window_by_role": by_role(others),
        "rest_of_stack_idle_ms_per_s_by_role": by_role(idle_others),
    }
    log(
        f"    floor {figures['writes_per_s']:.0f}/s, p99 {figures['latency_ms']['p99']:.1f} ms, "
        f"{figures['cpu_ms_per_write']:.2f} CPU ms/write (raw {figures['cpu_ms_per_write_raw']:.2f}), "
        f"errors {figures['errors']}"
    )
    return figures


def floor_ratios(level: dict[str, Any], floor: dict[str, Any]) -> dict[str, float | None]:
    """Turnout's CPU per check-in as a multiple of the floor's CPU per write, same level."""
    base, raw = floor["cpu_ms_per_write"], floor["cpu_ms_per_write_raw"]
    roles = level["cpu_ms_per_checkin_by_role"]
    web_db = roles["checkin-web"] + roles["secantus"]
    total = level["cpu_ms_per_checkin"]
    return {
        "whole_vs_floor": total / base if base > 0 else None,
        "whole_vs_floor_raw": total / raw if raw > 0 else None,
        "web_db_vs_floor": web_db / base if base > 0 else None,
        "web_db_vs_floor_raw": web_db / raw if raw > 0 else None,
        "turnout_web_db_ms_per_checkin": web_db,
    }


# -- duplicate scans ------------------------------------------------------------


def run_duplicates(client: Client, stack: Stack, event_id: str, badges: list[str]) -> dict[str, Any]:
    """Scans badges already checked in again, with new client keys: each is a real duplicate
    scan (200, "already checked in"), not a replay of an earlier answer."""
    log(f"duplicate scans: {len(badges)} badges already checked in, {DUPLICATE_KIOSKS} kiosks")
    time.sleep(SETTLE_SECONDS)
    before = cpu_snapshot(stack)
    started = time.monotonic()
    result, wall = run_kiosks(
        client, event_id, badges, DUPLICATE_KIOSKS, ok_status=DUPLICATE_ANSWER, with_body_status=True
    )
    # Give any message a duplicate scan might cause the time to be handled.
    time.sleep(SETTLE_SECONDS)
    used = delta(cpu_snapshot(stack), before)
    window = time.monotonic() - started
    ok = result.statuses.get(DUPLICATE_ANSWER, 0)
    figures: dict[str, Any] = {
        **answer_figures(result, wall, ok, DUPLICATE_KIOSKS, "scans"),
        "cpu_window_seconds": window,
        "cpu_ms_per_scan_incl_idle": sum(used.values()) / max(ok, 1),
        "cpu_ms_per_scan_by_role_incl_idle": {role: value / max(ok, 1) for role, value in by_role(used).items()},
    }
    log(
        f"  {figures['scans_per_s']:.0f}/s, p50 {fmt(figures['latency_ms']['p50'])} ms, "
        f"p99 {fmt(figures['latency_ms']['p99'])} ms, errors {figures['errors']}"
    )
    return figures


# -- scan to dashboard ------------------------------------------------------------


def measure_dashboard(
    client: Client,
    event_id: str,
    badges: list[str],
    rate: float,
    kiosks: int,
    offsets: list[float] | None = None,
) -> dict[str, Any]:
    """Checks ``badges`` in at ``rate`` per second while a thread polls analytics every 20 ms.

    ``offsets``: when each check-in starts, in seconds from the first (instead of ``rate``).

    The k-th check-in to get its 201 counts as visible at the first poll answer that
    shows ``checked_in >= k`` (what a dashboard user would see; up to one poll late)."""
    count = len(badges)
    first_seen: dict[int, float] = {}
    stop = threading.Event()
    poll_errors = [0]

    def poller() -> None:
        highest = 0
        hard_stop = time.monotonic() + count / rate + 90
        with client.session() as session:
            while not stop.is_set() and time.monotonic() < hard_stop and highest < count:
                tick = time.monotonic()
                figures = client.attendance(event_id, session)
                seen = time.monotonic()
                if figures is None:
                    poll_errors[0] += 1
                else:
                    checked_in = int(figures.get("checked_in", 0))
                    for ordinal in range(highest + 1, checked_in + 1):
                        first_seen[ordinal] = seen
                    highest = max(highest, checked_in)
                stop.wait(max(0.0, DASHBOARD_POLL - (time.monotonic() - tick)))

    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    start = time.monotonic() + 0.5
    at = offsets if offsets is not None else [index / rate for index in range(count)]
    result, wall = run_kiosks(client, event_id, badges, kiosks, schedule=lambda index: start + at[index])
    ok = len(result.ok_times)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(first_seen) < ok and thread.is_alive():
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)

    lags = [
        max(0.0, first_seen[i + 1] - done) * 1000.0 for i, done in enumerate(result.ok_times) if i + 1 in first_seen
    ]
    # Over the scheduled span (the first request starts at ``start``), not the threads' wall time.
    span = (max(result.ok_times) - start) if result.ok_times else 0.0
    figures: dict[str, Any] = {
        "checkins": len(result.latencies_ms),
        "ok": ok,
        "errors": len(result.latencies_ms) - ok,
        "kiosks": kiosks,
        "requested_rate_per_s": rate,
        "achieved_rate_per_s": (ok - 1) / span if ok > 1 and span > 0 else None,
        "wall_seconds": wall,
        "measured": len(lags),
        "never_seen": ok - len(lags),
        "poll_errors": poll_errors[0],
        "poll_interval_ms": DASHBOARD_POLL * 1000,
        "lags_ms_in_order": lags,
        "lag_ms": {
            "p50": percentile(lags, 50),
            "p95": percentile(lags, 95),
            "p99": percentile(lags, 99),
            "max": max(lags) if lags else None,
        },
        "request_latency_ms": {
            "p50": percentile(result.latencies_ms, 50),
            "p99": percentile(result.latencies_ms, 99),
        },
    }
    if lags:
        log(
            f"  {fmt(figures['achieved_rate_per_s'])}/s: lag p50 {figures['lag_ms']['p50']:.0f} ms, "
            f"p95 {figures['lag_ms']['p95']:.0f} ms"
        )
    return figures


def run_dashboard(client: Client, count: int, rate: float, kiosks: int) -> dict[str, Any]:
    log(f"dashboard lag: {count} check-ins at {rate:.0f}/s from {kiosks} kiosks")
    event_id, badges = prepare_event(client, f"bench dashboard {uuid.uuid4().hex[:6]}", count)
    time.sleep(IDLE_SECONDS)
    figures = measure_dashboard(client, event_id, badges, rate, kiosks)
    figures.pop("lags_ms_in_order")
    return figures


# -- the idle stack ---------------------------------------------------------------


def run_idle(client: Client, stack: Stack, seconds: float, after_count: int, after_interval: float) -> dict[str, Any]:
    """CPU of every stack process over ``seconds`` with nothing happening, then single
    check-ins ``after_interval`` to ``after_interval`` + ``AFTER_IDLE_JITTER`` s apart, each timed until the
    dashboard shows it."""
    event_id, badges = prepare_event(client, f"bench after idle {uuid.uuid4().hex[:6]}", after_count)
    time.sleep(SETTLE_SECONDS * 2)
    check_dead_children(stack)
    log(f"idle: {seconds:.0f}s with nothing happening")
    before = cpu_snapshot(stack)
    client_before, machine_before = own_cpu_ms(), machine_busy_ms()
    started = time.monotonic()
    time.sleep(seconds)
    used = delta(cpu_snapshot(stack), before)
    elapsed = time.monotonic() - started
    client_cpu, machine_busy = own_cpu_ms() - client_before, machine_busy_ms() - machine_before
    check_dead_children(stack)
    total_ms = sum(used.values())
    idle: dict[str, Any] = {
        "seconds": elapsed,
        "cpu_ms": total_ms,
        "pct_of_one_core": total_ms / (elapsed * 1000.0) * 100.0,
        "pct_of_one_core_by_role": {role: v / (elapsed * 1000.0) * 100.0 for role, v in by_role(used).items()},
        "pct_of_one_core_by_process": {name: v / (elapsed * 1000.0) * 100.0 for name, v in used.items()},
        "other_work_on_machine_cores": other_work_cores(machine_busy, total_ms + client_cpu, elapsed),
    }
    log(f"  {idle['pct_of_one_core']:.2f}% of one core")
    longest = after_interval + AFTER_IDLE_JITTER
    log(f"after idle: {after_count} single check-ins, {after_interval:.1f}-{longest:.1f}s apart")
    # Spaced irregularly (a fixed seed: the same spacing in every run): at a
    # fixed spacing the check-ins can fall into step with the consumers' fetch
    # cycles and all arrive just as a fetch is sent, which hides the wait.
    rng = random.Random(12)
    offsets = [0.0]
    for _ in range(len(badges) - 1):
        offsets.append(offsets[-1] + after_interval + rng.uniform(0.0, AFTER_IDLE_JITTER))
    after = measure_dashboard(client, event_id, badges, 1.0 / after_interval, 1, offsets)
    lags = after.pop("lags_ms_in_order")
    after["first_lag_ms"] = lags[0] if lags else None
    idle["after"] = after
    return idle


# -- reporting ----------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: list[str], rows: Iterable[list[str]]) -> str:
    rows = list(rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(out)


def level_at(levels: list[dict[str, Any]], kiosks: int) -> dict[str, Any] | None:
    return next((level for level in levels if level["kiosks"] == kiosks), None)


Verdict = tuple[str, str, str, bool | None]  # target, threshold, measured, met (None: not measured)


def verdicts(report: dict[str, Any]) -> list[Verdict]:
    levels: list[dict[str, Any]] = report["levels"]
    out: list[Verdict] = []
    measured_kiosks = {level["kiosks"] for level in levels}
    for kiosks in sorted(measured_kiosks | {1, 8, 32}):
        level = level_at(levels, kiosks)
        limit = TARGETS["cpu_ms_per_checkin_1"] if kiosks == 1 else TARGETS["cpu_ms_per_checkin"]
        name = f"CPU per check-in, all processes, {kiosks} kiosk{'s' if kiosks > 1 else ''}"
        if level is None:
            out.append((name, f"<= {limit:.0f} ms", "not measured", None))
        else:
            value = level["cpu_ms_per_checkin"]
            out.append((name, f"<= {limit:.0f} ms", f"{value:.2f} ms", value <= limit))
    at32 = level_at(levels, 32)
    out.append(
        (
            "throughput at 32 kiosks",
            f">= {TARGETS['checkins_per_s_at_32']:.0f}/s",
            "not measured" if at32 is None else f"{at32['checkins_per_s']:.0f}/s",
            None if at32 is None else at32["checkins_per_s"] >= TARGETS["checkins_per_s_at_32"],
        )
    )
    at8 = level_at(levels, 8)
    p99 = None if at8 is None else at8["latency_ms"]["p99"]
    out.append(
        (
            "request latency at 8 kiosks",
            f"p99 <= {TARGETS['p99_ms_at_8']:.0f} ms",
            "not measured" if at8 is None else f"p99 {fmt(p99)} ms",
            None if at8 is None else (p99 is not None and p99 <= TARGETS["p99_ms_at_8"] and at8["errors"] == 0),
        )
    )
    dup = report.get("duplicates")
    dup_p99 = dup["latency_ms"]["p99"] if dup else None
    out.append(
        (
            f"duplicate scan, {DUPLICATE_KIOSKS} kiosks",
            f"p99 <= {TARGETS['duplicate_p99_ms']:.0f} ms",
            "not measured" if not dup else f"p99 {fmt(dup_p99)} ms",
            None
            if not dup
            else (dup_p99 is not None and dup_p99 <= TARGETS["duplicate_p99_ms"] and dup["errors"] == 0),
        )
    )
    for level in levels:
        ratios = level.get("floor_ratios")
        if not ratios:
            continue
        value = ratios["whole_vs_floor"]
        out.append(
            (
                f"CPU per check-in ÷ floor, {level['kiosks']} kiosk{'s' if level['kiosks'] > 1 else ''}",
                f"<= {TARGETS['floor_multiple']:.1f}×",
                f"{fmt(value, 1)}×",
                value is not None and value <= TARGETS["floor_multiple"],
            )
        )
    if not any(level.get("floor_ratios") for level in levels):
        out.append(("CPU per check-in ÷ floor", f"<= {TARGETS['floor_multiple']:.1f}×", "not measured", None))
    idle = report.get("idle")
    out.append(
        (
            "idle stack, all processes",
            f"<= {TARGETS['idle_pct_of_core']:.0f}% of one core",
            "not measured" if not idle else f"{idle['pct_of_one_core']:.2f}% over {idle['seconds']:.0f}s",
            None if not idle else idle["pct_of_one_core"] <= TARGETS["idle_pct_of_core"],
        )
    )
    limit_ms = TARGETS["dashboard_p95_s"] * 1000
    after = idle["after"] if idle else None
    after_p95 = after["lag_ms"]["p95"] if after else None
    out.append(
        (
            "scan to dashboard after the idle spell",
            "p95 <= 1 s",
            "not measured" if not after else f"p95 {fmt(after_p95, 0)} ms",
            None
            if not after
            else (
                after_p95 is not None and after_p95 <= limit_ms and after["never_seen"] == 0 and after["errors"] == 0
            ),
        )
    )
    dash = report.get("dashboard")
    if dash:
        rate = dash["requested_rate_per_s"]
        p95 = dash["lag_ms"]["p95"]
        achieved = dash["achieved_rate_per_s"] or 0.0
        out.append(
            (
                f"scan to dashboard at {rate:.0f} check-ins/s",
                "p95 <= 1 s (rate reached)",
                f"p95 {fmt(p95, 0)} ms at {achieved:.0f}/s",
                p95 is not None
                and p95 <= limit_ms
                and dash["never_seen"] == 0
                and dash["errors"] == 0
                and achieved >= 0.95 * rate,
            )
        )
    else:
        out.append(("scan to dashboard at 100 check-ins/s", "p95 <= 1 s", "not measured", None))
    mem = report.get("memory")
    out.append(
        (
            "whole local stack, PSS after the runs",
            f"<= {TARGETS['memory_mb'] / 1024:.1f} GB",
            "not measured" if not mem else f"{mem['total_mb']:.0f} MB",
            None if not mem else mem["total_mb"] <= TARGETS["memory_mb"],
        )
    )
    return out


def peer_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Turnout's figures beside pretix's (measured on a 2-core box with PostgreSQL, Redis and Celery)."""
    levels: list[dict[str, Any]] = report["levels"]
    rows: list[dict[str, Any]] = []
    if levels:
        worst = max(levels, key=lambda level: level["cpu_ms_per_checkin"])
        cpu = worst["cpu_ms_per_checkin"]
        rows.append(
            {
                "figure": "CPU per first-time check-in, whole stack",
                "turnout": f"{cpu:.1f} ms (worst level, {worst['kiosks']} kiosks)",
                "pretix": f"{PRETIX['cpu_ms_per_checkin']:.0f} ms",
                "ratio": f"{PRETIX['cpu_ms_per_checkin'] / cpu:.1f}× less CPU" if cpu > 0 else "-",
            }
        )
        best = max(levels, key=lambda level: level["checkins_per_s"] or 0)
        rate = best["checkins_per_s"] or 0.0
        rows.append(
            {
                "figure": "check-ins/s, best level",
                "turnout": f"{rate:.0f}/s ({best['kiosks']} kiosks)",
                "pretix": f"~{PRETIX['checkins_per_s']:.0f}/s",
                "ratio": f"{rate / PRETIX['checkins_per_s']:.1f}× more",
            }
        )
        at8 = level_at(levels, 8)
        if at8 is not None and at8["latency_ms"]["p99"]:
            p99 = at8["latency_ms"]["p99"]
            low, high = PRETIX["p99_ms_at_8"]
            rows.append(
                {
                    "figure": "p99 latency, 8 clients",
                    "turnout": f"{p99:.0f} ms",
                    "pretix": f"{low / 1000:.2f}–{high / 1000:.2f} s",
                    "ratio": f"{low / p99:.1f}–{high / p99:.1f}× lower",
                }
            )
        multiples = [level["floor_ratios"]["whole_vs_floor"] for level in levels if level.get("floor_ratios")]
        multiples = [m for m in multiples if m is not None]
        if multiples:
            rows.append(
                {
                    "figure": "CPU per check-in ÷ the floor of its machine",
                    "turnout": f"{min(multiples):.1f}–{max(multiples):.1f}×"
                    if f"{min(multiples):.1f}" != f"{max(multiples):.1f}"
                    else f"{max(multiples):.1f}×",
                    "pretix": f"~{PRETIX['floor_multiple']:.0f}×",
                    "ratio": f"{PRETIX['floor_multiple'] / max(multiples):.1f}× closer to the floor",
                }
            )
    mem = report.get("memory")
    if mem:
        rows.append(
            {
                "figure": "whole stack, memory",
                "turnout": f"{mem['total_mb']:.0f} MB",
                "pretix": f"{PRETIX['memory_mb'] / 1024:.1f} GB",
                "ratio": f"{PRETIX['memory_mb'] / mem['total_mb']:.1f}× less",
            }
        )
    return rows


def rest_of_stack_rate(floor: dict[str, Any]) -> str:
    during = sum(floor["rest_of_stack_cpu_ms_in_window_by_role"].values()) / max(floor["cpu_window_seconds"], 1e-9)
    idle = sum(floor["rest_of_stack_idle_ms_per_s_by_role"].values())
    return f"{during:.1f} ms/s (idle before {idle:.1f})"


def render(report: dict[str, Any]) -> str:
    parts: list[str] = []
    meta = report["meta"]
    parts.append(
        f"Turnout check-in benchmark — {meta['date']} — {meta['cpus']} CPU(s), {meta['cpu_model']}, "
        f"Python {meta['python']}, {meta['per_level']} check-ins per level"
    )
    levels = report["levels"]
    if levels:
        parts.append("")
        parts.append(
            "Check-in load (requests phase; CPU = all stack processes, first check-in until analytics shows all)"
        )
        parts.append(
            table(
                ["kiosks", "check-ins/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "CPU ms/check-in", "errors"],
                [
                    [
                        str(level["kiosks"]),
                        fmt(level["checkins_per_s"], 0),
                        fmt(level["latency_ms"]["p50"]),
                        fmt(level["latency_ms"]["p95"]),
                        fmt(level["latency_ms"]["p99"]),
                        fmt(level["latency_ms"]["max"]),
                        fmt(level["cpu_ms_per_checkin"], 2),
                        str(level["errors"]),
                    ]
                    for level in levels
                ],
            )
        )
        parts.append("")
        parts.append("CPU ms per check-in by role")
        headers = ["role", *[f"{level['kiosks']} kiosks" for level in levels]]
        rows = [[role, *[fmt(level["cpu_ms_per_checkin_by_role"][role], 2) for level in levels]] for role in ROLES]
        rows.append(["TOTAL", *[fmt(level["cpu_ms_per_checkin"], 2) for level in levels]])
        rows.append(
            ["(idle share)", *[fmt(level["idle_cpu_ms_in_window"] / max(level["ok"], 1), 2) for level in levels]]
        )
        rows.append(["(load generator)", *[fmt(level["load_generator_cpu_ms_per_checkin"], 2) for level in levels]])
        rows.append(
            ["(others on the machine, cores)", *[fmt(level["other_work_on_machine_cores"], 2) for level in levels]]
        )
        rows.append(["(drain after requests, s)", *[fmt(level["pipeline_drain_seconds"], 2) for level in levels]])
        parts.append(table(headers, rows))
        other_names = sorted(
            {name for level in levels for name in level["cpu_ms_per_checkin_by_process"] if name not in ROLE_OF_CHILD}
        )
        if other_names:
            detail = ", ".join(
                f"{name} {'/'.join(fmt(level['cpu_ms_per_checkin_by_process'].get(name, 0.0), 2) for level in levels)}"
                for name in other_names
            )
            parts.append(f"  'other' = {detail}")
    floored = [level for level in levels if level.get("floor")]
    if floored:
        shape = report["meta"].get("floor_shape", {})
        parts.append("")
        parts.append(
            "The floor: one transaction (registration update by _id + outbox insert) from a minimal gunicorn + Flask "
            f"app, same SecantusDB, {shape.get('workers', '?')} workers × {shape.get('threads', '?')} threads "
            "(checkin-web's gunicorn.conf.py), same kiosk code, right after each level"
        )
        rows = []
        for level in floored:
            floor, ratios = level["floor"], level["floor_ratios"]
            rows.append(
                [
                    str(level["kiosks"]),
                    fmt(floor["writes_per_s"], 0),
                    fmt(floor["latency_ms"]["p99"]),
                    fmt(floor["web_cpu_ms_per_write"], 2),
                    fmt(floor["secantus_cpu_ms_per_write"], 2),
                    fmt(floor["cpu_ms_per_write"], 2),
                    fmt(floor["cpu_ms_per_write_raw"], 2),
                    fmt(level["cpu_ms_per_checkin"], 2),
                    f"{fmt(ratios['whole_vs_floor'], 1)}×",
                    f"{fmt(ratios['web_db_vs_floor'], 1)}×",
                    str(floor["errors"]),
                    fmt(floor["other_work_on_machine_cores"], 2),
                ]
            )
        parts.append(
            table(
                [
                    "kiosks",
                    "writes/s",
                    "p99 ms",
                    "web ms",
                    "db ms",
                    "floor ms/write",
                    "raw",
                    "Turnout ms",
                    "whole ÷ floor",
                    "web+db ÷ floor",
                    "errors",
                    "others, cores",
                ],
                rows,
            )
        )
        paused = all(level["floor"].get("services_paused") for level in floored)
        parts.append(
            "  floor ms/write = CPU of the floor's gunicorn (master + workers) + SecantusDB ÷ writes, "
            + (
                "Turnout's web, relay and worker processes paused (SIGSTOP) meanwhile\n  (on SecantusDB every "
                "write wakes every change-stream getMore on the server: their polls would count as the floor's); "
                if paused
                else "Turnout's services running (their polls woken by the floor's writes count as the floor's);\n  "
            )
            + "SecantusDB's idle rate just before ("
            + ", ".join(f"{fmt(level['floor']['secantus_idle_ms_per_s_subtracted'], 1)} ms/s" for level in floored)
            + ") is subtracted, 'raw' is without that correction.\n"
            "  whole ÷ floor = Turnout's CPU per check-in, all processes (target <= "
            f"{TARGETS['floor_multiple']:.1f}×); web+db ÷ floor = Turnout's checkin-web + SecantusDB only "
            "(SecantusDB includes the relay's and consumers' database work)."
        )
        parts.append(
            "  the rest of the stack during the floor's writes (not counted): "
            + ", ".join(rest_of_stack_rate(level["floor"]) for level in floored)
        )
    dup = report.get("duplicates")
    if dup:
        parts.append("")
        parts.append(
            f"Duplicate scans ({dup['scans']} badges already checked in, new client keys, {dup['kiosks']} kiosks)"
        )
        parts.append(
            f"  {fmt(dup['scans_per_s'], 0)}/s   p50 {fmt(dup['latency_ms']['p50'])} ms   "
            f"p95 {fmt(dup['latency_ms']['p95'])} ms   p99 {fmt(dup['latency_ms']['p99'])} ms   "
            f"max {fmt(dup['latency_ms']['max'])} ms   CPU {fmt(dup['cpu_ms_per_scan_incl_idle'], 2)} ms/scan "
            f"(incl. idle)   answers {dict(sorted(dup['statuses'].items()))}"
        )
    dash = report.get("dashboard")
    if dash:
        parts.append("")
        parts.append(
            f"Check-in to dashboard ({dash['ok']} check-ins, asked {dash['requested_rate_per_s']:.0f}/s, reached "
            f"{fmt(dash['achieved_rate_per_s'], 1)}/s, {dash['kiosks']} kiosks, analytics polled every "
            f"{DASHBOARD_POLL * 1000:.0f} ms)"
        )
        parts.append(
            f"  p50 {fmt(dash['lag_ms']['p50'], 0)} ms   p95 {fmt(dash['lag_ms']['p95'], 0)} ms   "
            f"p99 {fmt(dash['lag_ms']['p99'], 0)} ms   max {fmt(dash['lag_ms']['max'], 0)} ms   "
            f"never seen {dash['never_seen']}   errors {dash['errors']}"
        )
    idle = report.get("idle")
    if idle:
        parts.append("")
        parts.append(
            f"Idle stack ({idle['seconds']:.0f}s, nothing happening): {idle['pct_of_one_core']:.2f}% of one core "
            f"({idle['cpu_ms']:.0f} ms CPU; others on the machine meanwhile: {idle['other_work_on_machine_cores']:.2f} "
            "cores)"
        )
        parts.append(
            "  " + "   ".join(f"{role} {value:.2f}%" for role, value in idle["pct_of_one_core_by_role"].items())
        )
        after = idle["after"]
        parts.append(
            f"  then {after['ok']} single check-ins {1 / after['requested_rate_per_s']:.1f}-"
            f"{1 / after['requested_rate_per_s'] + AFTER_IDLE_JITTER:.1f}s apart, to the dashboard: "
            f"first {fmt(after['first_lag_ms'], 0)} ms   p50 {fmt(after['lag_ms']['p50'], 0)} ms   "
            f"p95 {fmt(after['lag_ms']['p95'], 0)} ms   max {fmt(after['lag_ms']['max'], 0)} ms   "
            f"never seen {after['never_seen']}   errors {after['errors']}"
        )
    batches = report.get("registrations") or []
    if batches:
        parts.append("")
        rates = [batch["people"] / max(batch["seconds"], 1e-9) for batch in batches]
        parts.append(
            f"Registrations before the parts ({REGISTER_THREADS} threads, not a target; a database stall shows here): "
            + ", ".join(f"{batch['people']} in {batch['seconds']:.1f}s" for batch in batches)
            + f"; slowest {min(rates):.0f}/s"
        )
    mem = report.get("memory")
    if mem:
        parts.append("")
        parts.append(
            f"Memory after the runs ({mem['measure']}, {mem['processes']} processes): {mem['total_mb']:.0f} MB"
        )
        parts.append("  " + "   ".join(f"{role} {value:.0f}" for role, value in mem["per_role_mb"].items()))
        if mem.get("anon_mb") is not None:
            parts.append(
                f"  of which the processes' own (anonymous) {mem['anon_mb']:.0f} MB and files mapped from disk "
                f"{mem['file_mb']:.0f} MB (programs and libraries: the more of them the page cache holds, the more "
                "counts; a just-installed stack maps about 30 MB more than a long-used one)"
            )
        if any(level.get("floor") for level in levels):
            writes = sum(level["floor"]["writes"] for level in levels if level.get("floor"))
            parts.append(
                f"  (SecantusDB also served the floor's {writes} writes; their database was dropped before this "
                "measurement, what its heap kept is counted)"
            )
    checks = verdicts(report)
    parts.append("")
    parts.append("Targets")
    parts.append(
        table(
            ["target", "threshold", "measured", "met"],
            [
                [name, limit, value, "not measured" if ok is None else ("met" if ok else "NOT MET")]
                for name, limit, value, ok in checks
            ],
        )
    )
    peers = peer_rows(report)
    if peers:
        parts.append("")
        parts.append(
            "Side by side with pretix (pretix measured on a 2-core box with PostgreSQL, Redis and Celery, "
            "2 gunicorn workers)"
        )
        parts.append(
            table(
                ["figure", "Turnout", "pretix", "ratio"],
                [[row["figure"], row["turnout"], row["pretix"], row["ratio"]] for row in peers],
            )
        )
    return "\n".join(parts)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


# -- main ---------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kiosks", default="1,8,32", help="comma-separated concurrency levels (default 1,8,32)")
    parser.add_argument("--per-level", type=int, default=600, help="check-ins per level (default 600)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--skip-dashboard", action="store_true", help="skip the check-in-to-dashboard measurement")
    parser.add_argument("--dashboard-rate", type=float, default=100.0, help="check-ins/s for it (default 100)")
    parser.add_argument("--dashboard-count", type=int, default=1000, help="check-ins for it (default 1000)")
    parser.add_argument("--dashboard-kiosks", type=int, default=16, help="kiosks for it (default 16)")
    parser.add_argument("--skip-floor", action="store_true", help="skip the floor (and the ratios)")
    parser.add_argument(
        "--floor-no-pause",
        action="store_true",
        help="keep Turnout's services running during the floor (their change-stream polls then count as the floor's)",
    )
    parser.add_argument("--skip-duplicates", action="store_true", help="skip the duplicate scans")
    parser.add_argument("--skip-idle", action="store_true", help="skip the idle spell and the check-ins after it")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="length of the idle spell (default 30)")
    parser.add_argument("--after-idle", type=int, default=12, help="single check-ins after the idle spell (default 12)")
    parser.add_argument(
        "--after-idle-interval",
        type=float,
        default=2.5,
        help=f"seconds between them, plus 0-{AFTER_IDLE_JITTER:.0f} s at random (default 2.5: the relays and "
        "workers fall asleep again after 2 s without work)",
    )
    args = parser.parse_args(argv)
    try:
        args.levels = [int(part) for part in args.kiosks.split(",") if part.strip()]
    except ValueError:
        parser.error("--kiosks takes integers, e.g. 1,8,32")
    if not args.levels or min(args.levels) < 1 or max(args.levels) > 256:
        parser.error("--kiosks: each level must be 1-256")
    if not 1 <= args.per_level <= 100_000:
        parser.error("--per-level must be 1-100000")
    if not 0.1 <= args.dashboard_rate <= 10_000:
        parser.error("--dashboard-rate must be 0.1-10000")
    if not 1 <= args.dashboard_count <= 100_000:
        parser.error("--dashboard-count must be 1-100000")
    if not 1 <= args.dashboard_kiosks <= 256:
        parser.error("--dashboard-kiosks must be 1-256")
    if not 1 <= args.idle_seconds <= 3600:
        parser.error("--idle-seconds must be 1-3600")
    if not 1 <= args.after_idle <= 10_000:
        parser.error("--after-idle must be 1-10000")
    if not 0.05 <= args.after_idle_interval <= 60:
        parser.error("--after-idle-interval must be 0.05-60")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally below: the stack is stopped

    signal.signal(signal.SIGTERM, on_term)
    data_dir = Path(tempfile.mkdtemp(prefix="turnout-bench-"))
    mail = MailSink().start()
    stack = make_stack(data_dir, mail)
    floor: Floor | None = None
    began = time.monotonic()
    report: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "per_level": args.per_level,
            "kiosk_levels": args.levels,
            "web_workers": stack.config.web_workers,
        },
        "targets_thresholds": TARGETS,
        "pretix": PRETIX,
        "levels": [],
    }
    floor_writes = min(args.per_level, FLOOR_MAX_WRITES)
    dup_level = min(args.levels, key=lambda kiosks: abs(kiosks - DUPLICATE_KIOSKS))
    try:
        token = boot(stack)
        log(f"stack up in {time.monotonic() - began:.0f}s")
        client = Client(stack, token, mail)
        if not args.skip_floor:
            floor = Floor(stack, data_dir)
            floor.start(floor_writes * len(args.levels) + FLOOR_WARMUP)
            floor.warm_up(client, max(args.levels))
            report["meta"]["floor_shape"] = floor.shape()
        for kiosks in args.levels:
            level, event_id, badges = run_level(client, stack, kiosks, args.per_level)
            report["levels"].append(level)
            if floor is not None:
                time.sleep(SETTLE_SECONDS)
                level["floor"] = run_floor_level(client, floor, kiosks, floor_writes, not args.floor_no_pause)
                level["floor_ratios"] = floor_ratios(level, level["floor"])
                log(
                    f"    Turnout {level['cpu_ms_per_checkin']:.2f} ms = "
                    f"{fmt(level['floor_ratios']['whole_vs_floor'])}× the floor"
                )
            if kiosks == dup_level and not args.skip_duplicates:
                report["duplicates"] = run_duplicates(client, stack, event_id, badges)
        if floor is not None:
            floor.stop()
            floor = None
        if not args.skip_dashboard:
            report["dashboard"] = run_dashboard(
                client, args.dashboard_count, args.dashboard_rate, args.dashboard_kiosks
            )
        if not args.skip_idle:
            report["idle"] = run_idle(client, stack, args.idle_seconds, args.after_idle, args.after_idle_interval)
        check_dead_children(stack)
        report["memory"] = memory_snapshot(stack)
        report["registrations"] = [{"people": people, "seconds": took} for people, took in client.registrations]
    except BaseException:
        log("benchmark failed; last log lines of each process follow")
        for name, child in stack.children.items():
            print(f"--- {name}\n{child.tail(10)}", file=sys.stderr)
        if floor is not None and floor.child is not None:
            print(f"--- floor-web\n{floor.child.tail(10)}", file=sys.stderr)
        raise
    finally:
        log("stopping the stack")
        try:
            for child in service_children(stack):
                child.resume()  # in case an interruption came during a floor pause
            if floor is not None:
                floor.stop()
            stack.stop()
        finally:
            mail.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
    report["meta"]["runtime_seconds"] = time.monotonic() - began
    report["targets"] = [
        {"target": name, "threshold": limit, "measured": value, "met": ok}
        for name, limit, value, ok in verdicts(report)
    ]
    report["peers"] = peer_rows(report)
    print(render(report))
    print(f"\n(total runtime {report['meta']['runtime_seconds']:.0f}s)")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
