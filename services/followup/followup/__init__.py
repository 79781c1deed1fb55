"""Turnout follow-up service: contacts, consent and the emails after an event.

``create_app()`` is a flat list of ``init_app`` steps; MongoDB clients are
created here, after gunicorn forks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from followup.config import Settings

__version__ = "0.2.0"


def create_app(config: Settings | None = None) -> Flask:
    """The web app, configured by ``config`` (by default, from the environment)."""
    from followup import bootstrap
    from followup.config import Settings
    from followup.entrypoints import api, pages, public
    from turnout_common.web import service_app

    settings = config if config is not None else Settings.from_env()
    app = service_app(__name__, settings)
    bootstrap.init_app(app, settings)
    api.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(pages.bp)
    return app
