"""Volunteer hours as pages.

- Coordinators (owners and organizers, signed in): an event's shifts
  (``/events/<id>/hours``) and the organization's pending off-site hours
  (``/hours``), each a table with checkboxes: approve, adjust (each row's
  hours, one reason) or reject the selected rows. Plain form posts; no script.
- The volunteer, through the signed link of their volunteer-hours email
  (``/hours/me/<token>``): their shifts and off-site hours, a form to log
  off-site work, and their statement for a period as PDF or CSV.
- Anyone holding a statement's verification link (``/hours/verify/<token>``):
  the same statement, as the organization keeps it.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for

from checkin.domain import hours as rules
from checkin.domain.audit import actor_of
from checkin.domain.imports import spreadsheet_safe
from checkin.domain.model import RuleBroken
from checkin.entrypoints import pages_common
from checkin.entrypoints.pages_common import HTML, PAGE_RESPONSES, check_same_origin, ctx, event_or_404, render
from checkin.service_layer import hours
from turnout_common.auth import Principal
from turnout_common.limits import Refusal, Rule, client_address, rate_limited
from turnout_common.pages import PageError, SignInRequired, signed_in_principal
from turnout_common.web import ApiError, QueryArg, download, operation

bp = Blueprint("hours_pages", __name__)
bp.register_error_handler(SignInRequired, pages_common._to_sign_in)
bp.register_error_handler(PageError, pages_common._page_error)
bp.register_error_handler(RuleBroken, pages_common._rule_broken)

ACTIONS = {"approve": "Approved", "adjust": "Adjusted", "reject": "Rejected"}


def _refused(principal: Principal) -> str:
    role = pages_common.ROLE_LABELS.get(principal.role, principal.role)
    return f"Your role ({role}) can't review volunteer hours. Ask an owner or organizer of your organization."


def require_manage() -> Principal:
    return signed_in_principal("manage", _refused)


def _items(kind: str) -> tuple[list[dict[str, Any]], str | None]:
    """The form's selected rows as review items (``kind``: registration_id or entry_id), or what to fix."""
    action = request.form.get("action", "")
    selected = [value[:64] for value in request.form.getlist("selected")[: rules.MAX_BATCH] if value]
    if action not in ACTIONS:
        return [], "Choose approve, adjust or reject."
    if not selected:
        return [], "Select at least one row first."
    reason = request.form.get("reason", "").strip()[: rules.MAX_REASON + 1]
    items: list[dict[str, Any]] = []
    for value in selected:
        item: dict[str, Any] = {kind: value, "action": action}
        if reason:
            item["reason"] = reason
        if action == "adjust":
            raw = request.form.get(f"hours-{value}", "").strip().replace(",", ".")
            try:
                item["hours"] = float(raw)
            except ValueError:
                return [], "Enter the hours that count for each selected row, like 2.5."
        items.append(item)
    return items, None


def _status(broken: RuleBroken) -> int:
    """As the JSON API answers: not found 404, bad input 400, anything else (no check-out yet) 409."""
    if broken.code.endswith("_not_found"):
        return 404
    return 400 if broken.code.startswith("invalid") else 409


def _message(broken: RuleBroken) -> str:
    if broken.field and broken.field.endswith(".reason"):
        return "An adjustment needs a reason: say why the hours changed."
    if broken.field and broken.field.endswith(".hours"):
        return f"The adjusted hours must be more than 0 and at most {rules.MAX_HOURS:g}."
    return broken.message


def _event_page(principal: Principal, event_id: str, status: int = 200, error: str | None = None) -> tuple[str, int]:
    event = event_or_404(principal.org_id, event_id)
    _, rows = hours.event_hours(ctx(), principal.org_id, event_id)
    return render(
        "hours_event.html",
        status,
        event=event,
        rows=rows,
        flagged=sum(1 for row in rows if row["needs_review"]),
        pending=sum(1 for row in rows if row["state"] == rules.ReviewState.PENDING),
        error=error,
        done=request.args.get("done", "") if status == 200 else "",
        state_labels=rules.STATE_LABELS,
        form=request.form if status != 200 else {},
    )


@bp.get("/events/<event_id>/hours")
@operation(
    "An event's volunteer shifts to review: check-outs closed at the event's end flagged first; approve, "
    "adjust or reject the selected shifts (HTML; owners and organizers)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such event in your organization"},
    tags=["pages"],
)
def event_hours_page(event_id: str) -> Any:
    return _event_page(require_manage(), event_id)


