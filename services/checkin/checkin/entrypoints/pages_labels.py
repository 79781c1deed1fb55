"""The name label page: one registration's label, sized for a label printer.

``GET /events/<event_id>/registrations/<registration_id>/label?size=62mm|4x3in``
renders the label the kiosk prints at check-in (first name large, last name,
the offer/seek line on networking evenings, a first-timer mark) with a print
stylesheet whose ``@page`` matches the chosen stock. The staff view links to
it; the kiosk draws the same label itself (it must print offline too) with
the same stylesheet (``/kiosk/static/label.css``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, request

from checkin.domain import labels
from checkin.domain.model import RuleBroken
from checkin.entrypoints import pages_common
from checkin.entrypoints.pages_common import HTML, PAGE_RESPONSES, ctx, event_or_404, render, require
from checkin.service_layer import checkins
from turnout_common.pages import PageError, SignInRequired
from turnout_common.web import operation

bp = Blueprint("labels", __name__)
bp.register_error_handler(SignInRequired, pages_common._to_sign_in)
bp.register_error_handler(PageError, pages_common._page_error)
bp.register_error_handler(RuleBroken, pages_common._rule_broken)

LONG_FIRST_NAME = 9  # longer first names print smaller (they must fit one line)


@bp.get("/events/<event_id>/registrations/<registration_id>/label")
@operation(
    "A registration's printable name label (HTML with a print stylesheet; size 62mm or 4x3in)",
    content=HTML,
    query={"size": "label stock: 62mm (continuous, cut at 100 mm; the default) or 4x3in"},
    responses={**PAGE_RESPONSES, 400: "unknown size", 404: "no such event or registration"},
    tags=["pages"],
)
def label_page(event_id: str, registration_id: str) -> Any:
    principal = require("view")
    event = event_or_404(principal.org_id, event_id)
    try:
        size = labels.label_size(request.args.get("size"))
    except ValueError as exc:
        raise PageError(400, "Bad address", f"“size” must be one of: {', '.join(labels.LABEL_SIZES)}.") from exc
    label = checkins.label_for(ctx(), principal.org_id, event_id, registration_id)
    return render(
        "label.html",
        event=event,
        label=label,
        size=size,
        sizes=labels.LABEL_SIZES,
        registration_id=registration_id,
        long_name=len(label["first_name"]) > LONG_FIRST_NAME,
        labels_on=labels.labels_on(event),
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
