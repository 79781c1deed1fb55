"""gunicorn settings for the analytics web process (all from the environment)."""

import os

from turnout_common.gunicorn_hooks import child_exit, on_starting  # noqa: F401 - gunicorn hooks

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8003')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
# Live views hold a thread per open Server-Sent Events stream (mostly asleep): more threads than the others.
threads = int(os.environ.get("ANALYTICS_GUNICORN_THREADS", os.environ.get("GUNICORN_THREADS", "16")))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
keepalive = 5
accesslog = None  # the app writes JSON access lines itself, with the request id
errorlog = "-"
preload_app = False  # Kafka and MongoDB clients must be created after fork
