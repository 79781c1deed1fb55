"""The links inside follow-up emails: unsubscribe (RFC 8058 one-click), open
pixel, signed click redirects, feedback ratings and introduction consent.

Anything that changes something is a POST (mail scanners prefetch GET links):
the GET of an unsubscribe, rating or introduction link shows a page with a
button (the rating chosen in the email preselected). Opens and clicks are
recorded on GET and HEAD alike, each judged a person's or a machine's
(``followup.domain.engagement``): a link scanner still gets its redirect.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from followup.bootstrap import context_of
from followup.domain.engagement import Fetch
from followup.service_layer import tracking
from followup.service_layer.content import load_settings
from followup.service_layer.context import Services
from turnout_common.limits import Refusal, Rule, client_address, rate_limited
from turnout_common.web import ApiError, operation

bp = Blueprint("links", __name__)

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
HTML = "text/html"

# Each link route, per client address: generous (a person opens a link a few
# times; a mail scanner refused here records nothing, and the link still works
# later). The open pixel is not limited: image proxies fetch it for many
# readers from a few addresses, and it only ever records a first open.
LINKS = Rule("links", client_address, "Too many requests from your network.")


def _refused_page(refusal: Refusal) -> Any:
    body = render_template("rate_limited.html", message=refusal.message)
    return _no_store(Response(body, status=429, content_type="text/html; charset=utf-8"))


def svc() -> Services:
    return context_of(current_app).services


def _org_name(services: Services, org_id: str) -> str:
    return load_settings(services, org_id, None).branding.name


def _fetch(services: Services) -> Fetch:
    """This request as the engagement rules see it (HEAD arrives here as a GET view's request)."""
    return Fetch(request.method, request.headers.get("User-Agent", ""), services.now())


def _no_store(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/u/<token>")
@operation(
    "Unsubscribe page (HTML) with a confirm button",
    content=HTML,
    responses={200: "the page", 400: "invalid link", 404: "unknown message", 429: "too many requests: see Retry-After"},
    tags=["links"],
)
@rate_limited(LINKS, page=_refused_page)
def unsubscribe_page(token: str) -> Any:
    services = svc()
    followup_id = services.links.check_unsubscribe(token)
    org_id = tracking.org_of(services, followup_id)
    body = render_template("unsubscribe.html", org_name=_org_name(services, org_id), done=False)
    return _no_store(Response(body, content_type="text/html; charset=utf-8"))


@bp.post("/u/<token>")
@operation(
    "Unsubscribe: one click (RFC 8058 List-Unsubscribe-Post) or the page's button; publishes contact.unsubscribed",
    content=HTML,
    responses={
        200: "unsubscribed (also when already)",
        400: "invalid link",
        404: "unknown message",
        429: "too many requests: see Retry-After",
    },
    tags=["links"],
)
@rate_limited(LINKS, page=_refused_page)
def unsubscribe(token: str) -> Any:
    services = svc()
    followup_id = services.links.check_unsubscribe(token)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    result = tracking.unsubscribe(services, followup_id, "one_click" if one_click else "link")
    body = render_template("unsubscribe.html", org_name=_org_name(services, result.org_id), done=True)
    return _no_store(Response(body, content_type="text/html; charset=utf-8"))


@bp.get("/o/<token>.gif")
@operation(
    "Open pixel: records the first open (followup.opened; an image proxy's with machine: true)",
    content="image/gif",
    responses={200: "a transparent GIF", 400: "invalid link", 404: "unknown message"},
    tags=["links"],
)
def open_pixel(token: str) -> Any:
    services = svc()
    tracking.record_open(services, services.links.check_open(token), _fetch(services))
    return _no_store(Response(PIXEL, content_type="image/gif"))


@bp.get("/c/<token>")
@operation(
    "Signed click redirect: records the click (followup.clicked; a link scanner's with machine: true) "
    "and redirects; unsigned targets are refused",
    query={"u": "the destination URL, exactly as signed"},
    responses={
        302: "to the destination",
        400: "missing, unsigned or not an http(s) destination",
        429: "too many requests: see Retry-After",
    },
    tags=["links"],
)
@rate_limited(LINKS)
def click(token: str) -> Any:
    services = svc()
    url = request.args.get("u", "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000 or any(c.isspace() for c in url):
        raise ApiError(400, "invalid_link", "the destination must be an http(s) URL", field="u")
    followup_id = services.links.check_click(token, url)
    tracking.record_click(services, followup_id, url, _fetch(services))
    return _no_store(redirect(url, 302))


def _rating(raw: str | None) -> int:
    if raw is None or not raw.isdigit() or not 1 <= int(raw) <= 5:
        raise ApiError(400, "invalid_field", "rating must be a whole number from 1 to 5", field="rating")
    return int(raw)


@bp.get("/f/<token>")
@operation(
    "Feedback page (HTML) from a thank-you email's rating link: the rating preselected, "
    "a comment box and a Send button (records nothing: the POST does)",
    content=HTML,
    query={"rating": "1-5"},
    responses={
        200: "the page",
        400: "invalid link or rating",
        404: "unknown message",
        429: "too many requests: see Retry-After",
    },
    tags=["links"],
)
@rate_limited(LINKS, page=_refused_page)
def feedback(token: str) -> Any:
    services = svc()
    followup_id = services.links.check_feedback(token)
    rating = _rating(request.args.get("rating"))
    tracking.org_of(services, followup_id)  # an unknown message is a 404 here already
    body = render_template("feedback.html", token=token, rating=rating, sent=False, commented=False)
    return _no_store(Response(body, content_type="text/html; charset=utf-8"))


@bp.post("/f/<token>")
@operation(
    "Send feedback (form fields rating, optional comment; feedback.submitted)",
    content=HTML,
    responses={
        200: "thank-you page",
        400: "invalid link or rating",
        404: "unknown message",
        429: "too many requests: see Retry-After",
    },
    tags=["links"],
)
@rate_limited(LINKS, page=_refused_page)
def feedback_comment(token: str) -> Any:
    services = svc()
    followup_id = services.links.check_feedback(token)
    rating = _rating(request.form.get("rating"))
    comment = request.form.get("comment", "")
    if len(comment) > 2000:
        raise ApiError(400, "invalid_field", "comment: at most 2000 characters", field="comment")
    try:
        comment.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, "bad_encoding", "comment is not valid text", field="comment") from exc
    tracking.record_feedback(services, followup_id, rating, comment)
    body = render_template("feedback.html", token=token, rating=rating, sent=True, commented=bool(comment.strip()))
    return _no_store(Response(body, content_type="text/html; charset=utf-8"))


@bp.get("/i/<token>")
@operation(
    "Introduction consent page (HTML) with a confirm button",
    content=HTML,
    responses={
        200: "the page",
        400: "invalid link",
        404: "unknown introduction",
        429: "too many requests: see Retry-After",
    },
    tags=["links"],
)
@rate_limited(LINKS, page=_refused_page)
def introduction_page(token: str) -> Any:
    services = svc()
    parsed = services.links.check_introduction(token)
    status = tracking.introduction_status(services, parsed.introduction_id, parsed.person_id)
    body = render_template("introduction.html", done=status.accepted, both=status.agreed, other=None)
    return _no_store(Response(body, content_type="text/html; charset=utf-8"))


@bp.post("/i/<token>")
@operation(
    "Accept a suggested introduction (introduction.accepted); when both accepted, both get the introduction",
    content=HTML,
    responses={
        200: "accepted (also when already)",
        400: "invalid link",
        404: "unknown introduction",
        429: "too many requests: see Retry-After",
    },
    tags=["links"],
)
@rate_limited(LINKS, page=_refused_page)
def accept_introduction(token: str) -> Any:
    services = svc()
    parsed = services.links.check_introduction(token)
    result = tracking.accept_introduction(services, parsed.introduction_id, parsed.person_id)
    body = render_template("introduction.html", done=True, both=result.both, other=result.other_first_name)
    return _no_store(Response(body, content_type="text/html; charset=utf-8"))
