"""One event: its registrations (search, filters, registering someone), the door staff view and CSV imports."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from checkin.domain.model import RuleBroken
from checkin.domain.series import neighbours
from checkin.entrypoints.pages_common import (
    ARRIVALS_SHOWN,
    EMAIL_PATTERN,
    HTML,
    PAGE_RESPONSES,
    PER_PAGE,
    bp,
    check_same_origin,
    ctx,
    event_or_404,
    int_arg,
    page_count,
    render,
    require,
    yes_no_arg,
)
from checkin.service_layer import badges, events, greeters, registrations, series
from turnout_common.auth import Principal
from turnout_common.clock import utcnow
from turnout_common.pages import PageError
from turnout_common.web import operation

# -- one event ---------------------------------------------------------------------------------------


def _filter_from_args() -> badges.RegistrationFilter:
    status = request.args.get("status", "")
    if status not in ("", "any", *badges.STATUSES):
        raise PageError(400, "Bad address", "“status” must be registered, waitlisted, cancelled or any.")
    text = request.args.get("q", "")
    if len(text) > badges.MAX_QUERY_LENGTH:
        raise PageError(400, "Bad address", f"Search text is limited to {badges.MAX_QUERY_LENGTH} characters.")
    return badges.RegistrationFilter(
        text=text,
        status=status if status in badges.STATUSES else None,
        checked_in=yes_no_arg("checked_in"),
        consent=yes_no_arg("consent"),
    )


def _count_arg(name: str) -> int:
    """A notice's count from the address (``created=8``), 0 when absent or not a small number."""
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) <= 4 else 0


def _series_of(principal: Principal, event: dict[str, Any]) -> dict[str, Any] | None:
    """Where an occurrence sits in its series: its size and the occurrences before and after it."""
    if not event.get("series_id"):
        return None
    found = series.occurrences(ctx(), principal.org_id, event["series_id"])
    previous, following = neighbours(found, event["_id"])
    return {"size": len(found), "previous": previous, "next": following}


def edit_values(event: dict[str, Any]) -> dict[str, str]:
    """The edit form's fields as the event has them (times as local wall-clock, like the new-event form)."""
    return {
        "title": event["title"],
        "starts_at": badges.local(event["starts_at"], event["timezone"]).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": badges.local(event["ends_at"], event["timezone"]).strftime("%Y-%m-%dT%H:%M"),
        "venue": event.get("venue") or "",
        "capacity": str(event["capacity"]) if event.get("capacity") else "",
        "scope": "this",
    }


