"""Analytics' JSON API (``/api/v1``): the figures behind the dashboard."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, g, render_template

import analytics
from analytics.adapters.mongo import EVENT_FIGURES
from analytics.bootstrap import Context, context_of
from analytics.domain.projections import show_rate
from turnout_common.contracts import ALL_TOPICS_FOR_READINESS
from turnout_common.metrics import MongoFiguresCollector
from turnout_common.runtime import KafkaCheck, mongo_check
from turnout_common.web import ApiError, init_web, operation

bp = Blueprint("api", __name__, url_prefix="/api/v1")
pages = Blueprint("pages", __name__)

COUNTERS = (
    "registered",
    "waitlisted",
    "walk_ins",
    "cancelled",
    "checked_in",
    "first_timers",
    "returning",
    "checked_out",
)


def ctx() -> Context:
    return context_of(current_app)


def public_figures(doc: dict[str, Any]) -> dict[str, Any]:
    counts = {name: int(doc.get(name, 0)) for name in COUNTERS}
    return {
        "event_id": doc["_id"],
        "title": doc.get("title"),
        "kind": doc.get("kind") or doc.get("event_kind"),
        "starts_at": doc.get("starts_at"),
        "ends_at": doc.get("ends_at"),
        "status": doc.get("status"),
        **counts,
        "no_shows": max(0, counts["registered"] - counts["checked_in"]) if doc.get("status") == "ended" else None,
        "show_rate": show_rate(counts["registered"], counts["checked_in"]),
    }


@bp.get("/events")
@operation("Attendance figures of every event of your organization, newest first", auth="view", tags=["attendance"])
def list_events() -> Any:
    docs = ctx().db[EVENT_FIGURES].find({"org_id": g.principal.org_id}).sort("starts_at", -1).limit(1000)
    return {"events": [public_figures(doc) for doc in docs]}


@bp.get("/events/<event_id>/attendance")
@operation(
    "Attendance figures of one event",
    auth="view",
    responses={200: "the figures", 404: "no figures for this event in your organization"},
    tags=["attendance"],
)
def event_attendance(event_id: str) -> Any:
    doc = ctx().db[EVENT_FIGURES].find_one({"_id": event_id, "org_id": g.principal.org_id})
    if doc is None:
        raise ApiError(404, "event_not_found", "no figures for this event in your organization")
    return public_figures(doc)


@pages.get("/")
@operation("Landing page (HTML)", content="text/html", tags=["pages"])
def home() -> str:
    return render_template("home.html")


def init_app(app: Flask) -> None:
    context = context_of(app)
    settings = context.settings
    init_web(
        app,
        service="analytics",
        version=analytics.__version__,
        signer=context.signer,
        readiness=[mongo_check(context.client), KafkaCheck(settings.kafka_bootstrap_servers, ALL_TOPICS_FOR_READINESS)],
        metrics_collector=MongoFiguresCollector("analytics", context.db),
        description="Attendance projections and the organizer dashboard.",
    )
    app.register_blueprint(bp)
    app.register_blueprint(pages)
