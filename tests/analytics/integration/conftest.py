"""Analytics against the session's real SecantusDB (and Tansu where a test
needs the broker): a populated database, the app, and session tokens."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo import MongoClient
from pymongo.database import Database

from analytics.config import Settings
from tests.analytics.history import Scripted, scripted_history
from turnout_common.auth import Principal, TokenSigner
from turnout_common.clock import utcnow
from turnout_common.config import secret_key
from turnout_common.envelope import Envelope

Doc = dict[str, Any]


def token(org_id: str, role: str = "viewer", kind: str = "user") -> str:
    principal = Principal(
        kind=kind, subject_id=f"u-{uuid.uuid4().hex[:8]}", org_id=org_id, role=role, name="Test Viewer"
    )
    return TokenSigner(secret_key()).issue(principal)


def auth(org_id: str, role: str = "viewer") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(org_id, role)}"}


def archive(db: Database[Doc], messages: Sequence[Envelope]) -> None:
    """Store messages in the archive exactly as the consumer does."""
    now = utcnow()
    db["archive"].insert_many(
        [
            {
                "_id": m.id,
                "type": m.type,
                "applied_at": now,
                "envelope": m.to_dict(),
                "subject": m.subject,
                "time": m.time,
            }
            for m in messages
        ]
    )


def project_directly(db: Database[Doc], messages: Sequence[Envelope], batch: int = 100) -> None:
    """What the worker does with each batch: archive it and fold it into the projections."""
    from analytics.adapters.mongo import ProjectionStore
    from analytics.service_layer.projector import apply_batch

    for start in range(0, len(messages), batch):
        part = messages[start : start + batch]
        archive(db, part)
        apply_batch(ProjectionStore(db), part)


@pytest.fixture(scope="module")
def populated(mongo_client: MongoClient[Doc]) -> Iterator[tuple[str, Scripted]]:
    """A database holding the scripted history of two organizations, projected."""
    from analytics.adapters.mongo import ensure_indexes

    name = f"t_analytics_api_{uuid.uuid4().hex[:8]}"
    db = mongo_client[name]
    ensure_indexes(db)
    scripted = scripted_history(utcnow().astimezone(UTC))
    project_directly(db, scripted.history.messages + scripted.other.messages)
    yield name, scripted
    mongo_client.drop_database(name)


def app_settings(**changes: Any) -> Settings:
    """Settings for an app under test: the test servers (``service_env``), checkin
    at ``http://checkin.test:8001``, and ``changes``."""
    defaults = Settings.from_env()
    urls = dataclasses.replace(defaults.public_urls, checkin="http://checkin.test:8001")
    return dataclasses.replace(defaults, public_urls=urls, **changes)


@pytest.fixture
def app(populated: tuple[str, Scripted], service_env: dict[str, str]) -> Iterator[Flask]:
    """The app with explicit settings: the populated database, short live streams."""
    from analytics import create_app

    application = create_app(app_settings(database=populated[0], live_poll_seconds=0.05, live_max_seconds=3))
    yield application
    application.extensions["analytics"].client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def scripted(populated: tuple[str, Scripted]) -> Scripted:
    return populated[1]
