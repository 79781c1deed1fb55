"""Turnout analytics service: archive, projections and the dashboard.

``create_app()`` is a flat list of ``init_app`` steps; MongoDB clients are
created here, after gunicorn forks.
"""

from __future__ import annotations

from flask import Flask

__version__ = "0.1.0"


def create_app() -> Flask:
    from analytics import bootstrap
    from analytics.config import Settings
    from analytics.entrypoints import api, pages

    settings = Settings.from_env()
    app = Flask(__name__, template_folder="entrypoints/templates", static_folder="entrypoints/static")
    app.config["SETTINGS"] = settings
    bootstrap.init_app(app, settings)
    api.init_app(app)
    pages.init_app(app)
    return app
