"""Printable badges: one, or a sheet of an event's."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from checkin.domain.model import RuleBroken
from checkin.entrypoints.pages_common import (
    BADGES_PER_PAGE,
    BADGES_PER_SHEET,
    HTML,
    PAGE_RESPONSES,
    bp,
    ctx,
    event_or_404,
    int_arg,
    page_count,
    render,
    require,
)
from checkin.service_layer import badges
from turnout_common.pages import PageError
from turnout_common.web import operation

# -- badges ------------------------------------------------------------------------------------------


def _badge_markup(badge: badges.Badge) -> Markup:
    return Markup(badge.qr_svg)  # segno's own markup: no user text in it


@bp.get("/badges/<registration_id>")
@operation(
    "A printable 4x3 in badge: name, event, time, venue and the QR code (HTML)",
    content=HTML,
    responses={**PAGE_RESPONSES, 404: "no such registration in your organization"},
    tags=["pages"],
)
def badge_page(registration_id: str) -> Any:
    principal = require("view")
    try:
        registration = badges.get_registration(ctx(), principal.org_id, registration_id)
    except RuleBroken as exc:
        raise PageError(404, "Badge not found", "There is no such registration in your organization.") from exc
    event = event_or_404(principal.org_id, registration["event_id"])
    badge = badges.badge_of(registration, event)
    return render("badge.html", badge=badge, qr=_badge_markup(badge), event=event)


@bp.get("/events/<event_id>/badges")
@operation(
    "All badges of an event, two per row, six per sheet, for A4 or Letter (HTML)",
    content=HTML,
    query={"page": f"{BADGES_PER_PAGE} badges a page, default 1"},
    responses={**PAGE_RESPONSES, 400: "bad page", 404: "no such event in your organization"},
    tags=["pages"],
)
def badges_page(event_id: str) -> Any:
    principal = require("view")
    event = event_or_404(principal.org_id, event_id)
    page = int_arg("page", 1)
    found, total = badges.event_badges(
        ctx(), principal.org_id, event_id, skip=(page - 1) * BADGES_PER_PAGE, limit=BADGES_PER_PAGE
    )
    cards = [(badge, _badge_markup(badge)) for badge in (badges.badge_of(reg, event) for reg in found)]
    sheets = [cards[index : index + BADGES_PER_SHEET] for index in range(0, len(cards), BADGES_PER_SHEET)]
    return render(
        "badges.html",
        event=event,
        sheets=sheets,
        total=total,
        page=page,
        pages=page_count(total, BADGES_PER_PAGE),
        first=(page - 1) * BADGES_PER_PAGE + 1,
        shown=len(cards),
    )
