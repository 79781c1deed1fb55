"""Follow-up's collections and their indexes.

SecantusDB (the local database) reads every index entry that matches a
query's equality/range prefix before applying a limit, so the hot queries
here are shaped to match few entries: senders claim small ``send_batches``
documents, then read a batch's nudges by ``batch_id``.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from turnout_common.outbox import ensure_outbox_indexes
from turnout_common.revocations import ensure_revocation_indexes

CONTACTS = "contacts"
ATTENDANCE = "attendance"
EVENTS = "events"  # gatherings, as checkin's messages describe them
PLANS = "followup_plans"  # one per ended gathering: its nudges still to be planned
NUDGES = "nudges"  # one per (gathering, person, kind): the emails and their states
SEND_BATCHES = "send_batches"  # what a sender claims: a few hundred nudges due together
RENDERED = "rendered_messages"  # every rendered attempt, exactly as handed to the transport
INTRODUCTIONS = "introductions"
SETTINGS = "followup_settings"
SUPPRESSIONS = "suppressions"
FIGURES = "followup_figures"
DELIVERIES = "deliveries"  # the delivery journal: <followup>:<attempt>:sending|accepted (append-only)
IN_DOUBT = "in_doubt"  # nudges whose delivery is unknown, until a person resolves them
SCANS = "followup_scans"
ERASED_PEOPLE = "erased_people"  # tombstones: pseudonym and address digest of each erased person
CONSENT_HISTORY = "consent_history"  # every change of a person's consent, append-only
RETENTION_POLICIES = "retention_policies"  # the newest retention.policy_set per organization


def ensure_indexes(db: Database[dict[str, Any]]) -> None:
    db[CONTACTS].create_index([("org_id", ASCENDING), ("email", ASCENDING)])
    db[CONTACTS].create_index([("email_norm", ASCENDING)])
    db[ATTENDANCE].create_index([("event_id", ASCENDING), ("person_id", ASCENDING)], unique=True)
    db[ATTENDANCE].create_index([("person_id", ASCENDING)])
    db[EVENTS].create_index([("org_id", ASCENDING), ("kind", ASCENDING), ("starts_at", ASCENDING)])
    db[PLANS].create_index([("state", ASCENDING), ("due_at", ASCENDING)])
    db[PLANS].create_index([("has_dirty", ASCENDING)])
    # The exactly-once guard: one nudge per (gathering, person, kind[, discriminator]).
    db[NUDGES].create_index([("key", ASCENDING)], unique=True)
    db[NUDGES].create_index([("batch_id", ASCENDING)])
    db[NUDGES].create_index([("event_id", ASCENDING), ("person_id", ASCENDING)])
    # Deliberately no index on ``state``: every send changes it, and each index
    # makes that write slower; ``in_doubt`` keeps the few that need finding.
    db[SEND_BATCHES].create_index([("state", ASCENDING), ("due_at", ASCENDING)])
    db[SEND_BATCHES].create_index([("state", ASCENDING), ("lease_until", ASCENDING)])
    # The retention sweep: an organization's finished batches, oldest first.
    db[SEND_BATCHES].create_index([("org_id", ASCENDING), ("state", ASCENDING), ("due_at", ASCENDING)])
    db[RENDERED].create_index([("followup_id", ASCENDING)])
    # No pair is suggested twice in one organization, whatever the gathering.
    db[INTRODUCTIONS].create_index([("org_id", ASCENDING), ("pair_key", ASCENDING)], unique=True)
    db[INTRODUCTIONS].create_index([("event_id", ASCENDING), ("people", ASCENDING)])
    db[INTRODUCTIONS].create_index([("org_id", ASCENDING), ("people", ASCENDING)])
    db[SUPPRESSIONS].create_index([("org_id", ASCENDING), ("created_at", ASCENDING)])
    db[SUPPRESSIONS].create_index([("email_norm", ASCENDING)])
    db[SUPPRESSIONS].create_index([("org_id", ASCENDING), ("person_id", ASCENDING)])
    # A registration or correction naming an erased person's address is checked against these.
    db[ERASED_PEOPLE].create_index([("email_digests", ASCENDING)])
    db[CONSENT_HISTORY].create_index([("org_id", ASCENDING), ("person_id", ASCENDING), ("at", ASCENDING)])
    ensure_revocation_indexes(db)
    ensure_outbox_indexes(db)
