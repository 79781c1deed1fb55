"""Server-rendered organizer pages: sign-in, events (and series), an event (edit, cancel), the
door staff view, CSV imports and printable badges.

Every page is scoped to the signed-in organization (another organization's
event or registration is a 404 page). Not signed in: a redirect to
``/login?next=<where you were going>``.

CSRF: the session cookie is ``SameSite=Lax`` (browsers don't send it on
cross-site POSTs), and every POST here also checks that its ``Origin`` header
(or, without one, its ``Referer``) is this site: a POST carrying neither, or
another site's, is refused with 403. No token is needed in the forms.
"""

from __future__ import annotations

from flask import Flask

from checkin.entrypoints import (
    pages_auth,
    pages_badges,
    pages_event,
    pages_event_edit,
    pages_events,
    pages_greeters,
)
from checkin.entrypoints.pages_common import bp

# The route modules add their views to ``bp`` when imported.
ROUTES = (pages_auth, pages_events, pages_event, pages_event_edit, pages_badges, pages_greeters)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
