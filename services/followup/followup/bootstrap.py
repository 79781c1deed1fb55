"""Wires follow-up's adapters: one MongoDB client per process, indexes,
link tokens, the templates and (for the worker) the mail transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from followup.adapters.mongo import ensure_indexes
from followup.adapters.rendering import JinjaRenderer
from followup.adapters.repositories import MongoStore, MongoTransactions
from followup.adapters.signals import MongoWorkSignals
from followup.adapters.smtp import SmtpTransport
from followup.config import Settings
from followup.domain.links import LinkTokens
from followup.service_layer.context import Services
from followup.service_layer.ports import MailTransport
from turnout_common import mongo
from turnout_common.auth import TokenSigner
from turnout_common.contracts import registry
from turnout_common.types import Doc

if TYPE_CHECKING:
    from flask import Flask


@dataclass
class MongoServices(Services):
    """The services wired on MongoDB; the client and database stay here, for the
    consumer, the health checks and the metrics (never for the use cases)."""

    client: MongoClient[Doc] | None = None
    db: Database[Doc] | None = None

    @property
    def mongo(self) -> tuple[MongoClient[Doc], Database[Doc]]:
        assert self.client is not None and self.db is not None
        return self.client, self.db


def make_transport(settings: Settings) -> MailTransport:
    """SMTP (``SMTP_*``) or an HTTP provider API (``FOLLOWUP_HTTP_API_*``), per ``FOLLOWUP_TRANSPORT``."""
    if settings.transport == "http":
        # requests is imported only where mail goes out over HTTP: the web and an
        # SMTP worker never use it (about 10 MB each).
        from followup.adapters.http_provider import HttpProviderTransport

        return HttpProviderTransport(
            settings.http_api_url,
            settings.http_api_token,
            settings.http_message_stream,
            timeout=settings.smtp_timeout_seconds,
        )
    return SmtpTransport(
        settings.smtp_host,
        settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
        ca_file=settings.smtp_tls_ca_file,
    )


def build_services(
    settings: Settings,
    app_name: str,
    *,
    with_transport: bool = False,
    transport: MailTransport | None = None,
    client: MongoClient[Doc] | None = None,
) -> MongoServices:
    client = client or mongo.connect(settings.mongodb_uri, app_name)
    db = client[settings.database]
    ensure_indexes(db)
    if transport is None and with_transport:
        transport = make_transport(settings)
    contracts = registry()
    connected = client
    return MongoServices(
        store=MongoStore(db),
        transactions=MongoTransactions(lambda: mongo.UnitOfWork(connected, db, contracts)),
        storage_errors=(PyMongoError,),
        signals=MongoWorkSignals(db),
        client=client,
        db=db,
        settings=settings,
        links=LinkTokens(settings.secret_key),
        renderer=JinjaRenderer(),
        transport=transport,
    )


@dataclass(slots=True)
class Context:
    """The web app's wiring: the services plus the session-token verifier."""

    services: MongoServices
    signer: TokenSigner

    @property
    def client(self) -> MongoClient[Doc]:
        return self.services.mongo[0]

    @property
    def db(self) -> Database[Doc]:
        return self.services.mongo[1]

    @property
    def settings(self) -> Settings:
        return self.services.settings


def build_context(settings: Settings, app_name: str) -> Context:
    return Context(build_services(settings, app_name), TokenSigner(settings.secret_key))


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["followup"] = build_context(settings, "turnout-followup-web")


def context_of(app: Flask) -> Context:
    ctx: Context = app.extensions["followup"]
    return ctx
