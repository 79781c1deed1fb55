"""A short-lived, per-process cache of event documents for the check-in path.

Every scan needs its event (organization scope, status, check-in window);
reading it from MongoDB each time would be one more round trip per scan.
Events change rarely, so a few seconds of staleness is the trade: a
cancellation or a changed window reaches the door within ``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time

from checkin.service_layer.ports import Events
from turnout_common.types import Doc


class EventCache:
    def __init__(self, events: Events, ttl: float = 5.0, max_entries: int = 1000) -> None:
        self.events = events
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[float, Doc | None]] = {}
        self._lock = threading.Lock()

    def get(self, org_id: str, event_id: str) -> Doc | None:
        key = (org_id, event_id)
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        event = self.events.get_in_org(event_id, org_id)
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now, event)
        return event

    def forget(self, org_id: str, event_id: str) -> None:
        with self._lock:
            self._entries.pop((org_id, event_id), None)
