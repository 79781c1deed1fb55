"""MongoDB plumbing: one client per process, and a unit of work that commits a
domain write together with the messages it causes (the transactional outbox)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from turnout_common.contracts import ContractRegistry, registry
from turnout_common.envelope import Envelope
from turnout_common.outbox import stage_messages

T = TypeVar("T")

Doc = dict[str, Any]

# Errors that mean "the database was unreachable or busy", as opposed to a bug
# or bad data: callers retry these instead of dead-lettering a message.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (ConnectionFailure,)


def connect(uri: str, app_name: str) -> MongoClient[Doc]:
    """Create the process's client (call after fork, never at import time)."""
    return MongoClient(
        uri,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        maxPoolSize=50,
    )


def is_transient(error: PyMongoError) -> bool:
    if isinstance(error, INFRASTRUCTURE_ERRORS):
        return True
    return isinstance(error, OperationFailure) and error.has_error_label("TransientTransactionError")


class UnitOfWork:
    """A MongoDB transaction plus the messages it will publish.

    ``run(fn)`` calls ``fn(uow)`` inside a transaction; messages added with
    ``publish`` are written to the outbox in the same transaction, so the
    domain write and its messages are stored together or not at all. A
    transient conflict re-runs ``fn`` from the start (pymongo's
    ``with_transaction``), so ``fn`` must not have side effects outside MongoDB.
    """

    def __init__(
        self,
        client: MongoClient[Doc],
        db: Database[Doc],
        contracts: ContractRegistry | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.contracts = contracts or registry()
        self.session: ClientSession | None = None
        self._messages: list[Envelope] = []

    def publish(self, envelope: Envelope) -> None:
        # Validate at the producer: a message that breaks its contract is a
        # bug here, and must fail the request rather than reach consumers.
        self.contracts.validate(envelope)
        self._messages.append(envelope)

    def run(self, fn: Callable[[UnitOfWork], T]) -> T:
        with self.client.start_session() as session:

            def attempt(active: ClientSession) -> T:
                self.session = active
                self._messages = []
                result = fn(self)
                if self._messages:
                    stage_messages(self.db, self._messages, self.contracts, session=active)
                return result

            try:
                return session.with_transaction(attempt)
            finally:
                self.session = None
                self._messages = []
