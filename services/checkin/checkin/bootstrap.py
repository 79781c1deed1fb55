"""Wires checkin's adapters: one MongoDB client per process, indexes, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask
from pymongo import MongoClient
from pymongo.database import Database

from checkin.adapters.event_cache import EventCache
from checkin.adapters.mongo import ensure_indexes
from checkin.config import Settings
from turnout_common import logs, mongo
from turnout_common.auth import TokenSigner
from turnout_common.contracts import ContractRegistry, registry
from turnout_common.mongo import UnitOfWork

if TYPE_CHECKING:
    from checkin.service_layer.access import AccessChecks
    from checkin.service_layer.kiosks import KioskSessions, RosterCache

SOURCE = "/turnout/checkin"


@dataclass(slots=True)
class Context:
    """Everything a checkin use case needs from the outside world."""

    client: MongoClient[dict[str, Any]]
    db: Database[dict[str, Any]]
    contracts: ContractRegistry
    signer: TokenSigner
    settings: Settings
    events: EventCache
    kiosk_sessions: KioskSessions
    rosters: RosterCache
    access: AccessChecks

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.client, self.db, self.contracts)


def build_context(settings: Settings, app_name: str) -> Context:
    client = mongo.connect(settings.mongodb_uri, app_name)
    db = client[settings.database]
    ensure_indexes(db)
    from checkin.service_layer.access import AccessChecks
    from checkin.service_layer.kiosks import KioskSessions, RosterCache

    return Context(
        client,
        db,
        registry(),
        TokenSigner(settings.secret_key),
        settings,
        EventCache(db),
        KioskSessions(db),
        RosterCache(),
        AccessChecks(db),
    )


def init_app(app: Flask, settings: Settings) -> None:
    logs.configure_logging("checkin", settings.log_level)
    app.extensions["checkin"] = build_context(settings, "turnout-checkin-web")


def context_of(app: Flask) -> Context:
    ctx: Context = app.extensions["checkin"]
    return ctx
