"""Small HTTP helpers for the end-to-end tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.e2e.stack import RunningStack


def create_open_event(stack: RunningStack, title: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    answer = requests.post(
        stack.url("checkin", "/api/v1/events"),
        json={
            "title": title,
            "kind": "networking",
            "starts_at": (now - timedelta(minutes=10)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "timezone": "Europe/Berlin",
        },
        headers=stack.headers,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def register_many(stack: RunningStack, event_id: str, count: int) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    session = requests.Session()
    session.headers.update(stack.headers)

    def register(index: int) -> dict[str, Any]:
        answer = session.post(
            stack.url("checkin", f"/api/v1/events/{event_id}/registrations"),
            json={
                "first_name": f"Guest{index}",
                "last_name": "Tester",
                "email": f"guest{index}.{tag}@example.org",
                "consent_email": index % 2 == 0,
            },
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(register, range(count)))


def check_in_all(
    stack: RunningStack,
    event_id: str,
    registrations: list[dict[str, Any]],
    on_progress: Callable[[int], None] | None = None,
) -> list[int]:
    session = requests.Session()
    session.headers.update(stack.headers)
    done = 0

    def check_in(registration: dict[str, Any]) -> int:
        nonlocal done
        answer = session.post(
            stack.url("checkin", f"/api/v1/events/{event_id}/checkins"),
            json={"badge_code": registration["badge_code"], "client_key": f"k-{uuid.uuid4().hex}"},
            timeout=30,
        )
        done += 1
        if on_progress is not None:
            on_progress(done)
        return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(check_in, registrations))


def attendance(stack: RunningStack, event_id: str) -> dict[str, Any] | None:
    answer = requests.get(
        stack.url("analytics", f"/api/v1/events/{event_id}/attendance"), headers=stack.headers, timeout=10
    )
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return dict(answer.json())


def wait_for_count(stack: RunningStack, event_id: str, field: str, expected: int, timeout: float = 90) -> int:
    """Wait until analytics shows ``expected``; then make sure it stays there (no late doubles)."""
    deadline = time.monotonic() + timeout
    value = -1
    while time.monotonic() < deadline:
        figures = attendance(stack, event_id)
        value = int(figures[field]) if figures else 0
        if value >= expected:
            break
        time.sleep(0.25)
    time.sleep(2.0)
    figures = attendance(stack, event_id)
    return int(figures[field]) if figures else 0
