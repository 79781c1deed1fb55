"""Tampered, expired, revoked and foreign tokens of every kind are refused, on
the launched stack over real HTTP.

- session (a user's), API token, kiosk device token: itsdangerous tokens
  signed with ``TURNOUT_SECRET_KEY``. Tampered = one character of the
  signature or of the payload changed; expired = minted with the stack's key
  but issued longer ago than the kind's age limit, or carrying an expiry in
  the past; foreign = signed with another key; revoked = user deactivated,
  API token revoked, kiosk revoked or re-paired, session after sign-out.
- badge codes (unguessable, unsigned): changed, another organization's, of a
  cancelled registration, of an event that has ended.
- follow-up email links (unsubscribe, open, click, feedback, introduction):
  ``<id>.<signature>`` per link kind. Tampered, foreign, and one kind's
  token used for another. They carry no expiry and cannot be revoked (an
  unsubscribe link must keep working, RFC 8058), so those two do not apply.
- the public registration link of an event: changed, or of a cancelled event.

Every refusal has its exact status, a JSON error from the APIs (the follow-up
links too: their errors come from the shared JSON error handler) or an error
page from the organizer and public pages, and never a 5xx.
"""

from __future__ import annotations

import string
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.security.links import PURPOSES, mint_link
from tests.security.world import PASSWORD, Org, bearer, call, login, ok
from turnout_common.auth import KIOSK_MAX_AGE, SESSION_COOKIE, SESSION_MAX_AGE, Principal, TokenSigner

pytestmark = pytest.mark.e2e

FOREIGN_SECRET = "a-key-that-is-not-the-stacks-key-at-all"
SALT = "turnout.token.v1"  # TokenSigner's
# What a user's or an API token's session reaches on each service (all need "view").
API_PROBES = {"checkin": "/api/v1/me", "followup": "/api/v1/settings", "analytics": "/api/v1/overview"}
KIOSK_PROBE = "/api/v1/kiosk/roster"
# Revocations reach followup and analytics through Kafka (relay poll, consumer poll, a 3 s cache).
REVOCATION_SECONDS = 20.0
ACCESS_CACHE_SECONDS = 3.5  # checkin's per-process AccessChecks cache (3 s), and a margin
B64 = string.ascii_letters + string.digits + "-_"


# -- forging -------------------------------------------------------------------------------------------


def _flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced (a middle base64 character: every bit counts)."""
    old = text[index]
    new = B64[(B64.index(old) + 17) % len(B64)] if old in B64 else "A"
    return text[:index] + new + text[index + 1 :]


def tamper_signature(token: str) -> str:
    head, signature = token.rsplit(".", 1)
    return f"{head}.{_flip(signature, len(signature) // 2)}"


def tamper_payload(token: str) -> str:
    compressed = token.startswith(".")
    parts = token.lstrip(".").split(".")
    parts[0] = _flip(parts[0], len(parts[0]) // 2)
    return ("." if compressed else "") + ".".join(parts)


def _payload(principal: Principal) -> dict[str, Any]:
    """What ``TokenSigner.issue`` signs."""
    payload: dict[str, Any] = {
        "k": principal.kind,
        "s": principal.subject_id,
        "o": principal.org_id,
        "r": principal.role,
        "n": principal.name,
    }
    if principal.event_id:
        payload["e"] = principal.event_id
    if principal.session_id:
        payload["p"] = principal.session_id
    if principal.expires_at is not None:
        payload["x"] = int(principal.expires_at)
    return payload


def issued_ago(secret: str, principal: Principal, seconds: int) -> str:
    """A token signed with ``secret`` whose signed issue time is ``seconds`` in the past."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - seconds

    return str(URLSafeTimedSerializer(secret, salt=SALT, signer=Backdated).dumps(_payload(principal)))


def principal_of(org: Org, token: str) -> Principal:
    return TokenSigner(org.secret).verify(token, max_age=None)


