"""``python -m turnout_common.alive``, the liveness probe of relays and workers:
0 while the process behind the heartbeat file beats, 1 with a one-line reason
otherwise; and a real process whose loop hangs exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from turnout_common.alive import Writer, write_heartbeat

ROOT = Path(__file__).resolve().parents[3]


def alive(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout_common.alive", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_a_fresh_heartbeat_is_alive_and_an_old_or_missing_one_is_not(tmp_path: Path) -> None:
    heartbeat = tmp_path / "alive"
    missing = alive("--file", str(heartbeat))
    assert missing.returncode == 1
    assert missing.stdout.startswith("not alive: no heartbeat file") and missing.stdout.count("\n") == 1

    write_heartbeat(heartbeat, Writer.this_process("checkin-relay"))
    fresh = alive("--file", str(heartbeat), "--max-age", "30")
    assert fresh.returncode == 0, fresh.stdout
    # The file named by TURNOUT_HEARTBEAT_FILE when --file is not given.
    assert alive(env={"TURNOUT_HEARTBEAT_FILE": str(heartbeat)}).returncode == 0

    old = time.time() - 100
    os.utime(heartbeat, (old, old))
    stale = alive("--file", str(heartbeat), "--max-age", "60")
    assert stale.returncode == 1
    assert "checkin-relay" in stale.stdout and "100 s ago" in stale.stdout, stale.stdout
    assert alive("--file", str(heartbeat), "--max-age", "120").returncode == 0


def test_a_heartbeat_left_by_a_process_that_is_gone_does_not_count(tmp_path: Path) -> None:
    heartbeat = tmp_path / "alive"
    script = (
        "from pathlib import Path; from turnout_common.alive import Writer, write_heartbeat; "
        f"write_heartbeat(Path({str(heartbeat)!r}), Writer.this_process('old-run'))"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    answer = alive("--file", str(heartbeat))
    assert answer.returncode == 1
    assert "old-run" in answer.stdout and "no longer running" in answer.stdout, answer.stdout


def test_unusable_input_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "alive"
    garbage.write_text("hello")
    answer = alive("--file", str(garbage))
    assert answer.returncode == 1 and "does not say which process" in answer.stdout
    assert alive("--max-age", "0").returncode == 2
    assert alive(env={"TURNOUT_HEARTBEAT_FILE": "off"}).returncode == 1


def test_a_worker_whose_loop_hangs_exits_non_zero_and_the_probe_follows(tmp_path: Path) -> None:
    heartbeat = tmp_path / "alive"
    worker = textwrap.dedent(
        """
        import threading, time
        from turnout_common.runtime import exit_with, run_loops

        def consumer(stop):
            started = time.monotonic()
            while not stop.is_set():
                if time.monotonic() - started > 3:
                    threading.Event().wait()  # stuck in a call that never returns
                stop.wait(0.1)

        exit_with(run_loops("test-worker", [("consumer", consumer)]))
        """
    )
    env = {**os.environ, "TURNOUT_LOOP_STALL_SECONDS": "2", "TURNOUT_HEARTBEAT_FILE": str(heartbeat)}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", worker], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not heartbeat.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        assert alive("--file", str(heartbeat), "--max-age", "10").returncode == 0
        code = process.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 1, stderr
    assert 5 <= took < 15, took  # 3 s of work, then 2 s of silence (+ start-up and checks)
    assert "loop consumer stalled" in stderr
    answer = alive("--file", str(heartbeat), "--max-age", "10")
    assert answer.returncode == 1 and "no longer running" in answer.stdout


def test_a_frozen_process_is_not_mistaken_for_a_stuck_loop_and_stops_cleanly(tmp_path: Path) -> None:
    """SIGSTOP for longer than the stall time, then SIGCONT: the loops never had a
    chance to beat, so nothing is declared stuck; SIGTERM then stops it with 0."""
    import signal

    heartbeat = tmp_path / "alive"
    worker = textwrap.dedent(
        f"""
        from pathlib import Path
        from turnout_common.runtime import Liveness, exit_with, run_loops

        def relay(stop):
            while not stop.is_set():
                stop.wait(0.1)

        liveness = Liveness(
            stall_seconds=1.0,
            heartbeat_file=Path({str(heartbeat)!r}),
            heartbeat_every=0.2,
            check_every=0.1,
            frozen_gap=0.5,
        )
        exit_with(run_loops("test-relay", [("relay", relay)], liveness))
        """
    )
    process = subprocess.Popen([sys.executable, "-c", worker], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not heartbeat.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGSTOP)
        time.sleep(2.5)
        process.send_signal(signal.SIGCONT)
        time.sleep(2.0)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert alive("--file", str(heartbeat), "--max-age", "1").returncode == 0
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 0, stderr
    assert "stalled" not in stderr
    assert not heartbeat.exists()
