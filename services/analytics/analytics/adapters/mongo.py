"""Analytics' collections: the raw archive (which is also the log of applied
message ids) and the projections built from it, with their indexes; loading
and writing projection state for the projector and the rebuild."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from analytics.adapters.privacy import ARCHIVE as ARCHIVE
from analytics.adapters.privacy import PersonalRecords, ensure_privacy_indexes
from analytics.domain.events import EventMeta
from analytics.domain.facts import Counters
from analytics.domain.people import PersonState
from analytics.domain.projections import BatchChanges
from analytics.domain.registrations import RegistrationState
from turnout_common.clock import utcnow
from turnout_common.envelope import Envelope
from turnout_common.indexes import drop_unused_indexes
from turnout_common.mongo import UnitOfWork
from turnout_common.outbox import ensure_outbox_indexes
from turnout_common.revocations import ensure_revocation_indexes
from turnout_common.types import Doc

EVENT_FIGURES = "event_figures"
REGISTRATION_FACTS = "registration_facts"
EVENT_LANES = "event_lanes"
PEOPLE = "people"
PEOPLE_SUMMARY = "people_summary"
# How many people came to exactly n events (n >= 1), per organization: the loyalty
# distribution, and what lets the people list page by rank without sorting everyone.
LOYALTY = "loyalty"
COHORTS = "cohorts"
FUNNEL = "funnel_cells"

# The collections of each projection group (see ``analytics.domain.projections.PROJECTIONS``).
PROJECTION_COLLECTIONS: dict[str, tuple[str, ...]] = {
    "events": (EVENT_FIGURES, REGISTRATION_FACTS, EVENT_LANES),
    "people": (PEOPLE, PEOPLE_SUMMARY, LOYALTY, COHORTS, FUNNEL),
}
UNUSED_ARCHIVE_INDEXES = ("type_1_time_1", "subject_1")
# Which generation of each projection group is live, and the shape it was built
# with: {_id: group, generation: n, version: v}. A rebuild writes generation
# n+1 beside the live one and switches this pointer.
PROJECTION_STATE = "projection_state"
# The shape of each group's collections. Raise a group's version when a change
# needs its collections built again from the archive (the worker does so on
# start): people 2 = the slim ``people_summary`` and the ``loyalty`` counts;
# events 2, people 3 = undone check-ins (the scans not undone and the server's
# receipt times), corrections, erased people's states.
PROJECTION_VERSIONS: dict[str, int] = {"events": 2, "people": 3}

INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    EVENT_FIGURES: [[("org_id", ASCENDING), ("starts_at", DESCENDING)]],
    EVENT_LANES: [[("event_id", ASCENDING)]],
    # ``people`` holds each person's facts and is only read by ``_id``; the
    # dashboard's lists and filters run on the slim ``people_summary``.
    PEOPLE_SUMMARY: [
        [("org_id", ASCENDING), ("events_attended", DESCENDING), ("_id", ASCENDING)],
        [("org_id", ASCENDING), ("risk_from", DESCENDING)],
        [("org_id", ASCENDING), ("first_event", ASCENDING)],
    ],
    LOYALTY: [[("org_id", ASCENDING), ("events_attended", ASCENDING)]],
    COHORTS: [[("org_id", ASCENDING), ("cohort", ASCENDING)]],
    FUNNEL: [[("org_id", ASCENDING), ("month", ASCENDING)]],
}
# Sparse: only the documents with the field are in it (a registration fact has
# ``welcomed_event`` once a greeter welcomed that first-timer), so it costs the
# other registrations nothing.
SPARSE_INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    REGISTRATION_FACTS: [[("welcomed_event", ASCENDING)]],
}


def generation_name(name: str, generation: int) -> str:
    """Generation 0 keeps the plain name; a rebuild's generation n is ``<name>__g<n>``."""
    return name if generation == 0 else f"{name}__g{generation}"


def generations(db: Database[Doc], session: ClientSession | None = None) -> dict[str, int]:
    found = {doc["_id"]: int(doc.get("generation", 0)) for doc in db[PROJECTION_STATE].find({}, session=session)}
    return {group: found.get(group, 0) for group in PROJECTION_COLLECTIONS}


def names_for(gens: dict[str, int]) -> dict[str, str]:
    """Plain collection name -> the live generation's name."""
    return {
        name: generation_name(name, gens.get(group, 0))
        for group, names in PROJECTION_COLLECTIONS.items()
        for name in names
    }


def live_names(db: Database[Doc], session: ClientSession | None = None) -> dict[str, str]:
    return names_for(generations(db, session))


def set_generation(db: Database[Doc], group: str, generation: int) -> None:
    """Switch ``group`` to ``generation``, built by this code (so of the current version)."""
    update = {"generation": generation, "version": PROJECTION_VERSIONS[group]}
    db[PROJECTION_STATE].update_one({"_id": group}, {"$set": update}, upsert=True)


