"""Organizer pages about people and their data: the people search, a person's
page (details, registrations, the correction form, Export and Erase) and the
data requests (a request's page refreshes until every service has answered,
then shows what each reported and the archive link).

Owners and organizers only (door staff and viewers get a 403 page); signed
out: to the sign-in page. The person page's buttons call the JSON API
(``api_privacy``) from ``static/js/people.js``: no inline script, so the
pages run under the default Content-Security-Policy.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from checkin.domain import privacy as rules
from checkin.domain.audit import actor_of
from checkin.domain.model import RuleBroken
from checkin.entrypoints.api_privacy import archive_response
from checkin.entrypoints.pages_common import HTML, PAGE_RESPONSES, ctx, int_arg, page_count, render, require
from checkin.service_layer import people, privacy
from turnout_common.auth import Principal
from turnout_common.clock import to_rfc3339
from turnout_common.limits import Refusal, Rule, client_address, rate_limited
from turnout_common.pages import PageError, SignInRequired
from turnout_common.types import Doc
from turnout_common.web import ApiError, operation

bp = Blueprint("people", __name__)

PEOPLE_PER_PAGE = 50
REQUESTS_PER_PAGE = 50
# While a request is working its page reloads after this many seconds.
REFRESH_SECONDS = 3

SERVICE_LABELS = {"checkin": "Check-in", "followup": "Follow-up emails", "analytics": "Analytics"}
REQUESTER_LABELS = {"user": "an organizer", "person": "the person (signed link)", "retention": "the retention schedule"}


def _person_or_404(principal: Principal, person_id: str) -> people.PersonView:
    try:
        return people.view(ctx(), principal.org_id, person_id, actor_of(principal), what="person page")
    except RuleBroken as exc:
        raise PageError(404, "Person not found", "There is no such person in your organization.") from exc


@bp.get("/people")
@operation(
    "Find a person by name or email (HTML)",
    content=HTML,
    query={"q": "0-100 characters", "page": f"{PEOPLE_PER_PAGE} people a page, default 1"},
    responses={**PAGE_RESPONSES, 400: "bad search or page"},
    tags=["pages"],
)
def people_page() -> Any:
    principal = require("manage")
    text = request.args.get("q", "").strip()
    if len(text) > people.MAX_QUERY_LENGTH:
        raise PageError(400, "Bad search", f"Search for at most {people.MAX_QUERY_LENGTH} characters.")
    if not text.isprintable():
        raise PageError(400, "Bad search", "The search contains characters that cannot be searched for.")
    page = int_arg("page", 1)
    found, total = people.search(
        ctx(), principal.org_id, text, skip=(page - 1) * PEOPLE_PER_PAGE, limit=PEOPLE_PER_PAGE
    )
    return render("people.html", people=found, total=total, q=text, page=page, pages=page_count(total, PEOPLE_PER_PAGE))


@bp.get("/people/<person_id>")
@operation(
    "A person: details, registrations, correction, export and erasure (HTML; recorded in the audit trail)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such person in your organization"},
    tags=["pages"],
)
def person_page(person_id: str) -> Any:
    principal = require("manage")
    seen = _person_or_404(principal, person_id)
    return render(
        "person.html",
        person=seen.person,
        registrations=list(reversed(seen.registrations)),
        events=seen.events,
        requests=seen.requests,
        service_labels=SERVICE_LABELS,
    )


@bp.get("/data-requests")
@operation(
    "Data requests: exports and erasures, newest first (HTML)",
    content=HTML,
    query={"page": f"{REQUESTS_PER_PAGE} requests a page, default 1"},
    responses={**PAGE_RESPONSES, 400: "bad page"},
    tags=["pages"],
)
def data_requests_page() -> Any:
    principal = require("manage")
    page = int_arg("page", 1)
    found, total = privacy.list_requests(
        ctx(), principal.org_id, skip=(page - 1) * REQUESTS_PER_PAGE, limit=REQUESTS_PER_PAGE
    )
    return render(
        "data_requests.html",
        requests=found,
        names=privacy.person_names(ctx(), principal.org_id, found),
        total=total,
        page=page,
        pages=page_count(total, REQUESTS_PER_PAGE),
        requester_labels=REQUESTER_LABELS,
    )


@bp.get("/data-requests/<request_id>")
@operation(
    "A data request: each service's progress, then what each reported and the archive (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such data request in your organization"},
    tags=["pages"],
)
def data_request_page(request_id: str) -> Any:
    principal = require("manage")
    try:
        found = privacy.get_request(ctx(), principal.org_id, request_id)
    except RuleBroken as exc:
        raise PageError(404, "Request not found", "There is no such data request in your organization.") from exc
    working = found.get("status") != rules.COMPLETE
    return render(
        "data_request.html",
        data_request=found,
        person_name=privacy.person_names(ctx(), principal.org_id, [found]).get(found["_id"]),
        working=working,
        refresh=REFRESH_SECONDS if working else None,
        service_labels=SERVICE_LABELS,
        requester_labels=REQUESTER_LABELS,
        archive_url=(
            url_for("api_privacy.data_request_archive", request_id=found["_id"])
            if not working and found["kind"] == "export"
            else None
        ),
    )


# -- errors (as on the other organizer pages) ------------------------------------------------------------------


@bp.errorhandler(SignInRequired)
def _to_sign_in(_: SignInRequired) -> Response:
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("pages.login", next=target))


@bp.errorhandler(PageError)
def _page_error(error: PageError) -> tuple[str, int]:
    return render("error.html", error.status, title=error.title, message=error.message, status_code=error.status)


@bp.errorhandler(RuleBroken)
def _rule_broken(error: RuleBroken) -> tuple[str, int]:
    status = 404 if error.code.endswith("_not_found") else 400 if error.code.startswith("invalid") else 409
    return render("error.html", status, title="That didn't work", message=error.message, status_code=status)


# -- the public privacy page and the person's signed link -----------------------------------------------------

public_bp = Blueprint("privacy_public", __name__)

# Per client address, the public registration form's rate (TURNOUT_RATE_LIMIT_PUBLIC_REGISTRATION),
# counted for each of these routes on its own.
PRIVACY_REQUESTS = Rule("public_registration", client_address, "Too many requests from your network.")
PURPOSES = {"export": "Send me my data", "erasure": "Erase my data"}
SENT = (
    "If we hold data for this address, we have emailed it a link. The link works for 24 hours; "
    "nothing happens until you open it and confirm."
)


def _public(template: str, status: int = 200, **data: Any) -> tuple[str, int]:
    return (
        render_template(template, purposes=PURPOSES, service_labels=SERVICE_LABELS, rfc3339=to_rfc3339, **data),
        status,
    )


def _organization(slug: str) -> Doc:
    try:
        return privacy.organization_by_slug(ctx(), slug)
    except RuleBroken as exc:
        raise _Refused(404, "There is no such organization.") from exc


class _Refused(Exception):
    """A public privacy page that cannot be shown: its status and what it says."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _privacy_refused(refusal: Refusal) -> Any:
    return _public("privacy_public.html", 429, org=None, form={}, errors={}, refused=refusal.message)


