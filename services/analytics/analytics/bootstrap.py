"""Wires analytics' adapters: one MongoDB client per process, indexes, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from pymongo import MongoClient
from pymongo.database import Database

from analytics.adapters.mongo import ensure_indexes
from analytics.config import Settings
from turnout_common import logs
from turnout_common.auth import TokenSigner
from turnout_common.mongo import connect


@dataclass(slots=True)
class Context:
    client: MongoClient[dict[str, Any]]
    db: Database[dict[str, Any]]
    signer: TokenSigner
    settings: Settings


def build_context(settings: Settings, app_name: str) -> Context:
    client = connect(settings.mongodb_uri, app_name)
    db = client[settings.database]
    ensure_indexes(db)
    return Context(client, db, TokenSigner(settings.secret_key), settings)


def init_app(app: Flask, settings: Settings) -> None:
    logs.configure_logging("analytics", settings.log_level)
    app.extensions["analytics"] = build_context(settings, "turnout-analytics-web")


def context_of(app: Flask) -> Context:
    ctx: Context = app.extensions["analytics"]
    return ctx
