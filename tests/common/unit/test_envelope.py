"""CloudEvents envelopes: what goes on the wire and what we refuse to read."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from turnout_common.envelope import (
    SPECVERSION,
    Envelope,
    MalformedEnvelope,
    new_envelope,
    schema_uri,
    schema_version,
)


def _envelope() -> Envelope:
    return new_envelope(
        "attendee.checked_in",
        source="/turnout/checkin",
        subject="evt-1",
        data={"event_id": "evt-1", "name": "José Ñúñez", "nested": {"a": [1, 2, None]}},
        time=datetime(2026, 5, 1, 18, 0, 0, 123456, tzinfo=UTC),
    )


def _wire() -> dict:
    return json.loads(_envelope().to_json())


def test_round_trip_keeps_every_attribute() -> None:
    original = _envelope()
    again = Envelope.from_json(original.to_json())
    assert again == original
    assert again.data["name"] == "José Ñúñez"
    assert again.version == 1


def test_round_trip_from_str_as_well_as_bytes() -> None:
    original = _envelope()
    assert Envelope.from_json(original.to_json().decode()) == original


def test_wire_form_is_structured_cloudevent() -> None:
    doc = _wire()
    assert doc["specversion"] == SPECVERSION == "1.0"
    assert doc["datacontenttype"] == "application/json"
    assert doc["dataschema"] == "urn:turnout:schema:attendee.checked_in:v1"
    assert doc["time"] == "2026-05-01T18:00:00.123Z"
    assert str(uuid.UUID(doc["id"])) == doc["id"]
    # Non-ASCII travels as UTF-8, not as \u escapes.
    assert "José".encode() in _envelope().to_json()


def test_new_envelopes_get_distinct_ids() -> None:
    assert len({_envelope().id for _ in range(50)}) == 50


def test_time_defaults_to_now_in_utc() -> None:
    env = new_envelope("event.ended", source="/turnout/checkin", subject="e", data={})
    assert env.time.endswith("Z")
    moment = datetime.fromisoformat(env.time.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 5


@pytest.mark.parametrize("raw", [b"not json", b"{", b"\xff\xfe{}", ""])
def test_non_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedEnvelope, match="not JSON"):
        Envelope.from_json(raw)


@pytest.mark.parametrize("raw", [b"[]", b"42", b'"text"', b"null"])
def test_json_that_is_not_an_object_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        Envelope.from_json(raw)


@pytest.mark.parametrize("name", ["id", "source", "type", "time", "subject", "dataschema", "data"])
def test_missing_attribute_is_named(name: str) -> None:
    doc = _wire()
    del doc[name]
    with pytest.raises(MalformedEnvelope, match=f"missing CloudEvents attributes: {name}"):
        Envelope.from_json(json.dumps(doc))


@pytest.mark.parametrize("value", ["0.3", "1", 1.0, None])
def test_wrong_specversion_is_malformed(value: object) -> None:
    doc = _wire()
    doc["specversion"] = value
    with pytest.raises(MalformedEnvelope, match="specversion"):
        Envelope.from_json(json.dumps(doc))


def test_missing_specversion_is_malformed() -> None:
    doc = _wire()
    del doc["specversion"]
    with pytest.raises(MalformedEnvelope, match="specversion"):
        Envelope.from_json(json.dumps(doc))


@pytest.mark.parametrize("data", ["hello", [1, 2], None, 3])
def test_data_must_be_an_object(data: object) -> None:
    doc = _wire()
    doc["data"] = data
    with pytest.raises(MalformedEnvelope, match="data must be a JSON object"):
        Envelope.from_json(json.dumps(doc))


@pytest.mark.parametrize("name", ["id", "type", "subject"])
@pytest.mark.parametrize("value", ["", 7, None])
def test_attributes_must_be_non_empty_strings(name: str, value: object) -> None:
    doc = _wire()
    doc[name] = value
    with pytest.raises(MalformedEnvelope, match=name):
        Envelope.from_json(json.dumps(doc))


def test_schema_uri_and_version_are_inverse() -> None:
    assert schema_uri("followup.sent", 3) == "urn:turnout:schema:followup.sent:v3"
    assert schema_version(schema_uri("followup.sent", 3)) == 3
    assert schema_version("urn:turnout:schema:event.ended:v12") == 12


@pytest.mark.parametrize(
    "dataschema",
    ["urn:turnout:schema:event.ended", "urn:turnout:schema:event.ended:vX", "urn:turnout:schema:event.ended:v", ""],
)
def test_schema_version_refuses_urns_without_a_number(dataschema: str) -> None:
    with pytest.raises(MalformedEnvelope):
        schema_version(dataschema)


def test_new_envelope_version_lands_in_dataschema() -> None:
    env = new_envelope("event.ended", source="/turnout/checkin", subject="e", data={}, version=2)
    assert env.dataschema == "urn:turnout:schema:event.ended:v2"
    assert env.version == 2