def claiming_expiry(org: Org, token: str) -> str:
    """The same principal, signed now with the stack's key, with an expiry (``x``) a minute ago."""
    principal = principal_of(org, token)
    past = int(time.time()) - 60
    return str(
        TokenSigner(org.secret).issue(
            Principal(
                principal.kind,
                principal.subject_id,
                principal.org_id,
                principal.role,
                principal.name,
                principal.event_id,
                principal.session_id,
                past,
            )
        )
    )


def foreign(org: Org, token: str) -> str:
    return str(TokenSigner(FOREIGN_SECRET).issue(principal_of(org, token)))


def forgeries(org: Org, token: str, max_age: int) -> dict[str, str]:
    return {
        "tampered signature": tamper_signature(token),
        "tampered payload": tamper_payload(token),
        "expired (issued too long ago)": issued_ago(org.secret, principal_of(org, token), max_age + 3600),
        "expired (its own expiry passed)": claiming_expiry(org, token),
        "foreign (another key)": foreign(org, token),
    }


# -- checking ------------------------------------------------------------------------------------------


def json_error(answer: requests.Response, status: int, code: str | None = None) -> None:
    where = f"{answer.request.method} {answer.url}"
    assert answer.status_code == status, (where, answer.status_code, answer.text[:300])
    assert answer.headers.get("Content-Type", "").startswith("application/json"), (where, answer.text[:300])
    error = answer.json()["error"]
    assert error["code"] and error["message"], (where, error)
    if code is not None:
        assert error["code"] == code, (where, error)


def html_page(answer: requests.Response, status: int) -> None:
    where = f"{answer.request.method} {answer.url}"
    assert answer.status_code == status, (where, answer.status_code, answer.text[:300])
    assert answer.headers.get("Content-Type", "").startswith("text/html"), (where, answer.headers)


def refused_by_apis(org: Org, token: str, code: str) -> None:
    for service, path in API_PROBES.items():
        json_error(call("GET", org.url(service, path), headers=bearer(token)), 401, code)


def refused_by_pages(org: Org, token: str) -> None:
    """A browser with this cookie is asked to sign in on every service's pages."""
    cookie = {SESSION_COOKIE: token}
    checkin = call("GET", org.url("checkin", "/events"), cookies=cookie)
    assert checkin.status_code == 302 and "/login?next=" in checkin.headers["Location"], checkin.status_code
    analytics = call("GET", org.url("analytics", "/dashboard"), cookies=cookie)
    html_page(analytics, 401)
    assert "/login?next=" in analytics.text
    followup = call("GET", org.url("followup", f"/events/{org.event_done['id']}/messages"), cookies=cookie)
    assert followup.status_code == 302 and "/login?next=" in followup.headers["Location"], followup.status_code


def accepted_everywhere(org: Org, token: str) -> None:
    for service, path in API_PROBES.items():
        answer = call("GET", org.url(service, path), headers=bearer(token))
        assert answer.status_code == 200, (service, answer.status_code, answer.text[:300])


def wait_refused(org: Org, token: str, code: str) -> None:
    """Refused with ``code`` by every service within ``REVOCATION_SECONDS`` (and accepted until then)."""
    deadline = time.monotonic() + REVOCATION_SECONDS
    pending = dict(API_PROBES)
    while pending:
        for service, path in list(pending.items()):
            answer = call("GET", org.url(service, path), headers=bearer(token))
            if answer.status_code == 401:
                json_error(answer, 401, code)
                del pending[service]
            else:
                assert answer.status_code == 200, (service, answer.status_code, answer.text[:300])
        assert time.monotonic() < deadline or not pending, f"still accepted by {sorted(pending)}"
        time.sleep(0.2)


# -- sessions and API tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["tampered signature", "tampered payload", "expired (issued too long ago)",
             "expired (its own expiry passed)", "foreign (another key)"]
)  # fmt: skip
def test_a_forged_session_is_refused_by_every_api_and_page(world: tuple[Org, Org], kind: str) -> None:
    a, _ = world
    token = a.tokens["viewer"]
    accepted_everywhere(a, token)
    forged = forgeries(a, token, SESSION_MAX_AGE)[kind]
    assert forged != token
    refused_by_apis(a, forged, "invalid_token")
    refused_by_pages(a, forged)


