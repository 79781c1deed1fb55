"""A person's data in follow-up: what an export holds, what an erasure keeps
(under a pseudonym) and what it removes, and which later messages an
erasure's tombstone turns away. Pure: the service layer loads and stores.

What an erasure keeps: records that feed what organizers count (a
gathering's attendance, the messages of a gathering and their states, the
introductions other people were offered) stay, with the person's id replaced
by ``pseudonym(org_id, person_id)`` and every personal field removed (names,
addresses, what they offer and seek, what they wrote, which links they
followed). Everything else about them is deleted. A suppression is kept as a
one-way digest of the address, so an address that unsubscribed or bounced
stays blocked if it ever comes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from turnout_common.clock import to_rfc3339
from turnout_common.privacy import is_pseudonym, pseudonym

# A part's JSON text travels in chunks of at most this many characters
# (the contract allows 262,144; the margin keeps each Kafka record small).
EXPORT_CHUNK_CHARS = 200_000

# Why an unsent nudge of an erased person was skipped.
ERASED = "erased"
# Written by an erasure as the journal's ``<followup>:<attempt>:sending`` of a
# claimed nudge: the sender that claimed it finds the attempt taken and does
# not hand the message over (see ``followup.service_layer.sending``).
ERASURE_FENCE = "erasure"

# Fields of a kept nudge that are about the person (or that they wrote).
NUDGE_PERSONAL_FIELDS = (
    "to_email",
    "first_name",
    "link",
    "feedback_comment",
    "clicked_urls",
    "machine_clicked_urls",
    "last_click_url",
    "last_error",
    "bounce_reason",
    "resolution_note",
    "winback_note",  # a win-back's personal note (it names the person and their habits)
    "at_risk",
)
# Fields of a kept attendance row that are about the person.
ATTENDANCE_PERSONAL_FIELDS = ("registration_id", "offers", "seeks", "consent_email")
# An introduction the erased person was part of: nothing more is sent about it.
ERASED_INTRODUCTION = "erased"


def chunk_text(text: str, size: int = EXPORT_CHUNK_CHARS) -> list[str]:
    """``text`` in pieces of at most ``size`` characters (one empty piece for empty text)."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    return [text[start : start + size] for start in range(0, len(text), size)] or [""]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_rfc3339(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return None  # raw bytes are exported decoded, by the caller
    return value


def part_json(part: Mapping[str, Any]) -> str:
    """A service part as JSON text: timestamps in RFC 3339, ASCII only (so a chunk's
    size in bytes on the wire is bounded: at most two bytes per character once escaped)."""
    return json.dumps(_plain(part), ensure_ascii=True, sort_keys=True, separators=(",", ":"))


def plain(value: Any) -> Any:
    """``value`` with its timestamps as RFC 3339 strings (what a part holds)."""
    return _plain(value)


def erased_key(key: str, person_id: str, stand_in: str) -> str:
    """A nudge key (``event|person|kind[|discriminator]``) naming ``stand_in`` instead of the person."""
    return "|".join(stand_in if part == person_id else part for part in key.split("|"))


@dataclass(frozen=True, slots=True)
class NudgeErasure:
    """What an erasure does to one of the person's nudges."""

    set: dict[str, Any]
    unset: tuple[str, ...]
    fence_attempt: int | None  # claimed and not yet handed over: fence this attempt
    in_flight: bool  # handed to the transport already: it cannot be recalled


PENDING_STATES = frozenset({"draft", "scheduled", "retry"})  # a win-back draft is never sent either


def erase_nudge(nudge: Mapping[str, Any], stand_in: str, now: datetime, handed_over: bool) -> NudgeErasure:
    """The person's id replaced, personal fields removed; an unsent nudge is skipped for good.

    ``handed_over``: the journal already says ``sending`` for the nudge's
    current attempt (a sender is handing it to the mail server, or did and
    has not recorded the answer yet): that message cannot be called back; its
    outcome is recorded when it comes, under the pseudonym.
    """
    changes: dict[str, Any] = {
        "person_id": stand_in,
        "key": erased_key(str(nudge["key"]), str(nudge["person_id"]), stand_in),
        "erased_at": now,
    }
    state = str(nudge.get("state"))
    fence: int | None = None
    in_flight = False
    if state in PENDING_STATES:
        changes.update(state="skipped", skip_reason=ERASED, skipped_at=now)
    elif state == "claimed":
        if handed_over:
            in_flight = True
        else:
            fence = int(nudge.get("attempts") or 0)
            changes.update(state="skipped", skip_reason=ERASED, skipped_at=now, claim=None)
    return NudgeErasure(changes, NUDGE_PERSONAL_FIELDS, fence, in_flight)


def erase_introduction(doc: Mapping[str, Any], person_id: str, stand_in: str, pair: str) -> dict[str, Any]:
    """An introduction the person was part of, naming the stand-in (and ``pair``, its new
    pair key); what the person offered is removed, and nothing more is sent about it."""
    people = [stand_in if p == person_id else p for p in doc.get("people", [])]
    offers = {stand_in if p == person_id else p: ([] if p == person_id else list(v)) for p, v in doc["offers"].items()}
    accepted_by = [stand_in if p == person_id else p for p in doc.get("accepted_by", [])]
    accepted_at = {stand_in if p == person_id else p: v for p, v in (doc.get("accepted_at") or {}).items()}
    return {
        "people": people,
        "offers": offers,
        "accepted_by": accepted_by,
        "accepted_at": accepted_at,
        "pair_key": pair,
        "state": ERASED_INTRODUCTION,
        "state_before_erasure": doc.get("state"),
    }


def names_person(values: Iterable[Any], person_id: str) -> bool:
    return any(value == person_id for value in values)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What follow-up remembers of an erased person: one-way digests only."""

    stand_in: str
    email_digests: tuple[str, ...]
    requested_at: datetime | None


def turned_away(
    *,
    person_id: str | None,
    org_id: str,
    email_digest: str | None,
    message_time: datetime | None,
    erased_ids: set[str],
    by_email: Mapping[str, datetime | None],
) -> bool:
    """Whether a message naming this person (or this address) concerns someone erased.

    By id: always (checkin never gives an erased person's id to anybody
    else). By address: when the message is not newer than the erasure (a
    redelivered or replayed registration); a registration made *after* the
    erasure is a new person, and is welcome (an old unsubscribe or bounce of
    the address still holds, through the suppression's digest).
    """
    if person_id is not None and (is_pseudonym(person_id) or pseudonym(org_id, person_id) in erased_ids):
        return True
    if email_digest is None or email_digest not in by_email:
        return False
    erased_at = by_email[email_digest]
    return erased_at is None or message_time is None or message_time <= erased_at
