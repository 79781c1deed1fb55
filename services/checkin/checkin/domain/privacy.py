"""A person's data in checkin: correcting it, exporting it, erasing it, and the
data requests that gather every service's answer.

- A **correction** changes a person's name or email (``correction``): the
  person, and the copies on their registrations (name, folded name, email hint).
- A **data request** (``new_request``) is an export or an erasure of one
  person, asked by an organizer, by the person through a signed link, or by
  the retention schedule. checkin does its own part at once; followup and
  analytics answer on ``turnout.privacy`` (``person.data_exported`` in chunks,
  ``person.erased`` with counts). The request is complete when all three
  services answered (``is_complete``).
- An **export part** is one JSON object per service. checkin's
  (``checkin_part``) holds the person, their registrations with the events and
  check-ins, the audit entries about them and their earlier data requests.
  Every part is stored as text in chunks (``split_text``) and joined in order
  (``joined``); ``summary`` is what the request's page shows of a part.
- An **erasure** keeps what the aggregates need and nothing personal:
  ``erased_registration`` keeps a registration (status, source, times, the
  check-in's method and kiosk) under the pseudonym, with the name, email hint,
  offers/seeks, walk-in answers, cancel reason and badge code gone;
  ``tombstone`` is what is remembered of the person (the pseudonym and a
  digest of the email, never the id, name or address).
- A **self-service link** (``link_claims`` / ``read_link``) names the
  organization, the person, the purpose, a one-time nonce and its expiry; the
  service signs it.
- **Inactive people** (``is_inactive``): no registration, visit or first
  sighting since the cut-off of the organization's ``inactive_people`` period.

Pure: no storage, no clock, no HTTP.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checkin.domain.kiosks import mask_email
from checkin.domain.model import RuleBroken, fold_name
from turnout_common.clock import to_rfc3339
from turnout_common.emails import normalize_email
from turnout_common.privacy import ERASED_NAME, email_digest, pseudonym

Doc = dict[str, Any]

SERVICES = ("checkin", "followup", "analytics")
# The services that answer over turnout.privacy (checkin answers itself, at once).
ANSWERING = ("followup", "analytics")
KINDS = ("export", "erasure")
REQUESTERS = ("user", "person", "retention")

WORKING = "working"
DONE = "done"
FAILED = "failed"  # the service answered, but its part could not be read
COMPLETE = "complete"

# A part's text is stored and sent in chunks of at most this many characters
# (the contract allows 262,144 per message).
CHUNK_CHARS = 200_000
# How a summary shows a part: up to this many items of each list.
SUMMARY_ITEMS = 5

LINK_LIFETIME = timedelta(hours=24)
# A person asking again for the same kind of link within this time gets the
# same answer, but no second email (someone typing another's address cannot
# flood their inbox).
LINK_RESEND_AFTER = timedelta(minutes=5)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_NAME = 100
MAX_EMAIL = 254


# -- correction ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Correction:
    """What a correction writes: on the person, on each of their registrations, and what changed."""

    person_changes: Doc
    registration_changes: Doc
    fields: tuple[str, ...]  # first_name, last_name, email: the ones that changed
    previous_email: str | None  # the address replaced, when the email changed

    @property
    def email_changed(self) -> bool:
        return "email" in self.fields


def correction(person: Doc, wanted: Doc) -> Correction:
    """Check a correction of ``first_name``, ``last_name`` and/or ``email`` against the person as stored.

    Raises ``RuleBroken`` (``invalid_field``, naming the field) for a blank
    first name, a name over 100 characters, or an address that is not one.
    """
    first = person.get("first_name", "")
    last = person.get("last_name", "")
    email = person.get("email", "")
    if "first_name" in wanted:
        first = _text(wanted["first_name"], "first_name")
        if not first:
            raise RuleBroken("invalid_field", "first_name: must not be blank", "first_name")
    if "last_name" in wanted:
        last = _text(wanted["last_name"], "last_name")
    if "email" in wanted:
        email = _text(wanted["email"], "email", MAX_EMAIL)
        if not EMAIL.match(email):
            raise RuleBroken("invalid_field", "email: a valid email address, like name@example.org", "email")
    fields = tuple(
        name for name, value in (("first_name", first), ("last_name", last)) if value != person.get(name, "")
    )
    email_changed = email != person.get("email", "")
    person_changes: Doc = {}
    registration_changes: Doc = {}
    if fields:
        folded = fold_name(f"{first} {last}")
        person_changes.update(first_name=first, last_name=last, name_folded=folded)
        registration_changes.update(first_name=first, last_name=last, name_folded=folded)
    if email_changed:
        person_changes.update(email=email, email_norm=normalize_email(email))
        registration_changes["email_hint"] = mask_email(email)
        fields = (*fields, "email")
    return Correction(
        person_changes=person_changes,
        registration_changes=registration_changes,
        fields=fields,
        previous_email=(str(person.get("email") or "") or None) if email_changed else None,
    )


def _text(value: Any, name: str, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str):
        raise RuleBroken("invalid_field", f"{name}: must be text", name)
    text = " ".join(value.split())
    if len(text) > limit:
        raise RuleBroken("invalid_field", f"{name}: at most {limit} characters", name)
    if any(not ch.isprintable() for ch in text):
        raise RuleBroken("invalid_field", f"{name}: contains characters that cannot be shown", name)
    return text


# -- data requests ----------------------------------------------------------------------------------------


def requested_by(kind: str, user_id: str | None = None) -> Doc:
    """Who asked, as the request and its message record it (``{kind, user_id?}``)."""
    if kind not in REQUESTERS:
        raise ValueError(f"unknown requester {kind!r}")
    found: Doc = {"kind": kind}
    if kind == "user" and user_id:
        found["user_id"] = user_id
    return found


def new_request(
    request_id: str,
    org_id: str,
    kind: str,
    person_ref: str,
    asked_by: Doc,
    now: datetime,
    checkin_answer: Doc,
    link_nonce: str | None = None,
) -> Doc:
    """A data request as stored: checkin has answered (``checkin_answer``), the others are working.

    ``person_ref`` is the person's id for an export, their pseudonym for an
    erasure (an erasure's request keeps nothing that names the person).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}")
    doc: Doc = {
        "_id": request_id,
        "org_id": org_id,
        "kind": kind,
        "person_id": person_ref,
        "requested_by": asked_by,
        "requested_at": now,
        "services": {
            "checkin": checkin_answer,
            **{service: {"status": WORKING} for service in ANSWERING},
        },
        "status": WORKING,
        "completed_at": None,
    }
    if link_nonce is not None:
        doc["link_nonce"] = link_nonce
    return doc


def done(at: datetime, *, summary: Doc | None = None, counts: dict[str, int] | None = None) -> Doc:
    """A service's answer: its part's summary (an export) or what it erased (an erasure)."""
    answer: Doc = {"status": DONE, "done_at": at}
    if summary is not None:
        answer["summary"] = summary
    if counts is not None:
        answer["counts"] = dict(counts)
    return answer


def failed(at: datetime, error: str) -> Doc:
    return {"status": FAILED, "done_at": at, "error": error}


def has_answered(request: Doc, service: str) -> bool:
    return (request.get("services") or {}).get(service, {}).get("status") in (DONE, FAILED)


def is_complete(request: Doc) -> bool:
    """Every service answered."""
    return all(has_answered(request, service) for service in SERVICES)


# -- export parts -------------------------------------------------------------------------------------------


class PartUnreadable(ValueError):
    """A service's part is not one JSON object."""


def split_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """The text in pieces of at most ``size`` characters (at least one, maybe empty)."""
    return [text[index : index + size] for index in range(0, len(text), size)] or [""]


def part_text(part: Doc) -> str:
    return json.dumps(part, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def chunk_docs(request_id: str, org_id: str, service: str, text: str, at: datetime) -> list[Doc]:
    """A part's text as stored chunks (``_id`` "<request>:<service>:<index>")."""
    pieces = split_text(text)
    return [chunk_doc(request_id, org_id, service, index, len(pieces), piece, at) for index, piece in enumerate(pieces)]


def chunk_doc(request_id: str, org_id: str, service: str, index: int, count: int, text: str, at: datetime) -> Doc:
    return {
        "_id": f"{request_id}:{service}:{index}",
        "request_id": request_id,
        "org_id": org_id,
        "service": service,
        "chunk_index": index,
        "chunk_count": count,
        "chunk": text,
        "received_at": at,
    }


def joined(chunks: list[Doc]) -> str | None:
    """The part's text once every chunk is in (each index once, all agreeing on the count); else None."""
    if not chunks:
        return None
    count = chunks[0]["chunk_count"]
    by_index = {chunk["chunk_index"]: chunk for chunk in chunks if chunk["chunk_count"] == count}
    if set(by_index) != set(range(count)):
        return None
    return "".join(by_index[index]["chunk"] for index in range(count))


def parse_part(text: str) -> Doc:
    try:
        part = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PartUnreadable(f"the part is not valid JSON: {exc}") from exc
    if not isinstance(part, dict):
        raise PartUnreadable("the part is not a JSON object")
    return part


# What an item of a part is called in a summary, by preference; and when it happened.
_LABEL_FIELDS = (
    "event_title",
    "title",
    "subject",
    "nudge",
    "template",
    "kind",
    "type",
    "action",
    "name",
    "event_id",
    "id",
)
_TIME_FIELDS = (
    "event_starts_at",
    "starts_at",
    "at",
    "sent_at",
    "scheduled_for",
    "occurred_at",
    "registered_at",
    "created_at",
    "received_at",
)


def summary(part: Doc) -> Doc:
    """What a data request's page shows of a part: how many of each list, and the first few items by name."""
    counts: dict[str, int] = {}
    items: dict[str, list[str]] = {}
    for key in sorted(part):
        value = part[key]
        if isinstance(value, list):
            counts[key] = len(value)
            shown = [_item_label(item) for item in value[:SUMMARY_ITEMS]]
            if any(shown):
                items[key] = [label for label in shown if label]
        elif isinstance(value, dict) and value:
            counts[key] = 1
    return {"counts": counts, "items": items}


def _item_label(item: Any) -> str:
    if isinstance(item, str | int | float) and not isinstance(item, bool):
        return str(item)[:120]
    if not isinstance(item, dict):
        return ""
    label = next((str(item[name]) for name in _LABEL_FIELDS if item.get(name) not in (None, "")), "")
    moment = next((str(item[name]) for name in _TIME_FIELDS if isinstance(item.get(name), str)), "")
    text = f"{label} ({moment[:10]})" if label and moment else label or moment
    return text[:120]


def _t(moment: Any) -> str | None:
    return to_rfc3339(moment) if isinstance(moment, datetime) else None


def checkin_part(
    person: Doc,
    registrations: list[Doc],
    events: dict[str, Doc],
    audit_entries: list[Doc],
    requests: list[Doc],
    off_site_hours: list[Doc] | None = None,
) -> Doc:
    """Everything checkin holds about the person, as one JSON object (times in RFC 3339)."""
    return {
        "service": "checkin",
        "person": {
            "id": person["_id"],
            "first_name": person.get("first_name", ""),
            "last_name": person.get("last_name", ""),
            "email": person.get("email"),
            "first_seen_at": _t(person.get("created_at")),
            "first_visit_at": _t(person.get("first_seen_at")),
            "last_visit_at": _t(person.get("last_seen_at")),
            "visits": int(person.get("visits") or 0),
            "volunteer_hours": person.get("volunteer_hours"),
        },
        "registrations": [_registration_part(reg, events.get(reg["event_id"])) for reg in registrations],
        "audit_entries": [
            {
                "at": _t(entry.get("at")),
                "action": entry.get("action"),
                "by": (entry.get("actor") or {}).get("label") or (entry.get("actor") or {}).get("kind"),
            }
            for entry in audit_entries
        ],
        "data_requests": [
            {"id": request["_id"], "kind": request["kind"], "at": _t(request.get("requested_at"))}
            for request in requests
        ],
        "off_site_hours": [
            {
                "date": entry.get("date"),
                "hours": entry.get("hours"),
                "note": entry.get("note"),
                "logged_at": _t(entry.get("logged_at")),
                "review": _review_part(entry.get("review")),
            }
            for entry in off_site_hours or []
        ],
    }


def _review_part(review: Any) -> Doc | None:
    """A coordinator's decision about hours: the state, the hours that count, the reason, when."""
    if not isinstance(review, dict):
        return None
    return {
        "state": review.get("state"),
        "hours": review.get("hours"),
        "reason": review.get("reason"),
        "at": _t(review.get("at")),
    }


def greeting_part(welcomes: list[Doc], greeter_roles: list[Doc], events: dict[str, Doc]) -> Doc:
    """The greeters' side of checkin: when the person was welcomed as a first-timer (and by
    which greeter), and where they were named a volunteer greeter themselves."""

    def title(event_id: str) -> str:
        return str((events.get(event_id) or {}).get("title") or "")

    return {
        "welcomes": [
            {
                "event_id": welcome["event_id"],
                "event_title": title(welcome["event_id"]),
                "welcomed_at": _t(welcome.get("welcomed_at")),
                "welcomed_by": welcome.get("greeter_name"),
            }
            for welcome in welcomes
        ],
        "greeter_of": [
            {"event_id": greeter["event_id"], "name": greeter.get("name"), "named_at": _t(greeter.get("created_at"))}
            for greeter in greeter_roles
        ],
    }


def _registration_part(reg: Doc, event: Doc | None) -> Doc:
    event = event or {}
    checkin = reg.get("checkin") or None
    checkout = reg.get("checkout") or None
    return {
        "id": reg["_id"],
        "event_id": reg["event_id"],
        "event_title": event.get("title"),
        "event_kind": event.get("kind"),
        "event_starts_at": _t(event.get("starts_at")),
        "event_venue": event.get("venue"),
        "status": reg.get("status"),
        "source": reg.get("source"),
        "registered_at": _t(reg.get("registered_at")),
        "first_name": reg.get("first_name"),
        "last_name": reg.get("last_name"),
        "consent_email": reg.get("consent_email"),
        "offers": list(reg.get("offers") or []),
        "seeks": list(reg.get("seeks") or []),
        "badge_code": reg.get("badge_code"),
        "cancelled_at": _t(reg.get("cancelled_at")),
        "checked_in": None
        if checkin is None
        else {
            "at": _t(checkin.get("received_at")),
            "scanned_at": _t(checkin.get("scanned_at")),
            "method": checkin.get("method"),
        },
        "checked_out": None
        if checkout is None
        else {
            "at": _t(checkout.get("received_at")),
            "hours": checkout.get("hours"),
            "review": _review_part(reg.get("hours_review")),
        },
    }


# -- erasure --------------------------------------------------------------------------------------------------

# What an erased registration keeps: what the counts, the door and the reports
# need, nothing that names or describes the person.
_KEPT_REGISTRATION_FIELDS = ("_id", "org_id", "event_id", "status", "source", "registered_at", "cancelled_at")
_KEPT_DOOR_FIELDS = ("method", "kiosk_id", "scanned_at", "received_at", "override", "hours", "closed_by")


def erased_registration(reg: Doc, stand_in: str, badge_code: str, now: datetime) -> Doc:
    """The registration as it stays after its person's erasure (a whole new document).

    The name becomes ``(erased)``; email hint, offers, seeks, walk-in answers,
    the cancel reason and anything else not listed as kept are dropped; the
    badge code is replaced (the old one found the person) by ``badge_code``,
    a fresh unguessable value (the badge code index is unique).
    """
    kept: Doc = {name: reg[name] for name in _KEPT_REGISTRATION_FIELDS if name in reg}
    kept.update(
        person_id=stand_in,
        first_name=ERASED_NAME,
        last_name="",
        name_folded=fold_name(ERASED_NAME),
        email_hint="",
        offers=[],
        seeks=[],
        consent_email=False,
        badge_code=badge_code,
        checkin=_door(reg.get("checkin")),
        checkout=_door(reg.get("checkout")),
        erased_at=now,
    )
    return kept


def _door(record: Any) -> Doc | None:
    if not isinstance(record, dict):
        return None
    return {name: record[name] for name in _KEPT_DOOR_FIELDS if name in record}


def tombstone(org_id: str, person_id: str, email_norm: str | None, now: datetime, request_id: str) -> Doc:
    """What checkin remembers of an erased person: never their id, name or address."""
    return {
        "_id": pseudonym(org_id, person_id),
        "org_id": org_id,
        "email_digest": email_digest(org_id, email_norm) if email_norm else None,
        "erased_at": now,
        "request_id": request_id,
    }


def scrubbed_problems(problems: list[Doc], email_norm: str) -> tuple[list[Doc], int]:
    """An import's reported rows with the person's (by email) name and address replaced; and how many."""
    changed = 0
    out: list[Doc] = []
    for problem in problems:
        if isinstance(problem, dict) and normalize_email(str(problem.get("email") or "")) == email_norm:
            out.append({**problem, "email": ERASED_NAME, "name": ERASED_NAME})
            changed += 1
        else:
            out.append(problem)
    return out, changed


# -- self-service links -----------------------------------------------------------------------------------


class LinkRefused(ValueError):
    """A signed link that cannot be used (a privacy request's, a volunteer's hours page, an hour
    statement's verification): ``reason`` is "invalid" or "expired"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Link:
    org_id: str
    person_id: str
    purpose: str  # "export" or "erasure"
    nonce: str
    expires_at: datetime


def link_claims(link: Link) -> Doc:
    """What a link's token carries (signed by the service)."""
    return {
        "o": link.org_id,
        "p": link.person_id,
        "u": link.purpose,
        "n": link.nonce,
        "x": int(link.expires_at.timestamp()),
    }


def read_link(claims: Any, now: datetime) -> Link:
    """The link from a token's verified claims; ``LinkRefused`` if malformed or expired at ``now``."""
    try:
        org_id, person_id, purpose, nonce, expires = (claims[key] for key in ("o", "p", "u", "n", "x"))
    except (KeyError, TypeError) as exc:
        raise LinkRefused("invalid", "This link is not valid.") from exc
    if (
        not all(isinstance(value, str) and 0 < len(value) <= 64 for value in (org_id, person_id, nonce))
        or purpose not in KINDS
        or isinstance(expires, bool)
        or not isinstance(expires, int)
    ):
        raise LinkRefused("invalid", "This link is not valid.")
    expires_at = datetime.fromtimestamp(expires, tz=now.tzinfo)
    if now >= expires_at:
        raise LinkRefused("expired", "This link has expired. Ask for a new one on the organization's privacy page.")
    return Link(org_id, person_id, purpose, nonce, expires_at)


def may_send_link(person: Doc, purpose: str, now: datetime) -> bool:
    """Whether to email a new link: not if one for the same purpose went out a moment ago."""
    sent = (person.get("data_link_sent_at") or {}).get(purpose)
    return not isinstance(sent, datetime) or now - _aware(sent, now) >= LINK_RESEND_AFTER


def _aware(moment: datetime, like: datetime) -> datetime:
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None and like.tzinfo is not None else moment


# -- inactive people ------------------------------------------------------------------------------------------

# An event takes at most 14 days (``model.plan_schedule``): a registration or
# check-in after the cut-off belongs to an event that started at most this
# long before it.
EVENT_MARGIN = timedelta(days=15)


def is_inactive(person: Doc, cutoff: datetime, recently_active: set[str]) -> bool:
    """No registration, visit or first sighting since ``cutoff``."""
    if person["_id"] in recently_active:
        return False
    for name in ("created_at", "last_seen_at"):
        moment = person.get(name)
        if isinstance(moment, datetime) and _aware(moment, cutoff) >= cutoff:
            return False
    return True


def active_since(registration: Doc, cutoff: datetime) -> bool:
    """A registration made, or checked in, since ``cutoff``."""
    moments = [registration.get("registered_at"), (registration.get("checkin") or {}).get("received_at")]
    return any(isinstance(moment, datetime) and _aware(moment, cutoff) >= cutoff for moment in moments)
