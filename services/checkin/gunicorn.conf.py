"""gunicorn settings for the checkin web process (all from the environment)."""

from turnout_common.gunicorn_settings import *  # noqa: F403 - the shared settings and server hooks
from turnout_common.gunicorn_settings import bind_to, thread_count

bind = bind_to(8001)
# The door's scans that arrive together are written in one transaction per
# process (service_layer/group_commit.py): the more threads one process has,
# the larger its batches. One worker with 8 threads wrote a check-in with
# 10.4 ms of CPU across the stack at 8 kiosks and 9.0 ms at 32, where two
# workers with 4 threads each took 12.7 and 10.8 ms (bench/README.md, third
# pass); the web's own CPU (~2 ms per check-in) keeps one process's core far
# from full at the database's ceiling. ``CHECKIN_GUNICORN_THREADS``, else
# ``GUNICORN_THREADS``, else 8.
threads = thread_count(8, "CHECKIN_GUNICORN_THREADS")
