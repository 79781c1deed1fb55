"""CSV imports of registrations."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api_imports", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