def outdated_groups(db: Database[Doc]) -> list[str]:
    """Projection groups whose live collections were built by an older version of the rules."""
    stored = {doc["_id"]: int(doc.get("version", 1)) for doc in db[PROJECTION_STATE].find({})}
    return [group for group, version in PROJECTION_VERSIONS.items() if stored.get(group, 1) < version]


def mark_current(db: Database[Doc], groups: Iterable[str]) -> None:
    """Record that ``groups`` are of the current version (nothing to rebuild: no archive yet)."""
    for group in groups:
        update = {"version": PROJECTION_VERSIONS[group]}
        db[PROJECTION_STATE].update_one({"_id": group}, {"$set": update}, upsert=True)


def ensure_indexes(db: Database[Doc], names: dict[str, str] | None = None) -> None:
    """Create the indexes every query here relies on (a non-indexed query scans the collection)."""
    if names is None:
        # The archive is read whole (a rebuild) or by applied_at (its catch-up
        # passes). Every index costs each archived message a write: the
        # (type, time) and subject indexes of earlier versions were never read
        # and multiplied the insert's cost on SecantusDB, so they go.
        db[ARCHIVE].create_index([("applied_at", ASCENDING)])
        drop_unused_indexes(db, ARCHIVE, UNUSED_ARCHIVE_INDEXES)
        ensure_privacy_indexes(db)
        ensure_outbox_indexes(db)
        ensure_revocation_indexes(db)
        names = live_names(db)
    for name, actual in names.items():
        for keys in INDEXES.get(name, []):
            db[actual].create_index(keys)
        for keys in SPARSE_INDEXES.get(name, []):
            db[actual].create_index(keys, sparse=True)


class ProjectionStore:
    """Reads and writes the projection collections of one generation each."""

    def __init__(
        self, db: Database[Doc], session: ClientSession | None = None, names: dict[str, str] | None = None
    ) -> None:
        self.db = db
        self.session = session
        self.names = names if names is not None else live_names(db, session)

    def _c(self, name: str) -> Collection[Doc]:
        return self.db[self.names[name]]

    def load_registrations(self, ids: Iterable[str]) -> dict[str, RegistrationState]:
        wanted = list(ids)
        if not wanted:
            return {}
        found = self._c(REGISTRATION_FACTS).find({"_id": {"$in": wanted}}, session=self.session)
        return {doc["_id"]: RegistrationState.from_doc(doc) for doc in found}

    def load_events(self, ids: Iterable[str]) -> dict[str, EventMeta]:
        wanted = list(ids)
        if not wanted:
            return {}
        fields = {name: 1 for name in ("org_id", "title", "ends_at", "timezone", "venue", "capacity", "status")}
        fields.update({"ended_at": 1, "cancelled_at": 1, "series_id": 1, "occurrence": 1, "meta": 1})
        found = self._c(EVENT_FIGURES).find({"_id": {"$in": wanted}}, fields, session=self.session)
        return {doc["_id"]: EventMeta.from_doc(doc) for doc in found if "meta" in doc}

    def load_people(self, ids: Iterable[str]) -> dict[str, PersonState]:
        wanted = list(ids)
        if not wanted:
            return {}
        found = self._c(PEOPLE).find({"_id": {"$in": wanted}}, session=self.session)
        return {doc["_id"]: PersonState.from_doc(doc) for doc in found}

    def forget_people(self, ids: Iterable[str]) -> None:
        wanted = list(ids)
        if wanted:
            self._c(PEOPLE).delete_many({"_id": {"$in": wanted}}, session=self.session)
            self._c(PEOPLE_SUMMARY).delete_many({"_id": {"$in": wanted}}, session=self.session)

    def insert_states(self, registrations: dict[str, RegistrationState], people: dict[str, PersonState]) -> None:
        """Store states known to be new (a rebuild's first write of them): an insert is
        much cheaper than an upserting replace on SecantusDB."""
        if registrations:
            self._c(REGISTRATION_FACTS).insert_many(
                [state.to_doc() for state in registrations.values()], ordered=False, session=self.session
            )
        if people:
            self._c(PEOPLE).insert_many(
                [state.to_doc() for state in people.values()], ordered=False, session=self.session
            )
            self._c(PEOPLE_SUMMARY).insert_many(
                [state.summary_doc() for state in people.values()], ordered=False, session=self.session
            )

    def write(self, changes: BatchChanges) -> None:
        """Store new states and add the figure increments: one bulk write per collection."""
        session = self.session
        if changes.registrations:
            self._c(REGISTRATION_FACTS).bulk_write(
                [ReplaceOne({"_id": key}, state.to_doc(), upsert=True) for key, state in changes.registrations.items()],
                ordered=False,
                session=session,
            )
        event_ops = []
        for event_id in set(changes.events) | set(changes.event_counters):
            update: Doc = {}
            meta = changes.events.get(event_id)
            if meta is not None:
                update["$set"] = meta.fields()
            counters = changes.event_counters.get(event_id)
            if counters:
                update["$inc"] = counters
            if update:
                event_ops.append(UpdateOne({"_id": event_id}, update, upsert=True))
        if event_ops:
            self._c(EVENT_FIGURES).bulk_write(event_ops, ordered=False, session=session)
        if changes.lanes:
            lane_ops = []
            for key, counters in changes.lanes.items():
                org_id, event_id, lane = changes.lane_ids[key]
                lane_ops.append(
                    UpdateOne(
                        {"_id": key},
                        {"$set": {"org_id": org_id, "event_id": event_id, "lane": lane}, "$inc": counters},
                        upsert=True,
                    )
                )
            self._c(EVENT_LANES).bulk_write(lane_ops, ordered=False, session=session)
        if changes.people:
            self._c(PEOPLE).bulk_write(
                [ReplaceOne({"_id": key}, state.to_doc(), upsert=True) for key, state in changes.people.items()],
                ordered=False,
                session=session,
            )
            self._c(PEOPLE_SUMMARY).bulk_write(
                [ReplaceOne({"_id": key}, state.summary_doc(), upsert=True) for key, state in changes.people.items()],
                ordered=False,
                session=session,
            )
        self._inc_cells(COHORTS, ("org_id", "cohort"), changes.cohorts)
        self._inc_cells(LOYALTY, ("org_id", "events_attended"), changes.loyalty)
        self._inc_cells(FUNNEL, ("org_id", "month", "kind"), changes.funnel)

    def _inc_cells(self, name: str, fields: tuple[str, ...], cells: Mapping[tuple[Any, ...], Counters]) -> None:
        """Add counter increments to cells keyed by ``fields`` (``_id``: the key's parts joined by ``|``)."""
        if not cells:
            return
        self._c(name).bulk_write(
            [
                UpdateOne(
                    {"_id": "|".join(str(part) for part in key)},
                    {"$set": dict(zip(fields, key, strict=True)), "$inc": counters},
                    upsert=True,
                )
                for key, counters in cells.items()
            ],
            ordered=False,
            session=self.session,
        )


