"""The owners' pages on personal data: the audit trail (``/audit``) and the
retention schedule (``/retention``: owners edit it, organizers read it).

Its own blueprint, answering sign-in and errors as the other organizer pages do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, redirect, request, url_for

from checkin.domain import audit as audit_rules
from checkin.domain.audit import actor_of
from checkin.domain.model import RuleBroken
from checkin.domain.retention import KINDS, PolicyInvalid
from checkin.entrypoints import pages_common
from checkin.entrypoints.api_audit import audit_filter, public_entry
from checkin.entrypoints.pages_common import HTML, PAGE_RESPONSES, check_same_origin, ctx, int_arg, page_count, render
from checkin.service_layer import audit, retention
from turnout_common.auth import Principal
from turnout_common.pages import PageError, SignInRequired, signed_in_principal
from turnout_common.privacy import MAX_MONTHS, MIN_MONTHS
from turnout_common.web import ApiError, operation

bp = Blueprint("privacy_pages", __name__)
# The same answers as the other organizer pages: to sign in, error pages.
bp.register_error_handler(SignInRequired, pages_common._to_sign_in)
bp.register_error_handler(PageError, pages_common._page_error)
bp.register_error_handler(RuleBroken, pages_common._rule_broken)

AUDIT_PER_PAGE = 50


def _refused(principal: Principal) -> str:
    role = pages_common.ROLE_LABELS.get(principal.role, principal.role)
    return f"Your role ({role}) can't see this. Ask an owner of your organization."


def require(permission: str) -> Principal:
    return signed_in_principal(permission, _refused)


@bp.get("/audit")
@operation(
    "The audit trail, newest first, with filters and a CSV download (HTML; owners only)",
    content=HTML,
    query={
        "action": "only this action",
        "from": "first day (YYYY-MM-DD)",
        "to": "last day (YYYY-MM-DD)",
        "page": f"{AUDIT_PER_PAGE} entries a page, default 1",
    },
    responses={**PAGE_RESPONSES, 400: "a bad filter or page"},
    tags=["pages"],
)
def audit_page() -> Any:
    principal = require("admin")
    try:
        wanted = audit_filter()
    except ApiError as error:
        raise PageError(400, "Bad filter", error.message) from error
    page = int_arg("page", 1)
    entries, total = audit.page(ctx(), principal.org_id, wanted, skip=(page - 1) * AUDIT_PER_PAGE, limit=AUDIT_PER_PAGE)
    filters = {name: request.args.get(name, "").strip() for name in ("action", "from", "to")}
    return render(
        "audit.html",
        entries=[public_entry(entry) for entry in entries],
        total=total,
        page=page,
        pages=page_count(total, AUDIT_PER_PAGE),
        filters=filters,
        filtering=any(filters.values()),
        actions=[(action, audit_rules.ACTION_LABELS[action]) for action in audit_rules.ACTIONS],
        csv_url=_with_query(url_for("api_audit.audit_csv_download"), filters),
    )


def _with_query(path: str, args: dict[str, str]) -> str:
    given = {name: value for name, value in args.items() if value}
    return f"{path}?{urlencode(given)}" if given else path


def _retention_page(principal: Principal, status: int = 200, **data: Any) -> tuple[str, int]:
    try:
        policy = retention.schedule_of(ctx(), principal.org_id)
    except RuleBroken as error:
        raise PageError(404, "Organization not found", error.message) from error
    values = data.pop("values", None) or {row.kind: str(row.months) for row in policy.rows}
    return render(
        "retention.html",
        status,
        policy=policy,
        values=values,
        errors=data.pop("errors", {}),
        can_edit=principal.can("admin"),
        saved=request.args.get("saved") == "1",
        **data,
    )


@bp.get("/retention")
@operation(
    "How long each kind of personal data is kept, who enforces it and today's cut-off dates (HTML; "
    "owners edit it, organizers read it)",
    content=HTML,
    responses=PAGE_RESPONSES,
    tags=["pages"],
)
def retention_page() -> Any:
    return _retention_page(require("manage"))


@bp.post("/retention")
@operation(
    "Set the retention periods from the form (HTML; owners only)",
    content=HTML,
    responses={303: "saved: back to the schedule", 400: "the form again, with what to fix", 403: "owners only"},
    tags=["pages"],
)
def set_retention() -> Any:
    check_same_origin()
    principal = require("admin")
    values = {kind: request.form.get(kind, "").strip()[:20] for kind in KINDS}
    try:
        retention.set_policy(ctx(), principal.org_id, actor_of(principal), dict(values))
    except PolicyInvalid as error:
        message = f"Enter a whole number of months from {MIN_MONTHS} to {MAX_MONTHS}."
        return _retention_page(principal, 400, values=values, errors={error.field: message})
    return redirect(url_for("privacy_pages.retention_page", saved=1), code=303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
