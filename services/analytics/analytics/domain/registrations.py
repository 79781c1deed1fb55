"""One registration's facts and what they add to its event's figures.

A registration is owned by one gathering, so its messages arrive in order on
one partition; the rules below do not rely on that (a rebuild reads the archive
in any order), because the state only moves up: the status rank only rises, a
cancellation stays, the *first* check-in and the *last* check-out win (ties
broken by message id). A second scan without an undo between is still one
arrival.

A welcome (``attendee.welcomed``, a greeter's tap) turns a flag on; a
first-timer whose check-in stands and who was welcomed adds to the event's
``first_timers_welcomed``.

An undone check-in (``attendee.checkin_undone``, staff's audited undo) voids
every check-in and check-out the server received up to the moment of the undo
(``received_at`` <= ``undone_at``): the person counts as not arrived again,
and a check-in received later counts again. The state keeps the latest undo
moment (a maximum) and every check-in and check-out not voided by it, so this
too is order-free: whatever order the messages come in, the surviving scans
are those received after the latest undo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analytics.domain.facts import Counters, Stamp, parse_time

BUCKET_MINUTES = 5
# Arrivals further than this from the start (a kiosk with a wrong clock) are
# kept in the edge buckets rather than spread over days of empty buckets.
EARLIEST_BUCKET = -24 * 60
LATEST_BUCKET = 48 * 60

STATUS_RANK = {"waitlisted": 1, "registered": 2}
NO_KIOSK = ""

REGISTRATION_TYPES = frozenset(
    {
        "attendee.registered",
        "registration.cancelled",
        "attendee.checked_in",
        "attendee.checked_out",
        "attendee.checkin_undone",
        "attendee.welcomed",
    }
)


def arrival_bucket(scanned_at: datetime, starts_at: datetime) -> int:
    """Start (in minutes from the event's start) of the 5-minute bucket of an arrival."""
    minutes = (scanned_at - starts_at).total_seconds() / 60
    bucket = int(minutes // BUCKET_MINUTES) * BUCKET_MINUTES
    return max(EARLIEST_BUCKET, min(LATEST_BUCKET, bucket))


@dataclass(slots=True)
class Scan:
    """A check-in or check-out as the door recorded it."""

    at: datetime
    message_id: str
    kiosk_id: str | None
    method: str
    first_time: bool = False  # check-ins: the person's first check-in ever
    starts_at: datetime | None = None  # check-ins: the event's start, as the message said
    centihours: int = 0  # check-outs: hours attended, in hundredths
    received: datetime | None = None  # when the server received it (what an undo compares with)

    @property
    def stamp(self) -> Stamp:
        return (self.at, self.message_id)

    @property
    def received_at(self) -> datetime:
        return self.received if self.received is not None else self.at

    def to_doc(self) -> dict[str, Any]:
        doc = {
            "at": self.at,
            "id": self.message_id,
            "kiosk_id": self.kiosk_id,
            "method": self.method,
            "first_time": self.first_time,
            "starts_at": self.starts_at,
            "centihours": self.centihours,
        }
        if self.received is not None:
            doc["received"] = self.received
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Scan | None:
        if doc is None:
            return None
        return cls(
            at=doc["at"],
            message_id=doc["id"],
            kiosk_id=doc.get("kiosk_id"),
            method=doc.get("method", ""),
            first_time=bool(doc.get("first_time", False)),
            starts_at=doc.get("starts_at"),
            centihours=int(doc.get("centihours", 0)),
            received=doc.get("received"),
        )


def _scans(docs: list[dict[str, Any]] | None) -> list[Scan]:
    return [scan for scan in (Scan.from_doc(doc) for doc in docs or []) if scan is not None]


@dataclass(slots=True)
class RegistrationState:
    registration_id: str
    event_id: str
    org_id: str
    person_id: str
    rank: int = 0  # 0: only a check-in seen so far, 1: waitlisted, 2: registered
    walk_in: bool = False
    cancelled: bool = False
    checkin: Scan | None = None  # the first check-in not undone: the one that counts
    checkout: Scan | None = None  # the last check-out not undone
    undone_at: datetime | None = None  # the latest undo: scans received up to then are void
    # The other check-ins and check-outs not undone (a later undo may void the
    # one that counts, and then the next one counts); usually empty.
    other_checkins: list[Scan] = field(default_factory=list)
    other_checkouts: list[Scan] = field(default_factory=list)
    # A greeter marked this first-timer welcomed (``attendee.welcomed``): a flag that only turns on.
    welcomed: bool = False

    @property
    def checked_in(self) -> bool:
        return self.checkin is not None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": self.registration_id,
            "event_id": self.event_id,
            "org_id": self.org_id,
            "person_id": self.person_id,
            "rank": self.rank,
            "walk_in": self.walk_in,
            "cancelled": self.cancelled,
            "checkin": self.checkin.to_doc() if self.checkin else None,
            "checkout": self.checkout.to_doc() if self.checkout else None,
        }
        # Written only when there is something (nearly never): the usual document stays as small as before.
        if self.undone_at is not None:
            doc["undone_at"] = self.undone_at
        if self.other_checkins:
            doc["other_checkins"] = [scan.to_doc() for scan in self.other_checkins]
        if self.other_checkouts:
            doc["other_checkouts"] = [scan.to_doc() for scan in self.other_checkouts]
        if self.welcomed:
            # Named by its event (only then): the sparse index of welcomed first-timers per event.
            doc["welcomed_event"] = self.event_id
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RegistrationState:
        return cls(
            registration_id=doc["_id"],
            event_id=doc["event_id"],
            org_id=doc["org_id"],
            person_id=doc["person_id"],
            rank=int(doc.get("rank", 0)),
            walk_in=bool(doc.get("walk_in", False)),
            cancelled=bool(doc.get("cancelled", False)),
            checkin=Scan.from_doc(doc.get("checkin")),
            checkout=Scan.from_doc(doc.get("checkout")),
            undone_at=doc.get("undone_at"),
            other_checkins=_scans(doc.get("other_checkins")),
            other_checkouts=_scans(doc.get("other_checkouts")),
            welcomed=bool(doc.get("welcomed_event")),
        )

    def settle(self, checkins: list[Scan], checkouts: list[Scan]) -> None:
        """Keep the scans not voided by the latest undo: the first check-in and
        the last check-out count, the others wait in case a later undo voids those."""
        checkins = sorted(
            {scan.message_id: scan for scan in checkins if not self.voided(scan)}.values(), key=lambda s: s.stamp
        )
        checkouts = sorted(
            {scan.message_id: scan for scan in checkouts if not self.voided(scan)}.values(), key=lambda s: s.stamp
        )
        self.checkin, self.other_checkins = (checkins[0], checkins[1:]) if checkins else (None, [])
        self.checkout, self.other_checkouts = (checkouts[-1], checkouts[:-1]) if checkouts else (None, [])

    def voided(self, scan: Scan) -> bool:
        return self.undone_at is not None and scan.received_at <= self.undone_at

    def all_checkins(self) -> list[Scan]:
        return ([self.checkin] if self.checkin else []) + self.other_checkins

    def all_checkouts(self) -> list[Scan]:
        return ([self.checkout] if self.checkout else []) + self.other_checkouts


def new_registration(data: dict[str, Any]) -> RegistrationState:
    return RegistrationState(
        registration_id=data["registration_id"],
        event_id=data["event_id"],
        org_id=data["org_id"],
        person_id=data["person_id"],
    )


def _received(data: dict[str, Any]) -> datetime | None:
    value = data.get("received_at")
    return parse_time(value) if isinstance(value, str) else None


def fold_registration(state: RegistrationState, message_type: str, data: dict[str, Any], message_id: str) -> None:
    """Apply one message to a registration's state (in place; idempotent, order-free)."""
    if message_type == "attendee.registered":
        state.rank = max(state.rank, STATUS_RANK.get(data["status"], 0))
        state.walk_in = state.walk_in or data["source"] == "walk-in"
    elif message_type == "registration.cancelled":
        state.cancelled = True
    elif message_type == "attendee.checked_in":
        scan = Scan(
            at=parse_time(data["scanned_at"]),
            message_id=message_id,
            kiosk_id=data.get("kiosk_id"),
            method=data["method"],
            first_time=bool(data["first_time_ever"]),
            starts_at=parse_time(data["event_starts_at"]),
            received=_received(data),
        )
        state.settle([*state.all_checkins(), scan], state.all_checkouts())
    elif message_type == "attendee.checked_out":
        scan = Scan(
            at=parse_time(data["scanned_at"]),
            message_id=message_id,
            # No figure reads the device of a check-out: it is not kept.
            kiosk_id=None,
            method=data["method"],
            centihours=max(0, round(float(data["hours"]) * 100)),
            received=_received(data),
        )
        state.settle(state.all_checkins(), [*state.all_checkouts(), scan])
    elif message_type == "attendee.welcomed":
        state.welcomed = True
    elif message_type == "attendee.checkin_undone":
        undone_at = parse_time(data["undone_at"])
        if state.undone_at is None or undone_at > state.undone_at:
            state.undone_at = undone_at
            state.settle(state.all_checkins(), state.all_checkouts())


def event_counters(state: RegistrationState | None) -> Counters:
    """What one registration adds to its event's figures (dotted names are sub-counters)."""
    if state is None:
        return {}
    out: Counters = {}
    checkin = state.checkin
    active = not state.cancelled
    registered = checkin is not None or (active and state.rank == STATUS_RANK["registered"])
    if registered:
        out["registered"] = 1
    if active and checkin is None and state.rank == STATUS_RANK["waitlisted"]:
        out["waitlisted"] = 1
    if state.cancelled and checkin is None:
        out["cancelled"] = 1
    if state.walk_in and (active or checkin is not None):
        out["walk_ins"] = 1
    if checkin is None:
        if registered:
            out["not_arrived"] = 1
        return out
    out["checked_in"] = 1
    out["first_timers" if checkin.first_time else "returning"] = 1
    if checkin.first_time and state.welcomed:
        # Welcomed counts only a first-timer whose check-in stands (an undone one is not here).
        out["first_timers_welcomed"] = 1
    out[f"methods.{checkin.method}"] = 1
    if checkin.starts_at is not None:
        out[f"arrivals.{arrival_bucket(checkin.at, checkin.starts_at)}"] = 1
    if state.checkout is not None:
        out["checked_out"] = 1
        out["volunteer_centihours"] = state.checkout.centihours
    return out


def lane_counters(state: RegistrationState | None) -> dict[str, Counters]:
    """What one registration adds to the throughput of the kiosk ("lane") that checked it in."""
    if state is None or state.checkin is None:
        return {}
    checkin = state.checkin
    counters: Counters = {"checked_in": 1}
    if checkin.starts_at is not None:
        counters[f"arrivals.{arrival_bucket(checkin.at, checkin.starts_at)}"] = 1
    return {checkin.kiosk_id or NO_KIOSK: counters}
