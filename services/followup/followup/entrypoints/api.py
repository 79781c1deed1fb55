"""Follow-up's JSON API (``/api/v1``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, g, render_template, request

import followup
from followup.adapters.mongo import CONTACTS
from followup.bootstrap import Context, context_of
from turnout_common.contracts import ALL_TOPICS_FOR_READINESS
from turnout_common.metrics import MongoFiguresCollector
from turnout_common.runtime import KafkaCheck, mongo_check
from turnout_common.web import ApiError, init_web, operation

bp = Blueprint("api", __name__, url_prefix="/api/v1")
pages = Blueprint("pages", __name__)


def ctx() -> Context:
    return context_of(current_app)


@bp.get("/contacts")
@operation(
    "Contacts of your organization (built from registrations), with consent",
    auth="manage",
    query={"limit": "1-1000, default 100", "offset": "default 0"},
    tags=["contacts"],
)
def list_contacts() -> Any:
    try:
        limit = int(request.args.get("limit", "100"))
        skip = int(request.args.get("offset", "0"))
    except ValueError as exc:
        raise ApiError(400, "invalid_query", "limit and offset must be integers") from exc
    if not 1 <= limit <= 1000 or skip < 0:
        raise ApiError(400, "invalid_query", "limit must be 1-1000 and offset >= 0")
    docs = ctx().db[CONTACTS].find({"org_id": g.principal.org_id}).sort("_id", 1).skip(skip).limit(limit)
    return {
        "contacts": [
            {
                "person_id": doc["_id"],
                "first_name": doc.get("first_name"),
                "last_name": doc.get("last_name"),
                "email": doc.get("email"),
                "consent_email": bool(doc.get("consent_email")),
                "unsubscribed": bool(doc.get("unsubscribed")),
            }
            for doc in docs
        ]
    }


@pages.get("/")
@operation("Landing page (HTML)", content="text/html", tags=["pages"])
def home() -> str:
    return render_template("home.html")


def init_app(app: Flask) -> None:
    context = context_of(app)
    settings = context.settings
    init_web(
        app,
        service="followup",
        version=followup.__version__,
        signer=context.signer,
        readiness=[mongo_check(context.client), KafkaCheck(settings.kafka_bootstrap_servers, ALL_TOPICS_FOR_READINESS)],
        metrics_collector=MongoFiguresCollector("followup", context.db),
        description="Contacts, consent and the follow-up emails after each event.",
    )
    app.register_blueprint(bp)
    app.register_blueprint(pages)
