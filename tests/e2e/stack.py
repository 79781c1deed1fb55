"""The whole launched stack (every web, relay and worker process, as `make run`
starts them) on free ports, once per test session."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from turnout_local.stack import DEMO_EMAIL, DEMO_PASSWORD, Stack, StackConfig


@dataclass
class RunningStack:
    stack: Stack
    token: str

    @property
    def config(self) -> StackConfig:
        return self.stack.config

    def url(self, service: str, path: str) -> str:
        return f"{self.config.url_of(service)}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# Every suite on the stack (browser, e2e, the security matrix, the fuzzer) calls
# from one address, 127.0.0.1: the per-address limits on sign-in and public
# registration are raised for it. The per-account, per-kiosk and per-link-route
# limits keep their defaults (tests/checkin and tests/followup test each one).
SHARED_ADDRESS_LIMITS = {
    "TURNOUT_RATE_LIMIT_SIGN_IN_ADDRESS": "2000 per 15 minutes",
    "TURNOUT_RATE_LIMIT_PUBLIC_REGISTRATION": "2000 per 15 minutes",
}


@pytest.fixture(scope="session")
def running_stack() -> Iterator[RunningStack]:
    data_dir = Path(tempfile.mkdtemp(prefix="turnout-e2e-"))
    config = StackConfig.on_free_ports(data_dir, extra_env=SHARED_ADDRESS_LIMITS)
    stack = Stack(config)
    try:
        stack.start_infrastructure()
        stack.load_demo(quiet=True)
        stack.start_services()
        stack.wait_ready()
        answer = requests.post(
            f"{config.url_of('checkin')}/api/v1/auth/login",
            json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD},
            timeout=10,
        )
        answer.raise_for_status()
        yield RunningStack(stack, answer.json()["token"])
    finally:
        stack.stop()
