"""The tablet kiosk page, its service worker and static assets.

Everything the kiosk needs is served by this app (no CDN):

- ``GET /kiosk``: the HTML shell (one page; the screens are drawn by ES modules).
- ``GET /kiosk/static/<file>``: its JS, CSS, strings, manifest and icons, from
  ``entrypoints/static/kiosk/`` (``vendor/jsQR.js`` is copied there from npm by
  ``services/checkin/frontend/copy-vendor.mjs`` and may be missing: the page copes).
- ``GET /kiosk/sw.js``: the service worker that keeps the shell and assets for
  offline use. The server writes the build id (a digest of the assets) and the
  list of assets into it, so any change to an asset installs a new worker.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from flask import Blueprint, Flask, Response, render_template, send_from_directory

from checkin.entrypoints import pages_labels
from turnout_common.web import operation

bp = Blueprint("kiosk_page", __name__)

STATIC_DIR = Path(__file__).resolve().parent / "static" / "kiosk"
SHELL_URL = "/kiosk"
STATIC_URL = "/kiosk/static"
SW_SOURCE = "sw.js"
MANIFEST_PLACEHOLDER = '{"build": "dev", "assets": []}'

# The kiosk only talks to its own origin; the camera is the one device it may use.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# Types that Python's mimetypes table may not know (or may spell differently).
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


class _Build:
    """The assets' digest and list, recomputed only when a file changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._value: tuple[str, list[str]] = ("dev", [])

    def _files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            path
            for path in self.root.rglob("*")
            if path.is_file() and path.name != SW_SOURCE and not path.name.startswith(".")
        )

    def current(self) -> tuple[str, list[str]]:
        files = self._files()
        stamp = tuple(
            (path.relative_to(self.root).as_posix(), path.stat().st_mtime_ns, path.stat().st_size) for path in files
        )
        with self._lock:
            if stamp == self._stamp:
                return self._value
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.relative_to(self.root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
        sw = self.root / SW_SOURCE
        if sw.is_file():
            digest.update(sw.read_bytes())
        assets = [f"{STATIC_URL}/{path.relative_to(self.root).as_posix()}" for path in files]
        value = (digest.hexdigest()[:16], assets)
        with self._lock:
            self._stamp, self._value = stamp, value
        return value


_build = _Build(STATIC_DIR)


def _no_store_cache(response: Response) -> Response:
    # Revalidate every time (ETag / Last-Modified make that cheap); the service
    # worker, not the HTTP cache, is what keeps the kiosk working offline.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get(SHELL_URL)
@operation("The check-in kiosk page for tablets (HTML shell)", content="text/html", tags=["kiosk page"])
def kiosk() -> Response:
    build, _ = _build.current()
    response = Response(render_template("kiosk.html", build=build, static=STATIC_URL), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    response.headers["X-Frame-Options"] = "DENY"
    return _no_store_cache(response)


@bp.get(f"{SHELL_URL}/sw.js")
@operation("The kiosk page's service worker (scope /kiosk)", content="text/javascript", tags=["kiosk page"])
def service_worker() -> Response:
    build, assets = _build.current()
    source = (STATIC_DIR / SW_SOURCE).read_text(encoding="utf-8")
    manifest = json.dumps({"build": build, "assets": assets})
    response = Response(source.replace(MANIFEST_PLACEHOLDER, manifest, 1), mimetype="text/javascript")
    # The worker lives at /kiosk/sw.js, whose default scope is /kiosk/; the page
    # itself is /kiosk (no slash), so the worker must be allowed the wider scope.
    response.headers["Service-Worker-Allowed"] = SHELL_URL
    return _no_store_cache(response)


@bp.get(f"{STATIC_URL}/<path:filename>")
@operation(
    "The kiosk page's assets: ES modules, CSS, strings, manifest, icons, vendored jsQR",
    content="*/*",  # each file its own type (CONTENT_TYPES)
    responses={200: "the file", 404: "no such file"},
    tags=["kiosk page"],
)
def asset(filename: str) -> Response:
    response = send_from_directory(STATIC_DIR, filename, max_age=0)
    content_type = CONTENT_TYPES.get(Path(filename).suffix.lower())
    if content_type is not None:
        response.headers["Content-Type"] = content_type
    return _no_store_cache(response)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # The name label page prints what the kiosk prints, with the kiosk's label stylesheet.
    pages_labels.init_app(app)
