"""gunicorn settings for the analytics web process (all from the environment)."""

from turnout_common.gunicorn_settings import *  # noqa: F403 - the shared settings and server hooks
from turnout_common.gunicorn_settings import bind_to, thread_count

bind = bind_to(8003)
# Live views hold a thread per open Server-Sent Events stream (mostly asleep): more threads than the others.
threads = thread_count(16, "ANALYTICS_GUNICORN_THREADS")
