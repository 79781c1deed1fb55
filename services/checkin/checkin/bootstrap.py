"""Wires checkin's adapters into the service layer's ``Context``: one MongoDB
client per process, indexes, repositories, caches and the token signer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymongo import MongoClient
from pymongo.database import Database

from checkin.adapters.event_cache import EventCache
from checkin.adapters.mongo import ensure_indexes
from checkin.adapters.repositories import MongoStore
from checkin.adapters.unit_of_work import MongoUnitOfWork
from checkin.config import Settings
from checkin.service_layer.caches import AccessChecks, KioskSessions, RosterCache
from checkin.service_layer.checkins import record_checkins_together
from checkin.service_layer.context import Context
from checkin.service_layer.group_commit import GroupCommit
from turnout_common import mongo
from turnout_common.auth import TokenSigner
from turnout_common.contracts import registry
from turnout_common.types import Doc

if TYPE_CHECKING:
    from flask import Flask

SOURCE = "/turnout/checkin"


@dataclass(slots=True)
class WiredContext(Context):
    """The context as wired on MongoDB: also the client and database, for the
    operations endpoints (readiness, metrics), the CLI and tests' own checks."""

    client: MongoClient[Doc]
    db: Database[Doc]


def build_context(settings: Settings, app_name: str) -> WiredContext:
    client = mongo.connect(settings.mongodb_uri, app_name)
    db = client[settings.database]
    ensure_indexes(db)
    contracts = registry()
    store = MongoStore(db)
    return WiredContext(
        store=store,
        new_uow=lambda: MongoUnitOfWork(client, db, contracts),
        signer=TokenSigner(settings.secret_key),
        settings=settings,
        events=EventCache(store.events),
        kiosk_sessions=KioskSessions(store.kiosks),
        rosters=RosterCache(),
        access=AccessChecks(store.users, store.api_tokens, store.ended_sessions),
        client=client,
        db=db,
    )


def init_app(app: Flask, settings: Settings) -> None:
    """Install the wired context (``create_app`` has configured logging already)."""
    ctx = build_context(settings, "turnout-checkin-web")
    if settings.group_commit:
        ctx.door = GroupCommit(lambda commands: record_checkins_together(ctx, commands))
    app.extensions["checkin"] = ctx


def context_of(app: Flask) -> WiredContext:
    ctx: WiredContext = app.extensions["checkin"]
    return ctx
