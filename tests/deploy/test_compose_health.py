"""docker-compose.yml: every relay and worker has a health check on its heartbeat
file (``python -m turnout_common.alive``), where it can write it (``/tmp`` is a
tmpfs on a read-only root). The rest of the file is validated by
deploy/check-compose.sh (``make compose-check``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
SERVICES: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
LOOP_PROCESSES = sorted(
    name for name, service in SERVICES.items() if ".entrypoints." in " ".join(service.get("command", []))
)


def test_every_relay_and_worker_is_found() -> None:
    assert LOOP_PROCESSES == [
        "analytics-worker",
        "checkin-worker",
        "followup-worker",
    ]


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


@pytest.mark.parametrize("name", LOOP_PROCESSES)
def test_relays_and_workers_report_their_heartbeat(name: str) -> None:
    service = SERVICES[name]
    check = service.get("healthcheck") or {}
    assert not check.get("disable"), f"{name}: health check disabled"
    test = check.get("test", [])
    assert test[:4] == ["CMD", "python", "-m", "turnout_common.alive"], f"{name}: {test}"
    # Touched every 5 s: a slow check on a busy host must not flag a healthy process.
    assert float(test[test.index("--max-age") + 1]) >= 30
    assert _seconds(check["start_period"]) >= 120
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert "TURNOUT_HEARTBEAT_FILE" not in service.get("environment", {})