@public_bp.get("/privacy/<org_slug>")
@operation(
    "An organization's privacy page: ask for your data or its erasure by email (HTML)",
    content=HTML,
    tags=["public"],
    responses={200: "the form", 404: "no such organization"},
)
def privacy_form(org_slug: str) -> Any:
    org = _organization(org_slug)
    return _public("privacy_public.html", org=org, form={"purpose": "export"}, errors={})


@public_bp.post("/privacy/<org_slug>")
@operation(
    "Ask for a link to your data or its erasure (HTML form post; the same answer whoever you are)",
    content=HTML,
    tags=["public"],
    responses={
        200: "the same answer for any address: a link was emailed if the address is known",
        400: "the form with what to fix",
        404: "no such organization",
        429: "too many requests from this address (Retry-After)",
    },
)
@rate_limited(PRIVACY_REQUESTS, page=_privacy_refused)
def privacy_submit(org_slug: str) -> Any:
    org = _organization(org_slug)
    form = {"email": request.form.get("email", "").strip(), "purpose": request.form.get("purpose", "")}
    errors: dict[str, str] = {}
    if not rules.EMAIL.match(form["email"]) or len(form["email"]) > rules.MAX_EMAIL or not form["email"].isprintable():
        errors["email"] = "Please enter a valid email address, like name@example.org."
    if form["purpose"] not in PURPOSES:
        errors["purpose"] = "Please choose what you would like us to do."
    if errors:
        return _public("privacy_public.html", 400, org=org, form=form, errors=errors)
    privacy.request_data_link(ctx(), org, form["email"], form["purpose"])
    return _public("privacy_public.html", org=org, form={}, errors={}, sent=SENT)


