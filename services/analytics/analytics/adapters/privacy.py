"""What analytics keeps about people besides the projections, in MongoDB: the
archive read and changed by person, erased people's tombstones, the retention
policies and how far the retention sweep got.

- ``erased_people``: ``{_id: pseudonym, org_id, email_digest, erased_at,
  request_id}``, never the person's id, name or address.
- ``retention_policies``: ``{_id: org_id, periods, set_at, set_by}``, the
  newest ``retention.policy_set`` of each organization.
- ``retention_state``: ``{_id: "<scope>|<kind>", until}``: the sweep stripped
  that kind of detail from every archived message applied before ``until``
  (scope: an organization with a policy of its own, or ``*`` for the others).

The archive is found by person through two indexes (``envelope.data.person_id``,
and the sparse ``envelope.data.other_person_id`` of introductions): an erasure
or an export reads a person's messages without walking the archive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database

from analytics.domain.privacy import REMOVED, ArchiveChange
from turnout_common.consumer import DEAD_LETTERS
from turnout_common.outbox import OUTBOX
from turnout_common.privacy import RetentionPeriods
from turnout_common.types import Doc

# The raw archive (``analytics.adapters.mongo`` reads it for rebuilds).
ARCHIVE = "archive"
# The archive by person: what an erasure masks and an export reads.
PERSON_INDEX = "envelope.data.person_id"
OTHER_PERSON_INDEX = "envelope.data.other_person_id"
ERASED_PEOPLE = "erased_people"
RETENTION_POLICIES = "retention_policies"
RETENTION_STATE = "retention_state"
# Far enough back for any archive: where the first retention sweep starts.
FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def ensure_privacy_indexes(db: Database[Doc]) -> None:
    # An erasure and an export find a person's messages by these (each costs
    # every archived message an index entry, ~0.06 ms on SecantusDB); only
    # introductions name another person, so that index is sparse.
    db[ARCHIVE].create_index([(PERSON_INDEX, ASCENDING)])
    db[ARCHIVE].create_index([(OTHER_PERSON_INDEX, ASCENDING)], sparse=True)
    # A rebuild's last check: the people erased while it ran.
    db[ERASED_PEOPLE].create_index([("erased_at", ASCENDING)])


def archive_update(change: ArchiveChange) -> Doc:
    """The update that makes ``change`` in an archived message, field by field."""
    update: Doc = {}
    sets = {f"envelope.data.{name}": value for name, value in change.data.items() if value is not REMOVED}
    unsets = {f"envelope.data.{name}": "" for name, value in change.data.items() if value is REMOVED}
    if change.subject is not None:
        sets.update({"envelope.subject": change.subject, "subject": change.subject})
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return update


def change_archived(db: Database[Doc], changes: Sequence[ArchiveChange], session: ClientSession | None) -> int:
    ops = [UpdateOne({"_id": change.message_id}, update) for change in changes if (update := archive_update(change))]
    if not ops:
        return 0
    return int(db[ARCHIVE].bulk_write(ops, ordered=False, session=session).matched_count)


def _mentions(value: Any, needles: Sequence[str]) -> bool:
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
    elif isinstance(value, str):
        text = value
    else:
        return False
    folded = text.casefold()
    return any(needle and needle.casefold() in folded for needle in needles)


class PersonalRecords:
    """``analytics.service_layer.ports.PersonalRecords`` in MongoDB (inside the consumer's transaction)."""

    def __init__(self, db: Database[Doc], session: ClientSession | None = None) -> None:
        self.db = db
        self.session = session

    def erased(self, pseudonyms: Iterable[str]) -> set[str]:
        wanted = list(set(pseudonyms))
        if not wanted:
            return set()
        found = self.db[ERASED_PEOPLE].find({"_id": {"$in": wanted}}, {"_id": 1}, session=self.session)
        return {doc["_id"] for doc in found}

    def erased_since(self, moment: datetime) -> set[str]:
        found = self.db[ERASED_PEOPLE].find({"erased_at": {"$gte": moment}}, {"_id": 1}, session=self.session)
        return {doc["_id"] for doc in found}

    def remember_erased(self, tombstone: Doc) -> None:
        self.db[ERASED_PEOPLE].update_one(
            {"_id": tombstone["_id"]}, {"$setOnInsert": tombstone}, upsert=True, session=self.session
        )

    def archived_naming(self, person_id: str) -> list[Doc]:
        fields = {"applied_at": 1, "envelope": 1}
        found: dict[str, Doc] = {}
        for index in (PERSON_INDEX, OTHER_PERSON_INDEX):
            # One field per query: each is answered by its own index.
            for doc in self.db[ARCHIVE].find({index: person_id}, fields, session=self.session):
                found[doc["_id"]] = doc
        return sorted(found.values(), key=lambda doc: (doc.get("applied_at") or FLOOR, doc["_id"]))

    def change_archived(self, changes: Sequence[ArchiveChange]) -> int:
        return change_archived(self.db, changes, self.session)

    def forget_leftovers(self, needles: Sequence[str]) -> dict[str, int]:
        """Dead letters and unsent export answers are few (a handful, kept until
        someone looks): read whole, the ones mentioning the person deleted."""
        wanted = [needle for needle in needles if needle]
        letters = [
            doc["_id"]
            for doc in self.db[DEAD_LETTERS].find({}, {"value": 1, "error": 1}, session=self.session)
            if _mentions(doc.get("value"), wanted) or _mentions(doc.get("error"), wanted)
        ]
        unsent = [
            doc["_id"]
            for doc in self.db[OUTBOX].find({"type": "person.data_exported"}, {"payload": 1}, session=self.session)
            if _mentions(doc.get("payload"), wanted)
        ]
        if letters:
            self.db[DEAD_LETTERS].delete_many({"_id": {"$in": letters}}, session=self.session)
        if unsent:
            self.db[OUTBOX].delete_many({"_id": {"$in": unsent}}, session=self.session)
        return {"dead_letters": len(letters), "unsent_exports": len(unsent)}

    def store_policy(self, org_id: str, periods: dict[str, int], set_at: datetime, set_by: str | None) -> bool:
        current = self.db[RETENTION_POLICIES].find_one({"_id": org_id}, {"set_at": 1}, session=self.session)
        if current is not None and current.get("set_at") is not None and current["set_at"] >= set_at:
            return False
        self.db[RETENTION_POLICIES].replace_one(
            {"_id": org_id},
            {"_id": org_id, "periods": periods, "set_at": set_at, "set_by": set_by},
            upsert=True,
            session=self.session,
        )
        return True


class RetentionRecords:
    """``analytics.service_layer.ports.RetentionStorage`` in MongoDB (no transaction:
    each change is a field-level update, which an erasure's never undoes)."""

    FIRST_WINDOW = timedelta(days=1)
    LONGEST_WINDOW = timedelta(days=366)
    SHORTEST_WINDOW = timedelta(seconds=1)

    def __init__(self, db: Database[Doc]) -> None:
        self.db = db

    def policies(self) -> dict[str, RetentionPeriods]:
        out = {}
        for doc in self.db[RETENTION_POLICIES].find({}):
            out[doc["_id"]] = RetentionPeriods.from_dict(doc.get("periods") or {})
        return out

    def watermarks(self) -> dict[tuple[str, str], datetime]:
        out = {}
        for doc in self.db[RETENTION_STATE].find({}):
            scope, _, kind = str(doc["_id"]).rpartition("|")
            out[(scope, kind)] = doc["until"]
        return out

    def set_watermark(self, scope: str, kind: str, until: datetime) -> None:
        self.db[RETENTION_STATE].update_one({"_id": f"{scope}|{kind}"}, {"$set": {"until": until}}, upsert=True)

    def archived_between(self, lower: datetime, upper: datetime, batch_size: int) -> Iterator[list[Doc]]:
        """Forward through ``[lower, upper)``, one bounded ``applied_at`` range at a
        time (SecantusDB materializes a query's whole result: one query over years
        of archive would hold it all in memory); the window grows while few
        messages are found and shrinks when many are."""
        window = self.FIRST_WINDOW
        at = lower
        fields = {"envelope.type": 1, "envelope.data": 1, "envelope.subject": 1}
        while at < upper:
            high = min(upper, at + window)
            docs = list(self.db[ARCHIVE].find({"applied_at": {"$gte": at, "$lt": high}}, fields))
            for start in range(0, len(docs), batch_size):
                yield docs[start : start + batch_size]
            if not docs:
                yield []  # a window read: the caller may look at its stop flag
            if len(docs) > 4 * batch_size:
                window = max(window / 2, self.SHORTEST_WINDOW)
            elif len(docs) < batch_size:
                window = min(window * 2, self.LONGEST_WINDOW)
            at = high

    def change_archived(self, changes: Sequence[ArchiveChange]) -> int:
        return change_archived(self.db, changes, None)
