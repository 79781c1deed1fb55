"""A scripted history of two organizations, as the envelopes checkin and
followup would publish (each one checked against its contract): several
events, returning people, a cancellation, a waitlist promotion, walk-ins,
no-shows, a check-in undone and scanned again, check-outs, and follow-ups that
were opened, clicked, bounced and answered with feedback."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from turnout_common.clock import to_rfc3339
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope, new_envelope

CHECKIN, FOLLOWUP = "/turnout/checkin", "/turnout/followup"


def oid() -> str:
    return uuid.uuid4().hex[:24]


def t(moment: datetime) -> str:
    return to_rfc3339(moment)


@dataclass
class History:
    org_id: str = field(default_factory=oid)
    messages: list[Envelope] = field(default_factory=list)
    clock: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=200))
    registrations: dict[tuple[str, str], str] = field(default_factory=dict)
    visits: dict[str, int] = field(default_factory=dict)
    validate: bool = True  # every message against its contract (benchmarks generating millions skip it)

    def _add(self, event_type: str, subject: str, data: dict[str, Any], at: datetime | None = None) -> Envelope:
        source = (
            FOLLOWUP if event_type.split(".")[0] in ("followup", "feedback", "contact", "introduction") else CHECKIN
        )
        envelope = new_envelope(event_type, source=source, subject=subject, data=data, time=at or self.clock)
        if self.validate:
            registry().validate(envelope)
        self.messages.append(envelope)
        return envelope

    # -- checkin ------------------------------------------------------------------------------------
    def event(
        self, title: str, kind: str, starts: datetime, hours: float = 3, capacity: int | None = None
    ) -> dict[str, Any]:
        event = {
            "org_id": self.org_id,
            "event_id": oid(),
            "title": title,
            "kind": kind,
            "starts_at": t(starts),
            "ends_at": t(starts + timedelta(hours=hours)),
            "timezone": "America/Chicago",
        }
        self._add(
            "event.scheduled",
            event["event_id"],
            {
                **event,
                "venue": "Hall",
                "capacity": capacity,
                "checkin_opens_at": t(starts - timedelta(minutes=30)),
                "checkin_closes_at": t(starts + timedelta(hours=hours)),
                "status": "scheduled",
            },
            at=starts - timedelta(days=10),
        )
        event["_starts"] = starts
        return event

    def _core(self, event: dict[str, Any]) -> dict[str, Any]:
        return {key: event[key] for key in ("org_id", "event_id", "title", "kind", "starts_at", "ends_at", "timezone")}

    def register(
        self, event: dict[str, Any], person: str, status: str = "registered", source: str = "api", name: str = "Ada"
    ) -> str:
        registration_id = self.registrations.setdefault((event["event_id"], person), oid())
        self._add(
            "attendee.registered",
            event["event_id"],
            {
                "org_id": self.org_id,
                "event_id": event["event_id"],
                "registration_id": registration_id,
                "person_id": person,
                "first_name": name,
                "last_name": f"Person-{person[:4]}",
                "email": f"{person}@example.org",
                "consent_email": True,
                "offers": [],
                "seeks": [],
                "source": source,
                "status": status,
                "registered_at": t(event["_starts"] - timedelta(days=5)),
                "event_kind": event["kind"],
            },
            at=event["_starts"] - timedelta(days=5),
        )
        return registration_id

    def cancel(self, event: dict[str, Any], person: str) -> None:
        self._add(
            "registration.cancelled",
            event["event_id"],
            {
                "org_id": self.org_id,
                "event_id": event["event_id"],
                "registration_id": self.registrations[(event["event_id"], person)],
                "person_id": person,
                "cancelled_at": t(event["_starts"] - timedelta(days=1)),
                "reason": None,
            },
            at=event["_starts"] - timedelta(days=1),
        )

    def check_in(
        self, event: dict[str, Any], person: str, minutes: float, kiosk: str | None = "kiosk-1", method: str = "qr"
    ) -> None:
        scanned = event["_starts"] + timedelta(minutes=minutes)
        visit = self.visits.get(person, 0) + 1
        self.visits[person] = visit
        self._add(
            "attendee.checked_in",
            event["event_id"],
            {
                "org_id": self.org_id,
                "event_id": event["event_id"],
                "registration_id": self.registrations[(event["event_id"], person)],
                "person_id": person,
                "kiosk_id": kiosk,
                "method": method,
                "scanned_at": t(scanned),
                "received_at": t(scanned + timedelta(seconds=1)),
                "first_time_ever": visit == 1,
                "event_kind": event["kind"],
                "event_starts_at": event["starts_at"],
                "override": False,
                "visit_number": visit,
            },
            at=scanned + timedelta(seconds=1),
        )

    def welcome(self, event: dict[str, Any], person: str, minutes: float, greeter: str = "greeter-1") -> None:
        """A greeter marks a first-timer welcomed ``minutes`` after the start."""
        welcomed = event["_starts"] + timedelta(minutes=minutes)
        self._add(
            "attendee.welcomed",
            event["event_id"],
            {
                "org_id": self.org_id,
                "event_id": event["event_id"],
                "registration_id": self.registrations[(event["event_id"], person)],
                "person_id": person,
                "greeter_id": greeter,
                "greeter_kind": "volunteer",
                "welcomed_at": t(welcomed),
            },
            at=welcomed,
        )

    def check_out(self, event: dict[str, Any], person: str, hours: float, method: str = "qr") -> None:
        scanned = event["_starts"] + timedelta(hours=hours)
        self._add(
            "attendee.checked_out",
            event["event_id"],
            {
                "org_id": self.org_id,
                "event_id": event["event_id"],
                "registration_id": self.registrations[(event["event_id"], person)],
                "person_id": person,
                "kiosk_id": None if method == "auto" else "kiosk-1",
                "method": method,
                "scanned_at": t(scanned),
                "received_at": t(scanned),
                "checked_in_at": event["starts_at"],
                "hours": hours,
                "closed_by": "event_end" if method == "auto" else "attendee",
                "event_kind": event["kind"],
            },
            at=scanned,
        )

    def undo_check_in(self, event: dict[str, Any], person: str, minutes: float, reason: str = "wrong person") -> None:
        """Staff undo the check-in ``minutes`` after the start (after the scan it undoes)."""
        undone = event["_starts"] + timedelta(minutes=minutes)
        self.visits[person] -= 1
        self._add(
            "attendee.checkin_undone",
            event["event_id"],
            {
                "org_id": self.org_id,
                "event_id": event["event_id"],
                "registration_id": self.registrations[(event["event_id"], person)],
                "person_id": person,
                "checked_in_at": t(undone - timedelta(minutes=1)),
                "undone_at": t(undone),
                "undone_by": "staff-user-1",
                "reason": reason,
            },
            at=undone,
        )

    def correct(self, person: str, first: str, last: str, email: str | None, at: datetime) -> None:
        self._add(
            "person.updated",
            person,
            {
                "org_id": self.org_id,
                "person_id": person,
                "first_name": first,
                "last_name": last,
                "email": email,
                "previous_email": f"{person}@example.org",
                "updated_at": t(at),
                "updated_by": "staff-user-1",
            },
            at=at,
        )

    def data_request(self, kind: str, person: str, email: str | None, at: datetime) -> str:
        """``kind``: export or erasure; returns the request id."""
        request_id = oid()
        self._add(
            f"person.{kind}_requested",
            person,
            {
                "org_id": self.org_id,
                "person_id": person,
                "request_id": request_id,
                "email": email,
                "requested_at": t(at),
                "requested_by": {"kind": "user", "user_id": "owner-1"},
            },
            at=at,
        )
        return request_id

    def data_link(self, person: str, email: str, first: str, at: datetime) -> None:
        self._add(
            "person.data_link_requested",
            person,
            {
                "org_id": self.org_id,
                "person_id": person,
                "email": email,
                "first_name": first,
                "organization_name": "Food Bank",
                "purpose": "export",
                "link": "https://checkin.example/privacy/export?token=SECRET-TOKEN-123",
                "expires_at": t(at + timedelta(days=1)),
                "requested_at": t(at),
            },
            at=at,
        )

    def policy(self, at: datetime, **periods: int) -> None:
        values = {"checkin_details": 24, "message_bodies": 6, "delivery_journal": 12, "tracking_events": 12}
        values |= {"inactive_people": 36, **periods}
        self._add(
            "retention.policy_set",
            self.org_id,
            {"org_id": self.org_id, "periods": values, "set_at": t(at), "set_by": "owner-1"},
            at=at,
        )

    def introduce(self, event: dict[str, Any], person: str, other: str, at: datetime) -> None:
        self._add(
            "introduction.accepted",
            person,
            {
                "org_id": self.org_id,
                "event_id": event["event_id"],
                "introduction_id": oid(),
                "person_id": person,
                "other_person_id": other,
                "accepted_at": t(at),
                "both_accepted": False,
            },
            at=at,
        )

    def end(self, event: dict[str, Any]) -> None:
        ended = event["_starts"] + timedelta(hours=3)
        self._add(
            "event.ended",
            event["event_id"],
            {**self._core(event), "capacity": None, "ended_at": t(ended), "ended_by": "schedule"},
            at=ended,
        )

    def cancel_event(self, event: dict[str, Any]) -> None:
        at = event["_starts"] - timedelta(days=2)
        self._add(
            "event.cancelled", event["event_id"], {**self._core(event), "cancelled_at": t(at), "reason": "rain"}, at=at
        )

    # -- followup -----------------------------------------------------------------------------------
    def followup(self, person: str, kind: str, event: dict[str, Any] | None, sent: datetime, *steps: str) -> str:
        followup_id = oid()
        base = {
            "org_id": self.org_id,
            "event_id": event["event_id"] if event else None,
            "person_id": person,
            "followup_id": followup_id,
            "nudge_kind": kind,
        }
        self._add("followup.scheduled", person, {**base, "send_at": t(sent)}, at=sent - timedelta(hours=1))
        self._add("followup.sent", person, {**base, "sent_at": t(sent), "transport": "smtp"}, at=sent)
        for index, step in enumerate(steps, start=1):
            at = sent + timedelta(hours=index)
            if step == "opened":
                self._add("followup.opened", person, {**base, "opened_at": t(at)}, at=at)
            elif step == "clicked":
                self._add(
                    "followup.clicked", person, {**base, "clicked_at": t(at), "url": "https://x.example/f"}, at=at
                )
            elif step == "bounced":
                data = {**base, "bounced_at": t(at), "bounce_type": "hard", "reason": "550 unknown user"}
                self._add("followup.bounced", person, data, at=at)
            elif step == "feedback":
                assert event is not None
                data = {
                    "org_id": self.org_id,
                    "event_id": event["event_id"],
                    "person_id": person,
                    "followup_id": followup_id,
                    "rating": 5,
                    "submitted_at": t(at),
                    "comment": "=1+1 great",
                }
                self._add("feedback.submitted", person, data, at=at)
        return followup_id


@dataclass
class Scripted:
    history: History
    other: History
    events: dict[str, dict[str, Any]]
    people: dict[str, str]


def scripted_history(now: datetime | None = None) -> Scripted:
    """The history the integration tests check figure by figure (see the expectations there)."""
    now = now or datetime.now(UTC)
    h = History()
    p = {name: oid() for name in ("ana", "ben", "cai", "dee", "eve", "fay", "gus", "hal")}
    # The most recent 17:00 (so the past events' days-ago figures do not depend on the time of day).
    day = now.replace(hour=17, minute=0, second=0, microsecond=0)
    if day > now:
        day -= timedelta(days=1)
    e1 = h.event("Sorting shift", "volunteer_shift", day - timedelta(days=120))
    e2 = h.event("Networking evening", "networking", day - timedelta(days=90))
    e3 = h.event("Delivery shift", "volunteer_shift", day - timedelta(days=60))
    e4 = h.event("Supper shift (now)", "volunteer_shift", now - timedelta(minutes=30), hours=4)
    e5 = h.event("Picnic", "other", day + timedelta(days=20))

    # E1: six registrations; eve cancels, fay waitlisted then promoted; dee never comes.
    for name in ("ana", "ben", "cai", "dee", "eve"):
        h.register(e1, p[name], name=name.title())
    h.register(e1, p["fay"], status="waitlisted", name="Fay")
    h.cancel(e1, p["eve"])
    h.register(e1, p["fay"], status="registered", name="Fay")
    h.check_in(e1, p["ana"], -10, kiosk="door-a")
    h.check_in(e1, p["ben"], -7, kiosk="door-a")
    h.check_in(e1, p["cai"], 2, kiosk="door-b")
    h.check_in(e1, p["fay"], 3, kiosk="door-b")
    # A greeter welcomes ana and cai (both come back later; ben and fay, not welcomed, do not).
    h.welcome(e1, p["ana"], -8)
    h.welcome(e1, p["cai"], 4)
    h.check_out(e1, p["ana"], 3.0)
    h.check_out(e1, p["ben"], 2.5)
    h.check_out(e1, p["cai"], 3.0, method="auto")
    h.check_out(e1, p["fay"], 1.25)
    h.end(e1)

    # E2: ana returns, dee comes for the first time, gus walks in, ben is a no-show.
    for name in ("ana", "ben", "dee"):
        h.register(e2, p[name], name=name.title())
    h.check_in(e2, p["ana"], 0, kiosk="door-a")
    h.check_in(e2, p["dee"], 12, kiosk="door-a")
    h.register(e2, p["gus"], source="walk-in", name="Gus")
    h.check_in(e2, p["gus"], 14, kiosk="door-a", method="walk-in")
    h.end(e2)

    # E3: ana, cai and dee; cai's check-in is undone at the door and scanned again.
    for name in ("ana", "cai", "dee"):
        h.register(e3, p[name], name=name.title())
    h.check_in(e3, p["ana"], -3, kiosk=None, method="staff")
    h.check_in(e3, p["cai"], 1, kiosk=None, method="staff")
    h.check_in(e3, p["dee"], 4, kiosk=None, method="staff")
    h.visits[p["cai"]] -= 1  # the undo: checkin counts this visit once
    h.check_in(e3, p["cai"], 6, kiosk=None, method="staff")
    h.end(e3)

    # E4 is happening now: hal is in, ana registered. E5 was cancelled.
    h.register(e4, p["ana"], name="Ana")
    h.register(e4, p["hal"], name="Hal")
    h.check_in(e4, p["hal"], 5, kiosk="door-a")
    h.register(e5, p["ben"], name="Ben")
    h.cancel_event(e5)

    # Follow-ups after E1.
    after_e1 = e1["_starts"] + timedelta(days=1)
    h.followup(p["ana"], "thank_you", e1, after_e1, "opened", "clicked", "feedback")
    h.followup(p["ben"], "thank_you", e1, after_e1, "opened")
    h.followup(p["dee"], "we_missed_you", e1, after_e1, "clicked")  # dee then came to E2
    h.followup(p["cai"], "first_timer_welcome", e1, after_e1, "bounced")
    h.followup(p["ben"], "win_back", None, e3["_starts"] + timedelta(days=2))

    other = History()
    q = oid()
    f1 = other.event("Other org meetup", "networking", day - timedelta(days=30))
    other.register(f1, q, name="Zed")
    other.check_in(f1, q, 1)
    other.end(f1)
    return Scripted(h, other, {"e1": e1, "e2": e2, "e3": e3, "e4": e4, "e5": e5}, p)
