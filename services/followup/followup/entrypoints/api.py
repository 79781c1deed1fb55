"""Follow-up's JSON API (``/api/v1``): messages and their status, previews,
settings, the suppression list, and the bounce webhook."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import followup
from followup.bootstrap import Context, context_of
from followup.domain.links import InvalidLink
from followup.domain.nudges import ALL_KINDS, CALENDAR_KINDS, SWITCHABLE_KINDS, NudgeKind
from followup.domain.winback import BODY_MAX, MODES, SUBJECT_MAX
from followup.service_layer import organizer, tracking, winback
from followup.service_layer.context import Services
from followup.service_layer.organizer import RESOLUTIONS, STATUSES, Conflict
from followup.service_layer.tracking import NotFound
from followup.service_layer.winback import MAX_BULK
from turnout_common.limits import init_rate_limits
from turnout_common.metrics import MongoFiguresCollector
from turnout_common.revocations import RevokedSubjects
from turnout_common.web import ApiError, init_service_web, operation, page_args

bp = Blueprint("api", __name__, url_prefix="/api/v1")

EMAIL = {
    "type": "string",
    "minLength": 3,
    "maxLength": 254,
    "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "description": "a valid email address",
}
URL = {
    "type": ["string", "null"],
    "maxLength": 2000,
    "pattern": r"^https?://\S+$",
    "description": "an http(s) URL",
}
COLOR = {"type": "string", "pattern": r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", "description": "a colour like #1f5f8b"}
SWITCHES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {kind.value: {"type": "boolean"} for kind in SWITCHABLE_KINDS},
    "description": "nudge kind -> on/off (the follow-ups, and registration_confirmation)",
}
ORG_SETTINGS_BODY = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "nudges": SWITCHES,
        "branding": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "primary_color": COLOR,
                "accent_color": COLOR,
                "postal_address": {"type": "string", "maxLength": 500},
                "reply_to": {**EMAIL, "type": ["string", "null"]},
                "website_url": URL,
            },
        },
        "introductions_per_person": {"type": "integer", "minimum": 0, "maximum": 20},
        "win_back": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "min_events": {"type": "integer", "minimum": 1, "maximum": 1000},
                "quiet_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                "max_quiet_days": {"type": "integer", "minimum": 2, "maximum": 3650},
                "mode": {
                    "enum": list(MODES),
                    "description": "off, approval (an organizer approves each note; the default) or automatic",
                },
                "cooldown_days": {"type": "integer", "minimum": 1, "maximum": 3650},
            },
        },
    },
}
EVENT_SETTINGS_BODY = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "nudges": SWITCHES,
        "content": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "note": {"type": ["string", "null"], "maxLength": 5000},
                "photos_url": URL,
            },
        },
    },
}
SUPPRESSION_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email"],
    "properties": {"email": EMAIL, "note": {"type": "string", "maxLength": 1000}},
}
RESOLUTION_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["action"],
    "properties": {"action": {"enum": list(RESOLUTIONS)}, "note": {"type": "string", "maxLength": 500}},
}
WINBACK_NOTE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["subject", "body"],
    "properties": {
        "subject": {"type": "string", "minLength": 1, "maxLength": SUBJECT_MAX},
        "body": {"type": "string", "minLength": 1, "maxLength": BODY_MAX},
    },
}
WINBACK_APPROVALS_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ids"],
    "properties": {
        "ids": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BULK,
            "items": {"type": "string", "minLength": 1, "maxLength": 64},
            "description": "the win-back drafts to approve",
        }
    },
}
BOUNCE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email", "type"],
    "properties": {
        "email": EMAIL,
        "type": {"enum": ["hard", "soft"]},
        "reason": {"type": "string", "maxLength": 1000},
        "message_id": {"type": "string", "maxLength": 300},
        "followup_id": {"type": "string", "minLength": 1, "maxLength": 64},
    },
}


def ctx() -> Context:
    return context_of(current_app)


def svc() -> Services:
    return ctx().services


def _page() -> tuple[int, int]:
    return page_args(default_limit=100, max_limit=1000, max_offset=1_000_000_000)


@bp.get("/contacts")
@operation(
    "Contacts of your organization (built from registrations), with consent",
    auth="manage",
    query={"limit": "1-1000, default 100", "offset": "default 0"},
    tags=["contacts"],
)
def list_contacts() -> Any:
    limit, skip = _page()
    return {"contacts": organizer.list_contacts(svc(), g.principal.org_id, limit, skip)}


@bp.get("/contacts/<person_id>/consent")
@operation(
    "A contact's consent to follow-up email now, and every change of it "
    "(granted or withdrawn, by a registration, import, walk-in, the unsubscribe link, a bounce or an organizer)",
    auth="manage",
    responses={
        200: "the consent and its history, oldest first",
        400: "not a person id (at most 64 characters)",
        404: "not in your organization",
    },
    tags=["contacts"],
)
def contact_consent(person_id: str) -> Any:
    if len(person_id) > 64:
        raise ApiError(400, "invalid_field", "not a person id", field="person_id")
    return organizer.consent_of(svc(), g.principal.org_id, person_id)


@bp.get("/events/<event_id>/messages")
@operation(
    "A gathering's follow-up messages with their status "
    "(scheduled, retry, sending, sent, failed, bounced, opened, clicked, delivery_unknown, skipped)",
    auth="view",
    query={
        "limit": "1-1000, default 100",
        "offset": "default 0",
        "status": "only messages with this status",
        "kind": "only this nudge kind",
    },
    responses={200: "messages, counts per status and the plan", 404: "not in your organization"},
    tags=["messages"],
)
def list_messages(event_id: str) -> Any:
    limit, skip = _page()
    status = request.args.get("status") or None
    kind = request.args.get("kind") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_query", f"status must be one of {', '.join(STATUSES)}", field="status")
    if kind is not None and kind not in {k.value for k in ALL_KINDS} | CALENDAR_KINDS:
        raise ApiError(400, "invalid_query", "kind must be a nudge kind", field="kind")
    return organizer.list_messages(
        svc(), g.principal.org_id, event_id, limit=limit, offset=skip, status=status, kind=kind
    )


@bp.get("/messages/<followup_id>")
@operation(
    "One message: its status history and the email exactly as handed to the transport",
    auth="view",
    responses={200: "the message", 404: "not in your organization"},
    tags=["messages"],
)
def get_message(followup_id: str) -> Any:
    return organizer.message_detail(svc(), g.principal.org_id, followup_id)


@bp.post("/messages/<followup_id>/resolution")
@operation(
    "Resolve a delivery_unknown (or failed) message: resend, mark_sent or mark_failed",
    body=RESOLUTION_BODY,
    auth="manage",
    responses={200: "resolved", 404: "not in your organization", 409: "not in a state this action resolves"},
    tags=["messages"],
)
def resolve_message(followup_id: str) -> Any:
    body = g.body
    return organizer.resolve(svc(), g.principal.org_id, followup_id, body["action"], body.get("note", ""))


@bp.get("/events/<event_id>/preview")
@operation(
    "Render any nudge for any attendee of a gathering (as it would go out now)",
    auth="view",
    query={
        "nudge": "the nudge kind (required)",
        "person_id": "an attendee's person id (required)",
        "format": "json (default), html or text",
    },
    responses={200: "subject, headers, text and HTML", 404: "no such gathering or attendee"},
    tags=["messages"],
)
def preview(event_id: str) -> Any:
    kind_name = request.args.get("nudge", "")
    person_id = request.args.get("person_id", "")
    fmt = request.args.get("format", "json")
    if kind_name not in {k.value for k in ALL_KINDS}:
        kinds = ", ".join(k.value for k in ALL_KINDS)
        raise ApiError(400, "invalid_query", f"nudge must be one of {kinds}", field="nudge")
    kind = NudgeKind(kind_name)
    if not person_id or len(person_id) > 64:
        raise ApiError(400, "invalid_query", "person_id is required", field="person_id")
    if fmt not in ("json", "html", "text"):
        raise ApiError(400, "invalid_query", "format must be json, html or text", field="format")
    mail = organizer.preview(svc(), g.principal.org_id, event_id, kind, person_id)
    if fmt == "html":
        return Response(mail.html, content_type="text/html; charset=utf-8")
    if fmt == "text":
        return Response(mail.text, content_type="text/plain; charset=utf-8")
    rendered = organizer.parse_rendered(mail.raw)
    return {"nudge": kind.value, "person_id": person_id, "to": mail.to_address, **rendered}


@bp.get("/settings")
@operation("Your organization's follow-up settings (nudges on/off, branding, rules)", auth="view", tags=["settings"])
def get_settings() -> Any:
    return organizer.org_settings(svc(), g.principal.org_id)


@bp.patch("/settings")
@operation(
    "Change your organization's follow-up settings (only the fields given)",
    body=ORG_SETTINGS_BODY,
    auth="manage",
    tags=["settings"],
)
def patch_settings() -> Any:
    body = g.body
    win = body.get("win_back") or {}
    current = organizer.org_settings(svc(), g.principal.org_id)["win_back"]
    quiet = win.get("quiet_days", current["quiet_days"])
    longest = win.get("max_quiet_days", current["max_quiet_days"])
    if quiet >= longest:
        raise ApiError(400, "invalid_field", "win_back.quiet_days must be less than max_quiet_days", "win_back")
    return organizer.update_org_settings(svc(), g.principal.org_id, body)


@bp.get("/events/<event_id>/settings")
@operation(
    "A gathering's follow-up settings (its nudge switches and content)",
    auth="view",
    responses={200: "the settings", 404: "not in your organization"},
    tags=["settings"],
)
def get_event_settings(event_id: str) -> Any:
    return organizer.event_settings(svc(), g.principal.org_id, event_id)


@bp.patch("/events/<event_id>/settings")
@operation(
    "Change a gathering's follow-up settings: switch nudges on/off for it, the organizer's note, photos link",
    body=EVENT_SETTINGS_BODY,
    auth="manage",
    responses={200: "the settings", 404: "not in your organization"},
    tags=["settings"],
)
def patch_event_settings(event_id: str) -> Any:
    return organizer.update_event_settings(svc(), g.principal.org_id, event_id, g.body)


def principal_label() -> str:
    """Who did it, as kept on the nudge: the user's (or token's) id and name."""
    who = g.principal
    return f"{who.kind}:{who.subject_id} {who.name}".strip()[:200]


def _refused(error: winback.Refused) -> ApiError:
    return ApiError(409, "conflict", str(error), field=error.field)


@bp.get("/winback")
@operation(
    "Win-back: the drafts waiting for approval (who, why at risk, the note), "
    "the organization's choice (off, approval, automatic) and the funnel (drafted, approved, sent, came back)",
    auth="view",
    tags=["win-back"],
)
def winback_overview() -> Any:
    return winback.overview(svc(), g.principal.org_id)


@bp.patch("/winback/<followup_id>")
@operation(
    "Edit a win-back draft's subject and note",
    body=WINBACK_NOTE_BODY,
    auth="manage",
    responses={200: "the draft", 404: "not in your organization", 409: "not a draft any more"},
    tags=["win-back"],
)
def winback_edit(followup_id: str) -> Any:
    try:
        return winback.edit(
            svc(), g.principal.org_id, followup_id, g.body["subject"], g.body["body"], principal_label()
        )
    except winback.Refused as error:
        raise _refused(error) from error


@bp.post("/winback/<followup_id>/approval")
@operation(
    "Approve one win-back draft: it goes out once, at the next daytime opening",
    auth="manage",
    responses={200: "approved", 404: "not in your organization", 409: "not a draft any more, or win-back is off"},
    tags=["win-back"],
)
def winback_approve(followup_id: str) -> Any:
    try:
        done = winback.approve(svc(), g.principal.org_id, [followup_id], principal_label())
    except winback.Refused as error:
        raise _refused(error) from error
    if done["not_found"]:
        raise ApiError(404, "not_found", "no such win-back in your organization")
    if not done["approved"]:
        raise ApiError(409, "conflict", done["refused"][0]["reason"])
    return done


@bp.post("/winback/approvals")
@operation(
    "Approve several win-back drafts at once; says which were approved, why others of yours were not, "
    "and how many ids named no win-back of yours",
    body=WINBACK_APPROVALS_BODY,
    auth="manage",
    responses={200: "approved and refused ids", 409: "win-back is off"},
    tags=["win-back"],
)
def winback_approve_many() -> Any:
    try:
        return winback.approve(svc(), g.principal.org_id, g.body["ids"], principal_label())
    except winback.Refused as error:
        raise _refused(error) from error


@bp.delete("/winback/<followup_id>")
@operation(
    "Discard a win-back draft (it is never sent; the person may get one for a later drift)",
    auth="manage",
    responses={204: "discarded", 404: "not in your organization", 409: "not a draft any more"},
    tags=["win-back"],
)
def winback_discard(followup_id: str) -> Any:
    try:
        winback.discard(svc(), g.principal.org_id, followup_id, principal_label())
    except winback.Refused as error:
        raise _refused(error) from error
    return "", 204


@bp.get("/suppressions")
@operation(
    "Your organization's suppression list (unsubscribes, hard bounces, addresses you blocked)",
    auth="manage",
    query={"limit": "1-1000, default 100", "offset": "default 0"},
    tags=["suppressions"],
)
def list_suppressions() -> Any:
    limit, skip = _page()
    return {"suppressions": organizer.list_suppressions(svc(), g.principal.org_id, limit, skip)}


@bp.post("/suppressions")
@operation(
    "Stop all follow-up email to an address",
    body=SUPPRESSION_BODY,
    auth="manage",
    responses={201: "suppressed"},
    tags=["suppressions"],
)
def add_suppression() -> Any:
    body = g.body
    return organizer.add_suppression(svc(), g.principal.org_id, body["email"], body.get("note", "")), 201


@bp.delete("/suppressions/<address>")
@operation(
    "Lift a suppression (not a person's own unsubscribe)",
    auth="manage",
    responses={204: "lifted", 404: "not on the list", 409: "the person unsubscribed themselves"},
    tags=["suppressions"],
)
def delete_suppression(address: str) -> Any:
    if len(address) > 254:
        raise ApiError(400, "invalid_field", "not an email address", field="email")
    organizer.remove_suppression(svc(), g.principal.org_id, address)
    return "", 204


@bp.post("/webhooks/bounces")
@operation(
    "Inbound bounce notification from the mail provider (shared secret in X-Webhook-Secret)",
    body=BOUNCE_BODY,
    responses={200: "recorded", 401: "wrong secret", 503: "webhook not configured"},
    tags=["webhooks"],
)
def bounce_webhook() -> Any:
    secret = ctx().settings.webhook_secret
    if not secret:
        raise ApiError(503, "webhook_disabled", "set FOLLOWUP_WEBHOOK_SECRET to accept bounce notifications")
    given = request.headers.get("X-Webhook-Secret", "")
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        given = given or header[7:].strip()
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise ApiError(401, "invalid_secret", "the webhook secret does not match")
    body = g.body
    report = tracking.record_bounce(
        svc(),
        email=body["email"],
        bounce_type=body["type"],
        reason=body.get("reason", ""),
        followup=body.get("followup_id"),
        message_id=body.get("message_id"),
    )
    return {"matched": report.matched, "suppressed": report.suppressed}


class FollowupFigures(Collector):
    """The shared figures (outbox, lag, dead letters) plus follow-up's delivery outcomes."""

    def __init__(self, context: Context) -> None:
        self.services = context.services
        self.base = MongoFiguresCollector("followup", context.db)

    def collect(self) -> Iterator[Metric]:
        yield from self.base.collect()
        outcomes = CounterMetricFamily(
            "turnout_followup_messages", "Follow-up messages by outcome, since the start", labels=["outcome"]
        )
        unknown = GaugeMetricFamily(
            "turnout_followup_delivery_unknown",
            "Messages whose delivery is in doubt (a sender stopped mid-send); an organizer must resolve them",
        )
        due = GaugeMetricFamily("turnout_followup_due_batches", "Send batches due now and not yet claimed")
        try:
            figures = organizer.figures(self.services)
            for outcome in ("sent", "failed", "bounced", "retry", "skipped"):
                outcomes.add_metric([outcome], figures[outcome])
            outcomes.add_metric(["delivery_unknown"], figures["delivery_unknown_total"])
            unknown.add_metric([], figures["delivery_unknown_now"])
            due.add_metric([], figures["due_batches"])
        except Exception:  # noqa: BLE001 - a scrape must not fail because MongoDB is down
            pass
        yield outcomes
        yield unknown
        yield due


def _not_found(error: NotFound) -> Any:
    return ApiError(404, "not_found", str(error)).to_response()


def _conflict(error: Conflict) -> Any:
    return ApiError(409, "conflict", str(error)).to_response()


def _invalid_link(error: InvalidLink) -> Any:
    return ApiError(400, "invalid_link", str(error)).to_response()


def init_app(app: Flask) -> None:
    context = context_of(app)
    init_service_web(
        app,
        context.settings,
        version=followup.__version__,
        signer=context.signer,
        client=context.client,
        metrics_collector=FollowupFigures(context),
        principal_check=RevokedSubjects(context.db).check,
        description="Contacts, consent and the follow-up emails after each event.",
    )
    init_rate_limits(app, context.settings.rate_limits, service="followup")
    app.register_error_handler(NotFound, _not_found)
    app.register_error_handler(Conflict, _conflict)
    app.register_error_handler(InvalidLink, _invalid_link)
    app.register_blueprint(bp)
