"""Kiosk rules: pairing codes, the staff PIN, and the name search a kiosk offers."""

from __future__ import annotations

import bisect
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from checkin.domain.model import fold_name

# No 0/O, 1/I/L: a code read off a laptop screen and typed on a tablet.
PAIRING_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PAIRING_CODE_LENGTH = 8
PAIRING_MINUTES = 15


def new_pairing_code() -> str:
    return "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_CODE_LENGTH))


def normalize_pairing_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def pin_digest(kiosk_id: str, pin: str) -> str:
    """What the kiosk stores to check the staff PIN offline (salted by the kiosk id)."""
    return hashlib.sha256(f"{kiosk_id}:{pin}".encode()).hexdigest()


def badge_digest(badge_code: str) -> str:
    """What an offline kiosk compares a scanned code against (never the code itself)."""
    return hashlib.sha256(badge_code.encode()).hexdigest()


def mask_email(email: str) -> str:
    """A hint that tells two people with the same name apart without revealing the address."""
    local, _, domain = email.strip().partition("@")
    if not local or not domain:
        return ""
    if len(local) == 1:
        return f"{local.lower()}@{domain[0].lower()}…"
    return f"{local[0].lower()}…{local[-1].lower()}@{domain[0].lower()}…"


def registration_hint(registered_at: datetime) -> str:
    """Tells two people with the same name apart without any part of an email."""
    return f"registered {registered_at.day} {registered_at:%b %H:%M}"


def _edit_distance_at_most(a: str, b: str, limit: int) -> bool:
    """Damerau-Levenshtein (optimal string alignment) distance(a, b) <= limit:
    a swapped pair of letters ("jsoe") counts as one typo."""
    if abs(len(a) - len(b)) > limit:
        return False
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        if min(row) > limit:
            return False
        rows.append(row)
    return rows[-1][-1] <= limit


def _token_score(query_token: str, name_token: str) -> int:
    """0 = no match; higher is better. Prefixes beat typos."""
    if name_token.startswith(query_token):
        return 3 if len(query_token) == len(name_token) else 2
    if len(query_token) >= 3:
        allowed = 1 if len(query_token) < 7 else 2
        if _edit_distance_at_most(query_token, name_token[: len(query_token)], allowed):
            return 1
        if _edit_distance_at_most(query_token, name_token, allowed):
            return 1
    return 0


@dataclass(frozen=True, slots=True)
class SearchEntry:
    registration_id: str
    name_folded: str


class NameIndex:
    """The names of one event, indexed for the kiosk's typeahead.

    Prefix matches come from a sorted token list (binary search); typo matches
    compare only tokens that start with the query's first or second letter
    (which still catches a swapped first pair), so a 10,000-person event
    answers in milliseconds.
    """

    def __init__(self, entries: list[SearchEntry]) -> None:
        self.entries = entries
        self.names = [entry.name_folded for entry in entries]
        postings: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            for token in set(entry.name_folded.split()):
                postings.setdefault(token, []).append(index)
        self.postings = postings
        self.tokens = sorted(postings)
        self.by_letter: dict[str, list[str]] = {}
        for token in self.tokens:
            self.by_letter.setdefault(token[0], []).append(token)

    def _token_matches(self, query_token: str) -> dict[str, int]:
        """Name tokens matching one query token, with their score."""
        found: dict[str, int] = {}
        start = bisect.bisect_left(self.tokens, query_token)
        for token in self.tokens[start:]:
            if not token.startswith(query_token):
                break
            found[token] = 3 if token == query_token else 2
        if len(query_token) >= 3:
            candidates = self.by_letter.get(query_token[0], []) + self.by_letter.get(query_token[1], [])
            for token in candidates:
                if token not in found and _token_score(query_token, token):
                    found[token] = 1
        return found

    def search(self, query: str, limit: int = 10) -> list[str]:
        tokens = fold_name(query).split()
        if not tokens:
            return []
        totals: dict[int, int] | None = None
        for query_token in tokens:
            scores: dict[int, int] = {}
            for token, score in self._token_matches(query_token).items():
                for index in self.postings[token]:
                    if score > scores.get(index, 0):
                        scores[index] = score
            if totals is None:
                totals = scores
            else:
                totals = {index: total + scores[index] for index, total in totals.items() if index in scores}
            if not totals:
                return []
        assert totals is not None
        ranked = sorted(totals.items(), key=lambda item: (-item[1], self.names[item[0]]))
        return [self.entries[index].registration_id for index, _ in ranked[:limit]]


def search_names(query: str, entries: list[SearchEntry], limit: int = 10) -> list[str]:
    """Registration ids whose names match every word of ``query`` (accent-,
    case- and typo-tolerant), best first."""
    return NameIndex(entries).search(query, limit)
