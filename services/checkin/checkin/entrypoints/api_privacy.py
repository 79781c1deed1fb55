"""People and their data requests, as JSON (``/api/v1``): owners and organizers only.

- ``GET /people?q=`` finds the organization's people; ``GET /people/<id>``
  shows one with their registrations (and records ``personal_data.viewed``);
  ``PATCH /people/<id>`` corrects a name or email (publishes ``person.updated``).
- ``POST /people/<id>/export`` and ``/erasure`` file a data request (201);
  ``GET /data-requests`` lists them, ``GET /data-requests/<id>`` shows each
  service's progress, ``GET /data-requests/<id>/archive.json`` the complete
  export (409 until every service has answered).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request, url_for

from checkin.bootstrap import context_of
from checkin.domain import privacy as rules
from checkin.domain.audit import actor_of
from checkin.domain.model import RuleBroken
from checkin.service_layer import people, privacy
from checkin.service_layer.context import Context
from turnout_common.clock import to_rfc3339, to_rfc3339_or_none
from turnout_common.types import Doc
from turnout_common.web import ApiError, download, operation, page_args

bp = Blueprint("api_privacy", __name__, url_prefix="/api/v1")

STATUS_BY_CODE = {
    "person_not_found": 404,
    "request_not_found": 404,
    "organization_not_found": 404,
    "invalid_field": 400,
    "invalid_query": 400,
    "email_taken": 409,
    "person_erased": 409,
    "request_working": 409,
    "not_an_export": 409,
}

EMAIL = {
    "type": "string",
    "minLength": 3,
    "maxLength": 254,
    "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "description": "a valid email address",
}
CORRECTION_BODY = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "first_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "last_name": {"type": "string", "maxLength": 100},
        "email": EMAIL,
    },
}
PERSON_RESPONSES = {200: "the person", 404: "no such person in your organization"}


def ctx() -> Context:
    return context_of(current_app)


# -- what the API shows ------------------------------------------------------------------------------------


def public_person(person: Doc) -> Doc:
    return {
        "id": person["_id"],
        "first_name": person.get("first_name", ""),
        "last_name": person.get("last_name", ""),
        "email": person.get("email"),
        "visits": int(person.get("visits") or 0),
        "first_seen_at": to_rfc3339_or_none(person.get("created_at")),
        "last_visit_at": to_rfc3339_or_none(person.get("last_seen_at")),
    }


def public_person_registration(reg: Doc, event: Doc | None) -> Doc:
    checkin = reg.get("checkin") or None
    checkout = reg.get("checkout") or None
    event = event or {}
    return {
        "id": reg["_id"],
        "event_id": reg["event_id"],
        "event_title": event.get("title"),
        "event_starts_at": to_rfc3339_or_none(event.get("starts_at")),
        "status": reg.get("status"),
        "source": reg.get("source"),
        "registered_at": to_rfc3339_or_none(reg.get("registered_at")),
        "consent_email": bool(reg.get("consent_email")),
        "offers": list(reg.get("offers") or []),
        "seeks": list(reg.get("seeks") or []),
        "checked_in_at": to_rfc3339_or_none(checkin.get("received_at")) if checkin else None,
        "checked_out_at": to_rfc3339_or_none(checkout.get("received_at")) if checkout else None,
    }


def public_request(request_doc: Doc, person_name: str | None = None) -> Doc:
    services: Doc = {}
    for service in rules.SERVICES:
        answer = (request_doc.get("services") or {}).get(service) or {"status": rules.WORKING}
        shown: Doc = {
            "status": answer.get("status", rules.WORKING),
            "done_at": to_rfc3339_or_none(answer.get("done_at")),
        }
        for name in ("counts", "summary", "error"):
            if answer.get(name) is not None:
                shown[name] = answer[name]
        services[service] = shown
    complete = request_doc.get("status") == rules.COMPLETE
    found: Doc = {
        "id": request_doc["_id"],
        "kind": request_doc["kind"],
        "person_id": request_doc["person_id"],
        "requested_by": request_doc.get("requested_by") or {},
        "requested_at": to_rfc3339(request_doc["requested_at"]),
        "status": request_doc.get("status", rules.WORKING),
        "completed_at": to_rfc3339_or_none(request_doc.get("completed_at")),
        "services": services,
        "archive_url": (
            url_for("api_privacy.data_request_archive", request_id=request_doc["_id"])
            if complete and request_doc["kind"] == "export"
            else None
        ),
    }
    if person_name is not None:
        found["person_name"] = person_name
    return found


# -- people --------------------------------------------------------------------------------------------------


@bp.get("/people")
@operation(
    "Find your organization's people by name (a word's start, accents ignored) or email (its start)",
    auth="manage",
    query={"q": "0-100 characters; empty: everyone", "limit": "1-200, default 50", "offset": "default 0"},
    responses={200: "people, by email, and the total"},
    tags=["people"],
)
def list_people() -> Any:
    limit, skip = page_args(default_limit=50, max_limit=200)
    found, total = people.search(ctx(), g.principal.org_id, request.args.get("q", ""), skip=skip, limit=limit)
    return {"total": total, "people": [public_person(person) for person in found]}


@bp.get("/people/<person_id>")
@operation(
    "A person with their registrations, check-ins and data requests (recorded in the audit trail)",
    auth="manage",
    responses=PERSON_RESPONSES,
    tags=["people"],
)
def get_person(person_id: str) -> Any:
    principal = g.principal
    seen = people.view(ctx(), principal.org_id, person_id, actor_of(principal), what="api")
    return {
        **public_person(seen.person),
        "registrations": [
            public_person_registration(reg, seen.events.get(reg["event_id"])) for reg in seen.registrations
        ],
        "data_requests": [public_request(found) for found in seen.requests],
    }


@bp.patch("/people/<person_id>")
@operation(
    "Correct a person's name or email (their registrations too; publishes person.updated)",
    body=CORRECTION_BODY,
    auth="manage",
    responses={
        200: "corrected (or nothing to change)",
        400: "a blank or invalid value",
        404: "no such person in your organization",
        409: "another person of your organization has this email",
    },
    tags=["people"],
)
def correct_person(person_id: str) -> Any:
    principal = g.principal
    person, fields = people.correct(ctx(), principal.org_id, person_id, dict(g.body), actor_of(principal))
    return {**public_person(person), "changed": list(fields)}


def _file(kind: str, person_id: str) -> Doc:
    principal = g.principal
    asked_by = rules.requested_by("user", principal.subject_id if principal.kind == "user" else None)
    file_request = privacy.request_export if kind == "export" else privacy.request_erasure
    return file_request(ctx(), principal.org_id, person_id, asked_by, actor_of(principal))


@bp.post("/people/<person_id>/export")
@operation(
    "Export everything the organization holds about a person: checkin's part now, followup's and analytics' "
    "when they answer",
    auth="manage",
    responses={201: "the data request", 404: "no such person in your organization", 409: "the person was erased"},
    tags=["people"],
)
def export_person(person_id: str) -> Any:
    return public_request(_file("export", person_id)), 201


@bp.post("/people/<person_id>/erasure")
@operation(
    "Erase a person from every service (registrations stay in the counts, anonymised); cannot be undone",
    auth="manage",
    responses={201: "the data request", 404: "no such person in your organization", 409: "already erased"},
    tags=["people"],
)
def erase_person(person_id: str) -> Any:
    return public_request(_file("erasure", person_id)), 201


# -- data requests -------------------------------------------------------------------------------------------


@bp.get("/data-requests")
@operation(
    "Your organization's data requests (exports and erasures), newest first",
    auth="manage",
    query={"limit": "1-200, default 50", "offset": "default 0"},
    responses={200: "the requests and the total"},
    tags=["people"],
)
def list_data_requests() -> Any:
    limit, skip = page_args(default_limit=50, max_limit=200)
    org_id = g.principal.org_id
    found, total = privacy.list_requests(ctx(), org_id, skip=skip, limit=limit)
    names = privacy.person_names(ctx(), org_id, found)
    return {"total": total, "data_requests": [public_request(item, names.get(item["_id"])) for item in found]}


@bp.get("/data-requests/<request_id>")
@operation(
    "A data request: each service's progress (done or working, with times) and what it reported",
    auth="manage",
    responses={200: "the request", 404: "no such data request in your organization"},
    tags=["people"],
)
def get_data_request(request_id: str) -> Any:
    org_id = g.principal.org_id
    found = privacy.get_request(ctx(), org_id, request_id)
    return public_request(found, privacy.person_names(ctx(), org_id, [found]).get(found["_id"]))


@bp.get("/data-requests/<request_id>/archive.json")
@operation(
    "A complete export: the request and every service's part (checkin, followup, analytics)",
    auth="manage",
    responses={
        200: "the archive",
        404: "no such data request in your organization",
        409: "not complete yet, or not an export",
    },
    tags=["people"],
)
def data_request_archive(request_id: str) -> Response:
    found, parts = privacy.archive(ctx(), g.principal.org_id, request_id)
    return archive_response(found, parts)


def archive_response(found: Doc, parts: Doc) -> Response:
    body = json.dumps({"request": public_request(found), **parts}, ensure_ascii=False, indent=1)
    return download(body, "application/json", f"personal-data-{found['_id']}.json")


@bp.errorhandler(RuleBroken)
def _rule_broken(error: RuleBroken) -> Any:
    status = STATUS_BY_CODE.get(error.code, 409)
    return ApiError(status, error.code, error.message, error.field).to_response()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
