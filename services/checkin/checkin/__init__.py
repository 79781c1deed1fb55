"""Turnout check-in service: the door.

``create_app()`` is a flat list of ``init_app`` steps; clients for MongoDB are
created here, after gunicorn forks, never at import time. The settings come
from the environment unless the caller passes them (tests do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from checkin.config import Settings

__version__ = "0.1.0"


def create_app(config: Settings | None = None) -> Flask:
    from checkin import bootstrap
    from checkin.config import Settings
    from checkin.entrypoints import (
        abuse,
        api,
        api_access,
        api_audit,
        api_badges,
        api_greeters,
        api_hours,
        api_imports,
        api_kiosks,
        api_privacy,
        kiosk_page,
        pages,
        pages_audit,
        pages_hours,
        pages_privacy,
        public,
    )
    from turnout_common.web import service_app

    settings = config or Settings.from_env()
    app = service_app(__name__, settings)
    bootstrap.init_app(app, settings)
    abuse.init_app(app)
    api.init_app(app)
    api_kiosks.init_app(app)
    api_access.init_app(app)
    api_imports.init_app(app)
    api_badges.init_app(app)
    api_privacy.init_app(app)
    api_audit.init_app(app)
    api_hours.init_app(app)
    api_greeters.init_app(app)
    pages.init_app(app)
    pages_privacy.init_app(app)
    pages_audit.init_app(app)
    pages_hours.init_app(app)
    kiosk_page.init_app(app)
    public.init_app(app)
    return app
