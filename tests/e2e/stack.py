"""The whole launched stack (every web, relay and worker process, as `make run`
starts them) on free ports, once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.followup.helpers import SmtpServer
from turnout_local.processes import free_port
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


@contextmanager
def stack_with_mail(
    prefix: str, org_name: str, password: str, scheduler_interval: str
) -> Iterator[tuple[Stack, SmtpServer, str]]:
    """A launched stack of its own whose follow-ups go at once to a real SMTP
    server (aiosmtpd), with an organization of its own: (stack, smtp, the owner's token)."""
    smtp = SmtpServer(free_port()).__enter__()
    config = StackConfig.on_free_ports(
        Path(tempfile.mkdtemp(prefix=prefix)),
        {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "MAIL_FROM": "Turnout <hello@mail.example.org>",
            "FOLLOWUP_SEND_DELAY_SECONDS": "0",
            "FOLLOWUP_WINDOW_START": "00:00",
            "FOLLOWUP_WINDOW_END": "24:00",
            "FOLLOWUP_SCHEDULER_INTERVAL_SECONDS": scheduler_interval,
            "FOLLOWUP_SENDER_IDLE_SECONDS": "0.2",
            # A click this soon after delivery is a link scanner's (10 s by default): short here,
            # so that a test's person can click without waiting long.
            "FOLLOWUP_SCANNER_SOON_SECONDS": "3",
        },
    )
    stack = Stack(config)
    email = f"owner-{uuid.uuid4().hex[:8]}@example.org"
    try:
        stack.start_infrastructure()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\n"
                "from checkin.bootstrap import build_context\n"
                "from checkin.config import Settings\n"
                "from checkin.service_layer.organizations import create_organization\n"
                "ctx = build_context(Settings.from_env(), 'test-stack')\n"
                "create_organization(ctx, sys.argv[1], sys.argv[2], 'Owner', sys.argv[3])\n",
                org_name,
                email,
                password,
            ],
            env={**os.environ, **stack.service_env("checkin")},
            check=True,
            capture_output=True,
        )
        stack.start_services()
        stack.wait_ready()
        login = requests.post(
            f"{config.url_of('checkin')}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10
        )
        login.raise_for_status()
        yield stack, smtp, login.json()["token"]
    finally:
        stack.stop()
        smtp.__exit__(None, None, None)
