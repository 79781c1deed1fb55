"""Revocation across services on the launched stack: an API token revoked, a
user deactivated, a session signed out of, or a session begun before its
user's role changed, in checkin is refused by followup and analytics within
seconds (checkin's outbox -> relay -> Kafka ``access.revoked`` -> each worker's
``revoked_subjects`` -> each web app's token check). Real broker, database and
processes; nothing mocked."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.e2e.stack import RunningStack

pytestmark = pytest.mark.e2e

# What each service answers for a caller with the organizer role (manage + view).
PROBES = {
    "checkin": "/api/v1/events",
    "analytics": "/api/v1/events",
    "followup": "/api/v1/contacts?limit=1",
}
# The pipeline has a relay poll, a consumer poll and a 3 s cache in between.
WITHIN_SECONDS = 15.0


def _status(stack: RunningStack, service: str, token: str) -> requests.Response:
    return requests.get(stack.url(service, PROBES[service]), headers={"Authorization": f"Bearer {token}"}, timeout=10)


def _works_everywhere(stack: RunningStack, token: str) -> None:
    for service in PROBES:
        answer = _status(stack, service, token)
        assert answer.status_code == 200, (service, answer.text)


def _refused_everywhere(stack: RunningStack, token: str, code: str) -> dict[str, float]:
    """Wait until every service refuses ``token`` with 401 ``code``; return how long each took."""
    started = time.monotonic()
    took: dict[str, float] = {}
    while len(took) < len(PROBES):
        for service in PROBES:
            if service in took:
                continue
            answer = _status(stack, service, token)
            if answer.status_code == 401:
                assert answer.json()["error"]["code"] == code, (service, answer.text)
                took[service] = time.monotonic() - started
            else:
                assert answer.status_code == 200, (service, answer.text)
        elapsed = time.monotonic() - started
        assert elapsed < WITHIN_SECONDS, f"still accepted after {elapsed:.1f}s by {set(PROBES) - set(took)}"
        time.sleep(0.2)
    # And it stays refused.
    for service in PROBES:
        assert _status(stack, service, token).status_code == 401, service
    return took


def test_a_revoked_api_token_is_refused_by_every_service_within_seconds(running_stack: RunningStack) -> None:
    created = requests.post(
        running_stack.url("checkin", "/api/v1/api-tokens"),
        json={"name": f"CRM sync {uuid.uuid4().hex[:6]}", "role": "organizer", "expires_in_days": 7},
        headers=running_stack.headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    token, token_id = created.json()["token"], created.json()["id"]
    _works_everywhere(running_stack, token)

    revoked = requests.post(
        running_stack.url("checkin", f"/api/v1/api-tokens/{token_id}/revoke"), headers=running_stack.headers, timeout=10
    )
    assert revoked.status_code == 200, revoked.text
    took = _refused_everywhere(running_stack, token, "token_revoked")
    print(f"API token refused after {took}")
    # The organizer's own session is untouched.
    _works_everywhere(running_stack, running_stack.token)


def test_a_deactivated_users_session_is_refused_by_every_service_within_seconds(running_stack: RunningStack) -> None:
    email = f"helper-{uuid.uuid4().hex[:8]}@example.org"
    password = "a-long-enough-password"
    added = requests.post(
        running_stack.url("checkin", "/api/v1/users"),
        json={"email": email, "name": "Temporary Helper", "role": "organizer", "password": password},
        headers=running_stack.headers,
        timeout=10,
    )
    assert added.status_code == 201, added.text
    login = requests.post(
        running_stack.url("checkin", "/api/v1/auth/login"), json={"email": email, "password": password}, timeout=10
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    _works_everywhere(running_stack, token)

    deactivated = requests.post(
        running_stack.url("checkin", f"/api/v1/users/{added.json()['id']}/deactivate"),
        headers=running_stack.headers,
        timeout=10,
    )
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False, deactivated.text
    took = _refused_everywhere(running_stack, token, "user_deactivated")
    print(f"deactivated user refused after {took}")
    # The analytics dashboard (session cookie) asks them to sign in again.
    page = requests.get(running_stack.url("analytics", "/dashboard"), cookies={"turnout_session": token}, timeout=10)
    assert page.status_code == 401 and "/login?next=" in page.text
    _works_everywhere(running_stack, running_stack.token)


def test_a_session_signed_out_of_is_refused_by_every_service_within_seconds(running_stack: RunningStack) -> None:
    email = f"leaving-{uuid.uuid4().hex[:8]}@example.org"
    password = "a-long-enough-password"
    added = requests.post(
        running_stack.url("checkin", "/api/v1/users"),
        json={"email": email, "name": "Signing Out", "role": "organizer", "password": password},
        headers=running_stack.headers,
        timeout=10,
    )
    assert added.status_code == 201, added.text

    def sign_in() -> str:
        answer = requests.post(
            running_stack.url("checkin", "/api/v1/auth/login"), json={"email": email, "password": password}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    token, other_session = sign_in(), sign_in()
    _works_everywhere(running_stack, token)

    out = requests.post(
        running_stack.url("checkin", "/api/v1/auth/logout"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert out.status_code == 204, out.text
    took = _refused_everywhere(running_stack, token, "session_ended")
    print(f"signed-out session refused after {took}")
    page = requests.get(running_stack.url("analytics", "/dashboard"), cookies={"turnout_session": token}, timeout=10)
    assert page.status_code == 401 and "/login?next=" in page.text
    # Only that session ended: the same user's other session, and everyone else's, go on.
    _works_everywhere(running_stack, other_session)
    _works_everywhere(running_stack, running_stack.token)


def test_a_demoted_users_old_session_is_refused_everywhere_and_a_new_one_has_the_new_role(
    running_stack: RunningStack,
) -> None:
    email = f"demoted-{uuid.uuid4().hex[:8]}@example.org"
    password = "a-long-enough-password"
    added = requests.post(
        running_stack.url("checkin", "/api/v1/users"),
        json={"email": email, "name": "Demoted Organizer", "role": "organizer", "password": password},
        headers=running_stack.headers,
        timeout=10,
    )
    assert added.status_code == 201, added.text

    def sign_in() -> str:
        answer = requests.post(
            running_stack.url("checkin", "/api/v1/auth/login"), json={"email": email, "password": password}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    old = sign_in()
    _works_everywhere(running_stack, old)

    changed = requests.patch(
        running_stack.url("checkin", f"/api/v1/users/{added.json()['id']}"),
        json={"role": "viewer"},
        headers=running_stack.headers,
        timeout=10,
    )
    assert changed.status_code == 200 and changed.json()["role"] == "viewer", changed.text
    # Signed in again at once, before the change has reached followup and analytics.
    new = sign_in()
    took = _refused_everywhere(running_stack, old, "role_changed")
    print(f"session begun before the role change refused after {took}")
    answer = _status(running_stack, "analytics", old)
    assert answer.json()["error"]["message"] == "your role changed; sign in again"
    page = requests.get(running_stack.url("analytics", "/dashboard"), cookies={"turnout_session": old}, timeout=10)
    assert page.status_code == 401 and "/login?next=" in page.text

    # The new session, once the change has arrived everywhere: a viewer's, served where a viewer may read ...
    me = requests.get(
        running_stack.url("checkin", "/api/v1/me"), headers={"Authorization": f"Bearer {new}"}, timeout=10
    )
    assert me.status_code == 200 and me.json()["role"] == "viewer", me.text
    for service, path in (
        ("checkin", "/api/v1/events"),
        ("analytics", "/api/v1/events"),
        ("followup", "/api/v1/settings"),
    ):
        served = requests.get(running_stack.url(service, path), headers={"Authorization": f"Bearer {new}"}, timeout=10)
        assert served.status_code == 200, (service, served.text)
    # ... and refused (403, not 401) where an organizer could act and a viewer cannot.
    for service, method, path, body in (
        ("checkin", "POST", "/api/v1/events", {}),
        ("followup", "GET", "/api/v1/contacts?limit=1", None),
        ("followup", "PATCH", "/api/v1/settings", {"introductions_per_person": 3}),
    ):
        refused = requests.request(
            method,
            running_stack.url(service, path),
            json=body,
            headers={"Authorization": f"Bearer {new}"},
            timeout=10,
        )
        assert refused.status_code == 403, (service, path, refused.text)
        assert refused.json()["error"]["code"] == "forbidden", (service, path, refused.text)
    _works_everywhere(running_stack, running_stack.token)


def test_revoking_an_unknown_token_is_a_clear_404(running_stack: RunningStack) -> None:
    answer = requests.post(
        running_stack.url("checkin", "/api/v1/api-tokens/no-such-token/revoke"),
        headers=running_stack.headers,
        timeout=10,
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "token_not_found"
