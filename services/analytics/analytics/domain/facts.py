"""Small shared pieces of the projection rules: timestamps at the precision
MongoDB keeps, tie-break keys, month arithmetic and counter arithmetic.

Every projection here is a *join-semilattice*: its state only ever moves "up"
(a minimum gets smaller, a maximum larger, a flag turns on, a set grows), so
folding the same messages in any order, any number of times, ends in the same
state. The figures are a pure function of that state, and the live projection
and a rebuild move them by the difference between the figures of the state
before and after. That is what makes a rebuild equal to the live projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from turnout_common.clock import as_utc, parse_rfc3339

Counters = dict[str, int]
# (time, message id): orders two facts of the same kind deterministically.
Stamp = tuple[datetime, str]


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime, cut to milliseconds.

    MongoDB stores milliseconds; cutting here keeps the state folded in memory
    equal to the state read back, whatever the batch boundaries were.
    """
    moment = parse_rfc3339(text)
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def month_of(moment: datetime) -> str:
    """``YYYY-MM`` of a moment, in UTC."""
    return as_utc(moment).strftime("%Y-%m")


def month_index(month: str) -> int:
    """Months since year 0, so that consecutive months differ by one."""
    year, _, number = month.partition("-")
    return int(year) * 12 + int(number) - 1


def month_from_index(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def later(current: Stamp | None, candidate: Stamp) -> bool:
    return current is None or candidate > current


def earlier(current: Stamp | None, candidate: Stamp) -> bool:
    return current is None or candidate < current


def difference(new: Mapping[str, int], old: Mapping[str, int]) -> Counters:
    """``new - old`` per counter, without the zeros."""
    out: Counters = {}
    for name in set(new) | set(old):
        delta = new.get(name, 0) - old.get(name, 0)
        if delta:
            out[name] = delta
    return out


def add_into(target: dict[str, Counters], key: str, counters: Mapping[str, int]) -> None:
    cell = target.setdefault(key, {})
    for name, amount in counters.items():
        cell[name] = cell.get(name, 0) + amount


def keyed_difference(new: Mapping[str, Counters], old: Mapping[str, Counters]) -> dict[str, Counters]:
    """Per-key ``new - old`` of counter cells, without empty cells."""
    out: dict[str, Counters] = {}
    for key in set(new) | set(old):
        delta = difference(new.get(key, {}), old.get(key, {}))
        if delta:
            out[key] = delta
    return out


def merge_cells(parts: Iterable[Mapping[str, Counters]]) -> dict[str, Counters]:
    out: dict[str, Counters] = {}
    for part in parts:
        for key, counters in part.items():
            add_into(out, key, counters)
    return out
