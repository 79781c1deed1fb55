"""Real relay and worker processes against the real broker and database: while
their loops run (topic creation, group join, idle polling) the liveness probe
answers 0; SIGTERM stops them with 0 and takes the heartbeat file away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PROCESSES = {
    "checkin-relay": "checkin.entrypoints.relay",
    "analytics-worker": "analytics.entrypoints.worker",
}


def alive(heartbeat: Path, max_age: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout_common.alive", "--file", str(heartbeat), "--max-age", str(max_age)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_a_running_process_is_alive_and_a_stopped_one_is_not(
    name: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    heartbeat = tmp_path / "alive"
    env = {**os.environ, **service_env, "TURNOUT_HEARTBEAT_FILE": str(heartbeat)}
    process = subprocess.Popen(
        [sys.executable, "-m", PROCESSES[name]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not heartbeat.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no heartbeat file within 60 s"
            time.sleep(0.2)
        # Touched every 5 s: over 12 s it is never older than that (plus a probe's start-up).
        answers = []
        for _ in range(4):
            answers.append(alive(heartbeat, max_age=7))
            time.sleep(3)
        assert [a.returncode for a in answers] == [0, 0, 0, 0], [a.stdout for a in answers]
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 0, stderr
    assert "stalled" not in stderr
    gone = alive(heartbeat, max_age=7)
    assert gone.returncode == 1 and "no heartbeat file" in gone.stdout
