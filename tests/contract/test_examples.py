"""Contract tests: event schemas under contracts/events and their example CloudEvents.

The list of event types below is the contract: adding or removing a type is a deliberate
change to this file, the schemas, the examples, contracts/events/index.json and the README.
"""

import copy
import json
import uuid
from pathlib import Path

import pytest
from cloudevents.core.formats.json import JSONFormat
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "contracts" / "events"
ENVELOPE_PATH = EVENTS / "envelope.schema.json"
INDEX_PATH = EVENTS / "index.json"

CHECKIN_TYPES = (
    "event.scheduled",
    "event.updated",
    "event.cancelled",
    "event.ended",
    "attendee.registered",
    "registration.cancelled",
    "attendee.checked_in",
    "attendee.checked_out",
    "attendee.checkin_undone",
    "attendee.welcomed",
)
# On turnout.checkin too, but about an organization's access, not a gathering:
# keyed by org_id, with the revoked subject as the envelope's subject.
ACCESS_TYPES = ("access.revoked", "retention.policy_set")
# On turnout.checkin, about one person across every gathering: keyed by person_id.
PERSON_TYPES = ("person.updated", "person.export_requested", "person.erasure_requested", "person.data_link_requested")
# On turnout.privacy: each service's answer to a data request, keyed by its request id.
PRIVACY_TYPES = ("person.data_exported", "person.erased")
FOLLOWUP_TYPES = (
    "followup.scheduled",
    "followup.sent",
    "followup.failed",
    "followup.bounced",
    "followup.opened",
    "followup.clicked",
    "feedback.submitted",
    "contact.unsubscribed",
    "introduction.accepted",
)
EVENT_TYPES = CHECKIN_TYPES + ACCESS_TYPES + PERSON_TYPES + FOLLOWUP_TYPES + PRIVACY_TYPES

SCHEMA_URN_PREFIX = "urn:turnout:schema:"

