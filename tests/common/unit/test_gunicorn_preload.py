"""The gunicorn master loads the web app's code before forking its workers (so
they share it), but creates nothing the workers must own: no app, no client,
no thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, sys, threading
from turnout_common.gunicorn_hooks import preload_web_modules
loaded = preload_web_modules(sys.argv[1])
print(json.dumps({
    "loaded": loaded,
    "threads": threading.active_count(),
    "wsgi": "checkin.wsgi" in sys.modules,
    "worker": "checkin.entrypoints.worker" in sys.modules,
}))
"""


def test_the_master_loads_the_web_modules_and_creates_nothing(tmp_path: object) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    answer = subprocess.run(
        [sys.executable, "-c", PROBE, "checkin.wsgi:app"], env=env, capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 0, answer.stderr
    report = json.loads(answer.stdout)
    assert "checkin.entrypoints.api" in report["loaded"]
    assert "checkin.entrypoints.pages" in report["loaded"]
    assert not report["wsgi"]  # the app itself is created in each worker, after the fork
    assert not report["worker"]  # other processes' entry points are not the web's
    assert report["threads"] == 1  # no client (MongoDB or Kafka monitors run threads)
