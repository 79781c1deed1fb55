"""CloudEvents 1.0 structured-mode JSON envelopes.

What travels on Kafka is a *message*: an ``Envelope`` whose ``type`` says what
happened and whose ``id`` is the idempotency key every consumer records.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from turnout_common.clock import to_rfc3339, utcnow

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
# The Kafka binding's structured-mode content type (CloudEvents Kafka binding 3.2).
KAFKA_STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"


class MalformedEnvelope(ValueError):
    """The bytes are not a CloudEvents structured JSON document we can read."""


def schema_uri(event_type: str, version: int) -> str:
    return f"urn:turnout:schema:{event_type}:v{version}"


def schema_version(dataschema: str) -> int:
    """The version number at the end of a ``dataschema`` URN (``...:v2`` -> 2)."""
    _, _, tail = dataschema.rpartition(":v")
    if not tail.isdigit():
        raise MalformedEnvelope(f"dataschema {dataschema!r} does not end in :v<number>")
    return int(tail)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One CloudEvent. ``data`` must already be JSON-ready (strings, not datetimes)."""

    type: str
    source: str
    subject: str
    data: dict[str, Any]
    dataschema: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: to_rfc3339(utcnow()))

    @property
    def version(self) -> int:
        return schema_version(self.dataschema)

    def to_dict(self) -> dict[str, Any]:
        return {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "subject": self.subject,
            "datacontenttype": CONTENT_TYPE,
            "dataschema": self.dataschema,
            "data": self.data,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Envelope:
        if not isinstance(doc, dict):
            raise MalformedEnvelope("a CloudEvent must be a JSON object")
        if doc.get("specversion") != SPECVERSION:
            raise MalformedEnvelope(f"specversion must be {SPECVERSION!r}")
        missing = [
            name for name in ("id", "source", "type", "time", "subject", "dataschema", "data") if name not in doc
        ]
        if missing:
            raise MalformedEnvelope(f"missing CloudEvents attributes: {', '.join(missing)}")
        if not isinstance(doc["data"], dict):
            raise MalformedEnvelope("data must be a JSON object")
        for name in ("id", "source", "type", "time", "subject", "dataschema"):
            if not isinstance(doc[name], str) or not doc[name]:
                raise MalformedEnvelope(f"{name} must be a non-empty string")
        return cls(
            type=doc["type"],
            source=doc["source"],
            subject=doc["subject"],
            data=doc["data"],
            dataschema=doc["dataschema"],
            id=doc["id"],
            time=doc["time"],
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedEnvelope(f"not JSON: {exc}") from exc
        return cls.from_dict(doc)


def new_envelope(
    event_type: str,
    *,
    source: str,
    subject: str,
    data: dict[str, Any],
    version: int = 1,
    time: datetime | None = None,
) -> Envelope:
    """Build a new message with a fresh UUID id."""
    return Envelope(
        type=event_type,
        source=source,
        subject=subject,
        data=data,
        dataschema=schema_uri(event_type, version),
        time=to_rfc3339(time or utcnow()),
    )
