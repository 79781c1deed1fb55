"""Follow-up's collections."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from turnout_common.outbox import ensure_outbox_indexes

CONTACTS = "contacts"
ATTENDANCE = "attendance"


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    db[CONTACTS].create_index([("org_id", ASCENDING), ("email", ASCENDING)])
    db[ATTENDANCE].create_index([("event_id", ASCENDING), ("person_id", ASCENDING)], unique=True)
    db[ATTENDANCE].create_index([("person_id", ASCENDING)])
    ensure_outbox_indexes(db)