@pytest.mark.parametrize(
    "kind", ["tampered signature", "tampered payload", "expired (issued too long ago)",
             "expired (its own expiry passed)", "foreign (another key)"]
)  # fmt: skip
def test_a_forged_api_token_is_refused_by_every_api(world: tuple[Org, Org], kind: str) -> None:
    a, _ = world
    token = a.tokens["api"]
    forged = forgeries(a, token, 366 * 24 * 3600)[kind]
    refused_by_apis(a, forged, "invalid_token")


def test_a_deactivated_user_and_a_revoked_api_token_are_refused_by_every_service(world: tuple[Org, Org]) -> None:
    a, _ = world
    email = f"leaving-{uuid.uuid4().hex[:8]}@example.org"
    added = a.api(
        "POST", "checkin", "/api/v1/users", 201,
        json={"email": email, "name": "Leaving", "role": "organizer", "password": PASSWORD},
    )  # fmt: skip
    session = login(a, email)
    created = a.api("POST", "checkin", "/api/v1/api-tokens", 201, json={"name": "leaving", "role": "organizer"})
    api_token = created["token"]
    accepted_everywhere(a, session)
    accepted_everywhere(a, api_token)

    a.api("POST", "checkin", f"/api/v1/users/{added['id']}/deactivate", 200)
    a.api("POST", "checkin", f"/api/v1/api-tokens/{created['id']}/revoke", 200)
    wait_refused(a, session, "user_deactivated")
    wait_refused(a, api_token, "token_revoked")
    refused_by_pages(a, session)
    # Signing in again does not bring them back.
    json_error(call("POST", a.url("checkin", "/api/v1/auth/login"), json={"email": email, "password": PASSWORD}), 401)


def every_process_knows(since: float) -> None:
    """The process that ended the session refuses it at once; checkin's other web
    workers may answer from their few seconds' cache (``AccessChecks``) until it lapses."""
    time.sleep(max(0.0, since + ACCESS_CACHE_SECONDS - time.monotonic()))


def test_a_session_is_refused_after_signing_out(world: tuple[Org, Org]) -> None:
    """Signing out ends the session itself, not only the cookie: a copy of the
    token is refused by checkin (by the web worker that signed it out at once,
    by the others within their cache's seconds) and by followup and analytics as
    soon as ``access.revoked`` reaches them; the user's other sessions go on."""
    a, _ = world
    token = login(a, f"viewer-{a.tag}@example.org")
    accepted_everywhere(a, token)
    out = call(
        "POST", a.url("checkin", "/logout"), cookies={SESSION_COOKIE: token}, headers={"Origin": a.url("checkin", "")}
    )
    assert out.status_code == 303 and out.headers["Location"].endswith("/login")
    signed_out = time.monotonic()
    wait_refused(a, token, "session_ended")
    every_process_knows(signed_out)
    refused_by_pages(a, token)
    accepted_everywhere(a, a.tokens["viewer"])


def test_a_session_is_refused_after_signing_out_through_the_api(world: tuple[Org, Org]) -> None:
    a, _ = world
    token = login(a, f"organizer-{a.tag}@example.org")
    accepted_everywhere(a, token)
    out = call("POST", a.url("checkin", "/api/v1/auth/logout"), headers=bearer(token))
    assert out.status_code == 204, (out.status_code, out.text[:300])
    signed_out = time.monotonic()
    wait_refused(a, token, "session_ended")
    every_process_knows(signed_out)
    refused_by_pages(a, token)
    # Signing out again with it is refused like any other call; an API token has no session to end.
    json_error(call("POST", a.url("checkin", "/api/v1/auth/logout"), headers=bearer(token)), 401, "session_ended")
    json_error(call("POST", a.url("checkin", "/api/v1/auth/logout"), headers=bearer(a.tokens["api"])), 400)
    accepted_everywhere(a, a.tokens["organizer"])
    accepted_everywhere(a, a.tokens["api"])


# -- kiosk device tokens ----------------------------------------------------------------------------------


