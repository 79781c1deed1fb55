"""Introductions: pairing people whose "I can offer" matches another's "I'm
looking for", after a networking or volunteer gathering.

Rules:
- tags are compared after normalization (case, accents, punctuation,
  separators and simple plurals), so "Grant-Writing" offered meets "grant
  writing" sought;
- a pair needs at least one direction to match (A offers what B seeks);
  matches in both directions score higher;
- never a person with themself; never a pair already suggested at an earlier
  gathering of the organization; at most ``limit`` suggestions per person
  per gathering;
- the choice is greedy by score, with a deterministic tie-break, so the same
  facts give the same suggestions.

Late arrivals: people who check in after a gathering's suggestions were made
(a kiosk's offline queue, a check-in entered afterwards) are matched in a
*late round*, with the same rules, against everyone who attended (early and
late): each new pair names at least one of the newcomers, the suggestions
made already count against ``limit``, and a pair is never suggested twice.
Late rounds are made while the gathering's follow-up window is open
(``late_matching_open``); each round has a stable id derived from its pairs
(``late_round``), so replaying it makes the same round again.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

_SEPARATORS = re.compile(r"[\s\-_/#.,;:+&|()\[\]\"'!?*]+")
# Words that look plural but are not (a tiny list: "s" stripping is only a heuristic).
_KEEP_S = frozenset({"news", "series", "species", "basis", "analysis", "business", "always", "perhaps", "its", "this"})
# How many people seeking one tag each offerer is compared with: bounds the
# work on huge gatherings where everybody wants the same thing.
MAX_PARTNERS_PER_TAG = 100


def _singular(word: str) -> str:
    if len(word) <= 3 or word in _KEEP_S or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s"):
        return word[:-1]
    return word


def normalize_tag(tag: str) -> str:
    """One comparable form of a tag: ``"  Grant-Writings!"`` -> ``"grant writing"``."""
    folded = unicodedata.normalize("NFKD", tag).encode("ascii", "ignore").decode().casefold()
    words = [_singular(word) for word in _SEPARATORS.split(folded) if word]
    return " ".join(words)[:60].strip()


def normalize_tags(tags: Iterable[str]) -> frozenset[str]:
    return frozenset(normalized for tag in tags if (normalized := normalize_tag(tag)))


def pair_key(a: str, b: str) -> str:
    """The same key for (a, b) and (b, a)."""
    first, second = sorted((a, b))
    return f"{first}|{second}"


@dataclass(frozen=True, slots=True)
class Candidate:
    person_id: str
    offers: frozenset[str]
    seeks: frozenset[str]

    @classmethod
    def of(cls, person_id: str, offers: Iterable[str], seeks: Iterable[str]) -> Candidate:
        return cls(person_id, normalize_tags(offers), normalize_tags(seeks))


@dataclass(frozen=True, slots=True)
class Proposal:
    """A suggested introduction between ``a`` and ``b`` (``a`` < ``b``)."""

    a: str
    b: str
    a_offers_b: tuple[str, ...]  # what a can offer that b is looking for
    b_offers_a: tuple[str, ...]

    @property
    def key(self) -> str:
        return pair_key(self.a, self.b)

    @property
    def score(self) -> int:
        both = 2 if self.a_offers_b and self.b_offers_a else 0
        return len(self.a_offers_b) + len(self.b_offers_a) + both

    def other(self, person_id: str) -> str:
        return self.b if person_id == self.a else self.a

    def offered_by(self, person_id: str) -> tuple[str, ...]:
        return self.a_offers_b if person_id == self.a else self.b_offers_a


def _tie_break(key: str) -> int:
    # Deterministic across processes (unlike hash()), and cheap.
    return zlib.crc32(key.encode())


def propose_introductions(
    candidates: Sequence[Candidate],
    limit: int,
    *,
    already_paired: Iterable[str] = (),
    kept: Sequence[Proposal] = (),
    newcomers: Collection[str] | None = None,
) -> list[Proposal]:
    """Choose introductions among ``candidates`` (people who attended and consented).

    ``already_paired``: pair keys suggested at earlier gatherings (never again).
    ``kept``: suggestions already made for this gathering (a re-run keeps them
    and counts them against ``limit``). ``newcomers``: for a late round, the
    people who arrived since; every new pair then names at least one of them.
    Returns the new suggestions only.
    """
    if limit <= 0:
        return []
    people = {c.person_id: c for c in candidates}
    seekers: dict[str, list[str]] = defaultdict(list)
    new_seekers: dict[str, list[str]] = defaultdict(list)
    for candidate in sorted(people.values(), key=lambda c: c.person_id):
        for tag in candidate.seeks:
            seekers[tag].append(candidate.person_id)
            if newcomers is not None and candidate.person_id in newcomers:
                new_seekers[tag].append(candidate.person_id)
    pairs: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for offerer in people.values():
        # In a late round, one who came early is only compared with the newcomers.
        index = seekers if newcomers is None or offerer.person_id in newcomers else new_seekers
        for tag in offerer.offers:
            wanting = index.get(tag, [])
            if len(wanting) > MAX_PARTNERS_PER_TAG:
                # Rotate deterministically so that not always the same seekers are compared.
                start = _tie_break(offerer.person_id + tag) % len(wanting)
                wanting = (wanting[start:] + wanting[:start])[:MAX_PARTNERS_PER_TAG]
            me = offerer.person_id
            for seeker in wanting:
                if seeker == me:
                    continue
                key = (me, seeker) if me < seeker else (seeker, me)
                entry = pairs.get(key)
                if entry is None:
                    entry = pairs[key] = (set(), set())
                # entry[0]: what the first offers the second; entry[1]: the reverse.
                entry[0 if me == key[0] else 1].add(tag)
    excluded = set(already_paired) | {p.key for p in kept}
    ranked = sorted(
        (
            (-(len(ab) + len(ba) + (2 if ab and ba else 0)), _tie_break(f"{a}|{b}"), a, b)
            for (a, b), (ab, ba) in pairs.items()
            if f"{a}|{b}" not in excluded
        ),
    )
    used: dict[str, int] = defaultdict(int)
    for proposal in kept:
        used[proposal.a] += 1
        used[proposal.b] += 1
    chosen: list[Proposal] = []
    for _, _, a, b in ranked:
        if used[a] >= limit or used[b] >= limit:
            continue
        used[a] += 1
        used[b] += 1
        ab, ba = pairs[(a, b)]
        chosen.append(Proposal(a, b, tuple(sorted(ab)), tuple(sorted(ba))))
    return chosen


LATE_ROUND_PREFIX = "late-"


def late_matching_open(ended_at: datetime, now: datetime, window: timedelta) -> bool:
    """Whether a late round may still be made: until ``window`` after the gathering
    ended (inclusive); after that, late arrivals get no suggestions."""
    return now <= ended_at + window


def late_round(pair_keys: Iterable[str]) -> str:
    """The stable id of a late round, from the pairs it suggests (same pairs, same id)."""
    digest = hashlib.sha256("\n".join(sorted(pair_keys)).encode()).hexdigest()
    return LATE_ROUND_PREFIX + digest[:16]
