"""Analytics' collections: the raw archive (which is also the log of applied
message ids) and the projections built from it."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

ARCHIVE = "archive"
EVENT_FIGURES = "event_figures"


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    db[ARCHIVE].create_index([("type", ASCENDING), ("time", ASCENDING)])
    db[ARCHIVE].create_index([("subject", ASCENDING)])
    db[EVENT_FIGURES].create_index([("org_id", ASCENDING), ("starts_at", DESCENDING)])
