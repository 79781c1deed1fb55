"""The contract registry: what a producer may publish and where it travels."""

import dataclasses
import json
from typing import Any

import pytest

from turnout_common.contracts import CHECKIN_TOPIC, FOLLOWUP_TOPIC, ContractViolation, registry
from turnout_common.envelope import Envelope, new_envelope


def _checked_in_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "org_id": "65f1a2b3c4d5e6f708192a3b",
        "event_id": "6601c0ffee12ab34cd56ef78",
        "registration_id": "6603aa11bb22cc33dd44ee55",
        "person_id": "66020a1b2c3d4e5f60718293",
        "kiosk_id": None,
        "method": "qr",
        "scanned_at": "2026-03-15T13:52:36.910Z",
        "received_at": "2026-03-15T13:52:37.204Z",
        "first_time_ever": True,
        "event_kind": "volunteer_shift",
        "event_starts_at": "2026-03-15T14:00:00.000Z",
        "override": False,
        "visit_number": 1,
    }
    data.update(changes)
    return data


def _checked_in(data: dict[str, Any] | None = None, **kwargs: Any) -> Envelope:
    data = _checked_in_data() if data is None else data
    return new_envelope(
        "attendee.checked_in", source="/turnout/checkin", subject=data.get("event_id", "x"), data=data, **kwargs
    )


def test_a_correct_checked_in_envelope_validates() -> None:
    registry().validate(_checked_in())


def test_parse_returns_the_validated_envelope() -> None:
    envelope = _checked_in()
    assert registry().parse(envelope.to_json()) == envelope


@pytest.mark.parametrize("field", ["person_id", "received_at", "first_time_ever", "event_kind"])
def test_missing_required_data_field_is_named(field: str) -> None:
    data = _checked_in_data()
    del data[field]
    with pytest.raises(ContractViolation, match=field):
        registry().validate(_checked_in(data))


def test_wrong_data_type_names_the_field() -> None:
    with pytest.raises(ContractViolation, match="visit_number"):
        registry().validate(_checked_in(_checked_in_data(visit_number="1")))
    with pytest.raises(ContractViolation, match="method"):
        registry().validate(_checked_in(_checked_in_data(method="telepathy")))


def test_timestamp_without_zone_is_refused() -> None:
    with pytest.raises(ContractViolation, match="scanned_at"):
        registry().validate(_checked_in(_checked_in_data(scanned_at="2026-03-15T13:52:36")))


def test_unknown_type_is_refused() -> None:
    envelope = dataclasses.replace(_checked_in(), type="attendee.teleported")
    with pytest.raises(ContractViolation, match="type"):
        registry().validate(envelope)


def test_unknown_version_is_refused() -> None:
    envelope = _checked_in(version=9)
    assert envelope.dataschema.endswith(":v9")
    with pytest.raises(ContractViolation, match=r"no contract for attendee\.checked_in v9"):
        registry().validate(envelope)


def test_dataschema_of_another_type_is_refused() -> None:
    envelope = dataclasses.replace(_checked_in(), dataschema="urn:turnout:schema:event.ended:v1")
    with pytest.raises(ContractViolation, match="dataschema"):
        registry().validate(envelope)


def test_operator_key_in_data_is_refused() -> None:
    with pytest.raises(ContractViolation, match=r"\$where"):
        registry().validate(_checked_in(_checked_in_data(**{"$where": "1 == 1"})))


def test_unknown_source_is_refused() -> None:
    envelope = dataclasses.replace(_checked_in(), source="/somebody/else")
    with pytest.raises(ContractViolation, match="source"):
        registry().validate(envelope)


def test_non_uuid_id_is_refused() -> None:
    envelope = dataclasses.replace(_checked_in(), id="evt-123")
    with pytest.raises(ContractViolation, match="id"):
        registry().validate(envelope)


@pytest.mark.parametrize("raw", [b"{nope", b"[]", json.dumps({"specversion": "0.3"}).encode()])
def test_parse_turns_malformed_bytes_into_contract_violation(raw: bytes) -> None:
    with pytest.raises(ContractViolation):
        registry().parse(raw)


@pytest.mark.parametrize(
    "event_type",
    [
        "event.scheduled",
        "event.updated",
        "event.cancelled",
        "event.ended",
        "attendee.registered",
        "registration.cancelled",
        "attendee.checked_in",
        "attendee.checked_out",
    ],
)
def test_checkin_types_travel_on_checkin_topic_keyed_by_event(event_type: str) -> None:
    route = registry().route(event_type)
    assert (route.topic, route.key_field) == (CHECKIN_TOPIC, "event_id") == ("turnout.checkin", "event_id")


@pytest.mark.parametrize("event_type", ["followup.scheduled", "followup.sent", "followup.bounced", "followup.clicked"])
def test_followup_types_travel_on_followup_topic_keyed_by_person(event_type: str) -> None:
    route = registry().route(event_type)
    assert (route.topic, route.key_field) == (FOLLOWUP_TOPIC, "person_id") == ("turnout.followup", "person_id")


def test_route_of_unknown_type_is_a_contract_violation() -> None:
    with pytest.raises(ContractViolation, match=r"attendee\.teleported"):
        registry().route("attendee.teleported")
