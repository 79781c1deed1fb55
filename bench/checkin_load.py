"""Check-in load benchmark: throughput, latency, CPU per check-in, dashboard lag and memory.

Starts its own local stack (Tansu + SecantusDB + every service process) on free
ports in a temporary data directory, loads the demo data, signs in, and then:

1. for each concurrency level ("kiosks" = client threads, each with its own
   keep-alive ``requests.Session``) creates a fresh open event, registers
   ``--per-level`` people (not measured), lets the pipeline go idle, and checks
   everyone in. It reports check-ins/s, request latency percentiles, errors and
   the CPU time that every stack process (and its descendants) spent from the
   first check-in until analytics shows all of them (so the relay's and the
   consumers' work is included), per check-in, in total and per role;
2. at 8 kiosks paces 200 check-ins at ~20/s and measures, for each, the time
   from its 201 answer until the analytics attendance API shows a count at
   least as high as its ordinal (polled every 20 ms);
3. sums the resident memory (PSS) of the whole stack.

Usage: .venv/bin/python bench/checkin_load.py [--kiosks 1,8,32] [--per-level 600] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "deploy" / "local") not in sys.path:
    sys.path.append(str(REPO / "deploy" / "local"))  # when the venv lacks the editable install

from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD, Stack, StackConfig  # noqa: E402

# Stack children (``Stack.children`` keys) and the role their CPU and memory are booked to.
ROLE_OF_CHILD = {
    "mongodb": "secantus",
    "kafka": "tansu",
    "checkin-web": "checkin-web",
    "checkin-relay": "checkin-relay",
    "analytics-worker": "analytics-worker",
    "followup-worker": "followup-worker",
}
ROLES = ("secantus", "tansu", "checkin-web", "checkin-relay", "analytics-worker", "followup-worker", "other")

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

REQUEST_TIMEOUT = 30.0
DRAIN_TIMEOUT = 120.0  # longest wait for analytics to catch up with one level
IDLE_SECONDS = 3.0
DASHBOARD_COUNT = 200
DASHBOARD_RATE = 20.0  # check-ins per second
DASHBOARD_KIOSKS = 8
DASHBOARD_POLL = 0.020

TARGETS = {
    "cpu_ms_per_checkin": 6.0,
    "checkins_per_s": 300.0,
    "p99_ms_at_8": 50.0,
    "dashboard_p95_s": 1.0,
    "memory_mb": 0.7 * 1024,
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


def stack_tree(stack: Stack, procs: dict[int, ProcInfo]) -> dict[int, str]:
    """Every live process that is a stack child or descends from one, mapped to that child's name."""
    roots = {child.pid: name for name, child in stack.children.items() if child.process is not None}
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
    procs = read_procs()
    totals: dict[str, float] = {name: 0.0 for name in stack.children}
    for pid, name in stack_tree(stack, procs).items():
        totals[name] += procs[pid].ticks * 1000.0 / CLK_TCK
    return totals


def by_role(per_child: dict[str, float]) -> dict[str, float]:
    roles = dict.fromkeys(ROLES, 0.0)
    for name, value in per_child.items():
        roles[ROLE_OF_CHILD.get(name, "other")] += value
    return roles


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}


def own_cpu_ms() -> float:
    times = os.times()
    return (times.user + times.system) * 1000.0