def pair_kiosk(org: Org, code: str) -> str:
    answer = call("POST", org.url("checkin", "/api/v1/kiosk/pair"), json={"code": code})
    return str(ok(answer, 200)["token"])


def roster(org: Org, token: str) -> requests.Response:
    return call("GET", org.url("checkin", KIOSK_PROBE), headers=bearer(token))


@pytest.mark.parametrize(
    "kind", ["tampered signature", "tampered payload", "expired (issued too long ago)",
             "expired (its own expiry passed)", "foreign (another key)"]
)  # fmt: skip
def test_a_forged_kiosk_token_is_refused(world: tuple[Org, Org], kind: str) -> None:
    a, _ = world
    token = a.tokens["kiosk"]
    assert roster(a, token).status_code == 200
    forged = forgeries(a, token, KIOSK_MAX_AGE)[kind]
    json_error(roster(a, forged), 401, "invalid_token")
    body = {"badge_code": a.now_regs[0]["badge_code"], "client_key": f"forged-{uuid.uuid4().hex}"}
    json_error(call("POST", a.url("checkin", "/api/v1/kiosk/checkins"), headers=bearer(forged), json=body), 401)


def test_a_re_paired_or_revoked_kiosks_token_is_refused(world: tuple[Org, Org]) -> None:
    a, _ = world
    kiosk = a.throwaway_kiosk()
    first = pair_kiosk(a, kiosk["pairing_code"])
    assert roster(a, first).status_code == 200
    # The code is one-time.
    json_error(call("POST", a.url("checkin", "/api/v1/kiosk/pair"), json={"code": kiosk["pairing_code"]}), 404)
    fresh = a.api("POST", "checkin", f"/api/v1/kiosks/{kiosk['id']}/pairing-code", 200)
    second = pair_kiosk(a, fresh["pairing_code"])
    json_error(roster(a, first), 401, "kiosk_revoked")
    assert roster(a, second).status_code == 200
    a.api("POST", "checkin", f"/api/v1/kiosks/{kiosk['id']}/revoke", 200)
    json_error(roster(a, second), 401, "kiosk_revoked")
    heartbeat = call("POST", a.url("checkin", "/api/v1/kiosk/heartbeat"), headers=bearer(second), json={})
    json_error(heartbeat, 401, "kiosk_revoked")
    # A revoked kiosk gets no new code either.
    answer = call("POST", a.url("checkin", f"/api/v1/kiosks/{kiosk['id']}/pairing-code"), headers=a.owner)
    json_error(answer, 404, "kiosk_not_found")


# -- badge codes -------------------------------------------------------------------------------------------


def staff_scan(org: Org, event_id: str, badge_code: str) -> requests.Response:
    body = {"badge_code": badge_code, "client_key": f"scan-{uuid.uuid4().hex}"}
    return call(
        "POST", org.url("checkin", f"/api/v1/events/{event_id}/checkins"), headers=bearer(org.tokens["door_staff"]),
        json=body,
    )  # fmt: skip


def kiosk_scan(org: Org, badge_code: str) -> requests.Response:
    body = {"badge_code": badge_code, "client_key": f"scan-{uuid.uuid4().hex}"}
    return call("POST", org.url("checkin", "/api/v1/kiosk/checkins"), headers=bearer(org.tokens["kiosk"]), json=body)


