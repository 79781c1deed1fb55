"""The public registration link: anyone with the event's link can register,
with consent to follow-up email asked (never assumed), and gets their badge."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, render_template, request, url_for

from checkin.bootstrap import context_of
from checkin.domain.model import EventStatus, RuleBroken
from checkin.entrypoints.abuse import PUBLIC_REGISTRATION, registration_refused
from checkin.service_layer import events, registrations
from checkin.service_layer.badges import badge_of
from checkin.service_layer.context import Context
from turnout_common.calendar import PUBLISH, Gathering, calendar_file, file_name, sequence_at
from turnout_common.clock import utcnow
from turnout_common.limits import rate_limited
from turnout_common.web import ApiError, download, operation

bp = Blueprint("public", __name__)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def ctx() -> Context:
    return context_of(current_app)


def public_token(ctx: Context, event: dict[str, Any]) -> str:
    """The event's unguessable public link token (made on first use)."""
    return events.public_token(ctx, event)


def public_registration_url(event: dict[str, Any]) -> str:
    """For organizer pages: the link to share."""
    return url_for("public.register_form", token=public_token(ctx(), event), _external=True)


def _event_by_token(token: str) -> dict[str, Any] | None:
    if not 8 <= len(token) <= 40:
        return None
    return events.event_by_public_token(ctx(), token)


def _tags(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()][:20]


@bp.get("/r/<token>")
@operation(
    "The public registration form of an event (HTML)",
    content="text/html",
    tags=["public"],
    responses={200: "the form", 404: "no such link", 410: "registration closed"},
)
def register_form(token: str) -> Any:
    event = _event_by_token(token)
    if event is None:
        return render_template("public_register.html", event=None, closed="This link is not valid."), 404
    if event["status"] != EventStatus.SCHEDULED.value:
        return render_template("public_register.html", event=event, closed=f"This event is {event['status']}."), 410
    return render_template("public_register.html", event=event, form={}, errors={})


@bp.post("/r/<token>")
@operation(
    "Register through the public link (HTML form post)",
    content="text/html",
    tags=["public"],
    responses={
        201: "registered: the badge",
        400: "the form with what to fix",
        404: "no such link",
        410: "registration closed",
        429: "too many registrations from this address (Retry-After)",
    },
)
@rate_limited(PUBLIC_REGISTRATION, page=registration_refused)
def register_submit(token: str) -> Any:
    event = _event_by_token(token)
    if event is None:
        return render_template("public_register.html", event=None, closed="This link is not valid."), 404
    form = {
        name: request.form.get(name, "").strip() for name in ("first_name", "last_name", "email", "offers", "seeks")
    }
    consent = request.form.get("consent_email") == "yes"
    errors: dict[str, str] = {}
    if not form["first_name"]:
        errors["first_name"] = "Please tell us your first name."
    elif len(form["first_name"]) > 100:
        errors["first_name"] = "That is longer than 100 characters."
    if len(form["last_name"]) > 100:
        errors["last_name"] = "That is longer than 100 characters."
    if not EMAIL.match(form["email"]) or len(form["email"]) > 254:
        errors["email"] = "Please enter a valid email address, like name@example.org."
    if any(len(tag) > 60 for tag in _tags(form["offers"]) + _tags(form["seeks"])):
        errors["offers"] = "Keep each interest under 60 characters."
    if any(not text.isprintable() for text in form.values() if text):
        errors.setdefault("first_name", "Please remove unusual characters.")
    if errors:
        return render_template("public_register.html", event=event, form=form, errors=errors, consent=consent), 400
    try:
        registration, created = registrations.register(
            ctx(),
            event["org_id"],
            event["_id"],
            first_name=form["first_name"],
            last_name=form["last_name"],
            email=form["email"],
            consent_email=consent,
            offers=_tags(form["offers"]),
            seeks=_tags(form["seeks"]),
            source="public",
        )
    except RuleBroken as exc:
        return render_template("public_register.html", event=event, closed=exc.message), 410
    badge = badge_of(registration, event)
    return render_template(
        "public_registered.html", event=event, registration=registration, badge=badge, created=created
    ), 201 if created else 200


@bp.get("/r/<token>/calendar.ics")
@operation(
    "The event's calendar file (RFC 5545, METHOD:PUBLISH): the 'Add to calendar' of the registration page",
    content="text/calendar",
    tags=["public"],
    responses={200: "the calendar file", 404: "no such link"},
)
def calendar_download(token: str) -> Any:
    """Keyed by the event's public link (nothing about any person): the same UID, and the
    same SEQUENCE for the same state, as the confirmation emails follow-up sends, so a
    calendar that has one updates it from the other. A cancelled event's file says so."""
    event = _event_by_token(token)
    if event is None:
        raise ApiError(404, "not_found", "This link is not valid.")
    data = calendar_file(
        Gathering(
            org_id=event["org_id"],
            event_id=event["_id"],
            title=event["title"],
            starts_at=event["starts_at"],
            ends_at=event["ends_at"],
            timezone=event.get("timezone") or "UTC",
            venue=event.get("venue") or None,
            description=event.get("description") or None,
            url=url_for("public.register_form", token=token, _external=True),
            cancelled=event["status"] == EventStatus.CANCELLED.value,
            changed_at=event.get("cancelled_at") or event.get("updated_at"),
            sequence=sequence_at(event.get("cancelled_at") or event.get("updated_at")),
        ),
        method=PUBLISH,
        organizer=None,
        stamp=utcnow(),
    )
    response = download(data, "text/calendar", file_name(event["title"]))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8; method=PUBLISH"
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.globals["public_registration_url"] = public_registration_url
    app.register_blueprint(bp)
