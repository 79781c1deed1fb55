"""Organizer pages (server-rendered, no CDN): a gathering's messages with
their status, and one message exactly as sent. Sign in on checkin: the
session cookie is shared by every service on the same host."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, redirect, render_template, request

from followup.bootstrap import context_of
from followup.service_layer import organizer
from followup.service_layer.organizer import STATUSES
from turnout_common.web import ApiError, operation

bp = Blueprint("pages", __name__)
HTML = "text/html"

# The email's own HTML, shown in the message page's sandboxed frame: its inline
# styles apply (the pages' default policy blocks them), nothing else loads or
# runs, and only this site's pages may frame it.
PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-ancestors 'self'; sandbox"
NOT_RENDERED = "<!doctype html><title>Not rendered yet</title><p>Not rendered yet: it is rendered when it is sent.</p>"


@bp.errorhandler(ApiError)
def _page_error(error: ApiError) -> Any:
    """A signed-out organizer is sent to sign in on checkin, and brought back here."""
    if error.status == 401:
        checkin = context_of(current_app).settings.public_urls.of("checkin").rstrip("/")
        return redirect(f"{checkin}/login?next={quote(request.url, safe='')}")
    response: tuple[Response, int] = error.to_response()
    return response


@bp.get("/")
@operation("Landing page (HTML)", content=HTML, tags=["pages"])
def home() -> str:
    return render_template("home.html")


@bp.get("/events/<event_id>/messages")
@operation(
    "A gathering's follow-up messages with their status (HTML)",
    content=HTML,
    auth="view",
    query={"status": "only this status", "offset": "default 0"},
    responses={200: "the page", 404: "not in your organization"},
    tags=["pages"],
)
def messages_page(event_id: str) -> str:
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_query", f"status must be one of {', '.join(STATUSES)}", field="status")
    try:
        offset = max(0, int(request.args.get("offset", "0")))
    except ValueError as exc:
        raise ApiError(400, "invalid_query", "offset must be an integer", field="offset") from exc
    listing = organizer.list_messages(
        context_of(current_app).services, g.principal.org_id, event_id, limit=200, offset=offset, status=status
    )
    return render_template("messages.html", listing=listing, status=status, statuses=list(STATUSES), offset=offset)


@bp.get("/messages/<followup_id>")
@operation(
    "One follow-up message as sent (HTML): headers, text and the HTML in a sandboxed frame",
    content=HTML,
    auth="view",
    responses={200: "the page", 404: "not in your organization"},
    tags=["pages"],
)
def message_page(followup_id: str) -> Any:
    detail = organizer.message_detail(context_of(current_app).services, g.principal.org_id, followup_id)
    return render_template("message.html", message=detail)


@bp.get("/messages/<followup_id>/preview")
@operation(
    "One follow-up message's HTML as sent, for the sandboxed frame of its page (HTML)",
    content=HTML,
    auth="view",
    responses={200: "the email's HTML (or a note that it is not rendered yet)", 404: "not in your organization"},
    tags=["pages"],
)
def message_preview(followup_id: str) -> Response:
    html = organizer.message_html(context_of(current_app).services, g.principal.org_id, followup_id)
    response = Response(html if html is not None else NOT_RENDERED, mimetype=HTML)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
