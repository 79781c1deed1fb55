"""Follow-up against the session's real SecantusDB (and Tansu where needed),
with a real SMTP server (aiosmtpd) on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from followup.adapters.repositories import in_transaction
from followup.bootstrap import MongoServices, build_services, make_transport
from followup.config import Settings
from followup.service_layer.context import Services
from followup.service_layer.handlers import apply_checkin_messages
from tests.followup.helpers import SmtpServer
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork
from turnout_local.processes import free_port

FAST = {
    "FOLLOWUP_SEND_DELAY_SECONDS": "0",
    "FOLLOWUP_WINDOW_START": "00:00",
    "FOLLOWUP_WINDOW_END": "24:00",
    "FOLLOWUP_LEASE_SECONDS": "3",
    "FOLLOWUP_RETRY_BASE_SECONDS": "0.2",
    "FOLLOWUP_RETRY_MAX_SECONDS": "1",
    "FOLLOWUP_SCHEDULER_INTERVAL_SECONDS": "0.2",
    "FOLLOWUP_SENDER_IDLE_SECONDS": "0.1",
    "FOLLOWUP_WINBACK_SCAN_SECONDS": "3600",
    "SMTP_TIMEOUT_SECONDS": "5",
    "TURNOUT_PUBLIC_URL_FOLLOWUP": "https://followup.example.org",
}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


@pytest.fixture
def followup_env(service_env: dict[str, str], smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**service_env, **FAST, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def settings(followup_env: dict[str, str]) -> Settings:
    """The settings of the test's follow-up (pass them to ``create_app``)."""
    return Settings.from_env()


@pytest.fixture
def svc(settings: Settings, mongo_client: Any) -> Iterator[MongoServices]:
    services = build_services(settings, "followup-tests", transport=make_transport(settings), client=mongo_client)
    yield services
    mongo_client.drop_database(settings.database)


@pytest.fixture
def org_id() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


def apply(svc: Services, messages: Sequence[Envelope]) -> None:
    """Apply checkin's messages as the consumer does (one transaction)."""
    assert isinstance(svc, MongoServices)
    client, db = svc.mongo
    handler = in_transaction(apply_checkin_messages)
    UnitOfWork(client, db).run(lambda uow: handler(uow, messages))