@bp.post("/events/<event_id>/hours")
@operation(
    "Review the selected shifts from the form: approve, adjust (each row's hours, with a reason) or reject "
    "(HTML; owners and organizers; each decision audited)",
    content=HTML,
    responses={
        303: "decided: back to the shifts",
        400: "the page again, saying what to fix",
        403: "your role cannot review hours",
        404: "no such event, or a selected shift is not of this event",
        409: "a selected registration has no check-out yet",
    },
    tags=["pages"],
)
def review_event_hours(event_id: str) -> Any:
    check_same_origin()
    principal = require_manage()
    event_or_404(principal.org_id, event_id)
    items, problem = _items("registration_id")
    if problem is not None:
        return _event_page(principal, event_id, 400, problem)
    try:
        decided = hours.review(ctx(), principal.org_id, actor_of(principal), items, event_id=event_id)
    except RuleBroken as broken:
        return _event_page(principal, event_id, _status(broken), _message(broken))
    note = f"{ACTIONS[items[0]['action']]}: {len(decided)}"
    return redirect(url_for("hours_pages.event_hours_page", event_id=event_id, done=note), code=303)


def _pending_page(principal: Principal, status: int = 200, error: str | None = None) -> tuple[str, int]:
    return render(
        "hours_pending.html",
        status,
        day_label=day_label,
        entries=hours.pending_entries(ctx(), principal.org_id),
        error=error,
        done=request.args.get("done", "") if status == 200 else "",
        form=request.form if status != 200 else {},
    )


@bp.get("/hours")
@operation(
    "Off-site hours volunteers logged, waiting for a decision: approve, adjust or reject the selected "
    "entries (HTML; owners and organizers)",
    content=HTML,
    responses=PAGE_RESPONSES,
    tags=["pages"],
)
def pending_hours_page() -> Any:
    return _pending_page(require_manage())


@bp.post("/hours")
@operation(
    "Review the selected off-site entries from the form (HTML; owners and organizers; each decision audited)",
    content=HTML,
    responses={
        303: "decided: back to the pending list",
        400: "the page again, saying what to fix",
        403: "your role cannot review hours",
        404: "an entry is no longer there",
    },
    tags=["pages"],
)
def review_pending_hours() -> Any:
    check_same_origin()
    principal = require_manage()
    items, problem = _items("entry_id")
    if problem is not None:
        return _pending_page(principal, 400, problem)
    try:
        decided = hours.review(ctx(), principal.org_id, actor_of(principal), items)
    except RuleBroken as broken:
        return _pending_page(principal, _status(broken), _message(broken))
    note = f"{ACTIONS[items[0]['action']]}: {len(decided)}"
    return redirect(url_for("hours_pages.pending_hours_page", done=note), code=303)


# -- the volunteer's signed page, the statement and its verification --------------------------------------

public_bp = Blueprint("hours_public", __name__)

# Per client address, at the public registration form's rate, counted per route.
HOURS_POSTS = Rule("public_registration", client_address, "Too many requests from your network.")


class _Refused(Exception):
    """A public hours page that cannot be shown: its status and what it says."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def _refusal(error: rules.LinkRefused | RuleBroken) -> _Refused:
    if isinstance(error, rules.LinkRefused):
        if error.reason == "expired":
            return _Refused(410, "This link has expired", error.message)
        return _Refused(400, "This link is not valid", error.message)
    if error.code.endswith("_not_found"):
        return _Refused(404, "Nothing to show", error.message)
    return _Refused(400, "That didn't work", error.message)


def day_label(iso_day: str) -> str:
    """An off-site entry's day as the pages show days: "3 Dec 2026"."""
    return date.fromisoformat(iso_day).strftime("%-d %b %Y")


def _public(template: str, status: int = 200, **data: Any) -> tuple[str, int]:
    return render_template(template, state_labels=rules.STATE_LABELS, day_label=day_label, **data), status


def _volunteer_page(token: str, status: int = 200, **data: Any) -> tuple[str, int]:
    try:
        view = hours.volunteer_view(ctx(), token)
    except (rules.LinkRefused, RuleBroken) as error:
        raise _refusal(error) from error
    data.setdefault("form", {})
    data.setdefault("errors", {})
    return _public(
        "hours_volunteer.html",
        status,
        view=view,
        token=token,
        logged=request.args.get("logged") == "1" and status == 200,
        **data,
    )


@public_bp.get("/hours/me/<token>")
@operation(
    "Your volunteer hours through the signed link of your volunteer-hours email: your shifts and off-site "
    "hours with their review state, a form to log off-site work, and your hour statement (HTML)",
    content=HTML,
    tags=["public"],
    responses={
        200: "the page",
        400: "not a valid link",
        404: "no hours left to show",
        410: "the link expired",
    },
)
def volunteer_page(token: str) -> Any:
    return _volunteer_page(token)


def _too_many(refusal: Refusal) -> Any:
    return _public("hours_refused.html", 429, title="Too many requests", message=refusal.message)


