"""gunicorn settings for the followup web process (all from the environment)."""

from turnout_common.gunicorn_settings import *  # noqa: F403 - the shared settings and server hooks
from turnout_common.gunicorn_settings import bind_to

bind = bind_to(8002)
