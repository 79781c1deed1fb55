"""A person's facts across gatherings and follow-ups, and what they add to the
cohort-retention and follow-up-funnel figures.

A person's messages come from several partitions (check-ins are keyed by the
gathering, follow-ups by the person), so nothing here depends on order: visits
are keyed by gathering (the first check-in and the last check-out win; an undo
voids what the server received up to it, see ``analytics.domain.registrations``),
follow-up timestamps keep their earliest value, flags only turn on, the name is
the newest (registration or correction). The summary fields (events attended,
first and last seen, streaks, hours) and the contributions to the cross-event
figures are pure functions of that state.

An erased person's state lives on under their pseudonym
(``turnout_common.privacy.pseudonym``) with only what feeds the figures:
visits and follow-ups. Folding into such a state keeps it that way (no name,
ratings, introductions or unsubscription), so a rebuild from the masked
archive gives exactly the state the erasure left (``anonymised``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analytics.domain.facts import Counters, Stamp, later, month_index, month_of, parse_time
from turnout_common.privacy import ERASED_NAME, is_pseudonym
from turnout_common.regulars import DEFAULT_RULE, risk_from, typical_gap_days

PERSON_TYPES = frozenset(
    {
        "attendee.registered",
        "attendee.checked_in",
        "attendee.checked_out",
        "followup.scheduled",
        "followup.sent",
        "followup.failed",
        "followup.bounced",
        "followup.opened",
        "followup.clicked",
        "feedback.submitted",
        "contact.unsubscribed",
        "introduction.accepted",
        "attendee.checkin_undone",
        "person.updated",
    }
)
FOLLOWUP_STAGES = ("sent", "opened", "clicked", "returned")
# A regular, and when a regular starts to count as "at risk": the rule shared with
# follow-up (``turnout_common.regulars``; ``analytics.domain.reports.at_risk`` decides).
REGULAR_VISITS = DEFAULT_RULE.min_visits


@dataclass(slots=True)
class Visit:
    """A person at one gathering: the check-in that counts (the first not undone)
    and the check-out that counts (the last not undone). The other scans not
    undone wait in ``other_checkins``/``other_checkouts`` (usually empty) in case
    a later undo voids the ones that count."""

    event_id: str
    checkin_at: datetime | None = None
    checkin_id: str = ""
    starts_at: datetime | None = None
    kind: str | None = None
    first_time: bool = False
    checkout_at: datetime | None = None
    checkout_id: str = ""
    centihours: int = 0
    checkin_received: datetime | None = None  # server time of the check-in (what an undo compares with)
    checkout_received: datetime | None = None
    undone_at: datetime | None = None  # the latest undo: scans received up to then are void
    other_checkins: list[dict[str, Any]] = field(default_factory=list)
    other_checkouts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def attended(self) -> bool:
        return self.checkin_at is not None

    def copy(self) -> Visit:
        return Visit(
            self.event_id,
            self.checkin_at,
            self.checkin_id,
            self.starts_at,
            self.kind,
            self.first_time,
            self.checkout_at,
            self.checkout_id,
            self.centihours,
            self.checkin_received,
            self.checkout_received,
            self.undone_at,
            [dict(scan) for scan in self.other_checkins],
            [dict(scan) for scan in self.other_checkouts],
        )

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "event_id": self.event_id,
            "checkin_at": self.checkin_at,
            "checkin_id": self.checkin_id,
            "starts_at": self.starts_at,
            "kind": self.kind,
            "first_time": self.first_time,
            "checkout_at": self.checkout_at,
            "checkout_id": self.checkout_id,
            "centihours": self.centihours,
        }
        # Only what is there: a visit's document stays small.
        for name in ("checkin_received", "checkout_received", "undone_at"):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        if self.other_checkins:
            doc["other_checkins"] = self.other_checkins
        if self.other_checkouts:
            doc["other_checkouts"] = self.other_checkouts
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Visit:
        values: dict[str, Any] = {name: doc.get(name, default) for name, default in _VISIT_DEFAULTS.items()}
        values["other_checkins"] = [dict(scan) for scan in values["other_checkins"] or []]
        values["other_checkouts"] = [dict(scan) for scan in values["other_checkouts"] or []]
        return cls(**values)

    # -- check-ins, check-outs and undos ---------------------------------------------------------

    def checkins(self) -> list[dict[str, Any]]:
        """Every check-in not undone (the one that counts first)."""
        counted = []
        if self.checkin_at is not None:
            counted.append(
                {
                    "at": self.checkin_at,
                    "id": self.checkin_id,
                    "received": self.checkin_received,
                    "starts_at": self.starts_at,
                    "kind": self.kind,
                    "first_time": self.first_time,
                }
            )
        return counted + self.other_checkins

    def checkouts(self) -> list[dict[str, Any]]:
        """Every check-out not undone (the one that counts first)."""
        counted = []
        if self.checkout_at is not None:
            counted.append(
                {
                    "at": self.checkout_at,
                    "id": self.checkout_id,
                    "received": self.checkout_received,
                    "centihours": self.centihours,
                }
            )
        return counted + self.other_checkouts

    def _voided(self, scan: dict[str, Any]) -> bool:
        received = scan.get("received") or scan["at"]
        return self.undone_at is not None and received <= self.undone_at

    def settle(self, checkins: list[dict[str, Any]], checkouts: list[dict[str, Any]]) -> None:
        """Keep the scans not voided by the latest undo; the first check-in and the last check-out count."""
        ins = sorted(
            {scan["id"]: scan for scan in checkins if not self._voided(scan)}.values(),
            key=lambda scan: (scan["at"], scan["id"]),
        )
        outs = sorted(
            {scan["id"]: scan for scan in checkouts if not self._voided(scan)}.values(),
            key=lambda scan: (scan["at"], scan["id"]),
        )
        first = ins[0] if ins else {}
        self.checkin_at, self.checkin_id = first.get("at"), first.get("id", "")
        self.checkin_received = first.get("received")
        self.starts_at, self.kind = first.get("starts_at"), first.get("kind")
        self.first_time = bool(first.get("first_time", False))
        self.other_checkins = ins[1:]
        last = outs[-1] if outs else {}
        self.checkout_at, self.checkout_id = last.get("at"), last.get("id", "")
        self.checkout_received = last.get("received")
        self.centihours = int(last.get("centihours", 0))
        self.other_checkouts = outs[:-1]

    def undo(self, undone_at: datetime) -> None:
        if self.undone_at is None or undone_at > self.undone_at:
            self.undone_at = undone_at
            self.settle(self.checkins(), self.checkouts())


_VISIT_DEFAULTS: dict[str, Any] = {
    "event_id": "",
    "checkin_at": None,
    "checkin_id": "",
    "starts_at": None,
    "kind": None,
    "first_time": False,
    "checkout_at": None,
    "checkout_id": "",
    "centihours": 0,
    "checkin_received": None,
    "checkout_received": None,
    "undone_at": None,
    "other_checkins": [],
    "other_checkouts": [],
}


@dataclass(slots=True)
class FollowupFact:
    followup_id: str
    nudge_kind: str | None = None
    event_id: str | None = None
    sent_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    bounced: bool = False
    failed: bool = False
    feedback: bool = False
    # Fetches by image proxies and link scanners (``machine: true``): proof the
    # message arrived somewhere, never engagement.
    machine_opened_at: datetime | None = None
    machine_clicked_at: datetime | None = None

    @property
    def reached(self) -> datetime | None:
        """When the message is known to have left: sent, or failing that its first sign of life."""
        signs = (self.sent_at, self.opened_at, self.clicked_at, self.machine_opened_at, self.machine_clicked_at)
        known = [moment for moment in signs if moment is not None]
        return min(known) if known else None

    @property
    def acted_on(self) -> bool:
        return self.clicked_at is not None or self.feedback

    def copy(self) -> FollowupFact:
        return FollowupFact(
            self.followup_id,
            self.nudge_kind,
            self.event_id,
            self.sent_at,
            self.opened_at,
            self.clicked_at,
            self.bounced,
            self.failed,
            self.feedback,
            self.machine_opened_at,
            self.machine_clicked_at,
        )

    def to_doc(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FOLLOWUP_FIELDS}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> FollowupFact:
        return cls(**{name: doc.get(name, default) for name, default in _FOLLOWUP_FIELDS.items()})


_FOLLOWUP_FIELDS: dict[str, Any] = {
    "followup_id": "",
    "nudge_kind": None,
    "event_id": None,
    "sent_at": None,
    "opened_at": None,
    "clicked_at": None,
    "bounced": False,
    "failed": False,
    "feedback": False,
    "machine_opened_at": None,
    "machine_clicked_at": None,
}


@dataclass(slots=True)
class PersonState:
    person_id: str
    org_id: str
    first_name: str | None = None
    last_name: str | None = None
    name_stamp: Stamp | None = None
    visits: dict[str, Visit] = field(default_factory=dict)
    followups: dict[str, FollowupFact] = field(default_factory=dict)
    unsubscribed: bool = False
    introductions: set[str] = field(default_factory=set)
    ratings: dict[str, int] = field(default_factory=dict)  # event id -> rating of the newest feedback
    rating_stamps: dict[str, list[Any]] = field(default_factory=dict)

    def copy(self) -> PersonState:
        """An independent copy (``copy.deepcopy`` was most of a rebuild's folding time)."""
        return PersonState(
            self.person_id,
            self.org_id,
            self.first_name,
            self.last_name,
            self.name_stamp,
            {key: visit.copy() for key, visit in self.visits.items()},
            {key: fact.copy() for key, fact in self.followups.items()},
            self.unsubscribed,
            set(self.introductions),
            dict(self.ratings),
            {key: list(stamp) for key, stamp in self.rating_stamps.items()},
        )

    def to_doc(self) -> dict[str, Any]:
        """The stored form of the facts (the summary is stored apart: ``summary_doc``)."""
        return {
            "_id": self.person_id,
            "org_id": self.org_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "name_stamp": list(self.name_stamp) if self.name_stamp else None,
            "visits": [self.visits[key].to_doc() for key in sorted(self.visits)],
            "followups": [self.followups[key].to_doc() for key in sorted(self.followups)],
            "unsubscribed": self.unsubscribed,
            "introductions": sorted(self.introductions),
            "ratings": [
                {"event_id": key, "rating": self.ratings[key], "stamp": self.rating_stamps.get(key)}
                for key in sorted(self.ratings)
            ],
        }

    def summary_doc(self) -> dict[str, Any]:
        """The slim form the dashboard lists, sorts and filters on: names and the summary.

        Stored apart from the facts so that listing 50,000 people, or finding
        those at risk, reads a few hundred bytes per person instead of every
        visit and follow-up they ever had.
        """
        summary = summarize(self)
        del summary["months"]
        return {
            "_id": self.person_id,
            "org_id": self.org_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "unsubscribed": self.unsubscribed,
            **summary,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PersonState:
        stamp = doc.get("name_stamp")
        return cls(
            person_id=doc["_id"],
            org_id=doc["org_id"],
            first_name=doc.get("first_name"),
            last_name=doc.get("last_name"),
            name_stamp=(stamp[0], stamp[1]) if stamp else None,
            visits={v["event_id"]: Visit.from_doc(v) for v in doc.get("visits", [])},
            followups={f["followup_id"]: FollowupFact.from_doc(f) for f in doc.get("followups", [])},
            unsubscribed=bool(doc.get("unsubscribed", False)),
            introductions=set(doc.get("introductions", [])),
            ratings={r["event_id"]: int(r["rating"]) for r in doc.get("ratings", [])},
            rating_stamps={r["event_id"]: r["stamp"] for r in doc.get("ratings", []) if r.get("stamp")},
        )


def _min(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _followup(state: PersonState, data: dict[str, Any]) -> FollowupFact | None:
    followup_id = data.get("followup_id")
    if not followup_id:
        return None
    fact = state.followups.get(followup_id)
    if fact is None:
        fact = state.followups[followup_id] = FollowupFact(followup_id)
    kind = data.get("nudge_kind")
    if kind and (fact.nudge_kind is None or kind < fact.nudge_kind):
        fact.nudge_kind = kind
    event_id = data.get("event_id")
    if event_id and (fact.event_id is None or event_id < fact.event_id):
        fact.event_id = event_id
    return fact


def _received(data: dict[str, Any]) -> datetime | None:
    value = data.get("received_at")
    return parse_time(value) if isinstance(value, str) else None


def fold_person(state: PersonState, message_type: str, data: dict[str, Any], stamp: Stamp) -> None:
    """Apply one message to a person's facts (in place; idempotent, order-free)."""
    anonymous = is_pseudonym(state.person_id)
    if message_type in ("attendee.registered", "person.updated"):
        moment = data["registered_at"] if message_type == "attendee.registered" else data["updated_at"]
        name_stamp: Stamp = (parse_time(moment), stamp[1])
        if later(state.name_stamp, name_stamp):
            state.name_stamp = name_stamp
            state.first_name = ERASED_NAME if anonymous else data["first_name"]
            state.last_name = "" if anonymous else data["last_name"]
    elif message_type == "attendee.checked_in":
        visit = state.visits.setdefault(data["event_id"], Visit(data["event_id"]))
        scan = {
            "at": parse_time(data["scanned_at"]),
            "id": stamp[1],
            "received": _received(data),
            "starts_at": parse_time(data["event_starts_at"]),
            "kind": data["event_kind"],
            "first_time": bool(data["first_time_ever"]),
        }
        visit.settle([*visit.checkins(), scan], visit.checkouts())
    elif message_type == "attendee.checked_out":
        visit = state.visits.setdefault(data["event_id"], Visit(data["event_id"]))
        scan = {
            "at": parse_time(data["scanned_at"]),
            "id": stamp[1],
            "received": _received(data),
            "centihours": max(0, round(float(data["hours"]) * 100)),
        }
        visit.settle(visit.checkins(), [*visit.checkouts(), scan])
    elif message_type == "attendee.checkin_undone":
        state.visits.setdefault(data["event_id"], Visit(data["event_id"])).undo(parse_time(data["undone_at"]))
    elif message_type in ("followup.scheduled", "followup.failed", "followup.bounced"):
        fact = _followup(state, data)
        if fact is not None and message_type == "followup.bounced":
            fact.bounced = True
        elif fact is not None and message_type == "followup.failed" and data["permanent"]:
            fact.failed = True
    elif message_type == "followup.sent":
        fact = _followup(state, data)
        if fact is not None:
            fact.sent_at = _min(fact.sent_at, parse_time(data["sent_at"]))
    elif message_type == "followup.opened":
        fact = _followup(state, data)
        if fact is not None and data.get("machine"):
            fact.machine_opened_at = _min(fact.machine_opened_at, parse_time(data["opened_at"]))
        elif fact is not None:
            fact.opened_at = _min(fact.opened_at, parse_time(data["opened_at"]))
    elif message_type == "followup.clicked":
        fact = _followup(state, data)
        if fact is not None and data.get("machine"):
            fact.machine_clicked_at = _min(fact.machine_clicked_at, parse_time(data["clicked_at"]))
        elif fact is not None:
            fact.clicked_at = _min(fact.clicked_at, parse_time(data["clicked_at"]))
    elif message_type == "feedback.submitted":
        fact = _followup(state, data)
        if fact is not None:
            fact.feedback = True
        if anonymous:
            return  # an erased person's ratings are not kept (no figure reads them)
        rating_stamp = [parse_time(data["submitted_at"]), stamp[1]]
        current_stamp = state.rating_stamps.get(data["event_id"])
        if current_stamp is None or (rating_stamp[0], rating_stamp[1]) > (current_stamp[0], current_stamp[1]):
            state.rating_stamps[data["event_id"]] = rating_stamp
            state.ratings[data["event_id"]] = int(data["rating"])
    elif message_type == "contact.unsubscribed" and not anonymous:
        state.unsubscribed = True
    elif message_type == "introduction.accepted" and not anonymous:
        state.introductions.add(data["introduction_id"])


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def _least(*values: str | None) -> str | None:
    known = [value for value in values if value]
    return min(known) if known else None


def merged(one: PersonState, other: PersonState) -> PersonState:
    """The join of two states of the same person (what folding both states'
    messages into one gives): visits and follow-ups merged fact by fact, the
    newer name, flags on if on in either. Keeps ``one``'s id."""
    out = one.copy()
    if other.name_stamp is not None and later(out.name_stamp, other.name_stamp):
        out.name_stamp, out.first_name, out.last_name = other.name_stamp, other.first_name, other.last_name
    for event_id, theirs in other.visits.items():
        mine = out.visits.get(event_id)
        if mine is None:
            out.visits[event_id] = theirs.copy()
            continue
        if theirs.undone_at is not None and (mine.undone_at is None or theirs.undone_at > mine.undone_at):
            mine.undone_at = theirs.undone_at
        mine.settle(mine.checkins() + theirs.checkins(), mine.checkouts() + theirs.checkouts())
    for followup_id, theirs_fact in other.followups.items():
        fact = out.followups.setdefault(followup_id, FollowupFact(followup_id))
        fact.nudge_kind = _least(fact.nudge_kind, theirs_fact.nudge_kind)
        fact.event_id = _least(fact.event_id, theirs_fact.event_id)
        fact.sent_at = _earliest(fact.sent_at, theirs_fact.sent_at)
        fact.opened_at = _earliest(fact.opened_at, theirs_fact.opened_at)
        fact.clicked_at = _earliest(fact.clicked_at, theirs_fact.clicked_at)
        fact.machine_opened_at = _earliest(fact.machine_opened_at, theirs_fact.machine_opened_at)
        fact.machine_clicked_at = _earliest(fact.machine_clicked_at, theirs_fact.machine_clicked_at)
        fact.bounced = fact.bounced or theirs_fact.bounced
        fact.failed = fact.failed or theirs_fact.failed
        fact.feedback = fact.feedback or theirs_fact.feedback
    out.unsubscribed = out.unsubscribed or other.unsubscribed
    out.introductions |= other.introductions
    for event_id, stamp in other.rating_stamps.items():
        current = out.rating_stamps.get(event_id)
        if current is None or (stamp[0], stamp[1]) > (current[0], current[1]):
            out.rating_stamps[event_id] = list(stamp)
            out.ratings[event_id] = other.ratings[event_id]
    return out


def anonymised(state: PersonState, pseudonym: str) -> PersonState:
    """The state an erased person leaves: under their pseudonym, only what feeds
    the figures (visits and follow-ups); the name becomes ``ERASED_NAME`` (if
    there was one), ratings, introductions and the unsubscription go. Folding
    the masked archive into a fresh state gives exactly this."""
    out = state.copy()
    out.person_id = pseudonym
    if out.first_name is not None or out.last_name is not None:
        out.first_name, out.last_name = ERASED_NAME, ""
    out.unsubscribed = False
    out.introductions = set()
    out.ratings, out.rating_stamps = {}, {}
    return out


# -- the summary --------------------------------------------------------------------------------------


def visit_time(visit: Visit) -> datetime:
    """When the visited gathering started (the check-in time if the start is unknown)."""
    moment = visit.starts_at or visit.checkin_at
    assert moment is not None, "only attended visits have a time"
    return moment


def attended_visits(state: PersonState) -> list[Visit]:
    """Visits with a check-in, oldest event first."""
    visits = [v for v in state.visits.values() if v.checkin_at is not None]
    return sorted(visits, key=lambda v: (visit_time(v), v.event_id))


def month_streaks(months: list[str]) -> tuple[int, int]:
    """(longest run of consecutive months, run ending at the last month) of sorted ``YYYY-MM``s."""
    if not months:
        return 0, 0
    indexes = sorted({month_index(m) for m in months})
    longest = run = 1
    for previous, current in itertools.pairwise(indexes):
        run = run + 1 if current == previous + 1 else 1
        longest = max(longest, run)
    return longest, run


def summarize(state: PersonState) -> dict[str, Any]:
    """The derived fields stored beside the facts (the dashboard queries and sorts on them)."""
    visits = attended_visits(state)
    checkins = [v.checkin_at for v in visits if v.checkin_at is not None]
    starts = [visit_time(v) for v in visits]
    months = sorted({month_of(moment) for moment in starts})
    longest, last_run = month_streaks(months)
    followups = [f for f in state.followups.values() if f.reached is not None]
    typical_gap = typical_gap_days(starts)
    regular = len(visits) >= REGULAR_VISITS
    last_seen = max(checkins) if checkins else None
    # The shared rule (follow-up's win-back drafts use it too): when this regular turns "at risk".
    at_risk_from = risk_from(len(visits), last_seen, typical_gap)
    return {
        "events_attended": len(visits),
        "first_seen": min(checkins) if checkins else None,
        "last_seen": last_seen,
        "first_event": visits[0].event_id if visits else None,
        "last_event_at": starts[-1] if starts else None,
        "cohort": months[0] if months else None,
        "months": months,
        "streak_longest": longest,
        "streak_last": last_run,
        "streak_last_month": months[-1] if months else None,
        "regular": regular,
        "typical_gap_days": typical_gap,
        "risk_from": at_risk_from,
        "centihours": sum(v.centihours for v in state.visits.values()),
        "followups_received": len(followups),
        "followups_acted": sum(1 for f in followups if f.acted_on),
    }


# -- contributions to the cross-event figures ---------------------------------------------------------


def cohort_counters(state: PersonState | None) -> dict[str, Counters]:
    """Cohort month -> {size, returned, m<k>}: the person belongs to the cohort of their
    first month and counts in every month offset ``k`` in which they came."""
    if state is None:
        return {}
    visits = [visit_time(v) for v in state.visits.values() if v.checkin_at is not None]
    months = sorted({month_of(moment) for moment in visits})
    if not months:
        return {}
    first = month_index(months[0])
    counters: Counters = {"size": 1, "returned": 1 if len(visits) >= 2 else 0}
    for month in months:
        counters[f"m{month_index(month) - first}"] = 1
    return {months[0]: {name: value for name, value in counters.items() if value}}


def loyalty_counters(state: PersonState | None) -> dict[str, Counters]:
    """Events attended -> {people: 1}: the organization's distribution of how often people came."""
    if state is None:
        return {}
    attended = sum(1 for v in state.visits.values() if v.checkin_at is not None)
    return {str(attended): {"people": 1}} if attended else {}


def funnel_counters(state: PersonState | None) -> dict[str, Counters]:
    """``<month>|<nudge kind>`` -> {sent, opened, clicked, returned, bounced, machine_opened,
    machine_clicked} of this person's follow-ups.

    Opening is implied by a click (tracking pixels are often blocked);
    "returned" means the person checked in at a gathering after the follow-up
    left. The month is the month the follow-up left. Opens and clicks are a
    person's only; ``machine_opened``/``machine_clicked`` count the follow-ups
    that only an image proxy opened or only a link scanner clicked (what a
    count of every fetch would add).
    """
    if state is None:
        return {}
    checkins = [v.checkin_at for v in state.visits.values() if v.checkin_at is not None]
    out: dict[str, Counters] = {}
    for fact in state.followups.values():
        reached = fact.reached
        if reached is None or fact.nudge_kind is None:
            continue
        cell = out.setdefault(f"{month_of(reached)}|{fact.nudge_kind}", {})
        opened = fact.opened_at is not None or fact.clicked_at is not None
        stages = {
            "sent": True,
            "opened": opened,
            "clicked": fact.clicked_at is not None,
            "returned": any(moment > reached for moment in checkins),
            "bounced": fact.bounced,
            "machine_opened": not opened and fact.machine_opened_at is not None,
            "machine_clicked": fact.clicked_at is None and fact.machine_clicked_at is not None,
        }
        for name, reached_stage in stages.items():
            if reached_stage:
                cell[name] = cell.get(name, 0) + 1
    return out
