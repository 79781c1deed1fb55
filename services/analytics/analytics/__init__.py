"""Turnout analytics service: archive, projections and the dashboard.

``create_app(config)`` is a flat list of ``init_app`` steps; MongoDB clients
are created here, after gunicorn forks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from analytics.config import Settings

__version__ = "0.1.0"


def create_app(config: Settings | None = None) -> Flask:
    """The web app, with ``config`` (by default: the settings in the environment)."""
    from analytics import bootstrap
    from analytics.config import Settings
    from analytics.entrypoints import api, pages
    from turnout_common.web import service_app

    settings = config if config is not None else Settings.from_env()
    app = service_app(__name__, settings)
    bootstrap.init_app(app, settings)
    api.init_app(app)
    pages.init_app(app)
    return app
