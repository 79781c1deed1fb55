"""Dropping indexes that no query reads (every write pays for each index).

Each process of a service creates its indexes at start, so two may drop the
same one at once: the second finds it gone, which is fine.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo.database import Database
from pymongo.errors import OperationFailure

from turnout_common.types import Doc

INDEX_NOT_FOUND = 27


def drop_index_if_present(db: Database[Doc], collection: str, name: str) -> None:
    """Drop an index; another process starting at the same time may have dropped it first."""
    try:
        db[collection].drop_index(name)
    except OperationFailure as error:
        if error.code != INDEX_NOT_FOUND:
            raise


def drop_unused_indexes(db: Database[Doc], collection: str, names: Iterable[str]) -> None:
    """Drop those of ``names`` that ``collection`` has."""
    existing = db[collection].index_information()
    for name in names:
        if name in existing:
            drop_index_if_present(db, collection, name)