EXAMPLE_PATHS = sorted(EVENTS.glob("*/examples/*.json"))
SCHEMA_PATHS = sorted(EVENTS.glob("*/v*.schema.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _rel(path: Path) -> str:
    return str(path.relative_to(EVENTS))


def _data_schema_path(dataschema: str) -> Path:
    """urn:turnout:schema:<type>:v<N> -> contracts/events/<type>/v<N>.schema.json"""
    assert dataschema.startswith(SCHEMA_URN_PREFIX), dataschema
    type_, version = dataschema.removeprefix(SCHEMA_URN_PREFIX).rsplit(":", 1)
    return EVENTS / type_ / f"{version}.schema.json"


@pytest.fixture(scope="module")
def envelope_validator() -> Draft202012Validator:
    return _validator(_load(ENVELOPE_PATH))


def _errors(validator: Draft202012Validator, instance: object) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


# ---------------------------------------------------------------------------------------------
# Layout / completeness
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_has_schema_and_example(event_type: str) -> None:
    type_dir = EVENTS / event_type
    assert (type_dir / "v1.schema.json").is_file(), f"missing {event_type}/v1.schema.json"
    examples = sorted((type_dir / "examples").glob("*.json"))
    assert examples, f"no examples for {event_type}"


def test_no_undocumented_type_dirs() -> None:
    dirs = {p.name for p in EVENTS.iterdir() if p.is_dir()}
    assert dirs == set(EVENT_TYPES)


def test_envelope_type_enum_matches_contract() -> None:
    envelope = _load(ENVELOPE_PATH)
    assert sorted(envelope["properties"]["type"]["enum"]) == sorted(EVENT_TYPES)


def test_envelope_pins_the_dataschema_of_every_type() -> None:
    envelope = _load(ENVELOPE_PATH)
    pinned = {clause["if"]["properties"]["type"]["const"] for clause in envelope["allOf"]}
    assert pinned == set(EVENT_TYPES)


def test_index_matches_contract() -> None:
    index = _load(INDEX_PATH)
    assert sorted(index) == sorted(EVENT_TYPES)
    for event_type, entry in index.items():
        if event_type in CHECKIN_TYPES:
            assert entry["topic"] == "turnout.checkin", event_type
            assert entry["key"] == "event_id", event_type
        elif event_type in ACCESS_TYPES:
            assert entry["topic"] == "turnout.checkin", event_type
            assert entry["key"] == "org_id", event_type
        elif event_type in PERSON_TYPES:
            assert entry["topic"] == "turnout.checkin", event_type
            assert entry["key"] == "person_id", event_type
        elif event_type in PRIVACY_TYPES:
            assert entry["topic"] == "turnout.privacy", event_type
            assert entry["key"] == "request_id", event_type
        else:
            assert entry["topic"] == "turnout.followup", event_type
            assert entry["key"] == "person_id", event_type
        on_disk = sorted(
            int(p.name.removeprefix("v").removesuffix(".schema.json"))
            for p in (EVENTS / event_type).glob("v*.schema.json")
        )
        assert entry["versions"] == on_disk, event_type


# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ENVELOPE_PATH, *SCHEMA_PATHS], ids=_rel)
def test_schema_is_valid_2020_12(path: Path) -> None:
    schema = _load(path)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", SCHEMA_PATHS, ids=_rel)
def test_data_schema_conventions(path: Path) -> None:
    schema = _load(path)
    event_type = path.parent.name
    version = path.name.removesuffix(".schema.json")
    assert schema["$id"] == f"{SCHEMA_URN_PREFIX}{event_type}:{version}"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(schema["properties"])
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{event_type}.{name} has no description"


# ---------------------------------------------------------------------------------------------
# Examples: positive
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_example_validates(path: Path, envelope_validator: Draft202012Validator) -> None:
    event = _load(path)
    assert _errors(envelope_validator, event) == []
    assert event["type"] == path.parent.parent.name
    data_schema = _load(_data_schema_path(event["dataschema"]))
    assert _errors(_validator(data_schema), event["data"]) == []


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_example_dataschema_names_schema_id(path: Path) -> None:
    event = _load(path)
    assert event["dataschema"] == f"{SCHEMA_URN_PREFIX}{event['type']}:v1"
    schema_path = _data_schema_path(event["dataschema"])
    assert schema_path.is_file()
    assert _load(schema_path)["$id"] == event["dataschema"]


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_example_routing_conventions(path: Path) -> None:
    event = _load(path)
    assert uuid.UUID(event["id"]).version == 4
    assert str(uuid.UUID(event["id"])) == event["id"]
    if event["type"] in CHECKIN_TYPES:
        assert event["source"] == "/turnout/checkin"
        assert event["subject"] == event["data"]["event_id"]
    elif event["type"] == "access.revoked":
        assert event["source"] == "/turnout/checkin"
        assert event["subject"] == event["data"]["subject_id"]
    elif event["type"] in ACCESS_TYPES:
        assert event["source"] == "/turnout/checkin"
        assert event["subject"] == event["data"]["org_id"]
    elif event["type"] in PERSON_TYPES:
        assert event["source"] == "/turnout/checkin"
        assert event["subject"] == event["data"]["person_id"]
    elif event["type"] in PRIVACY_TYPES:
        assert event["source"] == f"/turnout/{event['data']['service']}"
        assert event["subject"] == event["data"]["request_id"]
    else:
        assert event["source"] == "/turnout/followup"
        assert event["subject"] == event["data"]["person_id"]


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_cloudevents_sdk_parses_example(path: Path, envelope_validator: Draft202012Validator) -> None:
    raw = path.read_bytes()
    example = json.loads(raw)
    fmt = JSONFormat()
    parsed = fmt.read(None, raw)
    assert parsed.get_specversion() == "1.0"
    assert parsed.get_id() == example["id"]
    assert parsed.get_type() == example["type"]
    assert parsed.get_source() == example["source"]
    assert parsed.get_subject() == example["subject"]
    assert parsed.get_dataschema() == example["dataschema"]
    assert parsed.get_data() == example["data"]
    # What the SDK writes back is still a valid envelope and loses nothing (time may be
    # re-rendered, e.g. +00:00 -> Z).
    rewritten = json.loads(fmt.write(parsed))
    assert _errors(envelope_validator, rewritten) == []
    rewritten.pop("time")
    expected = dict(example)
    expected.pop("time")
    assert rewritten == expected


# ---------------------------------------------------------------------------------------------
# Examples: negative
# ---------------------------------------------------------------------------------------------


def _data_validator_for(event: dict) -> Draft202012Validator:
    return _validator(_load(_data_schema_path(event["dataschema"])))


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_dollar_key_in_data_is_rejected(path: Path) -> None:
    event = _load(path)
    data = copy.deepcopy(event["data"])
    data["$where"] = "1 == 1"
    assert not _data_validator_for(event).is_valid(data)


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_missing_required_data_field_is_rejected(path: Path) -> None:
    event = _load(path)
    schema = _load(_data_schema_path(event["dataschema"]))
    data = copy.deepcopy(event["data"])
    del data[schema["required"][0]]
    assert not _validator(schema).is_valid(data)


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_naive_timestamp_in_data_is_rejected(path: Path) -> None:
    # format: date-time is only enforced when rfc3339-validator is installed; the pattern must
    # reject timestamps without a timezone on its own.
    event = _load(path)
    schema = _load(_data_schema_path(event["dataschema"]))
    validator = _validator(schema)
    ts_fields = [
        name
        for name, prop in schema["properties"].items()
        if prop.get("format") == "date-time" and isinstance(event["data"].get(name), str)
    ]
    assert ts_fields
    for name in ts_fields:
        data = copy.deepcopy(event["data"])
        data[name] = "2025-03-15T09:00:00"
        assert not validator.is_valid(data), name


def _other_type_schema(event_type: str) -> str:
    other = next(t for t in EVENT_TYPES if t != event_type)
    return f"{SCHEMA_URN_PREFIX}{other}:v1"


ENVELOPE_MUTATIONS = {
    "specversion_0_3": lambda e: e.update(specversion="0.3"),
    "missing_id": lambda e: e.pop("id"),
    "non_uuid_id": lambda e: e.update(id="evt-123"),
    "unknown_type": lambda e: e.update(type="attendee.teleported"),
    "unknown_source": lambda e: e.update(source="/turnout/admin"),
    "non_utc_time": lambda e: e.update(time="2025-03-15T09:00:00-05:00"),
    "empty_subject": lambda e: e.update(subject=""),
    "xml_content_type": lambda e: e.update(datacontenttype="application/xml"),
    "dataschema_for_other_type": lambda e: e.update(dataschema=_other_type_schema(e["type"])),
    "data_base64": lambda e: e.update(data_base64="e30="),
    "non_string_extension": lambda e: e.update(retries=3),
    "uppercase_extension": lambda e: e.update(orgId="x"),
    "data_not_object": lambda e: e.update(data="hello"),
}


@pytest.mark.parametrize("mutation", sorted(ENVELOPE_MUTATIONS))
def test_bad_envelope_is_rejected(mutation: str, envelope_validator: Draft202012Validator) -> None:
    event = _load(EXAMPLE_PATHS[0])
    assert envelope_validator.is_valid(event)
    ENVELOPE_MUTATIONS[mutation](event)
    assert not envelope_validator.is_valid(event)


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=_rel)
def test_specversion_0_3_is_rejected(path: Path, envelope_validator: Draft202012Validator) -> None:
    event = _load(path)
    event["specversion"] = "0.3"
    assert not envelope_validator.is_valid(event)
