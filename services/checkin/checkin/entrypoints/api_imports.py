"""CSV imports of registrations (``/api/v1``): upload, progress, report.

Uploads are ``multipart/form-data`` (field ``file``, optional ``format`` and
``mapping``) or a raw ``text/csv`` body (``?format=&filename=&mapping=``), up
to 16 MB. The upload is parsed in the request and queued; the checkin worker
registers the rows (see ``service_layer.imports``).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from checkin.bootstrap import context_of
from checkin.domain import imports as parser
from checkin.domain.imports import ImportRejected
from checkin.domain.model import RuleBroken
from checkin.service_layer import imports
from checkin.service_layer.context import Context
from turnout_common.clock import to_rfc3339, to_rfc3339_or_none
from turnout_common.web import ApiError, download, operation

bp = Blueprint("api_imports", __name__, url_prefix="/api/v1")

MAX_IMPORT_BYTES = 16 * 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # boundaries and the small form fields around the file
CSV_MIMETYPES = frozenset(
    {"text/csv", "application/csv", "text/plain", "text/tab-separated-values", "application/vnd.ms-excel"}
)
STATUS_BY_CODE = {"event_not_found": 404, "import_not_found": 404, "event_closed": 409}
TAGS = ["imports"]

UPLOAD_RESPONSES = {
    202: "queued: the worker registers the rows; poll progress_url",
    400: "no file, empty file, not a CSV, unknown format, no usable mapping, or columns missing",
    404: "no such event in your organization",
    409: "the event is not open for registration",
    413: "the file is larger than 16 MB",
    415: "send multipart/form-data (field 'file') or a text/csv body",
}


def ctx() -> Context:
    return context_of(current_app)


class ImportApiError(ApiError):
    """An ``ApiError`` whose body also lists the file's headers, the missing ones, a suggested mapping."""

    def __init__(self, status: int, error: ImportRejected) -> None:
        super().__init__(status, error.code, error.message, error.field)
        self.details = error.details()

    def to_response(self) -> tuple[Response, int]:
        body = {"error": {"code": self.code, "message": self.message, "field": self.field, **self.details}}
        return jsonify(body), self.status


@bp.errorhandler(RuleBroken)
def _rule_broken(error: RuleBroken) -> tuple[Response, int]:
    if isinstance(error, ImportRejected):
        return ImportApiError(400, error).to_response()
    return ApiError(STATUS_BY_CODE.get(error.code, 409), error.code, error.message, error.field).to_response()


# -- reading the upload ------------------------------------------------------------


def _mapping(text: str | None) -> dict[str, Any] | None:
    if text is None or not text.strip():
        return None
    try:
        mapping = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_mapping", "mapping must be a JSON object of field -> column", "mapping") from exc
    if not isinstance(mapping, dict) or not all(isinstance(value, str | None) for value in mapping.values()):
        raise ApiError(400, "invalid_mapping", "mapping must be a JSON object of field -> column name", "mapping")
    return mapping


def _upload() -> tuple[bytes, str, str, dict[str, Any] | None]:
    """(raw bytes, filename, format, mapping) from a multipart or raw CSV request."""
    request.max_content_length = MAX_IMPORT_BYTES + MULTIPART_SLACK
    request.max_form_memory_size = MAX_IMPORT_BYTES  # a file sent as a plain form field
    try:
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("file")
            if upload is not None:
                raw = upload.read(MAX_IMPORT_BYTES + 1)
                filename = upload.filename or "upload.csv"
            elif request.form.get("file"):
                raw = request.form["file"].encode("utf-8")
                filename = "upload.csv"
            else:
                raise ApiError(400, "missing_file", "send the CSV in the multipart field 'file'", "file")
            fmt = request.form.get("format") or request.args.get("format") or "auto"
            mapping_text = request.form.get("mapping") or request.args.get("mapping")
        elif request.mimetype in CSV_MIMETYPES:
            raw = request.get_data(cache=False)
            filename = request.args.get("filename") or "upload.csv"
            fmt = request.args.get("format") or "auto"
            mapping_text = request.args.get("mapping")
        elif not request.mimetype and not request.content_length:
            raise ApiError(400, "missing_file", "send a CSV file (multipart field 'file' or a text/csv body)", "file")
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send the CSV as multipart/form-data (field 'file') or as a text/csv body",
            )
    except RequestEntityTooLarge as exc:
        raise ApiError(413, "file_too_large", f"the file is larger than {MAX_IMPORT_BYTES} bytes (16 MB)") from exc
    if len(raw) > MAX_IMPORT_BYTES:
        raise ApiError(413, "file_too_large", f"the file is larger than {MAX_IMPORT_BYTES} bytes (16 MB)")
    if not raw:
        raise ApiError(400, "empty_file", "the file is empty", "file")
    return raw, filename, fmt.strip().casefold(), _mapping(mapping_text)


