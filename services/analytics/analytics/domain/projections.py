"""How each message changes the attendance figures: pure functions that say
which counters move, so a live projection and a rebuild from the archive
apply exactly the same rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class EventFigures:
    """Counter increments and field settings for one event's figures document."""

    event_id: str
    org_id: str
    inc: dict[str, int] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, amount: int = 1) -> None:
        self.inc[name] = self.inc.get(name, 0) + amount


EVENT_FIELDS = ("title", "kind", "starts_at", "ends_at", "timezone", "capacity", "venue")


def figures_change(message_type: str, data: dict[str, Any]) -> EventFigures | None:
    """The change one message makes to its event's figures, or None."""
    if "event_id" not in data or data.get("event_id") is None:
        return None
    change = EventFigures(event_id=data["event_id"], org_id=data["org_id"])
    if message_type in ("event.scheduled", "event.updated"):
        change.set.update({name: data.get(name) for name in EVENT_FIELDS if name in data})
        change.set["status"] = data.get("status", "scheduled")
    elif message_type == "event.cancelled":
        change.set["status"] = "cancelled"
    elif message_type == "event.ended":
        change.set.update({name: data.get(name) for name in EVENT_FIELDS if name in data})
        change.set["status"] = "ended"
        change.set["ended_at"] = data["ended_at"]
    elif message_type == "attendee.registered":
        if data["status"] == "registered":
            change.add("registered")
        else:
            change.add("waitlisted")
        if data["source"] == "walk-in":
            change.add("walk_ins")
    elif message_type == "registration.cancelled":
        change.add("cancelled")
    elif message_type == "attendee.checked_in":
        change.add("checked_in")
        if data["first_time_ever"]:
            change.add("first_timers")
        else:
            change.add("returning")
        change.set["event_kind"] = data["event_kind"]
    elif message_type == "attendee.checked_out":
        change.add("checked_out")
    else:
        return None
    return change


def show_rate(registered: int, checked_in: int) -> float | None:
    """Share of registered people who came (walk-ins count as registered)."""
    if registered <= 0:
        return None
    return round(min(1.0, checked_in / registered), 4)
