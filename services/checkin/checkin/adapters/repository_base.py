"""What every checkin repository shares: the collection it works on, the
session it works in (the running unit of work's, or none), and the
translation of a unique-index refusal into ``AlreadyStored``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from checkin.service_layer.ports import AlreadyStored
from turnout_common.types import Doc

DUPLICATE_KEY = 11000

SessionSource = Callable[[], ClientSession | None]


def no_session() -> ClientSession | None:
    return None


@contextmanager
def unique() -> Iterator[None]:
    try:
        yield
    except DuplicateKeyError as exc:
        raise AlreadyStored(str(exc)) from exc
    except BulkWriteError as exc:  # an unordered insert_many reports its duplicates here
        errors = exc.details.get("writeErrors") or []
        if errors and all(error.get("code") == DUPLICATE_KEY for error in errors):
            raise AlreadyStored(str(errors[0].get("errmsg", exc))) from exc
        raise


class Repository:
    collection_name = ""

    def __init__(self, db: Database[Doc], session: SessionSource = no_session) -> None:
        self._db = db
        self._session = session

    @property
    def _coll(self) -> Collection[Doc]:
        return self._db[self.collection_name]

    @property
    def _s(self) -> ClientSession | None:
        return self._session()
