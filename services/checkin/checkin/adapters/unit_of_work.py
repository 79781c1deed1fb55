"""The unit of work of ``turnout_common.mongo`` with checkin's repositories bound to its session."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from checkin.adapters.repositories import MongoStore
from checkin.service_layer.ports import AlreadyStored, StorageRefused, Transaction
from turnout_common.contracts import ContractRegistry
from turnout_common.envelope import Envelope
from turnout_common.mongo import UnitOfWork, is_transient
from turnout_common.types import Doc

T = TypeVar("T")


class MongoUnitOfWork:
    """A MongoDB transaction plus its outbox messages; ``store`` works inside it.

    What leaves ``run`` is what the use cases can name: a unique key refused
    is ``AlreadyStored``, another write refused for good is ``StorageRefused``;
    transient failures (connection lost, a conflict that kept recurring) pass
    through as they are, for the caller to retry or report.
    """

    def __init__(self, client: MongoClient[Doc], db: Database[Doc], contracts: ContractRegistry | None = None) -> None:
        self._uow = UnitOfWork(client, db, contracts)
        self.store = MongoStore(db, lambda: self._uow.session)

    def publish(self, envelope: Envelope) -> None:
        self._uow.publish(envelope)

    def run(self, fn: Callable[[Transaction], T]) -> T:
        try:
            return self._uow.run(lambda _: fn(self))
        except DuplicateKeyError as exc:
            raise AlreadyStored(str(exc)) from exc
        except PyMongoError as exc:
            if is_transient(exc):
                raise
            raise StorageRefused(str(exc)) from exc