def test_bad_badges_are_refused_at_the_door(world: tuple[Org, Org]) -> None:
    a, b = world
    event_id = a.event_now["id"]
    good = a.now_regs[0]["badge_code"]
    # Tampered: one character changed.
    scans: list[Callable[[str], requests.Response]] = [
        lambda code: staff_scan(a, event_id, code),
        lambda code: kiosk_scan(a, code),
    ]
    for scan in scans:
        json_error(scan(_flip(good, len(good) // 2)), 404, "unknown_badge")
        # Foreign: another organization's badge, even one valid at its own door.
        json_error(scan(b.now_regs[0]["badge_code"]), 404, "unknown_badge")
        json_error(scan(b.in_regs[0]["badge_code"]), 404, "unknown_badge")
    # Another organization's registration by id at our own event.
    answer = call(
        "POST", a.url("checkin", f"/api/v1/events/{event_id}/checkins"), headers=bearer(a.tokens["door_staff"]),
        json={"registration_id": b.now_regs[0]["id"], "client_key": f"scan-{uuid.uuid4().hex}"},
    )  # fmt: skip
    json_error(answer, 404, "unknown_badge")
    # Revoked: the registration was cancelled.
    cancelled = a.register(event_id, "Cancelled")
    a.api("POST", "checkin", f"/api/v1/registrations/{cancelled['id']}/cancel", 200, json={})
    json_error(staff_scan(a, event_id, cancelled["badge_code"]), 409, "registration_cancelled")
    json_error(kiosk_scan(a, cancelled["badge_code"]), 409, "registration_cancelled")
    # Expired: its event's door closed days ago (an ended event still takes late arrivals until
    # its window closes, by design: follow-ups are reconsidered for them).
    past = a.api("POST", "checkin", "/api/v1/events", 201, json=past_event())
    late = a.register(past["id"], "Late")
    json_error(staff_scan(a, past["id"], late["badge_code"]), 409, "checkin_closed")
    # Not yet valid: the door of an event in three days is not open.
    future = a.throwaway_event()
    early = a.register(future, "Early")
    json_error(staff_scan(a, future, early["badge_code"]), 409, "checkin_not_open")
    # A badge of another event at this kiosk's event.
    json_error(kiosk_scan(a, late["badge_code"]), 409, "wrong_event")
    # And none of that checked anyone in.
    for event_id, reg in ((past["id"], late), (future, early), (a.event_now["id"], cancelled)):
        listed = a.api("GET", "checkin", f"/api/v1/events/{event_id}/registrations", 200)["registrations"]
        assert next(r for r in listed if r["id"] == reg["id"])["checked_in_at"] is None


def past_event() -> dict[str, Any]:
    starts = datetime.now(UTC) - timedelta(days=2)
    return {
        "title": f"Long gone {uuid.uuid4().hex[:6]}",
        "kind": "meeting",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "timezone": "Europe/Berlin",
    }


# -- follow-up email links ------------------------------------------------------------------------------

LINK_ROUTES: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    # purpose -> (method, path with {token}, query)
    "unsubscribe": [("GET", "/u/{token}", {}), ("POST", "/u/{token}", {})],
    "open": [("GET", "/o/{token}.gif", {})],
    "click": [("GET", "/c/{token}", {"u": "https://example.org/photos"})],
    "feedback": [("GET", "/f/{token}", {"rating": "5"}), ("POST", "/f/{token}", {})],
    "introduction": [("GET", "/i/{token}", {}), ("POST", "/i/{token}", {})],
}


def _link(org: Org, purpose: str, secret: str | None = None, signed_as: str | None = None) -> str:
    value = org.followup_ids[2] if purpose != "introduction" else f"{org.event_done['id'][:20]}x"
    return mint_link(
        secret or org.secret,
        signed_as or purpose,
        value,
        url="https://example.org/photos" if (signed_as or purpose) == "click" else None,
        person=org.person_id if (signed_as or purpose) == "introduction" else None,
    )


LINK_FORGERIES: dict[str, Callable[[Org, str], str]] = {
    "tampered signature": lambda org, purpose: tamper_signature(_link(org, purpose)),
    "tampered payload (another message's id)": lambda org, purpose: _flip(_link(org, purpose), 3),
    "foreign (another key)": lambda org, purpose: _link(org, purpose, secret=FOREIGN_SECRET),
    "another kind's link": lambda org, purpose: _link(
        org, purpose, signed_as="open" if purpose != "open" else "unsubscribe"
    ),
}


@pytest.mark.parametrize("purpose", PURPOSES)
def test_forged_follow_up_links_are_refused(world: tuple[Org, Org], purpose: str) -> None:
    a, _ = world
    for kind, forge in LINK_FORGERIES.items():
        token = forge(a, purpose)
        for method, path, query in LINK_ROUTES[purpose]:
            form = {"rating": "4", "comment": "forged"} if purpose == "feedback" and method == "POST" else None
            answer = call(method, a.url("followup", path.format(token=token)), params=query, data=form)
            assert answer.status_code < 500, (kind, method, path, answer.status_code)
            json_error(answer, 400, "invalid_link")
    if purpose == "click":
        # A click link signed for one destination does not redirect anywhere else.
        token = _link(a, "click")
        answer = call("GET", a.url("followup", f"/c/{token}"), params={"u": "https://evil.example/"})
        json_error(answer, 400, "invalid_link")
        assert "Location" not in answer.headers


# -- the public registration link --------------------------------------------------------------------------


def test_a_changed_or_closed_public_registration_link_is_refused(world: tuple[Org, Org]) -> None:
    a, _ = world
    changed = _flip(a.public_token, len(a.public_token) // 2)
    html_page(call("GET", a.url("checkin", f"/r/{changed}")), 404)
    form = {"first_name": "Nobody", "email": "nobody@example.org", "consent_email": "yes"}
    html_page(call("POST", a.url("checkin", f"/r/{changed}"), data=form), 404)
    # A cancelled event's link no longer registers anyone.
    event_id = a.throwaway_event()
    page = call("GET", a.url("checkin", f"/events/{event_id}"), cookies={SESSION_COOKIE: a.tokens["owner"]})
    token = ok(page, 200).split("/r/", 1)[1].split('"', 1)[0]
    html_page(call("GET", a.url("checkin", f"/r/{token}")), 200)
    a.api("POST", "checkin", f"/api/v1/events/{event_id}/cancel", 200, json={})
    html_page(call("GET", a.url("checkin", f"/r/{token}")), 410)
    html_page(call("POST", a.url("checkin", f"/r/{token}"), data=form), 410)


# -- mixing one organization's ids into another's calls, and granting more than one holds ---------------


def test_our_event_with_their_registration_is_refused(world: tuple[Org, Org]) -> None:
    """Path ids of two organizations in one call: our event, B's checked-in registration."""
    a, b = world
    theirs = b.in_regs[0]
    path = f"/api/v1/events/{a.event_now['id']}/checkins/{theirs['id']}/undo"
    json_error(call("POST", a.url("checkin", path), headers=bearer(a.tokens["door_staff"])), 404)
    body = {"registration_id": theirs["id"], "client_key": f"out-{uuid.uuid4().hex}"}
    answer = call("POST", a.url("checkin", "/api/v1/kiosk/checkouts"), headers=bearer(a.tokens["kiosk"]), json=body)
    json_error(answer, 404, "unknown_badge")
    # B's registration is still checked in, by B's own account.
    listed = b.api("GET", "checkin", f"/api/v1/events/{b.event_now['id']}/registrations", 200)["registrations"]
    assert next(r for r in listed if r["id"] == theirs["id"])["checked_in_at"] is not None


@pytest.mark.parametrize("principal", ["organizer", "api"])
def test_nobody_grants_more_than_they_hold(world: tuple[Org, Org], principal: str) -> None:
    """An organizer (or an organizer-role API token) makes no owner, user or token, and cannot deactivate one."""
    a, _ = world
    headers = bearer(a.tokens[principal])
    user = {"email": f"boss-{uuid.uuid4().hex[:8]}@example.org", "name": "Boss", "role": "owner", "password": PASSWORD}
    json_error(call("POST", a.url("checkin", "/api/v1/users"), headers=headers, json=user), 403, "forbidden_role")
    token = {"name": "boss", "role": "owner"}
    json_error(call("POST", a.url("checkin", "/api/v1/api-tokens"), headers=headers, json=token), 403, "forbidden_role")
    owner_id = principal_of(a, a.tokens["owner"]).subject_id
    path = f"/api/v1/users/{owner_id}/deactivate"
    json_error(call("POST", a.url("checkin", path), headers=headers), 403, "forbidden_role")
    accepted_everywhere(a, a.tokens["owner"])
