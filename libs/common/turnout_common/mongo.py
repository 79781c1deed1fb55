"""MongoDB plumbing: one client per process, and a unit of work that commits a
domain write together with the messages it causes (the transactional outbox)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pymongo import MongoClient, monitoring
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
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


SLOW_MS_ENV = "TURNOUT_MONGO_SLOW_MS"
slow_log = logging.getLogger("turnout.mongo.slow")


def connect(uri: str, app_name: str) -> MongoClient[Doc]:
    """Create the process's client (call after fork, never at import time).

    With ``TURNOUT_MONGO_SLOW_MS`` set, every command slower than that many
    milliseconds is logged (logger ``turnout.mongo.slow``) with the shape of
    its filter and update, never the values. Unset, no listener is registered.
    """
    listeners: list[monitoring.CommandListener] = []
    threshold = slow_threshold_ms(os.environ.get(SLOW_MS_ENV))
    if threshold is not None:
        listeners.append(SlowCommandLogger(threshold, app_name))
    # The driver watches the server with a plain ``hello`` every 10 s
    # (``serverMonitoringMode=poll``) rather than a streamed, held one: the
    # server holding a streamed hello wakes for it four times a second
    # (SecantusDB checks the held connection in 0.25 s slices), one per
    # client of every process: 0.45 % of a core on an idle local stack. A
    # failover is still noticed at once: a failed operation makes the driver
    # check again right away. A URI that sets the mode keeps its own.
    options: dict[str, Any] = {}
    if "servermonitoringmode" not in uri.lower():
        options["serverMonitoringMode"] = "poll"
    return MongoClient(
        uri,
        appname=app_name,
        tz_aware=True,
        **options,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        maxPoolSize=50,
        event_listeners=listeners,
    )


def slow_threshold_ms(raw: str | None) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        slow_log.warning("ignoring %s=%r: not a number", SLOW_MS_ENV, raw)
        return None
    return value if value >= 0 else None


def query_shape(value: Any) -> Any:
    """The shape of a filter, update, sort or pipeline: field names and
    operators kept, every value replaced by "?" (values may be personal data)."""
    if isinstance(value, Mapping):
        return {str(key): query_shape(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if not any(isinstance(item, Mapping | list | tuple) for item in value):
            return "?"  # a list of values ($in, $nin, $all ...): neither values nor length
        shapes: list[Any] = []
        for item in value:
            shape = query_shape(item)
            if shape not in shapes:  # many identical statements (a bulk write) shown once
                shapes.append(shape)
        return shapes
    return "?"


# The parts of a command that describe what it asks for (never documents to insert).
_SHAPED_PARTS = ("filter", "query", "q", "update", "u", "sort", "projection", "fields", "hint", "pipeline", "key")
_STATEMENT_PARTS = ("updates", "deletes")


def command_shape(command: Mapping[str, Any]) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    name = next(iter(command), None)  # the command's name; its value is the collection
    for part in _SHAPED_PARTS:
        if part in command and part != name:
            shape[part] = query_shape(command[part])
    for part in _STATEMENT_PARTS:
        statements = command.get(part)
        if isinstance(statements, list):
            shape[part] = query_shape(
                [
                    {name: stmt[name] for name in ("q", "u", "multi", "upsert") if name in stmt}
                    for stmt in statements
                    if isinstance(stmt, Mapping)
                ]
            )
            shape[f"{part}_count"] = len(statements)
    if isinstance(command.get("documents"), list):
        shape["documents_count"] = len(command["documents"])
    if "limit" in command:
        shape["limit"] = "?"
    return shape


class SlowCommandLogger(monitoring.CommandListener):
    """Logs every command slower than ``threshold_ms`` (shape only, no values)."""

    def __init__(self, threshold_ms: float, app_name: str = "") -> None:
        self.threshold_us = threshold_ms * 1000
        self.app_name = app_name
        # (connection, request id) -> (collection, command); filled at start,
        # read only when a command turns out slow.
        self._started: dict[tuple[Any, int], tuple[str | None, Mapping[str, Any]]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        collection = command.get(event.command_name)
        if event.command_name == "getMore":
            collection = command.get("collection")
        self._started[(event.connection_id, event.request_id)] = (
            collection if isinstance(collection, str) else None,
            command,
        )

    def _finished(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent, ok: bool) -> None:
        started = self._started.pop((event.connection_id, event.request_id), None)
        if event.duration_micros < self.threshold_us:
            return
        collection, command = started if started is not None else (None, {})
        slow_log.warning(
            "slow mongo command",
            extra={
                "app": self.app_name,
                "command": event.command_name,
                "database": event.database_name,
                "collection": collection,
                "duration_ms": round(event.duration_micros / 1000, 2),
                "ok": ok,
                "in_transaction": "txnNumber" in command,
                "shape": command_shape(command),
            },
        )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._finished(event, True)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._finished(event, False)


def find_in_org(
    collection: Collection[Doc], doc_id: Any, org_id: str, *, session: ClientSession | None = None
) -> Doc | None:
    """The document with this ``_id`` if it belongs to ``org_id``, else None.

    Same answer as ``find_one({"_id": doc_id, "org_id": org_id})``, but the
    filter names ``_id`` alone: SecantusDB answers that with a direct primary
    key lookup, while a second field sends it through its general planner
    (about twice the database CPU for the same single document).
    """
    doc = collection.find_one({"_id": doc_id}, session=session)
    if doc is None or doc.get("org_id") != org_id:
        return None
    return doc


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
