"""``python -m turnout_common.alive [--file F] [--max-age S]``: is this container's
relay or worker process alive? The liveness probe of relays and workers.

``run_loops`` (``turnout_common.runtime``) writes a heartbeat file when its loops
start and touches it every few seconds while every loop is healthy (each loop
looks at its stop event at least once per ``TURNOUT_LOOP_STALL_SECONDS``). This
command exits 0 if the file was touched within ``--max-age`` seconds by a process
that is still running, else 1 with a one-line reason.

The file is ``TURNOUT_HEARTBEAT_FILE`` (default ``/tmp/turnout-alive``; empty or
``off``: none is written). It names the process that wrote it (pid and start
time), so a file left by a previous run of the container (``/tmp`` is an
``emptyDir`` that outlives a container restart) does not vouch for the new one.

Only the standard library is imported: the probe runs every 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HEARTBEAT_FILE_VARIABLE = "TURNOUT_HEARTBEAT_FILE"
DEFAULT_HEARTBEAT_FILE = "/tmp/turnout-alive"  # a private tmpfs/emptyDir in containers
DEFAULT_MAX_AGE = 60.0
OFF = {"", "off", "none"}


def heartbeat_file_from_env() -> Path | None:
    """The heartbeat file ``TURNOUT_HEARTBEAT_FILE`` names (None: turned off)."""
    raw = os.environ.get(HEARTBEAT_FILE_VARIABLE)
    if raw is None:
        return Path(DEFAULT_HEARTBEAT_FILE)
    if raw.strip().lower() in OFF:
        return None
    return Path(raw)


def start_ticks(pid: int | str = "self") -> int | None:
    """When a process started (clock ticks since boot, Linux ``/proc``), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; fields 3.. follow the command name, which is in parentheses and may hold spaces.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Writer:
    """Who wrote a heartbeat file."""

    proc: str
    pid: int
    start: int | None

    @classmethod
    def this_process(cls, proc: str) -> Writer:
        return cls(proc=proc, pid=os.getpid(), start=start_ticks())

    def dumps(self) -> str:
        return json.dumps({"proc": self.proc, "pid": self.pid, "start": self.start}) + "\n"

    @classmethod
    def loads(cls, text: str) -> Writer | None:
        try:
            data = json.loads(text)
            start = data.get("start")
            return cls(
                proc=str(data.get("proc", "?")),
                pid=int(data["pid"]),
                start=int(start) if start is not None else None,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def gone(self) -> bool:
        """True if this process is known to be no longer running (False when it cannot be told)."""
        if self.start is None or start_ticks() is None:
            return False  # no /proc here: the age of the file alone decides
        return start_ticks(self.pid) != self.start


def write_heartbeat(path: Path, writer: Writer) -> None:
    """(Re)write the file naming ``writer``; atomic, so a probe never reads half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(writer.dumps())
    os.replace(temporary, path)


def check(path: Path, max_age: float, now: float | None = None) -> str | None:
    """Why the process behind ``path`` is not alive, or None if it is."""
    now = time.time() if now is None else now
    try:
        age = now - path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return f"no heartbeat file {path}: the loops have not started, or the process stopped"
    except OSError as exc:
        return f"cannot read heartbeat file {path}: {exc.strerror or exc}"
    writer = Writer.loads(text)
    if writer is None:
        return f"heartbeat file {path} does not say which process wrote it"
    if writer.gone():
        return f"heartbeat file {path} was written by {writer.proc} (pid {writer.pid}), which is no longer running"
    if age > max_age:
        return f"{writer.proc} (pid {writer.pid}) last beat {age:.0f} s ago (more than {max_age:g} s): stuck"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m turnout_common.alive",
        description="Exit 0 if this container's relay or worker touched its heartbeat file recently, else 1.",
    )
    parser.add_argument(
        "--file",
        type=Path,
        default=None,
        help=f"the heartbeat file (default: ${HEARTBEAT_FILE_VARIABLE}, else {DEFAULT_HEARTBEAT_FILE})",
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE,
        help=f"seconds since the last beat that still count as alive (default {DEFAULT_MAX_AGE:g})",
    )
    args = parser.parse_args(argv)
    if args.max_age <= 0:
        parser.error("--max-age must be positive")
    path = args.file if args.file is not None else heartbeat_file_from_env()
    if path is None:
        print(f"not alive: {HEARTBEAT_FILE_VARIABLE} is off, so there is no heartbeat to check; pass --file")
        return 1
    reason = check(path, args.max_age)
    if reason is not None:
        print(f"not alive: {reason}")
        return 1
    print(f"alive: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
