"""Organizer pages (server-rendered, no CDN): a gathering's messages with
their status, one message exactly as sent, and the win-back drafts (a plain
form: edit, approve one or the selected ones, discard; no script). Sign in on checkin: the
session cookie is shared by every service on the same host."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from followup.bootstrap import context_of
from followup.service_layer import organizer, winback
from followup.service_layer.organizer import STATUSES
from followup.service_layer.tracking import NotFound
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


# What the drafts page says after a change (``?done=``).
WINBACK_DONE = {
    "saved": "Saved.",
    "approved": "Approved: it goes out at the next daytime opening.",
    "discarded": "Discarded: it will not be sent.",
}


def _winback_page(status: int = 200, error: str | None = None, edits: dict[str, tuple[str, str]] | None = None) -> Any:
    overview = winback.overview(context_of(current_app).services, g.principal.org_id)
    for draft in overview["drafts"]:
        if edits and draft["id"] in edits:
            draft["subject"], draft["body"] = edits[draft["id"]]
    done = request.args.get("done", "")
    count = request.args.get("n", "")
    notice = WINBACK_DONE.get(done)
    if done == "approved" and count.isdigit() and int(count) != 1:
        notice = f"Approved {int(count)}: they go out at the next daytime opening."
    page = render_template("winback.html", overview=overview, notice=notice, error=error, can_manage=_can_manage())
    return page, status


def _can_manage() -> bool:
    return bool(g.principal.can("manage"))


@bp.get("/winback")
@operation(
    "Win-back drafts (HTML): each regular at risk, why, the note to edit; approve one, the selected or discard; "
    "and the funnel (drafted, approved, sent, came back)",
    content=HTML,
    auth="view",
    query={"done": "what was just done (saved, approved, discarded)", "n": "how many"},
    responses={200: "the page", 403: "door staff and kiosks may not see it"},
    tags=["pages"],
)
def winback_page() -> Any:
    return _winback_page()


@bp.post("/winback")
@operation(
    "Act on win-back drafts from the page's form (HTML): action save:<id>, approve:<id>, discard:<id> "
    "or approve_selected (with ids); subject-<id> and body-<id> carry each draft's note as edited",
    content=HTML,
    auth="manage",
    responses={
        303: "done: back to the drafts",
        400: "the page again, with what to fix",
        409: "the page again: a draft was no longer one, or win-back is off",
    },
    tags=["pages"],
)
def winback_act() -> Any:
    svc = context_of(current_app).services
    org_id = g.principal.org_id
    by = f"{g.principal.kind}:{g.principal.subject_id} {g.principal.name}".strip()[:200]
    action, _, target = request.form.get("action", "").partition(":")
    if action == "approve_selected":
        ids = [i for i in request.form.getlist("ids") if i][: winback.MAX_BULK]
        if not ids:
            return _winback_page(400, "Select at least one draft to approve.")
    elif action in ("save", "approve", "discard") and target:
        ids = [target[:64]]
    else:
        return _winback_page(400, "Choose what to do: save, approve or discard a draft, or approve the selected ones.")
    edits = {
        fid: (request.form.get(f"subject-{fid}", ""), request.form.get(f"body-{fid}", ""))
        for fid in ids
        if f"subject-{fid}" in request.form
    }
    try:
        if action == "discard":
            winback.discard(svc, org_id, ids[0], by)
            return redirect("/winback?done=discarded", code=303)
        current = {d["id"]: d for d in winback.overview(svc, org_id)["drafts"]}
        for fid, (subject, body) in edits.items():
            draft = current.get(fid)
            if draft is not None and (subject, body) != (draft["subject"], draft["body"]):
                winback.edit(svc, org_id, fid, subject, body, by)
        if action == "save":
            return redirect("/winback?done=saved", code=303)
        done = winback.approve(svc, org_id, ids, by)
    except winback.Refused as error:
        return _winback_page(400 if error.field in ("subject", "body") else 409, str(error), edits)
    except NotFound:
        return _winback_page(409, "That draft is not in your organization any more.")
    if not done["approved"]:
        reasons = [r["reason"] for r in done["refused"]]
        if done["not_found"]:
            reasons.append("that draft is not in your organization")
        return _winback_page(409, "Nothing was approved: " + "; ".join(reasons) + ".")
    response: BaseResponse = redirect(f"/winback?done=approved&n={len(done['approved'])}", code=303)
    return response
