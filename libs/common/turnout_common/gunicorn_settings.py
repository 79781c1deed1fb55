"""gunicorn settings shared by the three web processes (all from the environment).

A service's ``gunicorn.conf.py`` star-imports this module (settings and server
hooks) and sets ``bind`` with its own default port (and ``threads`` if it
needs more than the others).
"""

from __future__ import annotations

import os

from turnout_common.gunicorn_hooks import child_exit, on_starting

__all__ = [
    "accesslog",
    "child_exit",
    "control_socket_disable",
    "errorlog",
    "graceful_timeout",
    "keepalive",
    "on_starting",
    "preload_app",
    "threads",
    "timeout",
    "worker_class",
    "workers",
]


def bind_to(default_port: int) -> str:
    """``BIND``, else loopback on ``PORT`` (else the service's own port)."""
    return os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', str(default_port))}")


def thread_count(default: int = 4, variable: str | None = None) -> int:
    """Threads per worker: ``variable`` (a service's own setting), else ``GUNICORN_THREADS``, else ``default``."""
    own = os.environ.get(variable) if variable else None
    return int(own if own else os.environ.get("GUNICORN_THREADS", str(default)))


workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = thread_count()
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
keepalive = 5
accesslog = None  # the app writes JSON access lines itself, with the request id
errorlog = "-"
preload_app = False  # Kafka and MongoDB clients must be created after fork
# gunicorn 27's control socket lives at one path per user (~/.gunicorn/gunicorn.ctl):
# the three services' masters (and tests' stacks beside them) would take it from
# each other. Nothing here uses it.
control_socket_disable = True
