"""Wires analytics' adapters: one MongoDB client per process, indexes, tokens."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g
from pymongo import MongoClient
from pymongo.database import Database

from analytics.adapters.dashboard import MongoDashboard
from analytics.adapters.mongo import ensure_indexes
from analytics.config import Settings
from analytics.service_layer.ports import DashboardQueries
from turnout_common.auth import TokenSigner
from turnout_common.mongo import connect
from turnout_common.types import Doc


@dataclass(slots=True)
class Context:
    client: MongoClient[Doc]
    db: Database[Doc]
    signer: TokenSigner
    settings: Settings

    def dashboard(self) -> DashboardQueries:
        """A dashboard reader on the projections' live generation (looked up on its first query)."""
        return MongoDashboard(self.db)


def build_context(settings: Settings, app_name: str) -> Context:
    client = connect(settings.mongodb_uri, app_name)
    db = client[settings.database]
    ensure_indexes(db)
    return Context(client, db, TokenSigner(settings.secret_key), settings)


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["analytics"] = build_context(settings, "turnout-analytics-web")


def context_of(app: Flask) -> Context:
    ctx: Context = app.extensions["analytics"]
    return ctx


def dashboard() -> DashboardQueries:
    """This request's dashboard reader: one per request, so the request reads one
    generation of the projections, looked up once."""
    if "dashboard" not in g:
        g.dashboard = context_of(current_app).dashboard()
    queries: DashboardQueries = g.dashboard
    return queries