# -- the archive ------------------------------------------------------------------------------------


class ArchiveReader:
    """Reads archived envelopes back, by the time they were applied.

    The whole archive is read a window of ``applied_at`` at a time, newest
    first, each window one bounded range on the ``applied_at`` index, until
    as many documents as the archive holds were read. A single query over
    everything would do on MongoDB, but SecantusDB materializes a query's
    whole result before its first batch: slow, and the whole archive in the
    database's memory. (Folding does not depend on the order, see
    ``analytics.domain.projections``.)
    """

    FIRST_WINDOW = timedelta(hours=1)
    LONGEST_WINDOW = timedelta(days=366)
    SHORTEST_WINDOW = timedelta(seconds=1)
    # Far enough back for any archive; the walk stops here if the count never adds up.
    FLOOR = datetime(2000, 1, 1, tzinfo=UTC)

    def __init__(self, db: Database[Doc]) -> None:
        self.archive = db[ARCHIVE]

    def count(self, since: datetime | None = None) -> int:
        """How many messages a pass will read (for progress). The whole archive is
        counted from the collection's metadata: counting by a filter reads every
        document on SecantusDB."""
        if since is None:
            return int(self.archive.estimated_document_count())
        return int(self.archive.count_documents({"applied_at": {"$gte": since}}))

    def is_empty(self) -> bool:
        return self.archive.estimated_document_count() == 0

    def batches(self, batch_size: int, since: datetime | None = None) -> Iterator[list[Envelope]]:
        """Every archived message (or those applied at ``since`` or later), ``batch_size`` at a time."""
        if since is not None:
            yield from _batches(self.archive.find({"applied_at": {"$gte": since}}, {"envelope": 1}), batch_size)
            return
        total = self.count()
        seen = 0
        upper = utcnow() + timedelta(days=1)  # a clock a little ahead: its messages too
        window = self.FIRST_WINDOW
        while seen < total and upper > self.FLOOR:
            lower = upper - window
            # applied_at alone: a second condition can turn the range into a collection scan.
            docs = list(self.archive.find({"applied_at": {"$gte": lower, "$lt": upper}}, {"envelope": 1}))
            seen += len(docs)
            yield from _batches(docs, batch_size)
            if len(docs) > 4 * batch_size:
                window = max(window / 2, self.SHORTEST_WINDOW)
            elif len(docs) < batch_size:
                window = min(window * 2, self.LONGEST_WINDOW)
            upper = lower
        if seen < total:
            # Documents without applied_at (none are written so; kept for safety).
            yield from _batches(self.archive.find({"applied_at": {"$exists": False}}, {"envelope": 1}), batch_size)


