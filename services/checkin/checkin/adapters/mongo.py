"""Checkin's MongoDB collections and their indexes (every queried field is indexed)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from turnout_common.indexes import drop_unused_indexes
from turnout_common.outbox import ensure_outbox_indexes

ORGANIZATIONS = "organizations"
USERS = "users"
EVENTS = "events"
PEOPLE = "people"
REGISTRATIONS = "registrations"
CHECKIN_REQUESTS = "checkin_requests"
KIOSKS = "kiosks"
AUDIT_LOG = "audit_log"
API_TOKENS = "api_tokens"
ENDED_SESSIONS = "ended_sessions"
IMPORTS = "imports"
IMPORT_ROWS = "import_rows"
HOUR_ENTRIES = "hour_entries"


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    db[ORGANIZATIONS].create_index([("slug", ASCENDING)], unique=True)
    db[USERS].create_index([("email", ASCENDING)], unique=True)
    db[USERS].create_index([("org_id", ASCENDING)])
    db[API_TOKENS].create_index([("org_id", ASCENDING), ("created_at", DESCENDING)])
    # A signed-out session is kept only while its token could still be presented.
    db[ENDED_SESSIONS].create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
    db[EVENTS].create_index([("org_id", ASCENDING), ("starts_at", DESCENDING)])
    db[EVENTS].create_index([("status", ASCENDING), ("ends_at", ASCENDING)])
    db[EVENTS].create_index([("public_token", ASCENDING)])
    db[EVENTS].create_index([("org_id", ASCENDING), ("series_id", ASCENDING), ("occurrence", ASCENDING)])
    # The retention sweep: an organization's events ended before the cut-off, not swept yet.
    db[EVENTS].create_index([("org_id", ASCENDING), ("details_swept_at", ASCENDING), ("ends_at", ASCENDING)])
    # Unique: one person per address (a name-only person's email_norm is a "~" key, see
    # service_layer/registrations.name_only_key, so the index is whole and never partial).
    db[PEOPLE].create_index([("org_id", ASCENDING), ("email_norm", ASCENDING)], unique=True)
    # A Meetup re-import finds its members; sparse: only people imported from Meetup are in it.
    db[PEOPLE].create_index([("meetup_member_id", ASCENDING)], sparse=True)
    db[REGISTRATIONS].create_index([("event_id", ASCENDING), ("person_id", ASCENDING)], unique=True)
    db[REGISTRATIONS].create_index([("badge_code", ASCENDING)], unique=True)
    # checkin_requests: _id is "<org_id>:<client key>", the only key it is read
    # by. (A created_at index, kept for a purge nothing ran, cost every scan a
    # write; the retention sweep finds an old event's records by the
    # organization's _id range instead: adapters/mongo_retention.py.)
    drop_unused_indexes(db, CHECKIN_REQUESTS, ["created_at_1"])
    db[KIOSKS].create_index([("pairing_code", ASCENDING)])
    db[KIOSKS].create_index([("org_id", ASCENDING), ("event_id", ASCENDING)])
    db[AUDIT_LOG].create_index([("org_id", ASCENDING), ("event_id", ASCENDING), ("at", DESCENDING)])
    db[AUDIT_LOG].create_index([("org_id", ASCENDING), ("at", DESCENDING)])
    db[AUDIT_LOG].create_index([("registration_id", ASCENDING)])
    # The owners' trail filtered by action; a person's entries (their erasure rewrites them).
    db[AUDIT_LOG].create_index([("org_id", ASCENDING), ("action", ASCENDING), ("at", DESCENDING)])
    db[AUDIT_LOG].create_index([("org_id", ASCENDING), ("person_id", ASCENDING)])
    # Arrivals and each kiosk's check-ins today: both name the event.
    db[REGISTRATIONS].create_index([("event_id", ASCENDING), ("checkin.received_at", DESCENDING)])
    # Every index of registrations is rewritten by each check-in (SecantusDB
    # deletes and writes every entry of an updated document); these three no
    # query needs: every registration query names the event, the id or the
    # badge, and a status within an event is filtered on the event's entries
    # of (event_id, person_id) (measured on SecantusDB with 80 events of 500:
    # a roster 14 ms without it, 19 ms with it; the waitlist's head 11 ms, 4 ms).
    drop_unused_indexes(
        db, REGISTRATIONS, ["org_id_1", "checkin.kiosk_id_1_checkin.received_at_1", "event_id_1_status_1"]
    )
    db[IMPORTS].create_index([("status", ASCENDING), ("lease_until", ASCENDING), ("created_at", ASCENDING)])
    db[IMPORTS].create_index([("event_id", ASCENDING), ("created_at", DESCENDING)])
    db[IMPORT_ROWS].create_index([("job_id", ASCENDING)])
    # A volunteer's off-site hours (their page, their statement, their erasure); the pending list.
    db[HOUR_ENTRIES].create_index([("org_id", ASCENDING), ("person_id", ASCENDING), ("date", DESCENDING)])
    db[HOUR_ENTRIES].create_index([("org_id", ASCENDING), ("state", ASCENDING), ("logged_at", ASCENDING)])
    ensure_outbox_indexes(db)
    from checkin.adapters.mongo_privacy import ensure_privacy_indexes  # it imports the names above

    ensure_privacy_indexes(db)
    from checkin.adapters.mongo_greeters import ensure_greeter_indexes

    ensure_greeter_indexes(db)
