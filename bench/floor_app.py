"""The floor: the cheapest honest version of a check-in's write, as a web app.

One route, ``POST /checkins`` with ``{"badge_code": <registration _id>, "client_key": ...}``,
that in ONE MongoDB transaction updates the registration by ``_id`` and inserts
one outbox document, then answers 201 (404 when no registration has that
``_id``). No authentication, no validation beyond the JSON body, no reads, no
idempotency record: what is left is the web framework, the driver and the
database's cost of one transactional write of the two documents every
check-in must store. ``bench/checkin_load.py`` serves it with gunicorn using
checkin's own ``gunicorn.conf.py`` (the same workers, threads and keep-alive
as checkin-web) against the SecantusDB instance of the stack it measures, and
drives it with the same kiosk client code.

Environment: ``MONGODB_URI`` (the stack's, with ``retryWrites=false``),
``FLOOR_DATABASE`` (default ``bench_floor``).

``seed(uri, database, ids)`` creates the collections and their indexes and
inserts the registration documents (called by the benchmark, not by the app).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request
from pymongo import MongoClient
from pymongo.client_session import ClientSession

REGISTRATIONS = "registrations"
OUTBOX = "outbox"

app = Flask(__name__)
_client: MongoClient[dict[str, Any]] | None = None
_lock = threading.Lock()


def connect(uri: str) -> MongoClient[dict[str, Any]]:
    # The same client options as the services (turnout_common.mongo.connect).
    return MongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000, maxPoolSize=50, appname="bench-floor"
    )


def client() -> MongoClient[dict[str, Any]]:
    """The worker's client, created on first use (after gunicorn forked the worker)."""
    global _client
    with _lock:
        if _client is None:
            _client = connect(os.environ["MONGODB_URI"])
        return _client


def database_name() -> str:
    return os.environ.get("FLOOR_DATABASE", "bench_floor")


@app.get("/readyz")
def readyz() -> Any:
    return jsonify(status="ok")


@app.post("/checkins")
def checkin() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("badge_code"), str):
        return jsonify(error="badge_code required"), 400
    registration_id = body["badge_code"]
    now = datetime.now(UTC)
    message_id = str(uuid.uuid4())
    db = client()[database_name()]

    def write(session: ClientSession) -> bool:
        updated = db[REGISTRATIONS].update_one(
            {"_id": registration_id},
            {"$set": {"status": "checked_in", "checked_in_at": now, "checkin_client_key": body.get("client_key")}},
            session=session,
        )
        if updated.matched_count == 0:
            return False
        db[OUTBOX].insert_one(
            {
                "_id": message_id,
                "type": "checkin.recorded",
                "key": registration_id,
                "payload": json.dumps({"id": message_id, "registration_id": registration_id, "at": now.isoformat()}),
                "state": "pending",
                "created_at": now,
            },
            session=session,
        )
        return True

    with client().start_session() as session:
        found = session.with_transaction(write)
    if not found:
        return jsonify(error="unknown badge"), 404
    return jsonify(registration_id=registration_id, status="checked_in", checked_in_at=now.isoformat()), 201


def seed(uri: str, database: str, ids: Iterable[str]) -> int:
    """Drops ``database`` and inserts one registration per id; the outbox has no index
    beyond ``_id``, as the services' outboxes (they hold only pending entries, which a
    relay reads whole). Returns the count."""
    mongo = connect(uri)
    try:
        mongo.drop_database(database)
        db = mongo[database]
        db.create_collection(REGISTRATIONS)
        db.create_collection(OUTBOX)
        now = datetime.now(UTC)
        docs = [
            {
                "_id": reg_id,
                "event_id": "floor-event",
                "person_id": f"person-{reg_id}",
                "first_name": "Guest",
                "last_name": "Floor",
                "email": f"{reg_id}@example.org",
                "status": "registered",
                "registered_at": now,
                "checked_in_at": None,
            }
            for reg_id in ids
        ]
        for start in range(0, len(docs), 1000):
            db[REGISTRATIONS].insert_many(docs[start : start + 1000], ordered=False)
        return len(docs)
    finally:
        mongo.close()
