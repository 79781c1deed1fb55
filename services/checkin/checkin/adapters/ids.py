"""Document ids: an ObjectId's text, so ids sort in creation order (the
roster, the end-of-shift check-outs and the registrations list rely on it)."""

from __future__ import annotations

from bson import ObjectId


def new_id() -> str:
    return str(ObjectId())
