"""The compiled contract check agrees with jsonschema.

``turnout_common.contracts`` accepts a message when the fastjsonschema-compiled
check passes, and asks jsonschema only when it does not. That is safe only if
the compiled check never accepts what jsonschema refuses. Here both judge every
example and, for every schema, a few hundred broken variants of its examples
(each property missing, of the wrong type, too long, off its pattern or enum,
an unknown property added).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from turnout_common.contracts import FastCheck, compile_fast, registry
from turnout_common.envelope import Envelope

EVENTS = Path(__file__).resolve().parents[2] / "contracts" / "events"
EXAMPLES = sorted(EVENTS.glob("*/examples/*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _accepts(check: FastCheck, document: Any) -> bool:
    try:
        check(document)
    except Exception:  # noqa: BLE001 - fastjsonschema's JsonSchemaException
        return False
    return True


def _variants(document: dict[str, Any], schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Broken copies of ``document`` (and a few that stay valid), one change each."""
    properties: dict[str, Any] = schema.get("properties", {})
    for name, rule in properties.items():
        if name in document:
            broken = copy.deepcopy(document)
            del broken[name]
            yield f"without {name}", broken
        for label, value in (
            ("a number", 12345),
            ("a string", "text"),
            ("null", None),
            ("a list", ["x"]),
            ("an object", {"x": 1}),
            ("true", True),
            ("a float", 1.5),
            ("empty", ""),
            ("too long", "x" * (int(rule.get("maxLength", 64)) + 1)),
            ("a bad date", "2026-13-45T99:99:99Z"),
            ("not a uuid", "not-a-uuid-at-all"),
            ("negative", -1),
            ("huge", 10**12),
        ):
            changed = copy.deepcopy(document)
            changed[name] = value
            yield f"{name} as {label}", changed
        for enum_value in rule.get("enum", [])[:1]:
            changed = copy.deepcopy(document)
            changed[name] = f"{enum_value}-not-listed"
            yield f"{name} off its enum", changed
    extra = copy.deepcopy(document)
    extra["an_unknown_property"] = "x"
    yield "an unknown property", extra


def _schema_of(example: dict[str, Any]) -> Path:
    type_, version = example["dataschema"].removeprefix("urn:turnout:schema:").rsplit(":", 1)
    return EVENTS / type_ / f"{version}.schema.json"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(EVENTS)))
def test_the_compiled_check_accepts_every_example_and_refuses_whatever_jsonschema_refuses(path: Path) -> None:
    example = _load(path)
    schema = _load(_schema_of(example))
    envelope_schema = _load(EVENTS / "envelope.schema.json")
    slow, fast = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER), compile_fast(schema)
    # The fast path is only worth having if valid messages take it.
    assert _accepts(fast, example["data"])
    assert _accepts(compile_fast(envelope_schema), example)
    disagreements = []
    cases = 0
    for label, variant in _variants(example["data"], schema):
        cases += 1
        if not slow.is_valid(variant) and _accepts(fast, variant):
            disagreements.append(label)
    envelope_slow = Draft202012Validator(envelope_schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    envelope_fast = compile_fast(envelope_schema)
    for label, variant in _variants(example, envelope_schema):
        cases += 1
        if not envelope_slow.is_valid(variant) and _accepts(envelope_fast, variant):
            disagreements.append(f"envelope {label}")
    assert cases > 20
    assert disagreements == []


def test_the_registry_still_names_the_problem_of_a_broken_message() -> None:
    example = _load(
        EVENTS
        / "attendee.checked_in"
        / "examples"
        / sorted(p.name for p in (EVENTS / "attendee.checked_in" / "examples").glob("*.json"))[0]
    )
    example["data"].pop(next(iter(example["data"])))
    with pytest.raises(ValueError, match=r"attendee\.checked_in data invalid"):
        registry().validate(Envelope.from_dict(example))