def _batches(docs: Iterable[Doc], batch_size: int) -> Iterator[list[Envelope]]:
    batch: list[Envelope] = []
    for doc in docs:
        if "envelope" not in doc:
            continue
        batch.append(Envelope.from_dict(doc["envelope"]))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- rebuild helpers --------------------------------------------------------------------------------


def drop_collections(db: Database[Doc], names: Iterable[str]) -> None:
    for name in names:
        db.drop_collection(name)


UPGRADE_LEASE = timedelta(hours=6)


class MongoProjections:
    """The projection groups' generations in MongoDB (``ProjectionGenerations``):
    generation n of a group is its collections named ``<name>__g<n>``."""

    def __init__(self, client: MongoClient[Doc], db: Database[Doc]) -> None:
        self.client = client
        self.db = db
        self.archive = ArchiveReader(db)
        self.records = PersonalRecords(db)

    def generations(self) -> dict[str, int]:
        return generations(self.db)

    @staticmethod
    def _names(generations: Mapping[str, int]) -> dict[str, str]:
        """Plain name -> actual name of the collections of these group generations."""
        return {
            name: generation_name(name, generation)
            for group, generation in generations.items()
            for name in PROJECTION_COLLECTIONS[group]
        }

    def clear(self, generations: Mapping[str, int]) -> None:
        drop_collections(self.db, self._names(generations).values())

    def storage(self, generations: Mapping[str, int]) -> ProjectionStore:
        return ProjectionStore(self.db, names=names_for(dict(generations)))

    def prepare(self, generations: Mapping[str, int]) -> None:
        ensure_indexes(self.db, self._names(generations))

    def switch(self, group: str, generation: int) -> None:
        set_generation(self.db, group, generation)

    def people_named(
        self, generations: Mapping[str, int], wanted: Callable[[str, str], bool]
    ) -> dict[str, tuple[str, set[str]]]:
        names = names_for(dict(generations))
        found: dict[str, tuple[str, set[str]]] = {}
        for doc in self.db[names[PEOPLE]].find({}, {"org_id": 1}):
            org_id, person_id = str(doc.get("org_id", "")), str(doc["_id"])
            if wanted(org_id, person_id):
                found[person_id] = (org_id, set())
        for doc in self.db[names[REGISTRATION_FACTS]].find({}, {"org_id": 1, "person_id": 1}):
            org_id, person_id = str(doc.get("org_id", "")), str(doc.get("person_id", ""))
            if person_id in found or wanted(org_id, person_id):
                found.setdefault(person_id, (org_id, set()))[1].add(doc["_id"])
        return found

    def apply_live(self, apply: Callable[[ProjectionStore], int]) -> int:  # (ErasableStorage)
        return UnitOfWork(self.client, self.db).run(lambda uow: apply(ProjectionStore(uow.db, uow.session)))

    def outdated_groups(self) -> list[str]:
        return outdated_groups(self.db)

    def mark_current(self, groups: Iterable[str]) -> None:
        mark_current(self.db, groups)

    def take_upgrade_lease(self) -> bool:
        """One worker upgrades at a time; a lease left by a crashed one expires."""
        now = utcnow()
        state = self.db[PROJECTION_STATE]
        try:
            state.insert_one({"_id": "upgrade-lease", "until": now + UPGRADE_LEASE})
            return True
        except DuplicateKeyError:
            taken = state.update_one(
                {"_id": "upgrade-lease", "until": {"$lt": now}}, {"$set": {"until": now + UPGRADE_LEASE}}
            )
            return taken.modified_count == 1

    def release_upgrade_lease(self) -> None:
        self.db[PROJECTION_STATE].delete_one({"_id": "upgrade-lease"})


# -- comparing projections --------------------------------------------------------------------------


def _without_zeros(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {key: _without_zeros(inner) for key, inner in value.items()}
        return {key: inner for key, inner in cleaned.items() if inner != 0 and inner != {}}
    if isinstance(value, list):
        return [_without_zeros(inner) for inner in value]
    return value


def snapshot(db: Database[Doc], names: Sequence[str] | None = None) -> dict[str, dict[Any, Any]]:
    """Every document of the live projections, counters that net to zero (and documents
    left empty by them) removed: what a projection *says*, for comparing two of them."""
    live = live_names(db)
    out: dict[str, dict[Any, Any]] = {}
    for name in names or list(live):
        docs: dict[Any, Any] = {}
        for doc in db[live[name]].find():
            cleaned = _without_zeros(doc)
            identity = {"_id", "org_id", "event_id", "lane", "cohort", "month", "kind", "events_attended"}
            if set(cleaned) - identity:
                docs[doc["_id"]] = cleaned
        out[name] = docs
    return out
