"""A recurring series seen whole: attendance per occurrence and the regulars across it (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

REGULAR_AT_LEAST = 3  # a regular came to at least this many occurrences (or all, if fewer were held)


def series_figures(
    held: int, attendance: Iterable[tuple[str, str]], regular_at: int = REGULAR_AT_LEAST
) -> dict[str, Any]:
    """From (person, occurrence) check-ins: people who came, returners (2+ occurrences) and
    their share, regulars (at ``regular_at``+ occurrences, or every one if fewer were held),
    and how many people came to exactly 1, 2, 3... occurrences."""
    per_person = Counter(person for person, _ in set(attendance))
    people = len(per_person)
    returners = sum(1 for count in per_person.values() if count >= 2)
    threshold = max(1, min(regular_at, held)) if held else regular_at
    regulars = sum(1 for count in per_person.values() if count >= threshold)
    spread = Counter(per_person.values())
    return {
        "people": people,
        "returners": returners,
        "returner_share": round(returners / people, 3) if people else None,
        "regular_at": threshold,
        "regulars": regulars,
        "by_occurrences_attended": [{"occurrences": n, "people": spread[n]} for n in sorted(spread)],
    }
