"""Kiosk pairing, fleet and the kiosk's own API."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api_kiosks", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
