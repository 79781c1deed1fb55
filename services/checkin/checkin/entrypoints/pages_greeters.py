"""The greeter's phone page: first-timers arriving, newest first, each with a
big "Welcomed" button. Opened through the greeter's signed link (no sign-in),
or at ``/events/<id>/greet`` by a signed-in user named as a greeter (the page
then uses their own link). See docs/greeters.md."""

from __future__ import annotations

from typing import Any

from checkin.domain import greeters as rules
from checkin.entrypoints.pages_common import HTML, PAGE_RESPONSES, bp, ctx, event_or_404, render, require
from checkin.service_layer import greeters
from turnout_common.pages import PageError
from turnout_common.web import operation


def _greet_page(access: greeters.GreeterAccess, token: str) -> tuple[str, int]:
    return render(
        "greet.html",
        event=access.event,
        greeter=access.greeter,
        first_timers=greeters.arrivals(ctx(), access, None),
        token=token,
    )


@bp.get("/greet/<token>")
@operation(
    "A greeter's phone page: first-timers arriving, live, with a Welcomed button (HTML; the signed link is the key)",
    content=HTML,
    responses={200: "the page", 404: "not a valid greeter link, or its greeter was removed"},
    tags=["pages", "public"],
)
def greet_page(token: str) -> Any:
    try:
        access = greeters.greeter_for_token(ctx(), token)
    except rules.LinkRefused as refused:
        raise PageError(404, "This link doesn't work", refused.message) from refused
    return _greet_page(access, token)


@bp.get("/events/<event_id>/greet")
@operation(
    "The greeter page of a signed-in user named as a greeter for the event (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 403: "you are not a greeter at this event", 404: "no such event"},
    tags=["pages"],
)
def my_greet_page(event_id: str) -> Any:
    principal = require("view")
    event_or_404(principal.org_id, event_id)
    greeter = greeters.greeter_for_user(ctx(), principal.org_id, event_id, principal.subject_id)
    if greeter is None:
        raise PageError(
            403,
            "You're not a greeter here",
            "An owner or organizer names the greeters of this event on its page; ask them to add you.",
        )
    token = greeters.link_token(ctx(), greeter)
    return _greet_page(greeters.greeter_for_token(ctx(), token), token)
