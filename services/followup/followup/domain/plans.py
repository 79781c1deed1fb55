"""A gathering's follow-up plan: the states it goes through."""

from __future__ import annotations

PENDING_PLAN = "pending"  # the gathering ended; its nudges are not planned yet
AWAITING_INTRODUCTIONS = "awaiting_introductions"  # planned; introductions are matched at send time
PLANNED = "planned"
STALE = "stale"  # unknown, or ended too long ago: nothing is sent
