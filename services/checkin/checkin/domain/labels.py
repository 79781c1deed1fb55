"""Name labels printed at the door: what a label says and the sizes it comes in.

Pure rules; the kiosk draws the same label from the check-in answer, and the
staff view opens the label page (``/events/<id>/registrations/<id>/label``).
"""

from __future__ import annotations

from checkin.domain.model import EventKind
from turnout_common.types import Doc

# Label stock a kiosk may be set to (its staff menu; kept on the tablet):
# Brother QL-style 62 mm continuous tape cut at 100 mm, and 4 x 3 in die-cut labels.
LABEL_SIZES = {"62mm": "62 mm continuous (100 mm long)", "4x3in": "4 × 3 in"}
DEFAULT_LABEL_SIZE = "62mm"
MAX_TAGS_SHOWN = 3


def labels_on(event: Doc) -> bool:
    """The event prints a name label at each check-in (its ``name_labels`` setting)."""
    return bool(event.get("name_labels"))


def label_size(value: str | None) -> str:
    """A label size from a request: one of ``LABEL_SIZES``; nothing means the default."""
    if value is None or value == "":
        return DEFAULT_LABEL_SIZE
    if value not in LABEL_SIZES:
        raise ValueError(f"size must be one of {', '.join(LABEL_SIZES)}")
    return value


def name_label(registration: Doc, event: Doc, *, first_time: bool) -> Doc:
    """One person's label: first name (large), last name, on networking evenings
    an "I can offer / I'm looking for" line (at most three of each), and a
    first-timer mark."""
    networking = event.get("kind") == EventKind.NETWORKING
    offers = list(registration.get("offers") or [])[:MAX_TAGS_SHOWN] if networking else []
    seeks = list(registration.get("seeks") or [])[:MAX_TAGS_SHOWN] if networking else []
    return {
        "first_name": registration["first_name"],
        "last_name": registration.get("last_name") or "",
        "offers": offers,
        "seeks": seeks,
        "first_time": first_time,
        "event_title": event.get("title") or "",
    }
