"""Producer and consumer sides of the event contracts.

Producer: every message checkin builds from its stored documents passes the
registry and is readable by the official CloudEvents SDK. Consumer: the
analytics projection accepts every published example.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cloudevents.core.formats.json import JSONFormat

from analytics.domain.projections import BatchChanges, fold_batch
from checkin.service_layer.messages import (
    SOURCE,
    access_revoked_message,
    checked_in_message,
    event_message,
    registered_message,
)
from turnout_common.contracts import registry
from turnout_common.envelope import Envelope

EVENTS_DIR = Path(__file__).resolve().parents[2] / "contracts" / "events"
EXAMPLES = sorted(EVENTS_DIR.glob("*/examples/*.json"))

STARTS = datetime(2026, 3, 15, 14, 0, tzinfo=UTC)


def _event(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "6601c0ffee12ab34cd56ef78",
        "org_id": "65f1a2b3c4d5e6f708192a3b",
        "title": "Saturday Pantry Shift",
        "kind": "volunteer_shift",
        "starts_at": STARTS,
        "ends_at": STARTS + timedelta(hours=3),
        "timezone": "America/Chicago",
        "venue": "Warehouse, 12 Dock St",
        "capacity": 30,
        "description": None,
        "checkin_opens_at": STARTS - timedelta(hours=1),
        "checkin_closes_at": STARTS + timedelta(hours=4),
        "status": "scheduled",
        "registered_count": 12,
        "checked_in_count": 0,
        "created_at": STARTS - timedelta(days=7),
    }
    doc.update(changes)
    return doc


def _person(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "66020a1b2c3d4e5f60718293",
        "org_id": "65f1a2b3c4d5e6f708192a3b",
        "email_norm": "jose.nunez@example.org",
        "email": "José.Nunez@example.org",
        "first_name": "José",
        "last_name": "Núñez",
        "name_folded": "jose nunez",
        "visits": 0,
    }
    doc.update(changes)
    return doc


def _registration(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "6603aa11bb22cc33dd44ee55",
        "org_id": "65f1a2b3c4d5e6f708192a3b",
        "event_id": "6601c0ffee12ab34cd56ef78",
        "person_id": "66020a1b2c3d4e5f60718293",
        "first_name": "José",
        "last_name": "Núñez",
        "status": "registered",
        "badge_code": "q2V5mK7h1XbWd0RZc3aT4g",
        "consent_email": True,
        "offers": ["forklift", "spanish"],
        "seeks": [],
        "source": "api",
        "registered_at": STARTS - timedelta(days=2, microseconds=-250_000),
        "checkin": None,
    }
    doc.update(changes)
    return doc


def _checkin(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "method": "qr",
        "kiosk_id": "kiosk-warehouse-door",
        "scanned_at": STARTS - timedelta(minutes=7, seconds=23),
        "received_at": STARTS - timedelta(minutes=7, seconds=22),
        "override": False,
        "actor_id": "u1",
    }
    doc.update(changes)
    return doc


PRODUCED: dict[str, Any] = {
    "event.scheduled": lambda: event_message("event.scheduled", _event()),
    "event.scheduled-minimal": lambda: event_message(
        "event.scheduled", _event(kind="meeting", venue=None, capacity=None, description="Board")
    ),
    "event.updated": lambda: event_message("event.updated", _event(capacity=45, description="Bring gloves")),
    "event.cancelled": lambda: event_message(
        "event.cancelled", _event(status="cancelled", cancelled_at=STARTS - timedelta(days=1), cancel_reason="Snow")
    ),
    "event.cancelled-no-reason": lambda: event_message(
        "event.cancelled", _event(status="cancelled", cancelled_at=STARTS - timedelta(days=1))
    ),
    "event.ended-by-schedule": lambda: event_message(
        "event.ended", _event(status="ended", ended_at=STARTS + timedelta(hours=3), ended_by="schedule")
    ),
    "event.ended-by-organizer": lambda: event_message(
        "event.ended",
        _event(status="ended", capacity=None, ended_at=STARTS + timedelta(hours=2), ended_by="organizer"),
    ),
    "attendee.registered": lambda: registered_message(_registration(), _person(), _event()),
    "attendee.registered-waitlisted-walk-in": lambda: registered_message(
        _registration(status="waitlisted", source="walk-in", consent_email=False, offers=[], last_name=""),
        _person(last_name=""),
        _event(kind="networking"),
    ),
    "attendee.checked_in": lambda: checked_in_message(
        _registration(checkin=_checkin()), _event(), first_time_ever=True, visit_number=1, override=False
    ),
    "attendee.checked_in-staff-override": lambda: checked_in_message(
        _registration(checkin=_checkin(method="staff", kiosk_id=None)),
        _event(kind="workshop"),
        first_time_ever=False,
        visit_number=7,
        override=True,
    ),
}


@pytest.fixture(params=sorted(PRODUCED), name="produced")
def _produced(request: pytest.FixtureRequest) -> tuple[str, Envelope]:
    return request.param, PRODUCED[request.param]()


def test_produced_message_passes_the_registry(produced: tuple[str, Envelope]) -> None:
    case, envelope = produced
    assert envelope.type == case.split("-")[0]
    assert envelope.source == SOURCE == "/turnout/checkin"
    assert envelope.subject == envelope.data["event_id"] == "6601c0ffee12ab34cd56ef78"
    registry().validate(envelope)
    # The relay key comes from the routed field.
    route = registry().route(envelope.type)
    assert route.topic == "turnout.checkin"
    assert envelope.data[route.key_field] == envelope.subject


def test_produced_message_round_trips_through_our_parser(produced: tuple[str, Envelope]) -> None:
    _, envelope = produced
    assert registry().parse(envelope.to_json()) == envelope


def test_cloudevents_sdk_reads_produced_message(produced: tuple[str, Envelope]) -> None:
    _, envelope = produced
    raw = envelope.to_json()
    parsed = JSONFormat().read(None, raw)
    assert parsed.get_specversion() == "1.0"
    assert parsed.get_id() == envelope.id
    assert parsed.get_type() == envelope.type
    assert parsed.get_source() == envelope.source
    assert parsed.get_subject() == envelope.subject
    assert parsed.get_dataschema() == envelope.dataschema
    assert parsed.get_data() == envelope.data
    # Timestamps are RFC 3339 UTC with a Z, which the SDK reads as an aware datetime.
    assert parsed.get_time() == datetime.fromisoformat(envelope.time.replace("Z", "+00:00"))


def test_timestamps_in_data_are_utc_strings(produced: tuple[str, Envelope]) -> None:
    _, envelope = produced
    for name, value in envelope.data.items():
        if name.endswith("_at"):
            assert isinstance(value, str) and value.endswith("Z"), (name, value)


def test_non_utc_datetimes_are_published_in_utc() -> None:
    from zoneinfo import ZoneInfo

    chicago = ZoneInfo("America/Chicago")
    envelope = event_message(
        "event.scheduled",
        _event(starts_at=STARTS.astimezone(chicago), ends_at=(STARTS + timedelta(hours=3)).astimezone(chicago)),
    )
    registry().validate(envelope)
    assert envelope.data["starts_at"] == "2026-03-15T14:00:00.000Z"
    assert envelope.data["ends_at"] == "2026-03-15T17:00:00.000Z"


def test_checked_in_carries_the_visit_facts() -> None:
    envelope = PRODUCED["attendee.checked_in-staff-override"]()
    data = envelope.data
    assert (data["first_time_ever"], data["visit_number"], data["override"]) == (False, 7, True)
    assert data["method"] == "staff"
    assert data["kiosk_id"] is None
    assert data["event_kind"] == "workshop"
    assert data["event_starts_at"] == "2026-03-15T14:00:00.000Z"


def test_registered_message_carries_the_person_not_the_typed_registration() -> None:
    data = PRODUCED["attendee.registered"]().data
    assert data["email"] == "José.Nunez@example.org"
    assert (data["first_name"], data["last_name"]) == ("José", "Núñez")
    assert data["offers"] == ["forklift", "spanish"]
    assert data["registered_at"] == "2026-03-13T14:00:00.250Z"


ACCESS_PRODUCED: dict[str, Any] = {
    "user": lambda: access_revoked_message(
        "65f1a2b3c4d5e6f708192a3b", "6604d1e2f3a4b5c6d7e8f901", "user", "user_deactivated", STARTS
    ),
    "api": lambda: access_revoked_message(
        "65f1a2b3c4d5e6f708192a3b",
        "api:Vq3xK9mZ2pLt7RwA",
        "api",
        "api_token_revoked",
        STARTS.astimezone(ZoneInfo("America/Chicago")),
    ),
    "session": lambda: access_revoked_message(
        "65f1a2b3c4d5e6f708192a3b",
        "session:hT4kq9Z2xWm7PbRc",
        "session",
        "signed_out",
        STARTS,
        STARTS + timedelta(hours=12),
    ),
}


@pytest.mark.parametrize("case", sorted(ACCESS_PRODUCED))
def test_access_revoked_is_keyed_by_organization_and_names_the_subject(case: str) -> None:
    envelope = ACCESS_PRODUCED[case]()
    registry().validate(envelope)
    assert registry().parse(envelope.to_json()) == envelope
    assert envelope.source == SOURCE
    assert envelope.subject == envelope.data["subject_id"]
    assert envelope.data["subject_kind"] == case
    assert envelope.data["revoked_at"] == "2026-03-15T14:00:00.000Z"
    route = registry().route(envelope.type)
    assert (route.topic, route.key_field) == ("turnout.checkin", "org_id")
    # The relay keys the record by the organization (a plain string, never empty).
    assert str(envelope.data[route.key_field]) == "65f1a2b3c4d5e6f708192a3b"
    assert JSONFormat().read(None, envelope.to_json()).get_subject() == envelope.data["subject_id"]
    # Only a session's record expires (with the session); the others are kept.
    assert envelope.data.get("expires_at") == ("2026-03-16T02:00:00.000Z" if case == "session" else None)
    # No projection reads it: analytics' fold ignores it.
    assert _fold(envelope).is_empty()


def test_every_produced_type_has_a_published_example() -> None:
    produced_types = {PRODUCED[case]().type for case in PRODUCED} | {make().type for make in ACCESS_PRODUCED.values()}
    example_types = {path.parent.parent.name for path in EXAMPLES}
    assert produced_types <= example_types


# -- followup's answers to a data request (turnout.privacy) ----------------------------------------


def _followup_answer(case: str) -> Envelope:
    from followup.service_layer.messages import person_data_exported, person_erased

    org, request = "65f1a2b3c4d5e6f708192a3b", "66b1c2d3e4f5a6b7c8d9e0f1"
    if case == "person.data_exported":
        return person_data_exported(org, request, 1, 2, '"messages":[]}', STARTS)
    return person_erased(org, request, STARTS, {"contacts": 1, "messages": 4, "attendance": 2})


@pytest.mark.parametrize("case", ["person.data_exported", "person.erased"])
def test_followup_answers_a_data_request_on_the_privacy_topic(case: str) -> None:
    envelope = _followup_answer(case)
    registry().validate(envelope)
    assert registry().parse(envelope.to_json()) == envelope
    assert (envelope.type, envelope.source, envelope.data["service"]) == (case, "/turnout/followup", "followup")
    route = registry().route(envelope.type)
    assert (route.topic, route.key_field) == ("turnout.privacy", "request_id")
    assert envelope.subject == envelope.data["request_id"] == "66b1c2d3e4f5a6b7c8d9e0f1"
    assert JSONFormat().read(None, envelope.to_json()).get_subject() == envelope.subject
    assert _followup_answer(case).id == envelope.id  # the same answer made again is the same message


# -- consumer side -------------------------------------------------------------------------------


def _fold(envelope: Envelope) -> BatchChanges:
    return fold_batch([envelope], {}, {}, {})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(EVENTS_DIR)))
def test_analytics_projection_accepts_every_example(path: Path) -> None:
    envelope = Envelope.from_json(path.read_bytes())
    changes = _fold(envelope)  # must not raise
    if registry().route(envelope.type).key_field == "event_id":
        # Every gathering message touches that gathering's figures.
        assert envelope.data["event_id"] in changes.events, envelope.type


@pytest.mark.parametrize("case", sorted(PRODUCED))
def test_analytics_projection_accepts_what_checkin_produces(case: str) -> None:
    envelope = PRODUCED[case]()
    changes = _fold(envelope)
    assert envelope.data["event_id"] in changes.events
