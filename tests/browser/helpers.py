"""HTTP helpers for the kiosk browser tests (organizer side, over the real API)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.e2e.stack import RunningStack

STAFF_PIN = "2468"


def create_event(stack: RunningStack, title: str, kind: str = "networking") -> dict[str, Any]:
    now = datetime.now(UTC)
    answer = requests.post(
        stack.url("checkin", "/api/v1/events"),
        json={
            "title": title,
            "kind": kind,
            "starts_at": (now - timedelta(minutes=10)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "timezone": "Europe/Berlin",
            "venue": "Community Hall, Room 2",
        },
        headers=stack.headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def register(stack: RunningStack, event_id: str, first_name: str, last_name: str = "") -> dict[str, Any]:
    email = f"{uuid.uuid4().hex[:10]}@example.org"
    answer = requests.post(
        stack.url("checkin", f"/api/v1/events/{event_id}/registrations"),
        json={"first_name": first_name, "last_name": last_name, "email": email, "consent_email": False},
        headers=stack.headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return {**answer.json(), "email": email}


def create_kiosk(stack: RunningStack, event_id: str, name: str = "Front door") -> dict[str, Any]:
    answer = requests.post(
        stack.url("checkin", f"/api/v1/events/{event_id}/kiosks"),
        json={"name": name, "staff_pin": STAFF_PIN},
        headers=stack.headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    kiosk = dict(answer.json())
    assert len(kiosk["pairing_code"]) == 8, kiosk
    return kiosk


def get_event(stack: RunningStack, event_id: str) -> dict[str, Any]:
    answer = requests.get(stack.url("checkin", f"/api/v1/events/{event_id}"), headers=stack.headers, timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def registrations(stack: RunningStack, event_id: str) -> dict[str, dict[str, Any]]:
    answer = requests.get(
        stack.url("checkin", f"/api/v1/events/{event_id}/registrations"), headers=stack.headers, timeout=10
    )
    answer.raise_for_status()
    return {reg["id"]: reg for reg in answer.json()["registrations"]}


def kiosks(stack: RunningStack, event_id: str) -> dict[str, dict[str, Any]]:
    answer = requests.get(stack.url("checkin", f"/api/v1/events/{event_id}/kiosks"), headers=stack.headers, timeout=10)
    answer.raise_for_status()
    return {kiosk["id"]: kiosk for kiosk in answer.json()["kiosks"]}


def wait_for_checked_in(stack: RunningStack, event_id: str, expected: int, timeout: float = 30) -> int:
    """Wait until the event shows ``expected`` check-ins; then make sure it stays there (no late doubles)."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = int(get_event(stack, event_id)["checked_in_count"])
        if count >= expected:
            break
        time.sleep(0.25)
    time.sleep(1.5)
    return int(get_event(stack, event_id)["checked_in_count"])