def _link_state(token: str) -> privacy.LinkState:
    try:
        return privacy.open_link(ctx(), token)
    except rules.LinkRefused as refused:
        raise _Refused(410 if refused.reason == "expired" else 400, refused.message) from refused
    except RuleBroken as broken:
        raise _Refused(410, broken.message) from broken


def _link_page(token: str, state: privacy.LinkState, status: int = 200) -> tuple[str, int]:
    found = state.request
    working = found is not None and found.get("status") != rules.COMPLETE
    return _public(
        "privacy_public_request.html",
        status,
        state=state,
        data_request=found,
        token=token,
        working=working,
        refresh=REFRESH_SECONDS if working else None,
        archive_url=(
            url_for("privacy_public.link_archive", token=token)
            if found is not None and not working and found["kind"] == "export"
            else None
        ),
    )


@public_bp.get("/privacy/requests/<token>")
@operation(
    "Your signed link: what it will do and a button to confirm; once confirmed, the progress (HTML)",
    content=HTML,
    tags=["public"],
    responses={200: "the page", 400: "not a valid link", 410: "the link expired or has nothing left to act on"},
)
def link_page(token: str) -> Any:
    return _link_page(token, _link_state(token))


@public_bp.post("/privacy/requests/<token>")
@operation(
    "Confirm what your signed link asks for (HTML form post); then see its progress",
    content=HTML,
    tags=["public"],
    responses={
        303: "confirmed: to the link's page, which shows the progress",
        400: "not a valid link",
        410: "the link expired or has nothing left to act on",
        429: "too many requests from this address (Retry-After)",
    },
)
@rate_limited(PRIVACY_REQUESTS, page=_privacy_refused)
def link_confirm(token: str) -> Any:
    try:
        privacy.confirm_link(ctx(), token)
    except rules.LinkRefused as refused:
        raise _Refused(410 if refused.reason == "expired" else 400, refused.message) from refused
    except RuleBroken as broken:
        raise _Refused(410, broken.message) from broken
    return redirect(url_for("privacy_public.link_page", token=token), code=303)


@public_bp.get("/privacy/requests/<token>/archive.json")
@operation(
    "Your data, once every service has answered (JSON download through your signed link)",
    tags=["public"],
    responses={
        200: "the archive",
        400: "not a valid link",
        409: "not ready yet, or the link asked for an erasure",
        410: "the link expired or has nothing left to act on",
    },
)
def link_archive(token: str) -> Any:
    # A download: its refusals are JSON errors, like the organizers' archive.
    try:
        state = _link_state(token)
    except _Refused as refused:
        raise ApiError(refused.status, "link_refused", refused.message) from refused
    if state.request is None or state.request["kind"] != "export":
        raise ApiError(409, "no_export", "There is no export to download through this link: confirm it first.")
    try:
        found, parts = privacy.archive(ctx(), state.link.org_id, state.request["_id"])
    except RuleBroken as broken:
        raise ApiError(409, broken.code, broken.message) from broken
    return archive_response(found, parts)


@public_bp.errorhandler(_Refused)
def _refused_page(error: _Refused) -> tuple[str, int]:
    return _public("privacy_public_request.html", error.status, state=None, data_request=None, refused=error.message)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(public_bp)
