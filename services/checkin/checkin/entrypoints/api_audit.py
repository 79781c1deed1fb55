"""The audit trail (owners) and the retention policy (owners set it; organizers read it), as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request, stream_with_context

from checkin.bootstrap import context_of
from checkin.domain import audit as audit_rules
from checkin.domain.audit import actor_of
from checkin.domain.imports import spreadsheet_safe
from checkin.domain.model import RuleBroken
from checkin.domain.retention import KINDS, PolicyInvalid
from checkin.service_layer import audit, retention
from checkin.service_layer.context import Context
from checkin.service_layer.ports import AuditFilter
from turnout_common.clock import parse_rfc3339, to_rfc3339, to_rfc3339_or_none
from turnout_common.privacy import MAX_MONTHS, MIN_MONTHS
from turnout_common.web import ApiError, QueryArg, download, operation, page_args

bp = Blueprint("api_audit", __name__, url_prefix="/api/v1")

MAX_OFFSET = 1_000_000
MIN_YEAR, MAX_YEAR = 1970, 9998

_MOMENTS = ["2026-03-31", "2026-03-31T18:00:00Z", "0001-01-01", "9999-12-31", ""]
AUDIT_FILTERS: dict[str, str | QueryArg] = {
    "action": QueryArg(
        f"only this action: {', '.join(audit_rules.ACTIONS)}",
        {"type": "string", "examples": [*audit_rules.ACTIONS, ""]},
    ),
    "from": QueryArg(
        "entries at or after this moment: RFC 3339, or a day (YYYY-MM-DD, from its start, UTC)",
        {"type": "string", "examples": _MOMENTS},
    ),
    "to": QueryArg(
        "entries before this moment: RFC 3339, or a day (YYYY-MM-DD, that whole day included, UTC)",
        {"type": "string", "examples": _MOMENTS},
    ),
}

PERIODS_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["periods"],
    "properties": {
        "periods": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "description": "months to keep each kind of data; kinds left out keep their current period",
            "properties": {kind: {"type": "integer", "minimum": MIN_MONTHS, "maximum": MAX_MONTHS} for kind in KINDS},
        }
    },
}


def ctx() -> Context:
    return context_of(current_app)


def api_error(error: RuleBroken) -> ApiError:
    """A use case's refusal as HTTP: not found 404, bad input 400, not allowed 403, a conflict 409."""
    if error.code.endswith("_not_found"):
        status = 404
    elif error.code.startswith("invalid"):
        status = 400
    elif error.code.startswith("forbidden"):
        status = 403
    else:
        status = 409
    return ApiError(status, error.code, error.message, error.field)


# -- the audit trail -------------------------------------------------------------------------------


def _moment(name: str, *, end_of_day: bool) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            if end_of_day:
                moment += timedelta(days=1)
        else:
            moment = parse_rfc3339(raw)
    except (ValueError, OverflowError) as exc:
        raise ApiError(
            400, "invalid_query", f"{name} must be an RFC 3339 timestamp or a day (YYYY-MM-DD)", field=name
        ) from exc
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ApiError(400, "invalid_query", f"{name}: the year must be between {MIN_YEAR} and {MAX_YEAR}", field=name)
    return moment


def audit_filter() -> AuditFilter:
    """The filter in the query string (action, from, to), or a 400 naming the bad argument."""
    action = request.args.get("action", "").strip()
    if action and action not in audit_rules.ACTIONS:
        raise ApiError(400, "invalid_query", f"action must be one of {', '.join(audit_rules.ACTIONS)}", field="action")
    wanted = AuditFilter(
        actions=(action,) if action else (),
        since=_moment("from", end_of_day=False),
        until=_moment("to", end_of_day=True),
    )
    try:
        audit.check_filter(wanted)
    except RuleBroken as error:
        raise api_error(error) from error
    return wanted


def _plain(value: Any) -> Any:
    """Details as JSON: moments as RFC 3339."""
    if isinstance(value, datetime):
        return to_rfc3339(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def public_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(entry["_id"]),
        "at": to_rfc3339_or_none(entry.get("at")),
        "action": entry["action"],
        "action_label": audit_rules.ACTION_LABELS.get(entry["action"], entry["action"]),
        "summary": audit_rules.summary(entry),
        "actor": _plain(entry["actor"]),
        "subject": _plain(entry["subject"]),
        "event_id": entry.get("event_id"),
        "registration_id": entry.get("registration_id"),
        "person_id": entry.get("person_id"),
        "details": _plain(entry.get("details") or {}),
    }