def _event_page(principal: Principal, event_id: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    event = event_or_404(principal.org_id, event_id)
    wanted = _filter_from_args()
    page = int_arg("page", 1)
    rows, total = badges.search_registrations(
        ctx(), principal.org_id, event_id, wanted, skip=(page - 1) * PER_PAGE, limit=PER_PAGE
    )
    counts = events.attendance_counts(ctx(), [event_id])[event_id]
    notice = None
    registered_id = request.args.get("registered")
    if registered_id and status == 200:
        found = registrations.get_registration(ctx(), principal.org_id, registered_id)
        if found is not None and found["event_id"] == event_id:
            notice = {"registration": found, "existing": request.args.get("existing") == "1"}
    if principal.can("manage"):
        named = greeters.of_event(ctx(), principal.org_id, event_id)
        extra.update(
            greeters=named,
            greeter_links=greeters.links(ctx(), named),
            greeter_candidates=greeters.candidates(ctx(), principal.org_id),
        )
    extra.setdefault("reg_values", {"consent_email": ""})
    extra.setdefault("reg_errors", {})
    extra.setdefault("edit_values", edit_values(event))
    extra.setdefault("edit_errors", {})
    extra.setdefault("cancel_values", {"reason": "", "scope": "this"})
    extra.setdefault("cancel_errors", {})
    return render(
        "event.html",
        status,
        event=event,
        counts=counts,
        rows=rows,
        total=total,
        page=page,
        pages=page_count(total, PER_PAGE),
        wanted=wanted,
        statuses=badges.STATUSES,
        kiosks=badges.event_kiosks(ctx(), principal.org_id, event_id),
        notice=notice,
        created=_count_arg("created"),
        updated=_count_arg("updated"),
        cancelled=_count_arg("cancelled"),
        in_series=_series_of(principal, event),
        now=utcnow(),
        **extra,
    )


@bp.get("/events/<event_id>")
@operation(
    "One event: figures, registrations (search, filters, pages), kiosks (HTML)",
    content=HTML,
    query={
        "q": "name or email prefix, accent-insensitive",
        "status": "registered, waitlisted or cancelled",
        "checked_in": "yes or no",
        "consent": "yes or no",
        "page": "default 1",
    },
    responses={**PAGE_RESPONSES, 400: "bad search or page", 404: "no such event in your organization"},
    tags=["pages"],
)
def event_page(event_id: str) -> Any:
    return _event_page(require("view"), event_id)


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


@bp.post("/events/<event_id>/registrations")
@operation(
    "Register someone from the form (HTML)",
    content=HTML,
    responses={303: "registered: back to the event", 400: "the form again, with what to fix", 403: "not allowed"},
    tags=["pages"],
)
def register_someone(event_id: str) -> Any:
    check_same_origin()
    principal = require("manage")
    event_or_404(principal.org_id, event_id)
    form = request.form
    values = {name: form.get(name, "").strip() for name in ("first_name", "last_name", "email", "offers", "seeks")}
    values["consent_email"] = "yes" if form.get("consent_email") == "yes" else ""
    errors: dict[str, str] = {}
    if not values["first_name"]:
        errors["first_name"] = "Required."
    for name in ("first_name", "last_name"):
        if len(values[name]) > 100:
            errors[name] = "At most 100 characters."
    if not EMAIL_PATTERN.match(values["email"]) or len(values["email"]) > 254:
        errors["email"] = "Enter an email address, like ada@example.org."
    offers, seeks = _tags(values["offers"]), _tags(values["seeks"])
    for name, tags in (("offers", offers), ("seeks", seeks)):
        if len(tags) > 20 or any(len(tag) > 60 for tag in tags):
            errors[name] = "Up to 20 tags of at most 60 characters, separated by commas."
    if not errors:
        try:
            registration, created = registrations.register(
                ctx(),
                principal.org_id,
                event_id,
                first_name=values["first_name"],
                last_name=values["last_name"],
                email=values["email"],
                consent_email=bool(values["consent_email"]),
                offers=offers,
                seeks=seeks,
                source="api",  # the contract's sources: the form is the API's twin
            )
        except RuleBroken as exc:
            errors[exc.field or "form"] = exc.message[0].upper() + exc.message[1:] + "."
        else:
            target = url_for(
                "pages.event_page", event_id=event_id, registered=registration["_id"], existing=0 if created else 1
            )
            return redirect(target + "#notice", code=303)
    return _event_page(principal, event_id, 400, reg_values=values, reg_errors=errors, reg_open=True)


@bp.post("/events/<event_id>/name-labels")
@operation(
    "Turn name labels at check-in on or off (HTML form; publishes event.updated)",
    content=HTML,
    responses={303: "saved: back to the event", 403: "not allowed", 404: "no such event", 409: "ended or cancelled"},
    tags=["pages"],
)
def set_name_labels(event_id: str) -> Any:
    check_same_origin()
    principal = require("manage")
    event_or_404(principal.org_id, event_id)
    try:
        events.update_event(
            ctx(), principal.org_id, event_id, {"name_labels": request.form.get("name_labels") == "yes"}
        )
    except RuleBroken as exc:
        raise PageError(409, "Not changed", exc.message[0].upper() + exc.message[1:] + ".") from exc
    return redirect(url_for("pages.event_page", event_id=event_id), code=303)


@bp.get("/events/<event_id>/staff")
@operation(
    "Door staff view: live arrivals, check-in by search, undo (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such event in your organization"},
    tags=["pages"],
)
def staff_page(event_id: str) -> Any:
    principal = require("view")
    event = event_or_404(principal.org_id, event_id)
    latest = badges.arrivals(ctx(), principal.org_id, event_id, since=None, limit=ARRIVALS_SHOWN)
    names = badges.kiosk_names(ctx(), event_id, [reg["checkin"].get("kiosk_id") for reg in latest])
    counts = events.attendance_counts(ctx(), [event_id])[event_id]
    return render("staff.html", event=event, counts=counts, arrivals=latest, kiosk_names=names, now=utcnow())


@bp.get("/events/<event_id>/imports")
@operation(
    "Import registrations from a CSV file, with progress and a per-row report (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such event in your organization"},
    tags=["pages"],
)
def imports_page(event_id: str) -> Any:
    principal = require("manage")
    event = event_or_404(principal.org_id, event_id)
    return render("imports.html", event=event)
