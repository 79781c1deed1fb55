"""Server-rendered organizer pages."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from turnout_common.web import operation

bp = Blueprint("pages", __name__)


@bp.get("/")
@operation("Landing page (HTML)", content="text/html", tags=["pages"])
def home() -> str:
    return render_template("home.html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