@bp.get("/audit")
@operation(
    "The organization's audit trail, newest first: who viewed, exported, corrected or erased personal "
    "data, overrode or undid a check-in, changed users, kiosks or the retention policy (owners only)",
    auth="admin",
    query={**AUDIT_FILTERS, "limit": "1-500, default 50", "offset": "default 0"},
    responses={200: "a page of entries and the total", 400: "a bad filter or page", 403: "owners only"},
    tags=["audit"],
)
def list_audit() -> Any:
    wanted = audit_filter()
    limit, skip = page_args(default_limit=50, max_limit=audit.MAX_PAGE_SIZE, max_offset=MAX_OFFSET)
    entries, total = audit.page(ctx(), g.principal.org_id, wanted, skip=skip, limit=limit)
    return {"entries": [public_entry(e) for e in entries], "total": total, "limit": limit, "offset": skip}


CSV_COLUMNS = (
    "at",
    "action",
    "summary",
    "actor_kind",
    "actor_id",
    "actor_label",
    "actor_role",
    "subject_kind",
    "subject_id",
    "event_id",
    "registration_id",
    "person_id",
    "details",
)


def csv_row(entry: dict[str, Any]) -> list[str]:
    public = public_entry(entry)
    actor, subject = public["actor"], public["subject"]
    values = [
        public["at"] or "",
        public["action"],
        public["summary"],
        actor.get("kind") or "",
        actor.get("id") or "",
        actor.get("label") or "",
        actor.get("role") or "",
        subject.get("kind") or "",
        subject.get("id") or "",
        public["event_id"] or "",
        public["registration_id"] or "",
        public["person_id"] or "",
        json.dumps(public["details"], ensure_ascii=False, sort_keys=True) if public["details"] else "",
    ]
    # Every cell: a label, a reason or a name typed by someone may start like a formula.
    return [spreadsheet_safe(str(value)) for value in values]


def audit_csv(entries: Iterator[dict[str, Any]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write("\ufeff")  # Excel reads the file as UTF-8
    writer.writerow(CSV_COLUMNS)
    for count, entry in enumerate(entries, start=1):
        writer.writerow(csv_row(entry))
        if count % 500 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


@bp.get("/audit.csv")
@operation(
    "The audit trail as CSV, newest first, with the same filters (owners only; cells escaped against "
    "spreadsheet formulas)",
    auth="admin",
    query=AUDIT_FILTERS,
    responses={200: "the CSV", 400: "a bad filter", 403: "owners only"},
    tags=["audit"],
    content="text/csv",
)
def audit_csv_download() -> Response:
    wanted = audit_filter()
    rows = audit.rows(ctx(), g.principal.org_id, wanted)
    return download(stream_with_context(audit_csv(rows)), "text/csv", "audit-trail.csv")


# -- the retention policy --------------------------------------------------------------------------


def public_policy(policy: retention.Policy) -> dict[str, Any]:
    return {
        "periods": policy.periods.as_dict(),
        "chosen": policy.chosen,
        "set_at": to_rfc3339_or_none(policy.set_at),
        "set_by": policy.set_by,
        "kinds": [
            {
                "kind": row.kind,
                "label": row.label,
                "months": row.months,
                "default_months": row.default_months,
                "is_default": row.is_default,
                "covers": row.covers,
                "enforced_by": list(row.enforced_by),
                "cutoff": to_rfc3339(row.cutoff),
            }
            for row in policy.rows
        ],
    }


@bp.get("/retention")
@operation(
    "How long the organization keeps each kind of personal data: the periods (defaults marked), what "
    "each covers, which services enforce it and the cut-off date it means today",
    auth="manage",
    responses={200: "the schedule", 403: "owners and organizers only"},
    tags=["retention"],
)
def get_retention() -> Any:
    try:
        return public_policy(retention.schedule_of(ctx(), g.principal.org_id))
    except RuleBroken as error:
        raise api_error(error) from error


@bp.put("/retention")
@operation(
    "Set how long the organization keeps each kind of personal data (owners only): stored, audited "
    "(retention.changed) and announced to followup and analytics (retention.policy_set)",
    body=PERIODS_BODY,
    auth="admin",
    responses={
        200: "the schedule now in force",
        400: "a period out of bounds (the field names it)",
        403: "owners only",
    },
    tags=["retention"],
)
def put_retention() -> Any:
    principal = g.principal
    try:
        retention.set_policy(ctx(), principal.org_id, actor_of(principal), g.body["periods"])
        return public_policy(retention.schedule_of(ctx(), principal.org_id))
    except PolicyInvalid as error:
        raise ApiError(400, "invalid_field", error.message, field=f"periods.{error.field}") from error
    except RuleBroken as error:
        raise api_error(error) from error


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
