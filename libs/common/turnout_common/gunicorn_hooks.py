"""gunicorn server hooks shared by the three web processes."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any


def on_starting(server: Any) -> None:
    # prometheus_client's multiprocess mode keeps one file per worker; the
    # directory must exist, be private to this server, and start empty.
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="turnout-prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