# -- views ----------------------------------------------------------------------------


def _progress_url(job_id: str) -> str:
    return url_for("api_imports.get_import", import_id=job_id)


def public_import(job: dict[str, Any], *, with_rows: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job["_id"],
        "event_id": job["event_id"],
        "filename": job["filename"],
        "format": job["format"],
        "status": job["status"],
        "total": job["total"],
        "processed": job["processed"],
        "percent": imports.percent(job),
        "created": job["created"],
        "already_registered": job["already_registered"],
        "failed": job["failed"],
        "skipped": job["skipped"],
        "rejected_at_parse": job["rejected_at_parse"],
        "name_only": job.get("name_only", 0),
        "waitlisted": job.get("waitlisted", 0),
        "failure": job.get("failure"),
        "mapping": job.get("mapping"),
        "created_by": job.get("created_by"),
        "created_at": to_rfc3339(job["created_at"]),
        "started_at": to_rfc3339_or_none(job.get("started_at")),
        "finished_at": to_rfc3339_or_none(job.get("finished_at")),
        "progress_url": _progress_url(job["_id"]),
        "errors_url": url_for("api_imports.import_errors_csv", import_id=job["_id"]),
    }
    if with_rows:
        errors = imports.sorted_problems(job, "errors")
        body["errors"] = [{"row": e["row"], "reason": e["reason"]} for e in errors]
        body["errors_truncated"] = job.get("errors_count", 0) > len(errors)
        body["skipped_rows"] = [
            {"row": s["row"], "reason": s["reason"]} for s in imports.sorted_problems(job, "skipped_rows")
        ]
    return body


@bp.post("/events/<event_id>/imports")
@operation(
    "Import registrations from a CSV (Eventbrite attendees, Meetup RSVPs, or any CSV with a column mapping)",
    auth="manage",
    responses=UPLOAD_RESPONSES,
    query={
        "format": "auto (default), eventbrite, meetup or generic",
        "filename": "the file's name, for a raw text/csv body",
        "mapping": 'for generic CSVs, JSON {"first_name": "<column>", "email": "<column>", ...}',
    },
    tags=TAGS,
)
def create_import(event_id: str) -> Any:
    raw, filename, fmt, mapping = _upload()
    job = imports.start_import(
        ctx(), g.principal.org_id, event_id, raw, filename, fmt, mapping, user_id=g.principal.subject_id
    )
    body = {
        "id": job["_id"],
        "status": job["status"],
        "format": job["format"],
        "total": job["total"],
        "to_register": job["pending"],
        "to_register_name_only": job.get("name_only_rows", 0),
        "rejected_at_parse": job["rejected_at_parse"],
        "skipped": job["skipped"],
        "progress_url": _progress_url(job["_id"]),
    }
    return body, 202, {"Location": body["progress_url"]}


@bp.post("/imports/preview")
@operation(
    "Preview a CSV: detected format, headers, first 5 rows and a suggested column mapping",
    auth="manage",
    responses={200: "the preview", 400: "no file, empty file or not a CSV", 413: "larger than 16 MB"},
    tags=TAGS,
)
def preview_import() -> Any:
    raw, filename, _, _ = _upload()
    return {"filename": parser.safe_filename(filename), **parser.preview(raw)}


@bp.get("/imports/<import_id>")
@operation(
    "An import's progress and per-row report (first 1,000 failed rows)",
    auth="manage",
    responses={200: "progress and report", 404: "not in your organization"},
    tags=TAGS,
)
def get_import(import_id: str) -> Any:
    return public_import(imports.get_import(ctx(), g.principal.org_id, import_id))


@bp.get("/imports/<import_id>/errors.csv")
@operation(
    "An import's failed rows as CSV (row, reason, email, name)",
    auth="manage",
    responses={200: "the report", 404: "not in your organization"},
    tags=TAGS,
    content="text/csv",
)
def import_errors_csv(import_id: str) -> Response:
    job = imports.get_import(ctx(), g.principal.org_id, import_id)
    text = parser.problems_csv(imports.sorted_problems(job, "errors"))
    return download(text.encode("utf-8-sig"), "text/csv", f"import-{job['_id']}-errors.csv")


@bp.get("/events/<event_id>/imports")
@operation(
    "An event's imports, newest first",
    auth="manage",
    responses={200: "the imports", 404: "no such event in your organization"},
    tags=TAGS,
)
def list_imports(event_id: str) -> Any:
    found = imports.list_imports(ctx(), g.principal.org_id, event_id)
    return {"imports": [public_import(job, with_rows=False) for job in found]}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
