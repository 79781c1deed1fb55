"""The event contracts: JSON Schemas under ``contracts/events`` checked on both sides.

Producers validate before a message enters the outbox; consumers validate on
receipt and dead-letter what does not match.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from turnout_common.envelope import Envelope, MalformedEnvelope

CHECKIN_TOPIC = "turnout.checkin"
FOLLOWUP_TOPIC = "turnout.followup"


class ContractViolation(ValueError):
    """A message does not match its published contract."""


def contracts_dir() -> Path:
    configured = os.environ.get("TURNOUT_CONTRACTS_DIR")
    if configured:
        return Path(configured)
    # libs/common/turnout_common/contracts.py -> repository root
    return Path(__file__).resolve().parents[3] / "contracts"


@dataclass(frozen=True, slots=True)
class Route:
    """Where messages of one type travel: the topic and the data field used as key."""

    topic: str
    key_field: str


def _describe(error: Any) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where or '(root)'}: {error.message}"


class ContractRegistry:
    """Every known event type and version, with compiled validators."""

    def __init__(self, root: Path) -> None:
        events = root / "events"
        index = json.loads((events / "index.json").read_text())
        self.routes: dict[str, Route] = {
            name: Route(topic=entry["topic"], key_field=entry["key"]) for name, entry in index.items()
        }
        self._envelope = Draft202012Validator(
            json.loads((events / "envelope.schema.json").read_text()),
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        self._data: dict[tuple[str, int], Draft202012Validator] = {}
        for name, entry in index.items():
            for version in entry["versions"]:
                schema = json.loads((events / name / f"v{version}.schema.json").read_text())
                self._data[(name, version)] = Draft202012Validator(
                    schema, format_checker=Draft202012Validator.FORMAT_CHECKER
                )

    def route(self, event_type: str) -> Route:
        try:
            return self.routes[event_type]
        except KeyError as exc:
            raise ContractViolation(f"unknown event type {event_type!r}") from exc

    def validate(self, envelope: Envelope) -> None:
        """Raise ``ContractViolation`` naming the first problem found."""
        errors = sorted(self._envelope.iter_errors(envelope.to_dict()), key=lambda e: e.path)
        if errors:
            raise ContractViolation(f"envelope invalid: {_describe(errors[0])}")
        try:
            version = envelope.version
        except MalformedEnvelope as exc:
            raise ContractViolation(str(exc)) from exc
        validator = self._data.get((envelope.type, version))
        if validator is None:
            raise ContractViolation(f"no contract for {envelope.type} v{version}")
        data_errors = sorted(validator.iter_errors(envelope.data), key=lambda e: e.path)
        if data_errors:
            raise ContractViolation(f"{envelope.type} data invalid: {_describe(data_errors[0])}")

    def parse(self, raw: bytes) -> Envelope:
        """Parse and validate the bytes of a Kafka record value."""
        try:
            envelope = Envelope.from_json(raw)
        except MalformedEnvelope as exc:
            raise ContractViolation(str(exc)) from exc
        self.validate(envelope)
        return envelope


@lru_cache(maxsize=1)
def registry() -> ContractRegistry:
    return ContractRegistry(contracts_dir())


# What readiness checks expect to exist on the broker.
ALL_TOPICS_FOR_READINESS = (CHECKIN_TOPIC, FOLLOWUP_TOPIC)
