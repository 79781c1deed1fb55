"""One registration's facts and what they add to its event's figures.

A registration is owned by one gathering, so its messages arrive in order on
one partition; the rules below do not rely on that (a rebuild reads the archive
in any order), because the state only moves up: the status rank only rises, a
cancellation stays, the *first* check-in and the *last* check-out win (ties
broken by message id). A check-in that is undone at the door and scanned again
is still one arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.domain.facts import Counters, Stamp, earlier, later, parse_time

BUCKET_MINUTES = 5
# Arrivals further than this from the start (a kiosk with a wrong clock) are
# kept in the edge buckets rather than spread over days of empty buckets.
EARLIEST_BUCKET = -24 * 60
LATEST_BUCKET = 48 * 60

STATUS_RANK = {"waitlisted": 1, "registered": 2}
NO_KIOSK = ""

REGISTRATION_TYPES = frozenset(
    {"attendee.registered", "registration.cancelled", "attendee.checked_in", "attendee.checked_out"}
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

    @property
    def stamp(self) -> Stamp:
        return (self.at, self.message_id)

    def to_doc(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "id": self.message_id,
            "kiosk_id": self.kiosk_id,
            "method": self.method,
            "first_time": self.first_time,
            "starts_at": self.starts_at,
            "centihours": self.centihours,
        }

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
        )


@dataclass(slots=True)
class RegistrationState:
    registration_id: str
    event_id: str
    org_id: str
    person_id: str
    rank: int = 0  # 0: only a check-in seen so far, 1: waitlisted, 2: registered
    walk_in: bool = False
    cancelled: bool = False
    checkin: Scan | None = None
    checkout: Scan | None = None

    @property
    def checked_in(self) -> bool:
        return self.checkin is not None

    def to_doc(self) -> dict[str, Any]:
        return {
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
        )


def new_registration(data: dict[str, Any]) -> RegistrationState:
    return RegistrationState(
        registration_id=data["registration_id"],
        event_id=data["event_id"],
        org_id=data["org_id"],
        person_id=data["person_id"],
    )


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
        )
        if earlier(state.checkin.stamp if state.checkin else None, scan.stamp):
            state.checkin = scan
    elif message_type == "attendee.checked_out":
        scan = Scan(
            at=parse_time(data["scanned_at"]),
            message_id=message_id,
            kiosk_id=data.get("kiosk_id"),
            method=data["method"],
            centihours=max(0, round(float(data["hours"]) * 100)),
        )
        if later(state.checkout.stamp if state.checkout else None, scan.stamp):
            state.checkout = scan


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
