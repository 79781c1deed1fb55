"""Session fixtures: a real Kafka-protocol broker (Tansu) and a real
MongoDB-protocol server (SecantusDB) on free ports, started once per test
session, so tests run beside a running ``make run``."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from turnout_local.processes import Child, database_uri, free_port, start_broker, start_database

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Infrastructure:
    kafka_port: int
    mongodb_port: int
    workdir: Path
    broker: Child
    database: Child

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongodb_uri(self) -> str:
        return database_uri(self.mongodb_port)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    workdir = Path(tempfile.mkdtemp(prefix="turnout-test-"))
    kafka_port, mongodb_port = free_port(), free_port()
    broker = start_broker(kafka_port, workdir / "logs")
    database = start_database(mongodb_port, workdir / "mongodb", workdir / "logs")
    yield Infrastructure(kafka_port, mongodb_port, workdir, broker, database)
    broker.stop()
    database.stop()


@pytest.fixture(scope="session")
def mongo_client(infra: Infrastructure) -> Iterator[MongoClient[dict[str, object]]]:
    from turnout_common.mongo import connect

    client = connect(infra.mongodb_uri, "turnout-tests")
    yield client
    client.close()


@pytest.fixture
def unique() -> str:
    """A short unique suffix so tests sharing the session's servers never collide."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def service_env(infra: Infrastructure, unique: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment pointing a service at the test servers, with databases of its own."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "MONGODB_URI": infra.mongodb_uri,
        "CHECKIN_MONGODB_DATABASE": f"t_checkin_{unique}",
        "FOLLOWUP_MONGODB_DATABASE": f"t_followup_{unique}",
        "ANALYTICS_MONGODB_DATABASE": f"t_analytics_{unique}",
        "LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


# The launched stack and the browser are shared by the end-to-end and browser
# tests: one of each per test session (a second Playwright in one process fails).
from tests.e2e.stack import running_stack  # noqa: E402,F401 - a session fixture

CHROMIUM = Path(os.environ.get("TURNOUT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need it "
            "(apt-get update && apt-get install -y chromium; or set TURNOUT_CHROMIUM)",
            pytrace=False,
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield launched
    launched.close()
