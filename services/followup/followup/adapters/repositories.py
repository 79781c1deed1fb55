"""The repositories of ``followup.service_layer.repositories`` on MongoDB.

Every query the service layer needs is written here, with the filters,
projections, sorts and limits it had when it lived in the use cases (their
shapes are tuned to SecantusDB: see ``followup.adapters.mongo``). A store
built with a session runs every statement in that session's transaction.
pymongo's errors that the service layer acts on are translated here
(``DuplicateRecord``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from bson import Binary
from pymongo import ReplaceOne, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from followup.adapters.mongo import (
    ATTENDANCE,
    CONTACTS,
    DELIVERIES,
    EVENTS,
    FIGURES,
    IN_DOUBT,
    INTRODUCTIONS,
    NUDGES,
    PLANS,
    RENDERED,
    SCANS,
    SEND_BATCHES,
    SETTINGS,
    SUPPRESSIONS,
)
from followup.adapters.privacy import (
    MongoConsentHistory,
    MongoErasedPeople,
    MongoLeftovers,
    MongoRetentionPolicies,
)
from followup.domain.nudges import PENDING, NudgeState
from followup.domain.plans import AWAITING_INTRODUCTIONS, PENDING_PLAN
from followup.domain.retention import SWEEPS
from followup.service_layer.repositories import DuplicateRecord, Tx
from turnout_common.consumer import MessageHandler
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork
from turnout_common.revocations import REVOKED_SUBJECTS, revocation_writes
from turnout_common.types import Doc

T = TypeVar("T")

PENDING_VALUES = [state.value for state in PENDING]
CLAIMED = NudgeState.CLAIMED.value
CHUNK = 500  # values per ``$in`` (keeps each query's index work small)


# A display status (``followup.domain.nudges.display_status``) as a query.
STATUS_QUERIES: dict[str, Doc] = {
    "scheduled": {"state": NudgeState.SCHEDULED.value},
    "retry": {"state": NudgeState.RETRY.value},
    "sending": {"state": {"$in": [NudgeState.CLAIMED.value, NudgeState.SENDING.value]}},
    "sent": {"state": NudgeState.SENT.value},
    "failed": {"state": NudgeState.FAILED.value},
    "bounced": {"$or": [{"state": NudgeState.BOUNCED.value}, {"bounced_at": {"$ne": None}}]},
    "opened": {"opened_at": {"$ne": None}},
    "clicked": {"$or": [{"clicked_at": {"$ne": None}}, {"feedback_at": {"$ne": None}}]},
    "delivery_unknown": {"state": NudgeState.DELIVERY_UNKNOWN.value},
    "skipped": {"state": NudgeState.SKIPPED.value},
}


def _chunks(values: list[str], size: int = CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Repo:
    def __init__(self, db: Database[Doc], session: ClientSession | None) -> None:
        self.db = db
        self.session = session

    def _find_in(self, collection: str, field_name: str, values: Iterable[str], **extra: Any) -> list[Doc]:
        """``find({field: {$in: values}})`` in chunks."""
        unique = sorted(set(values))
        found: list[Doc] = []
        for chunk in _chunks(unique):
            found.extend(self.db[collection].find({field_name: {"$in": chunk}, **extra}, session=self.session))
        return found


class MongoEvents(_Repo):
    def get(self, event_id: str) -> Doc | None:
        return self.db[EVENTS].find_one({"_id": event_id}, session=self.session)

    def in_org(self, org_id: str, event_id: str) -> Doc | None:
        return self.db[EVENTS].find_one({"_id": event_id, "org_id": org_id}, session=self.session)

    def timezone_of(self, event_id: str) -> str | None:
        doc = self.db[EVENTS].find_one({"_id": event_id}, {"timezone": 1}, session=self.session) or {}
        zone = doc.get("timezone")
        return str(zone) if zone is not None else None

    def by_ids(self, event_ids: Iterable[str]) -> list[Doc]:
        return self._find_in(EVENTS, "_id", event_ids)

    def upcoming(self, org_id: str, now: datetime, limit: int) -> list[Doc]:
        return list(
            self.db[EVENTS]
            .find({"org_id": org_id, "status": "scheduled", "starts_at": {"$gt": now}}, session=self.session)
            .sort("starts_at", 1)
            .limit(limit)
        )


class MongoContacts(_Repo):
    def get(self, person_id: str) -> Doc | None:
        return self.db[CONTACTS].find_one({"_id": person_id}, session=self.session)

    def in_org(self, org_id: str, person_id: str) -> Doc | None:
        return self.db[CONTACTS].find_one({"_id": person_id, "org_id": org_id}, session=self.session)

    def by_ids(self, person_ids: Iterable[str]) -> list[Doc]:
        return self._find_in(CONTACTS, "_id", person_ids)

    def page(self, org_id: str, limit: int, offset: int) -> list[Doc]:
        found = self.db[CONTACTS].find({"org_id": org_id}, session=self.session)
        return list(found.sort("_id", 1).skip(offset).limit(limit))

    def with_email(self, email_norm: str, limit: int) -> list[Doc]:
        found = self.db[CONTACTS].find({"email_norm": email_norm}, {"org_id": 1}, session=self.session)
        return list(found.limit(limit))

    def unsubscribe(self, person_id: str, now: datetime, via: str) -> bool:
        changed = self.db[CONTACTS].update_one(
            {"_id": person_id, "unsubscribed": {"$ne": True}},
            {"$set": {"unsubscribed": True, "unsubscribed_at": now, "unsubscribed_via": via}},
            session=self.session,
        )
        return changed.modified_count == 1

    def unsubscribe_address(self, org_id: str, email_norm: str, now: datetime, via: str) -> list[str]:
        changed: list[str] = []
        for contact in self.db[CONTACTS].find(
            {"org_id": org_id, "email_norm": email_norm, "unsubscribed": {"$ne": True}}, session=self.session
        ):
            self.db[CONTACTS].update_one(
                {"_id": contact["_id"]},
                {"$set": {"unsubscribed": True, "unsubscribed_at": now, "unsubscribed_via": via}},
                session=self.session,
            )
            changed.append(contact["_id"])
        return changed

    def resubscribe_address(self, org_id: str, email_norm: str, via: str) -> list[str]:
        query = {"org_id": org_id, "email_norm": email_norm, "unsubscribed_via": via, "unsubscribed": True}
        ids = [doc["_id"] for doc in self.db[CONTACTS].find(query, {"_id": 1}, session=self.session)]
        if ids:
            self.db[CONTACTS].update_many(
                {"_id": {"$in": ids}}, {"$set": {"unsubscribed": False}}, session=self.session
            )
        return ids

    def correct(self, person_id: str, org_id: str, details: Doc, details_at: datetime) -> None:
        self.db[CONTACTS].update_one(
            {"_id": person_id},
            {"$set": {**details, "details_at": details_at}, "$setOnInsert": {"org_id": org_id, "unsubscribed": False}},
            upsert=True,
            session=self.session,
        )

    def forget(self, person_id: str) -> int:
        return self.db[CONTACTS].delete_one({"_id": person_id}, session=self.session).deleted_count


class MongoAttendance(_Repo):
    def of_event(self, event_id: str, *, checked_in: bool = False) -> list[Doc]:
        query: Doc = {"event_id": event_id}
        if checked_in:
            query["checked_in_at"] = {"$ne": None}
        return list(self.db[ATTENDANCE].find(query, session=self.session))

    def of_people(self, person_ids: Iterable[str], event_id: str | None = None) -> list[Doc]:
        if event_id is None:
            return self._find_in(ATTENDANCE, "person_id", person_ids)
        return self._find_in(ATTENDANCE, "person_id", person_ids, event_id=event_id)

    def registered(self, event_id: str, person_id: str) -> bool:
        found = self.db[ATTENDANCE].find_one({"event_id": event_id, "person_id": person_id}, session=self.session)
        return found is not None

    def history(self) -> list[Doc]:
        return list(
            self.db[ATTENDANCE].aggregate(
                [
                    {"$match": {"checked_in_at": {"$ne": None}}},
                    {"$sort": {"checked_in_at": 1}},
                    {
                        "$group": {
                            "_id": "$person_id",
                            "org_id": {"$last": "$org_id"},
                            "attended": {"$sum": 1},
                            "last": {"$last": "$checked_in_at"},
                            "last_event": {"$last": "$event_id"},
                            "times": {"$push": "$checked_in_at"},
                        }
                    },
                ],
                session=self.session,
            )
        )

    def of_person(self, org_id: str, person_id: str) -> list[Doc]:
        found = self.db[ATTENDANCE].find({"person_id": person_id, "org_id": org_id}, session=self.session)
        return list(found)

    def undo_checkin(self, event_id: str, person_id: str, undone_at: datetime) -> bool:
        result = self.db[ATTENDANCE].update_one(
            # A check-in received after the undo is a new one: it stays.
            {"event_id": event_id, "person_id": person_id, "checked_in_at": {"$ne": None, "$lte": undone_at}},
            {"$set": {"checked_in_at": None, "checked_out_at": None, "hours": None, "checkin_undone_at": undone_at}},
            session=self.session,
        )
        return result.modified_count == 1

    def pseudonymise(self, org_id: str, person_id: str, stand_in: str, drop: Sequence[str]) -> int:
        update: Doc = {"$set": {"person_id": stand_in}}
        if drop:
            update["$unset"] = {name: "" for name in drop}
        result = self.db[ATTENDANCE].update_many(
            {"person_id": person_id, "org_id": org_id}, update, session=self.session
        )
        return result.modified_count


class MongoIntroductions(_Repo):
    def get(self, introduction_id: str) -> Doc | None:
        return self.db[INTRODUCTIONS].find_one({"_id": introduction_id}, session=self.session)

    def by_ids(self, introduction_ids: Iterable[str]) -> list[Doc]:
        return self._find_in(INTRODUCTIONS, "_id", introduction_ids)

    def of_people_at(self, event_id: str, person_ids: Iterable[str]) -> list[Doc]:
        return self._find_in(INTRODUCTIONS, "people", person_ids, event_id=event_id)

    def of_people_in_org(self, org_id: str, person_ids: Iterable[str]) -> list[Doc]:
        return self._find_in(INTRODUCTIONS, "people", person_ids, org_id=org_id)

    def first_of_person_at(self, event_id: str, person_id: str) -> Doc | None:
        return self.db[INTRODUCTIONS].find_one({"event_id": event_id, "people": person_id}, session=self.session)

    def add(self, docs: Sequence[Doc]) -> None:
        try:
            self.db[INTRODUCTIONS].insert_many(list(docs), ordered=True, session=self.session)
        except (DuplicateKeyError, BulkWriteError) as exc:
            if isinstance(exc, BulkWriteError) and not _only_duplicates(exc):
                raise
            raise DuplicateRecord(str(exc)) from exc

    def accept(self, introduction_id: str, person_id: str, changes: Doc) -> bool:
        result = self.db[INTRODUCTIONS].update_one(
            {"_id": introduction_id, "accepted_by": {"$ne": person_id}},
            {"$addToSet": {"accepted_by": person_id}, "$set": changes},
            session=self.session,
        )
        return result.modified_count == 1

    def rewrite(self, introduction_id: str, fields: Doc) -> None:
        self.db[INTRODUCTIONS].update_one({"_id": introduction_id}, {"$set": fields}, session=self.session)


class MongoSettings(_Repo):
    def of(self, org_id: str, event_id: str | None) -> dict[str, Doc]:
        ids = [f"org:{org_id}", f"event:{event_id or '-'}"]
        return {doc["_id"]: doc for doc in self.db[SETTINGS].find({"_id": {"$in": ids}}, session=self.session)}

    def update(self, settings_id: str, fields: Doc) -> None:
        self.db[SETTINGS].update_one({"_id": settings_id}, {"$set": fields}, upsert=True, session=self.session)


class MongoSuppressions(_Repo):
    def existing(self, suppression_ids: Iterable[str]) -> set[str]:
        return {doc["_id"] for doc in self._find_in(SUPPRESSIONS, "_id", suppression_ids)}

    def get(self, suppression_id: str) -> Doc | None:
        return self.db[SUPPRESSIONS].find_one({"_id": suppression_id}, session=self.session)

    def exists(self, suppression_id: str) -> bool:
        return self.db[SUPPRESSIONS].count_documents({"_id": suppression_id}, session=self.session) > 0

    def add(self, suppression_id: str, doc: Doc) -> None:
        self.db[SUPPRESSIONS].update_one(
            {"_id": suppression_id}, {"$setOnInsert": doc}, upsert=True, session=self.session
        )

    def remove(self, suppression_id: str) -> None:
        self.db[SUPPRESSIONS].delete_one({"_id": suppression_id}, session=self.session)

    def page(self, org_id: str, limit: int, offset: int) -> list[Doc]:
        found = self.db[SUPPRESSIONS].find({"org_id": org_id}, session=self.session)
        return list(found.sort("created_at", -1).skip(offset).limit(limit))

    def of_person(self, org_id: str, email_keys: Iterable[str], person_id: str) -> list[Doc]:
        found = {doc["_id"]: doc for doc in self._find_in(SUPPRESSIONS, "_id", (f"{org_id}:{k}" for k in email_keys))}
        for doc in self.db[SUPPRESSIONS].find({"org_id": org_id, "person_id": person_id}, session=self.session):
            found[doc["_id"]] = doc
        return list(found.values())

    def replace(self, old_id: str, new_id: str, doc: Doc) -> None:
        self.db[SUPPRESSIONS].delete_one({"_id": old_id}, session=self.session)
        self.db[SUPPRESSIONS].update_one({"_id": new_id}, {"$setOnInsert": doc}, upsert=True, session=self.session)


class MongoNudges(_Repo):
    def get(self, followup: str) -> Doc | None:
        return self.db[NUDGES].find_one({"_id": followup}, session=self.session)

    def in_org(self, org_id: str, followup: str) -> Doc | None:
        return self.db[NUDGES].find_one({"_id": followup, "org_id": org_id}, session=self.session)

    def of_batch(self, batch_id: str) -> list[Doc]:
        return list(self.db[NUDGES].find({"batch_id": batch_id}, session=self.session))

    def pending_send_times(self, batch_id: str) -> list[datetime]:
        found = self.db[NUDGES].find(
            {"batch_id": batch_id, "state": {"$in": PENDING_VALUES}}, {"send_at": 1}, session=self.session
        )
        return [doc["send_at"] for doc in found]

    def existing_keys(self, keys: Sequence[str]) -> set[str]:
        found = self.db[NUDGES].find({"key": {"$in": list(keys)}}, {"key": 1}, session=self.session)
        return {doc["key"] for doc in found}

    def add(self, docs: Sequence[Doc]) -> None:
        self.db[NUDGES].insert_many(list(docs), ordered=True, session=self.session)

    def of_people_at(self, event_id: str, person_ids: Iterable[str]) -> list[Doc]:
        return self._find_in(NUDGES, "person_id", person_ids, event_id=event_id)

    def skip_pending(self, followups: Sequence[str], reason: str, now: datetime) -> None:
        self.db[NUDGES].update_many(
            {"_id": {"$in": list(followups)}, "state": {"$in": PENDING_VALUES}},
            {"$set": {"state": NudgeState.SKIPPED.value, "skip_reason": reason, "skipped_at": now}},
            session=self.session,
        )

    def decide_pending(
        self, skips: Sequence[tuple[str, str]], waits: Sequence[tuple[str, datetime, str]], now: datetime
    ) -> None:
        changes: list[UpdateOne] = [
            UpdateOne(
                {"_id": followup, "state": {"$in": PENDING_VALUES}},
                {"$set": {"state": NudgeState.SKIPPED.value, "skip_reason": reason, "skipped_at": now}},
            )
            for followup, reason in skips
        ]
        changes += [
            UpdateOne(
                {"_id": followup, "state": {"$in": PENDING_VALUES}},
                {"$set": {"send_at": until, "waiting_for": reason}},
            )
            for followup, until, reason in waits
        ]
        if changes:
            self.db[NUDGES].bulk_write(changes, ordered=False, session=self.session)

    def claim(self, followups: Sequence[str], token: str, now: datetime) -> int:
        result = self.db[NUDGES].update_many(
            {"_id": {"$in": list(followups)}, "state": {"$in": PENDING_VALUES}},
            {"$set": {"state": CLAIMED, "claim": token, "claimed_at": now}, "$inc": {"attempts": 1}},
            session=self.session,
        )
        return result.modified_count

    def claimed_by(self, followups: Sequence[str], token: str) -> set[str]:
        found = self.db[NUDGES].find(
            {"_id": {"$in": list(followups)}, "state": CLAIMED, "claim": token}, {"_id": 1}, session=self.session
        )
        return {doc["_id"] for doc in found}

    def left_claimed(self, batch_id: str, token: str) -> list[Doc]:
        return list(
            self.db[NUDGES].find({"batch_id": batch_id, "state": CLAIMED, "claim": token}, session=self.session)
        )

    def unclaim(self, followups: Sequence[str], token: str) -> None:
        self.db[NUDGES].update_many(
            {"_id": {"$in": list(followups)}, "state": CLAIMED, "claim": token},
            {"$set": {"state": NudgeState.SCHEDULED.value, "claim": None}, "$inc": {"attempts": -1}},
            session=self.session,
        )

    def settled_candidates(self, followups: Sequence[str], attempt: int, states: Sequence[str]) -> list[str]:
        condition = {"_id": {"$in": list(followups)}, "attempts": attempt, "state": {"$in": list(states)}}
        return [doc["_id"] for doc in self.db[NUDGES].find(condition, {"_id": 1}, session=self.session)]

    def mark_sent(
        self, followups: Sequence[str], attempt: int, states: Sequence[str], at: datetime, transport: str
    ) -> None:
        self.db[NUDGES].update_many(
            {"_id": {"$in": list(followups)}, "attempts": attempt, "state": {"$in": list(states)}},
            {"$set": {"state": NudgeState.SENT.value, "sent_at": at, "transport": transport}},
            session=self.session,
        )

    def record_outcome(self, followup: str, fields: Doc, attempt: int | None) -> bool:
        condition: Doc = {"_id": followup}
        if attempt is None:  # never handed over (a rendering failure): only while still pending
            condition["state"] = {"$in": PENDING_VALUES}
        else:  # this attempt was journaled as ours: its outcome is ours to record
            condition.update(attempts=attempt, state=CLAIMED)
        return self.db[NUDGES].update_one(condition, {"$set": fields}, session=self.session).modified_count == 1

    def resolve(self, followup: str, state: str, changes: Doc) -> bool:
        result = self.db[NUDGES].update_one({"_id": followup, "state": state}, {"$set": changes}, session=self.session)
        return result.modified_count == 1

    def first_open(self, followup: str, now: datetime, machine: str | None = None) -> bool:
        at, count = ("machine_opened_at", "machine_open_count") if machine else ("opened_at", "open_count")
        changes: Doc = {at: now, **({"machine_open_reason": machine} if machine else {})}
        first = self.db[NUDGES].update_one(
            {"_id": followup, at: None}, {"$set": changes, "$inc": {count: 1}}, session=self.session
        )
        return first.modified_count == 1

    def count_open(self, followup: str, machine: bool = False) -> None:
        count = "machine_open_count" if machine else "open_count"
        self.db[NUDGES].update_one({"_id": followup}, {"$inc": {count: 1}}, session=self.session)

    def first_click(self, followup: str, url: str, now: datetime, machine: str | None = None) -> bool:
        prefix = "machine_" if machine else ""
        urls = f"{prefix}clicked_urls"
        update: Doc = {
            "$addToSet": {urls: url},
            "$min": {f"{prefix}clicked_at": now},
            "$inc": {f"{prefix}click_count": 1},
        }
        if machine:
            update["$set"] = {"machine_click_reason": machine}
        result = self.db[NUDGES].update_one(
            # Past the tracking period (``strip_tracking``) clicks are only counted.
            {"_id": followup, urls: {"$ne": url}, "tracking_stripped_at": None},
            update,
            session=self.session,
        )
        return result.modified_count == 1

    def count_click(self, followup: str, machine: bool = False) -> None:
        count = "machine_click_count" if machine else "click_count"
        self.db[NUDGES].update_one({"_id": followup}, {"$inc": {count: 1}}, session=self.session)

    def note_fetch(self, followup: str, url: str, now: datetime) -> None:
        self.db[NUDGES].update_one(
            {"_id": followup, "tracking_stripped_at": None},
            {"$set": {"last_click_url": url, "last_click_at": now}},
            session=self.session,
        )

    def record_feedback(self, followup: str, rating: int, comment: str | None, now: datetime) -> bool:
        condition: Doc = {"_id": followup}
        if comment is None:
            condition["feedback_rating"] = {"$ne": rating}
        result = self.db[NUDGES].update_one(
            condition,
            {"$set": {"feedback_rating": rating, "feedback_comment": comment, "feedback_at": now}},
            session=self.session,
        )
        return result.modified_count == 1

    def record_bounce(self, followup: str, field: str, now: datetime, bounce_type: str, reason: str) -> bool:
        result = self.db[NUDGES].update_one(
            {"_id": followup, field: None},
            {"$set": {field: now, "bounce_type": bounce_type, "bounce_reason": reason}},
            session=self.session,
        )
        return result.modified_count == 1

    def listing(
        self, org_id: str, event_id: str, *, status: str | None, kind: str | None, limit: int, offset: int
    ) -> list[Doc]:
        query: Doc = {"event_id": event_id, "org_id": org_id}
        if kind:
            query["kind"] = kind
        if status:
            query.update(STATUS_QUERIES[status])
        found = self.db[NUDGES].find(query, session=self.session)
        return list(found.sort([("created_at", 1), ("_id", 1)]).skip(offset).limit(limit))

    def status_fields(self, org_id: str, event_id: str) -> list[Doc]:
        return list(
            self.db[NUDGES].find(
                {"event_id": event_id, "org_id": org_id},
                {
                    "state": 1,
                    "opened_at": 1,
                    "clicked_at": 1,
                    "bounced_at": 1,
                    "feedback_at": 1,
                    "machine_opened_at": 1,
                    "machine_clicked_at": 1,
                },
                session=self.session,
            )
        )

    def of_person(self, person_id: str, event_ids: Iterable[str | None]) -> list[Doc]:
        # One (event_id, person_id) lookup per gathering: no index on ``person_id`` alone
        # (every state change of a nudge would pay for one more).
        found: dict[str, Doc] = {}
        for event_id in dict.fromkeys(event_ids):
            for doc in self.db[NUDGES].find({"event_id": event_id, "person_id": person_id}, session=self.session):
                found[doc["_id"]] = doc
        return list(found.values())

    def win_backs(self, org_id: str) -> list[Doc]:
        # Tied to no gathering: the (event_id, person_id) index's ``None`` prefix.
        found = self.db[NUDGES].find({"event_id": None, "org_id": org_id, "kind": "win_back"}, session=self.session)
        return list(found.sort([("created_at", 1), ("_id", 1)]))

    def people_of(self, followups: Sequence[str]) -> dict[str, str]:
        found = self.db[NUDGES].find({"_id": {"$in": list(followups)}}, {"person_id": 1}, session=self.session)
        return {doc["_id"]: doc["person_id"] for doc in found}

    def skipped_for(self, followups: Sequence[str], reason: str) -> set[str]:
        found = self.db[NUDGES].find(
            {"_id": {"$in": list(followups)}, "skip_reason": reason}, {"_id": 1}, session=self.session
        )
        return {doc["_id"] for doc in found}

    def rewrite(self, followup: str, changes: Doc, drop: Sequence[str]) -> None:
        update: Doc = {"$set": changes}
        if drop:
            update["$unset"] = {name: "" for name in drop}
        self.db[NUDGES].update_one({"_id": followup}, update, session=self.session)

    def strip_tracking(self, followups: Sequence[str], before: datetime, now: datetime) -> int:
        result = self.db[NUDGES].update_many(
            {"_id": {"$in": list(followups)}, "sent_at": {"$lt": before}, "tracking_stripped_at": None},
            {
                "$unset": {"clicked_urls": "", "machine_clicked_urls": "", "last_click_url": ""},
                "$set": {"tracking_stripped_at": now},
            },
            session=self.session,
        )
        return result.modified_count


class MongoSendBatches(_Repo):
    def add(self, doc: Doc) -> None:
        self.db[SEND_BATCHES].insert_one(doc, session=self.session)

    def due(self, now: datetime, limit: int) -> list[str]:
        found = self.db[SEND_BATCHES].find(
            {"state": "ready", "due_at": {"$lte": now}}, {"_id": 1}, session=self.session
        )
        return [doc["_id"] for doc in found.sort("due_at", 1).limit(limit)]

    def claim(self, batch_id: str, token: str, now: datetime, lease_until: datetime) -> bool:
        result = self.db[SEND_BATCHES].update_one(
            {"_id": batch_id, "state": "ready"},
            {"$set": {"state": "claimed", "lease_owner": token, "lease_until": lease_until, "claimed_at": now}},
            session=self.session,
        )
        return result.modified_count == 1

    def renew(self, batch_id: str, token: str, lease_until: datetime) -> bool:
        result = self.db[SEND_BATCHES].update_one(
            {"_id": batch_id, "state": "claimed", "lease_owner": token},
            {"$set": {"lease_until": lease_until}},
            session=self.session,
        )
        return result.modified_count == 1

    def release(self, batch_id: str, token: str, changes: Doc) -> None:
        self.db[SEND_BATCHES].update_one(
            {"_id": batch_id, "lease_owner": token},
            {"$set": {**changes, "lease_owner": None, "lease_until": None}},
            session=self.session,
        )

    def expired(self, now: datetime, limit: int) -> list[Doc]:
        found = self.db[SEND_BATCHES].find({"state": "claimed", "lease_until": {"$lt": now}}, session=self.session)
        return list(found.limit(limit))

    def take_over(self, batch_id: str, owner: str, token: str, lease_until: datetime) -> bool:
        taken = self.db[SEND_BATCHES].update_one(
            {"_id": batch_id, "state": "claimed", "lease_owner": owner},
            {"$set": {"lease_owner": token, "lease_until": lease_until}},
            session=self.session,
        )
        return taken.modified_count == 1

    def reopen(self, batch_id: str, now: datetime) -> None:
        self.db[SEND_BATCHES].update_one(
            {"_id": batch_id, "state": "done"},
            # A resent message is rendered and journaled again: retention sweeps the batch anew.
            {"$set": {"state": "ready", "due_at": now}, "$unset": {f"{stage}_swept_at": "" for stage in SWEEPS}},
            session=self.session,
        )

    def count_due(self, now: datetime) -> int:
        return self.db[SEND_BATCHES].count_documents({"state": "ready", "due_at": {"$lte": now}}, session=self.session)

    def next_due_at(self) -> datetime | None:
        found = self.db[SEND_BATCHES].find({"state": "ready"}, {"due_at": 1}, session=self.session)
        first = next(iter(found.sort("due_at", 1).limit(1)), None)
        return None if first is None else first.get("due_at")

    def org_ids(self) -> list[str]:
        return sorted(str(org) for org in self.db[SEND_BATCHES].distinct("org_id", session=self.session) if org)

    def to_sweep(self, org_id: str, stage: str, before: datetime, limit: int) -> list[Doc]:
        found = self.db[SEND_BATCHES].find(
            {"org_id": org_id, "state": "done", "due_at": {"$lt": before}, f"{stage}_swept_at": None},
            session=self.session,
        )
        return list(found.limit(limit))

    def swept(self, batch_id: str, stage: str, now: datetime) -> None:
        self.db[SEND_BATCHES].update_one(
            {"_id": batch_id, "state": "done"}, {"$set": {f"{stage}_swept_at": now}}, session=self.session
        )


def _only_duplicates(error: BulkWriteError) -> bool:
    return all(item.get("code") == 11000 for item in error.details.get("writeErrors", []))


class MongoJournal(_Repo):
    def append(self, entries: Sequence[Doc]) -> int:
        try:
            self.db[DELIVERIES].insert_many(list(entries), ordered=True, session=self.session)
        except BulkWriteError as exc:
            if not _only_duplicates(exc):
                raise
            return int(exc.details.get("nInserted", 0))
        return len(entries)

    def by_ids(self, entry_ids: Sequence[str]) -> dict[str, Doc]:
        found = self.db[DELIVERIES].find({"_id": {"$in": list(entry_ids)}}, session=self.session)
        return {doc["_id"]: doc for doc in found}

    def get(self, entry_id: str) -> Doc | None:
        return self.db[DELIVERIES].find_one({"_id": entry_id}, session=self.session)

    def fence(self, entry: Doc) -> bool:
        # Looked up first: inside a transaction a duplicate-key error would abort it.
        if self.db[DELIVERIES].find_one({"_id": entry["_id"]}, {"_id": 1}, session=self.session) is not None:
            return False
        try:
            self.db[DELIVERIES].insert_one(entry, session=self.session)
        except DuplicateKeyError as exc:  # a sender got there between the two: let the caller retry
            raise DuplicateRecord(str(exc)) from exc
        return True

    def delete(self, entry_ids: Sequence[str], before: datetime | None = None) -> tuple[int, int]:
        ids = list(entry_ids)
        if not ids:
            return 0, 0
        if before is None:
            return self.db[DELIVERIES].delete_many({"_id": {"$in": ids}}, session=self.session).deleted_count, 0
        found = self.db[DELIVERIES].find({"_id": {"$in": ids}}, {"at": 1}, session=self.session)
        old = [doc["_id"] for doc in found]
        deleted = (
            self.db[DELIVERIES]
            .delete_many({"_id": {"$in": old}, "at": {"$lt": before}}, session=self.session)
            .deleted_count
        )
        return deleted, len(old) - deleted


class MongoRendered(_Repo):
    def store(self, docs: Sequence[Doc]) -> None:
        writes: list[ReplaceOne[Doc]] = [
            ReplaceOne({"_id": doc["_id"]}, {**doc, "raw": Binary(zlib.compress(doc["raw"], 6))}, upsert=True)
            for doc in docs
        ]
        if writes:
            self.db[RENDERED].bulk_write(writes, ordered=False, session=self.session)

    def raw(self, rendered_id: str) -> bytes | None:
        stored = self.db[RENDERED].find_one({"_id": rendered_id}, session=self.session)
        if stored is None or stored.get("raw") is None:
            return None
        return zlib.decompress(bytes(stored["raw"]))

    def of_ids(self, rendered_ids: Sequence[str]) -> list[Doc]:
        found = self.db[RENDERED].find({"_id": {"$in": list(rendered_ids)}}, session=self.session)
        return [
            {**doc, "raw": zlib.decompress(bytes(doc["raw"])) if doc.get("raw") is not None else None} for doc in found
        ]

    def remove(self, rendered_ids: Sequence[str]) -> int:
        if not rendered_ids:
            return 0
        return self.db[RENDERED].delete_many({"_id": {"$in": list(rendered_ids)}}, session=self.session).deleted_count

    def strip(
        self, rendered_ids: Sequence[str], now: datetime, before: datetime | None = None, *, subject: bool = False
    ) -> tuple[int, int]:
        ids = list(rendered_ids)
        if not ids:
            return 0, 0
        query: Doc = {"_id": {"$in": ids}, "body_removed_at": None}
        if before is not None:
            query["rendered_at"] = {"$lt": before}
        unset = {"raw": "", "subject": ""} if subject else {"raw": ""}
        update = {"$unset": unset, "$set": {"body_removed_at": now}}
        stripped = self.db[RENDERED].update_many(query, update, session=self.session).modified_count
        kept = 0
        if before is not None:
            kept = self.db[RENDERED].count_documents(
                {"_id": {"$in": ids}, "body_removed_at": None}, session=self.session
            )
        return stripped, kept


class MongoInDoubt(_Repo):
    def add(self, followup: str, doc: Doc) -> None:
        self.db[IN_DOUBT].update_one({"_id": followup}, {"$setOnInsert": doc}, upsert=True, session=self.session)

    def remove(self, followups: Sequence[str]) -> None:
        if len(followups) == 1:
            self.db[IN_DOUBT].delete_one({"_id": followups[0]}, session=self.session)
        else:
            self.db[IN_DOUBT].delete_many({"_id": {"$in": list(followups)}}, session=self.session)

    def count(self) -> int:
        return self.db[IN_DOUBT].count_documents({}, session=self.session)

    def of_ids(self, followups: Sequence[str]) -> list[Doc]:
        return self._find_in(IN_DOUBT, "_id", followups)


class MongoPlans(_Repo):
    def get(self, event_id: str) -> Doc | None:
        return self.db[PLANS].find_one({"_id": event_id}, session=self.session)

    def pending(self, limit: int) -> list[Doc]:
        return list(self.db[PLANS].find({"state": PENDING_PLAN}, session=self.session).limit(limit))

    def dirty(self, limit: int) -> list[Doc]:
        return list(self.db[PLANS].find({"has_dirty": True}, session=self.session).limit(limit))

    def due_for_introductions(self, now: datetime, limit: int) -> list[Doc]:
        found = self.db[PLANS].find({"state": AWAITING_INTRODUCTIONS, "due_at": {"$lte": now}}, session=self.session)
        return list(found.limit(limit))

    def next_introductions_at(self) -> datetime | None:
        found = self.db[PLANS].find({"state": AWAITING_INTRODUCTIONS}, {"due_at": 1}, session=self.session)
        first = next(iter(found.sort("due_at", 1).limit(1)), None)
        return None if first is None else first.get("due_at")

    def claim(self, plan_id: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        # Unleased, else lease expired: two _id-bounded updates, not one "$or",
        # which SecantusDB answers with a scan of every plan ever made.
        lease = {"$set": {"lease_owner": owner, "lease_until": lease_until}}
        for free in (None, {"$lt": now}):
            found = self.db[PLANS].update_one({"_id": plan_id, "lease_until": free}, lease, session=self.session)
            if found.modified_count == 1:
                return True
        return False

    def release(self, plan_id: str, owner: str, changes: Doc) -> None:
        self.db[PLANS].update_one(
            {"_id": plan_id, "lease_owner": owner},
            {"$set": {**changes, "lease_owner": None, "lease_until": None}},
            session=self.session,
        )

    def clean(self, plan_id: str, people: Sequence[str]) -> None:
        self.db[PLANS].update_one({"_id": plan_id}, {"$pullAll": {"dirty": list(people)}}, session=self.session)
        self.db[PLANS].update_one(
            {"_id": plan_id, "dirty": {"$size": 0}}, {"$set": {"has_dirty": False}}, session=self.session
        )

    def forget_dirty(self, person_id: str) -> int:
        named = [
            doc["_id"]
            for doc in self.db[PLANS].find({"has_dirty": True}, {"dirty": 1}, session=self.session)
            if person_id in (doc.get("dirty") or [])
        ]
        for plan_id in named:
            self.clean(plan_id, [person_id])
        return len(named)


class MongoFigures(_Repo):
    def add(self, increments: dict[str, int]) -> None:
        if increments:
            self.db[FIGURES].update_one({"_id": "totals"}, {"$inc": increments}, upsert=True, session=self.session)

    def totals(self) -> Doc:
        return self.db[FIGURES].find_one({"_id": "totals"}, session=self.session) or {}


class MongoScans(_Repo):
    def claim(self, scan: str, now: datetime, next_at: datetime) -> bool:
        # Read first: a pass that finds the scan not due writes nothing.
        current = self.db[SCANS].find_one({"_id": scan}, {"next_at": 1}, session=self.session)
        if current is not None and current["next_at"] > now:
            return False
        if current is None:
            self.db[SCANS].update_one(
                {"_id": scan}, {"$setOnInsert": {"next_at": now, "last_at": None}}, upsert=True, session=self.session
            )
        claimed = self.db[SCANS].update_one(
            {"_id": scan, "next_at": {"$lte": now}},
            {"$set": {"next_at": next_at, "last_at": now}},
            session=self.session,
        )
        return claimed.modified_count == 1

    def next_at(self, scan: str) -> datetime | None:
        current = self.db[SCANS].find_one({"_id": scan}, {"next_at": 1}, session=self.session)
        return None if current is None else current.get("next_at")


class MongoCheckinFacts(_Repo):
    def planned(self, event_ids: Iterable[str]) -> set[str]:
        found = self.db[PLANS].find({"_id": {"$in": sorted(event_ids)}}, {"_id": 1}, session=self.session)
        return {doc["_id"] for doc in found}

    def apply(
        self,
        events: Sequence[tuple[str, Doc]],
        contacts: Sequence[tuple[str, Doc, Doc]],
        attendance: Sequence[tuple[str, str, Doc]],
        plans: Sequence[tuple[str, Doc]],
        dirty: dict[str, set[str]],
    ) -> None:
        session = self.session
        if events:
            writes = [UpdateOne({"_id": eid}, {"$set": fields}, upsert=True) for eid, fields in events]
            self.db[EVENTS].bulk_write(writes, ordered=True, session=session)
        if contacts:
            writes = [
                UpdateOne({"_id": pid}, {"$set": fields, "$setOnInsert": on_insert}, upsert=True)
                for pid, fields, on_insert in contacts
            ]
            self.db[CONTACTS].bulk_write(writes, ordered=True, session=session)
        if attendance:
            writes = [
                UpdateOne({"event_id": eid, "person_id": pid}, update, upsert=True) for eid, pid, update in attendance
            ]
            self.db[ATTENDANCE].bulk_write(writes, ordered=True, session=session)
        if plans:
            writes = [UpdateOne({"_id": eid}, {"$setOnInsert": on_insert}, upsert=True) for eid, on_insert in plans]
            self.db[PLANS].bulk_write(writes, ordered=True, session=session)
        for event_id, people in dirty.items():
            self.db[PLANS].update_one(
                {"_id": event_id},
                {"$addToSet": {"dirty": {"$each": sorted(people)}}, "$set": {"has_dirty": True}},
                session=session,
            )

    def record_revocations(self, messages: Sequence[Envelope]) -> int:
        writes = revocation_writes(messages)
        if writes:
            self.db[REVOKED_SUBJECTS].bulk_write(writes, ordered=True, session=self.session)
        return len(writes)


class MongoStore:
    """Every repository on one database, in one session's transaction or in none."""

    def __init__(self, db: Database[Doc], session: ClientSession | None = None) -> None:
        self.events = MongoEvents(db, session)
        self.contacts = MongoContacts(db, session)
        self.attendance = MongoAttendance(db, session)
        self.introductions = MongoIntroductions(db, session)
        self.settings = MongoSettings(db, session)
        self.suppressions = MongoSuppressions(db, session)
        self.nudges = MongoNudges(db, session)
        self.batches = MongoSendBatches(db, session)
        self.journal = MongoJournal(db, session)
        self.rendered = MongoRendered(db, session)
        self.in_doubt = MongoInDoubt(db, session)
        self.plans = MongoPlans(db, session)
        self.figures = MongoFigures(db, session)
        self.scans = MongoScans(db, session)
        self.checkin_facts = MongoCheckinFacts(db, session)
        self.erased = MongoErasedPeople(db, session)
        self.consent = MongoConsentHistory(db, session)
        self.retention = MongoRetentionPolicies(db, session)
        self.leftovers = MongoLeftovers(db, session)


class MongoTx:
    """A ``Tx`` on a ``turnout_common`` unit of work (its session and its outbox)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.store = MongoStore(uow.db, uow.session)

    def publish(self, envelope: Envelope) -> None:
        self.uow.publish(envelope)


class MongoTransactions:
    """Runs work in a MongoDB transaction whose messages go to the outbox with it."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self.uow_factory = uow_factory

    def run(self, work: Callable[[Tx], T]) -> T:
        return self.uow_factory().run(lambda uow: work(MongoTx(uow)))


def in_transaction(handler: Callable[[Tx, Sequence[Envelope]], None]) -> MessageHandler:
    """A consumer handler on ``turnout_common``'s unit of work, from one on a ``Tx``."""

    def handle(uow: UnitOfWork, messages: Sequence[Envelope]) -> None:
        handler(MongoTx(uow), messages)

    return handle
