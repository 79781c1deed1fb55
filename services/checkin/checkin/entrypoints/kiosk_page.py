"""The tablet kiosk page, its service worker and static assets."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("kiosk_page", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