def resident_kb(pid: int) -> tuple[int, str]:
    """PSS in kB from smaps_rollup, or RSS when that file cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]), "pss"
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE // 1024, "rss"
    except (OSError, ValueError, IndexError):
        return 0, "none"


def memory_snapshot(stack: Stack) -> dict[str, Any]:
    tree = stack_tree(stack, read_procs())
    per_child_kb: dict[str, int] = {name: 0 for name in stack.children}
    kinds: Counter[str] = Counter()
    for pid, name in tree.items():
        kb, kind = resident_kb(pid)
        per_child_kb[name] += kb
        kinds[kind] += 1
    per_child = {name: kb / 1024.0 for name, kb in per_child_kb.items()}
    return {
        "total_mb": sum(per_child.values()),
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
    def __init__(self, stack: Stack, token: str) -> None:
        self.stack = stack
        self.headers = {"Authorization": f"Bearer {token}"}

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

    def register(self, event_id: str, count: int, threads: int = 8) -> list[str]:
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


def make_stack(data_dir: Path) -> Stack:
    config = StackConfig.on_free_ports(data_dir)
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
) -> tuple[KioskResult, float]:
    """Checks every badge in with ``kiosks`` threads; returns the results and the wall time.

    ``schedule(i)``, when given, is the monotonic time before which the i-th check-in must not start.
    """
    result = KioskResult()
    lock = threading.Lock()
    next_index = 0
    sessions = [client.session() for _ in range(kiosks)]
    url = client.url("checkin", f"/api/v1/events/{event_id}/checkins")
    # Open every keep-alive connection before the clock starts.
    for session in sessions:
        with contextlib.suppress(requests.RequestException):
            session.get(client.url("checkin", "/readyz"), timeout=REQUEST_TIMEOUT)
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
            try:
                answer = session.post(url, json=body, timeout=REQUEST_TIMEOUT)
                status = str(answer.status_code)
            except requests.RequestException as exc:
                status = type(exc).__name__
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            done = time.monotonic()
            with lock:
                result.latencies_ms.append(elapsed_ms)
                result.statuses[status] += 1
                if status == "201":
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
    log(f"  registered {count} in {time.monotonic() - started:.1f}s")
    if not client.wait_for(event_id, "registered", count, timeout=60, interval=0.2):
        log("  warning: analytics did not show every registration within 60s")
    return event_id, badges


def run_level(client: Client, stack: Stack, kiosks: int, per_level: int) -> dict[str, Any]:
    log(f"level: {kiosks} kiosk(s), {per_level} check-ins")
    event_id, badges = prepare_event(client, f"bench {kiosks} kiosks {uuid.uuid4().hex[:6]}", per_level)

    idle_before = cpu_snapshot(stack)
    time.sleep(IDLE_SECONDS)
    before = cpu_snapshot(stack)
    client_before = own_cpu_ms()
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
    if not drained:
        log(f"  warning: analytics did not reach checked_in={ok} within {DRAIN_TIMEOUT:.0f}s")
    # What is still being spent after the window (e.g. a consumer that lags behind analytics).
    time.sleep(2.0)
    tail = delta(cpu_snapshot(stack), after)
    check_dead_children(stack)

    window = window_end - window_start
    used = delta(after, before)
    per = max(ok, 1)
    used_roles = by_role(used)
    idle_roles = by_role(idle_rate)
    tail_roles = by_role(tail)
    lat = result.latencies_ms
    level = {
        "kiosks": kiosks,
        "checkins": len(lat),
        "ok": ok,
        "errors": len(lat) - ok,
        "statuses": dict(result.statuses),
        "requests_seconds": wall,
        "checkins_per_s": len(lat) / wall if wall > 0 else None,
        "latency_ms": {
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "p99": percentile(lat, 99),
            "max": max(lat) if lat else None,
            "mean": sum(lat) / len(lat) if lat else None,
        },
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
    }
    log(
        f"  {level['checkins_per_s']:.0f}/s, p99 {level['latency_ms']['p99']:.1f} ms, "
        f"{level['cpu_ms_per_checkin']:.2f} CPU ms/check-in, errors {level['errors']}, "
        f"drain {level['pipeline_drain_seconds']:.2f}s"
    )
    return level


def run_dashboard(client: Client, stack: Stack) -> dict[str, Any]:
    log(f"dashboard lag: {DASHBOARD_COUNT} check-ins at ~{DASHBOARD_RATE:.0f}/s from {DASHBOARD_KIOSKS} kiosks")
    event_id, badges = prepare_event(client, f"bench dashboard {uuid.uuid4().hex[:6]}", DASHBOARD_COUNT)
    time.sleep(IDLE_SECONDS)

    first_seen: dict[int, float] = {}
    stop = threading.Event()
    poll_errors = [0]

    def poller() -> None:
        # A threshold counts as reached when the poll that first shows it has answered
        # (what a dashboard user would see; up to one poll interval late).
        highest = 0
        hard_stop = time.monotonic() + DASHBOARD_COUNT / DASHBOARD_RATE + 90
        with client.session() as session:
            while not stop.is_set() and time.monotonic() < hard_stop and highest < DASHBOARD_COUNT:
                tick = time.monotonic()
                figures = client.attendance(event_id, session)
                seen = time.monotonic()
                if figures is None:
                    poll_errors[0] += 1
                else:
                    count = int(figures.get("checked_in", 0))
                    for ordinal in range(highest + 1, count + 1):
                        first_seen[ordinal] = seen
                    highest = max(highest, count)
                stop.wait(max(0.0, DASHBOARD_POLL - (time.monotonic() - tick)))

    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    start = time.monotonic() + 0.5
    result, wall = run_kiosks(
        client, event_id, badges, DASHBOARD_KIOSKS, schedule=lambda index: start + index / DASHBOARD_RATE
    )
    ok = len(result.ok_times)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(first_seen) < ok and thread.is_alive():
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)

    lags = [
        max(0.0, first_seen[i + 1] - done) * 1000.0 for i, done in enumerate(result.ok_times) if i + 1 in first_seen
    ]
    figures = {
        "checkins": len(result.latencies_ms),
        "ok": ok,
        "errors": len(result.latencies_ms) - ok,
        "achieved_rate_per_s": len(result.latencies_ms) / wall if wall > 0 else None,
        "measured": len(lags),
        "never_seen": ok - len(lags),
        "poll_errors": poll_errors[0],
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
        log(f"  lag p50 {figures['lag_ms']['p50']:.0f} ms, p95 {figures['lag_ms']['p95']:.0f} ms")
    return figures


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


def verdicts(report: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    levels = report["levels"]
    out: list[tuple[str, str, bool | None]] = []
    if levels:
        worst = max(levels, key=lambda level: level["cpu_ms_per_checkin"])
        out.append(
            (
                f"CPU per check-in, all processes <= {TARGETS['cpu_ms_per_checkin']:.0f} ms",
                f"{worst['cpu_ms_per_checkin']:.2f} ms (worst level, {worst['kiosks']} kiosks)",
                worst["cpu_ms_per_checkin"] <= TARGETS["cpu_ms_per_checkin"],
            )
        )
        best = max(levels, key=lambda level: level["checkins_per_s"] or 0)
        out.append(
            (
                f"throughput >= {TARGETS['checkins_per_s']:.0f} check-ins/s",
                f"{best['checkins_per_s']:.0f}/s (best level, {best['kiosks']} kiosks)",
                best["checkins_per_s"] >= TARGETS["checkins_per_s"],
            )
        )
        at8 = min(levels, key=lambda level: abs(level["kiosks"] - 8))
        p99 = at8["latency_ms"]["p99"]
        out.append(
            (
                f"p99 <= {TARGETS['p99_ms_at_8']:.0f} ms at 8 kiosks",
                f"{fmt(p99)} ms ({at8['kiosks']} kiosks)",
                p99 is not None and p99 <= TARGETS["p99_ms_at_8"],
            )
        )
    dash = report.get("dashboard")
    if dash:
        p95 = dash["lag_ms"]["p95"]
        out.append(
            (
                "scan on the dashboard within 1 s, p95",
                f"{fmt(p95, 0)} ms",
                p95 is not None and p95 <= TARGETS["dashboard_p95_s"] * 1000 and dash["never_seen"] == 0,
            )
        )
    mem = report.get("memory")
    if mem:
        out.append(
            (
                "whole local stack < 0.7 GB",
                f"{mem['total_mb']:.0f} MB",
                mem["total_mb"] < TARGETS["memory_mb"],
            )
        )
    return out


def render(report: dict[str, Any]) -> str:
    parts: list[str] = []
    meta = report["meta"]
    parts.append(
        f"Turnout check-in benchmark — {meta['date']} — {meta['cpus']} CPU(s), {meta['machine']}, "
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
    dash = report.get("dashboard")
    if dash:
        parts.append("")
        parts.append(
            f"Check-in to dashboard ({dash['ok']} check-ins at {fmt(dash['achieved_rate_per_s'], 1)}/s, "
            f"{DASHBOARD_KIOSKS} kiosks, analytics polled every {DASHBOARD_POLL * 1000:.0f} ms)"
        )
        parts.append(
            f"  p50 {fmt(dash['lag_ms']['p50'], 0)} ms   p95 {fmt(dash['lag_ms']['p95'], 0)} ms   "
            f"p99 {fmt(dash['lag_ms']['p99'], 0)} ms   max {fmt(dash['lag_ms']['max'], 0)} ms   "
            f"never seen {dash['never_seen']}   errors {dash['errors']}"
        )
    mem = report.get("memory")
    if mem:
        parts.append("")
        parts.append(
            f"Memory after the runs ({mem['measure']}, {mem['processes']} processes): {mem['total_mb']:.0f} MB"
        )
        parts.append("  " + "   ".join(f"{role} {value:.0f}" for role, value in mem["per_role_mb"].items()))
    checks = verdicts(report)
    if checks:
        parts.append("")
        parts.append("Targets")
        parts.append(
            table(
                ["target", "measured", "met"],
                [[name, value, "-" if ok is None else ("yes" if ok else "NO")] for name, value, ok in checks],
            )
        )
    return "\n".join(parts)


# -- main ---------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kiosks", default="1,8,32", help="comma-separated concurrency levels (default 1,8,32)")
    parser.add_argument("--per-level", type=int, default=600, help="check-ins per level (default 600)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--skip-dashboard", action="store_true", help="skip the check-in-to-dashboard measurement")
    args = parser.parse_args(argv)
    try:
        args.levels = [int(part) for part in args.kiosks.split(",") if part.strip()]
    except ValueError:
        parser.error("--kiosks takes integers, e.g. 1,8,32")
    if not args.levels or min(args.levels) < 1 or max(args.levels) > 256:
        parser.error("--kiosks: each level must be 1-256")
    if not 1 <= args.per_level <= 100_000:
        parser.error("--per-level must be 1-100000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally below: the stack is stopped

    signal.signal(signal.SIGTERM, on_term)
    data_dir = Path(tempfile.mkdtemp(prefix="turnout-bench-"))
    stack = make_stack(data_dir)
    began = time.monotonic()
    report: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "per_level": args.per_level,
            "kiosk_levels": args.levels,
            "web_workers": stack.config.web_workers,
        },
        "levels": [],
    }
    try:
        token = boot(stack)
        log(f"stack up in {time.monotonic() - began:.0f}s")
        client = Client(stack, token)
        for kiosks in args.levels:
            report["levels"].append(run_level(client, stack, kiosks, args.per_level))
        if not args.skip_dashboard:
            report["dashboard"] = run_dashboard(client, stack)
        check_dead_children(stack)
        report["memory"] = memory_snapshot(stack)
    except BaseException:
        log("benchmark failed; last log lines of each process follow")
        for name, child in stack.children.items():
            print(f"--- {name}\n{child.tail(10)}", file=sys.stderr)
        raise
    finally:
        log("stopping the stack")
        try:
            stack.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    report["meta"]["runtime_seconds"] = time.monotonic() - began
    report["targets"] = [{"target": name, "measured": value, "met": ok} for name, value, ok in verdicts(report)]
    print(render(report))
    print(f"\n(total runtime {report['meta']['runtime_seconds']:.0f}s)")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
