"""gunicorn server hooks shared by the three web processes."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import pkgutil
import shutil
import tempfile
from typing import Any

log = logging.getLogger(__name__)

# Entry-point modules the web app never imports (they are other processes).
NOT_WEB = frozenset({"worker", "relay", "cli"})


def on_starting(server: Any) -> None:
    # prometheus_client's multiprocess mode keeps one file per worker; the
    # directory must exist, be private to this server, and start empty.
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="turnout-prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    if server.cfg.workers > 1:  # with one worker there is nothing to share (measured: +7-9 MB)
        preload_web_modules(str(getattr(server.app, "app_uri", None) or server.cfg.wsgi_app or ""))


def preload_web_modules(wsgi_app: str) -> list[str]:
    """Import the web app's modules in the master, without creating the app.

    ``preload_app`` stays off (MongoDB and Kafka clients are created after the
    fork), but the code can be loaded before it: the workers then share its
    pages with the master (copy-on-write) instead of each loading its own
    copy, and ``gc.freeze()`` keeps the collector from writing to (and so
    copying) those objects. ``wsgi_app`` is gunicorn's ``checkin.wsgi:app``;
    returns the modules imported. Anything failing here is left for the
    worker to import (and report) as before.
    """
    package = wsgi_app.split(":", 1)[0].split(".", 1)[0]
    if not package:
        return []
    names = ["turnout_common.web", f"{package}.bootstrap", f"{package}.config"]
    try:
        entrypoints = importlib.import_module(f"{package}.entrypoints")
        names += [
            f"{package}.entrypoints.{info.name}"
            for info in pkgutil.iter_modules(entrypoints.__path__)
            if info.name not in NOT_WEB
        ]
    except ImportError:
        log.warning("could not preload %s's web modules", package, exc_info=True)
        return []
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:
            log.warning("could not preload %s", name, exc_info=True)
    gc.collect()
    gc.freeze()
    return loaded


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