@public_bp.post("/hours/me/<token>")
@operation(
    "Log hours you volunteered off-site (a day, the hours, a note): pending until a coordinator approves them "
    "(HTML form post through your signed link)",
    content=HTML,
    tags=["public"],
    responses={
        303: "logged: back to your hours",
        400: "your page again with what to fix, or not a valid link",
        404: "no hours left to show",
        410: "the link expired",
        429: "too many requests from this address (Retry-After)",
    },
)
@rate_limited(HOURS_POSTS, page=_too_many)
def log_off_site(token: str) -> Any:
    form = {name: request.form.get(name, "")[:1000] for name in ("date", "hours", "note")}
    try:
        hours.log_off_site(ctx(), token, form)
    except rules.LinkRefused as refused:
        raise _refusal(refused) from refused
    except RuleBroken as broken:
        if broken.code.endswith("_not_found"):
            raise _refusal(broken) from broken
        return _volunteer_page(token, 400, form=form, errors={broken.field or "note": _field_message(broken)})
    return redirect(url_for("hours_public.volunteer_page", token=token, logged=1), code=303)


def _field_message(broken: RuleBroken) -> str:
    messages = {
        "date": "Enter the day you did the work (not in the future, at most a year ago).",
        "hours": f"Enter the hours: more than 0 and at most {rules.MAX_HOURS:g}, like 2.5.",
        "note": f"Say what the work was (at most {rules.MAX_NOTE} characters).",
    }
    return messages.get(broken.field or "", broken.message)


def _issued(token: str) -> hours.IssuedStatement:
    """The statement a download asks for; refusals are JSON errors (a download, like the calendar file)."""
    try:
        return hours.issue_statement(ctx(), token, request.args.get("from"), request.args.get("to"))
    except rules.LinkRefused as refused:
        status = 410 if refused.reason == "expired" else 400
        raise ApiError(status, "link_refused", refused.message) from refused
    except RuleBroken as broken:
        status = 404 if broken.code.endswith("_not_found") else 400
        raise ApiError(status, broken.code, broken.message, broken.field) from broken


STATEMENT_QUERY: dict[str, str | QueryArg] = {
    "from": "the first day (YYYY-MM-DD); default: a year before 'to'",
    "to": "the last day, included (YYYY-MM-DD); default: today",
}
STATEMENT_RESPONSES = {
    200: "the statement",
    400: "not a valid link, or a bad period (the field names it)",
    404: "no hours left to show",
    410: "the link expired",
}


def _filename(issued: hours.IssuedStatement, extension: str) -> str:
    found = issued.statement
    return f"volunteer-hours-{found.period.first.isoformat()}-to-{found.period.last.isoformat()}.{extension}"


@public_bp.get("/hours/me/<token>/statement.pdf")
@operation(
    "Your hour statement as PDF: the organization, you, the period, each approved shift (date, activity, "
    "hours, approver), the total and a verification link with its QR code",
    content="application/pdf",
    query=STATEMENT_QUERY,
    tags=["public"],
    responses=STATEMENT_RESPONSES,
)
def statement_pdf_download(token: str) -> Response:
    issued = _issued(token)
    # Imported on the first download: fpdf2 (with fontTools and numpy) adds
    # ~33 MB to a process, and most web workers never write a statement.
    from checkin.adapters.statement_pdf import statement_pdf

    return download(statement_pdf(issued.statement, issued.verify_url), "application/pdf", _filename(issued, "pdf"))


@public_bp.get("/hours/me/<token>/statement.csv")
@operation(
    "Your hour statement as CSV (cells escaped against spreadsheet formulas): each approved shift, the "
    "total, and the verification link",
    content="text/csv",
    query=STATEMENT_QUERY,
    tags=["public"],
    responses=STATEMENT_RESPONSES,
)
def statement_csv_download(token: str) -> Response:
    issued = _issued(token)
    found = issued.statement
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")  # Excel reads the file as UTF-8
    for label, value in (
        ("organization", found.organization),
        ("volunteer", found.person),
        ("period", f"{found.period.first.isoformat()} to {found.period.last.isoformat()}"),
        ("verify at", issued.verify_url),
    ):
        writer.writerow([spreadsheet_safe(label), spreadsheet_safe(value)])
    writer.writerow([])
    for row in rules.statement_rows(found):
        # A note or an event title typed by someone may start like a formula.
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return download(out.getvalue(), "text/csv", _filename(issued, "csv"))


@public_bp.get("/hours/verify/<token>")
@operation(
    "Check an hour statement: the link printed on it shows the same statement as the organization keeps it, "
    "and says so if a decision changed since it was issued (HTML; the link is the credential)",
    content=HTML,
    tags=["public"],
    responses={
        200: "the statement",
        400: "not a valid verification link (forged, altered or cut short)",
        404: "the volunteer's records are no longer kept",
        410: "the verification link expired",
    },
)
def verify_page(token: str) -> Any:
    try:
        verified = hours.verify_statement(ctx(), token)
    except (rules.LinkRefused, RuleBroken) as error:
        raise _refusal(error) from error
    response = Response(*_public("hours_verify.html", verified=verified))
    # The token is the credential: never sent on as a Referer, never cached by the way.
    response.headers["Cache-Control"] = "no-store"
    return response


@public_bp.errorhandler(_Refused)
def _refused_page(error: _Refused) -> tuple[str, int]:
    return _public("hours_refused.html", error.status, title=error.title, message=error.message)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(public_bp)
