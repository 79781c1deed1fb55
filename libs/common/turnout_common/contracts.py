"""The event contracts: JSON Schemas under ``contracts/events`` checked on both sides.

Producers validate before a message enters the outbox; consumers validate on
receipt and dead-letter what does not match.

Every message is checked twice over its life (by its producer and by each
consumer), so the check is on the hot path: each schema is also compiled to
Python code with fastjsonschema, which accepts a valid message in a fraction
of the time the jsonschema interpreter takes. jsonschema stays the authority:
whatever the compiled check refuses is judged again by jsonschema (which also
names the problem), so a difference between the two can only make a check
slower, never refuse a valid message; and the contract tests run both over
every schema's valid and invalid examples to show that they agree. jsonschema
is imported and its validators built the first time a message is refused: a
worker that only ever sees valid messages does not carry it (about 5 MB).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

from turnout_common.envelope import Envelope, MalformedEnvelope

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

CHECKIN_TOPIC = "turnout.checkin"
FOLLOWUP_TOPIC = "turnout.followup"
# Each service's answer to a data request (export parts, erasure confirmations):
# followup and analytics publish here, checkin reads it.
PRIVACY_TOPIC = "turnout.privacy"


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


# The formats the contracts use, checked the way jsonschema's checker does
# (fastjsonschema knows no "uuid").
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FastCheck = Callable[[Any], Any]


def compile_fast(schema: dict[str, Any]) -> FastCheck:
    """The schema as generated Python (draft 2020-12 keywords the contracts use are draft-07's)."""
    draft07 = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(draft07, formats={"uuid": _UUID.pattern})


def _passes(check: FastCheck, document: Any) -> bool:
    try:
        check(document)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


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
        self._envelope_schema = json.loads((events / "envelope.schema.json").read_text())
        self._envelope_fast = compile_fast(self._envelope_schema)
        self._schemas: dict[tuple[str, int], dict[str, Any]] = {}
        self._data_fast: dict[tuple[str, int], FastCheck] = {}
        for name, entry in index.items():
            for version in entry["versions"]:
                schema = json.loads((events / name / f"v{version}.schema.json").read_text())
                self._schemas[(name, version)] = schema
                self._data_fast[(name, version)] = compile_fast(schema)
        self._judges: dict[tuple[str, int] | None, Draft202012Validator] = {}

    def _judge(self, key: tuple[str, int] | None) -> Draft202012Validator:
        """jsonschema's validator for an event's data (``None``: the envelope), built on first use."""
        judge = self._judges.get(key)
        if judge is None:
            from jsonschema import Draft202012Validator

            schema = self._envelope_schema if key is None else self._schemas[key]
            judge = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
            self._judges[key] = judge
        return judge

    def route(self, event_type: str) -> Route:
        try:
            return self.routes[event_type]
        except KeyError as exc:
            raise ContractViolation(f"unknown event type {event_type!r}") from exc

    def validate(self, envelope: Envelope) -> None:
        """Raise ``ContractViolation`` naming the first problem found."""
        document = envelope.to_dict()
        if not _passes(self._envelope_fast, document):
            errors = sorted(self._judge(None).iter_errors(document), key=lambda e: e.path)
            if errors:
                raise ContractViolation(f"envelope invalid: {_describe(errors[0])}")
        try:
            version = envelope.version
        except MalformedEnvelope as exc:
            raise ContractViolation(str(exc)) from exc
        fast = self._data_fast.get((envelope.type, version))
        if fast is None:
            raise ContractViolation(f"no contract for {envelope.type} v{version}")
        if _passes(fast, envelope.data):
            return
        data_errors = sorted(self._judge((envelope.type, version)).iter_errors(envelope.data), key=lambda e: e.path)
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
ALL_TOPICS_FOR_READINESS = (CHECKIN_TOPIC, FOLLOWUP_TOPIC, PRIVACY_TOPIC)
