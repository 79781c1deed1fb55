"""A gathering's description (title, kind, times, status) from the event.* messages.

The newest snapshot wins (by message time, then id), whatever order the
messages are folded in; the status only moves forward (scheduled, then ended
or cancelled). Events seen only through their check-ins or registrations
(older than the archive) still get a kind and a start from those messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analytics.domain.facts import Stamp, later, parse_time

EVENT_TYPES = frozenset({"event.scheduled", "event.updated", "event.cancelled", "event.ended"})
STATUS_RANK = {"scheduled": 0, "ended": 1, "cancelled": 2}
KINDS = ("volunteer_shift", "networking", "workshop", "meeting", "other")


@dataclass(slots=True)
class EventMeta:
    event_id: str
    org_id: str
    title: str | None = None
    kind: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    timezone: str | None = None
    venue: str | None = None
    capacity: int | None = None
    status: str = "scheduled"
    ended_at: datetime | None = None
    cancelled_at: datetime | None = None
    series_id: str | None = None  # the recurring series it is an occurrence of (fixed once set)
    occurrence: int | None = None
    snapshot: Stamp | None = None  # stamp of the snapshot the core fields come from
    details: Stamp | None = None  # stamp of the snapshot venue and capacity come from
    # kind and start as attendance messages carry them: [value, time, message id] per field,
    # used while no snapshot has been seen (events older than the archive).
    hint_fields: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def described(self) -> bool:
        return self.snapshot is not None

    def hinted(self, name: str) -> Any:
        value = self.hint_fields.get(name)
        return value[0] if value else None

    def fields(self) -> dict[str, Any]:
        """The stored form (every field, so a write replaces the description whole)."""
        kind = self.kind if self.described else self.hinted("kind")
        starts_at = self.starts_at if self.described else self.hinted("starts_at")
        return {
            "org_id": self.org_id,
            "title": self.title,
            "kind": kind,
            "starts_at": starts_at,
            "ends_at": self.ends_at,
            "timezone": self.timezone,
            "venue": self.venue,
            "capacity": self.capacity,
            "status": self.status,
            "ended_at": self.ended_at,
            "cancelled_at": self.cancelled_at,
            "series_id": self.series_id,
            "occurrence": self.occurrence,
            "meta": {
                "snapshot": list(self.snapshot) if self.snapshot else None,
                "details": list(self.details) if self.details else None,
                "core": {
                    "kind": self.kind,
                    "starts_at": self.starts_at,
                },
                "hint_fields": {name: list(value) for name, value in self.hint_fields.items()},
            },
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EventMeta:
        meta = doc.get("meta") or {}

        def stamp(name: str) -> Stamp | None:
            value = meta.get(name)
            return (value[0], value[1]) if value else None

        core = meta.get("core") or {}
        return cls(
            event_id=doc["_id"],
            org_id=doc["org_id"],
            title=doc.get("title"),
            kind=core.get("kind"),
            starts_at=core.get("starts_at"),
            ends_at=doc.get("ends_at"),
            timezone=doc.get("timezone"),
            venue=doc.get("venue"),
            capacity=doc.get("capacity"),
            status=doc.get("status") or "scheduled",
            ended_at=doc.get("ended_at"),
            cancelled_at=doc.get("cancelled_at"),
            series_id=doc.get("series_id"),
            occurrence=doc.get("occurrence"),
            snapshot=stamp("snapshot"),
            details=stamp("details"),
            hint_fields={name: list(value) for name, value in (meta.get("hint_fields") or {}).items()},
        )


def fold_event(meta: EventMeta, message_type: str, data: dict[str, Any], stamp: Stamp) -> None:
    """Apply one message to an event's description (in place; idempotent, order-free)."""
    if message_type in EVENT_TYPES:
        if data.get("series_id"):  # an occurrence stays in its series: any message naming it will do
            meta.series_id = data["series_id"]
            meta.occurrence = data.get("occurrence")
        if later(meta.snapshot, stamp):
            meta.snapshot = stamp
            meta.title = data["title"]
            meta.kind = data["kind"]
            meta.starts_at = parse_time(data["starts_at"])
            meta.ends_at = parse_time(data["ends_at"])
            meta.timezone = data["timezone"]
        if "venue" in data and later(meta.details, stamp):
            meta.details = stamp
            meta.venue = data.get("venue")
            meta.capacity = data.get("capacity")
        status = {"event.cancelled": "cancelled", "event.ended": "ended"}.get(message_type, data.get("status"))
        if status in STATUS_RANK and STATUS_RANK[status] > STATUS_RANK.get(meta.status, 0):
            meta.status = status
        if message_type == "event.ended":
            meta.ended_at = parse_time(data["ended_at"])
        elif message_type == "event.cancelled":
            meta.cancelled_at = parse_time(data["cancelled_at"])
        return
    hint: dict[str, Any] = {}
    if "event_kind" in data:
        hint["kind"] = data["event_kind"]
    if "event_starts_at" in data:
        hint["starts_at"] = parse_time(data["event_starts_at"])
    for name, value in hint.items():
        # Field by field, the newest message's view wins.
        current = meta.hint_fields.get(name)
        if current is None or stamp > (current[1], current[2]):
            meta.hint_fields[name] = [value, stamp[0], stamp[1]]
