"""Wires follow-up's adapters: one MongoDB client per process, indexes, tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from pymongo import MongoClient
from pymongo.database import Database

from followup.adapters.mongo import ensure_indexes
from followup.config import Settings
from turnout_common import logs, mongo
from turnout_common.auth import TokenSigner


@dataclass(slots=True)
class Context:
    client: MongoClient[dict[str, Any]]
    db: Database[dict[str, Any]]
    signer: TokenSigner
    settings: Settings


def build_context(settings: Settings, app_name: str) -> Context:
    client = mongo.connect(settings.mongodb_uri, app_name)
    db = client[settings.database]
    ensure_indexes(db)
    return Context(client, db, TokenSigner(settings.secret_key), settings)


def init_app(app: Flask, settings: Settings) -> None:
    logs.configure_logging("followup", settings.log_level)
    app.extensions["followup"] = build_context(settings, "turnout-followup-web")


def context_of(app: Flask) -> Context:
    ctx: Context = app.extensions["followup"]
    return ctx
