"""Two organizations on the launched stack, each with every kind of principal
and the data that flows from them through Kafka into followup and analytics.

Everything is made through the public interfaces: checkin's ``create-org``
command (the owner), its HTTP API (users, an API token, events,
registrations, check-ins, a paired kiosk, an import), and the pages (the
event's public registration link). Followup and analytics learn the rest
from Kafka; ``build_world`` waits until both have it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.e2e.stack import RunningStack
from turnout_common.auth import SESSION_COOKIE
from turnout_common.config import DEV_SECRET_KEY

PASSWORD = "security-matrix-password"
# The principals, in the order of every row of the matrix.
PRINCIPALS = ("owner", "organizer", "door_staff", "viewer", "kiosk", "api", "anonymous")
USER_ROLES = ("organizer", "door_staff", "viewer")
# The API token is an integration's: the organizer role (manage, check in, view).
API_TOKEN_ROLE = "organizer"
TIMEOUT = 30

_local = threading.local()


def session() -> requests.Session:
    """One HTTP session (keep-alive) per thread; it never keeps cookies between calls."""
    found: requests.Session | None = getattr(_local, "session", None)
    if found is None:
        found = requests.Session()
        _local.session = found
    return found


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    http = session()
    kwargs.setdefault("timeout", TIMEOUT)
    kwargs.setdefault("allow_redirects", False)
    try:
        return http.request(method, url, **kwargs)
    finally:
        http.cookies.clear()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(answer: requests.Response, *statuses: int) -> Any:
    expected = statuses or (200, 201)
    assert answer.status_code in expected, (answer.request.method, answer.url, answer.status_code, answer.text[:500])
    if answer.headers.get("Content-Type", "").startswith("application/json"):
        return answer.json()
    return answer.text


@dataclass
class Org:
    """One organization and what the matrix needs of it (ids, tokens, markers)."""

    label: str  # "A" or "B"
    stack: RunningStack
    tag: str
    secret: str = ""  # the stack's TURNOUT_SECRET_KEY (to sign links as followup does)
    name: str = ""
    owner_email: str = ""
    tokens: dict[str, str] = field(default_factory=dict)  # principal -> token
    user_ids: dict[str, str] = field(default_factory=dict)  # role -> user id
    api_token_id: str = ""
    kiosk_id: str = ""
    spare_kiosk_id: str = ""
    event_now: dict[str, Any] = field(default_factory=dict)  # open: kiosks, check-ins
    event_done: dict[str, Any] = field(default_factory=dict)  # ended: follow-ups, reports
    public_token: str = ""  # the now-event's public registration link
    series_id: str = ""  # a weekly series of two future occurrences
    done_regs: list[dict[str, Any]] = field(default_factory=list)
    now_regs: list[dict[str, Any]] = field(default_factory=list)  # not checked in: one per check-in cell
    in_regs: list[dict[str, Any]] = field(default_factory=list)  # checked in: one per undo / check-out cell
    import_id: str = ""
    followup_ids: list[str] = field(default_factory=list)
    person_id: str = ""  # an attendee of the ended event (analytics, preview)
    surname: str = ""  # every person of this org has it (kiosk search, leak checks)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, service: str, path: str) -> str:
        return self.stack.url(service, path)

    @property
    def owner(self) -> dict[str, str]:
        return bearer(self.tokens["owner"])

    def api(self, method: str, service: str, path: str, *statuses: int, **kwargs: Any) -> Any:
        """A call as this org's owner that must succeed."""
        headers = {**self.owner, **kwargs.pop("headers", {})}
        return ok(call(method, self.url(service, path), headers=headers, **kwargs), *statuses)

    def take(self, pool: list[dict[str, Any]]) -> dict[str, Any]:
        with self._pool_lock:
            assert pool, f"org {self.label}: a registration pool ran dry (add more in build_world)"
            return pool.pop()

    def markers(self) -> set[str]:
        """Strings that only this organization's data contains (never another's answer)."""
        found = {self.name, self.surname, self.event_now["id"], self.event_done["id"], self.person_id, self.kiosk_id}
        found |= {self.event_now["title"], self.event_done["title"]}
        for reg in self.done_regs + self.now_regs + self.in_regs:
            found |= {reg["id"], reg["badge_code"], reg["person_id"]}
        found |= set(self.followup_ids)
        found.add(self.series_id)
        return {marker for marker in found if marker}

    # -- throwaway resources for calls that destroy or use up what they touch --------------------

    def throwaway_event(self) -> str:
        now = datetime.now(UTC)
        event = self.api(
            "POST",
            "checkin",
            "/api/v1/events",
            json={
                "title": f"Throwaway {uuid.uuid4().hex[:6]}",
                "kind": "meeting",
                "starts_at": (now + timedelta(days=3)).isoformat(),
                "ends_at": (now + timedelta(days=3, hours=2)).isoformat(),
                "timezone": "Europe/Berlin",
            },
        )
        return str(event["id"])

    def throwaway_kiosk(self) -> dict[str, Any]:
        path = f"/api/v1/events/{self.event_now['id']}/kiosks"
        return dict(
            self.api("POST", "checkin", path, json={"name": f"Spare {uuid.uuid4().hex[:4]}", "staff_pin": "2468"})
        )

    def throwaway_user(self) -> str:
        body = {
            "email": f"gone-{uuid.uuid4().hex[:8]}@example.org",
            "name": "Gone",
            "role": "viewer",
            "password": PASSWORD,
        }
        return str(self.api("POST", "checkin", "/api/v1/users", json=body)["id"])

    def throwaway_api_token(self) -> str:
        body = {"name": f"gone {uuid.uuid4().hex[:6]}", "role": "viewer", "expires_in_days": 1}
        return str(self.api("POST", "checkin", "/api/v1/api-tokens", json=body)["id"])

    def throwaway_registration(self) -> str:
        return str(self.register(self.event_now["id"], "Throwaway")["id"])

    def throwaway_suppression(self) -> str:
        address = f"blocked-{uuid.uuid4().hex[:8]}@example.org"
        self.api("POST", "followup", "/api/v1/suppressions", 201, json={"email": address})
        return address

    def register(self, event_id: str, first: str, consent: bool = True) -> dict[str, Any]:
        body = {
            "first_name": first,
            "last_name": self.surname,
            "email": f"{first.lower()}.{uuid.uuid4().hex[:8]}@example.org",
            "consent_email": consent,
            "offers": ["grant writing"],
            "seeks": ["mentoring"],
        }
        return dict(self.api("POST", "checkin", f"/api/v1/events/{event_id}/registrations", json=body))

    def check_in(self, event_id: str, reg: dict[str, Any]) -> None:
        body = {"badge_code": reg["badge_code"], "client_key": f"setup-{uuid.uuid4().hex}"}
        self.api("POST", "checkin", f"/api/v1/events/{event_id}/checkins", 201, json=body)


def stack_secret(stack: RunningStack) -> str:
    """The key every service of the stack signs with (the development key unless one is set)."""
    env = {**os.environ, **stack.stack.service_env("checkin")}
    return str(env.get("TURNOUT_SECRET_KEY") or DEV_SECRET_KEY)


def _create_org(stack: RunningStack, org: Org) -> None:
    """The owner, through checkin's production command (the password read from stdin)."""
    stack_env = stack.stack.service_env("checkin")
    stack_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "checkin.entrypoints.cli",
            "create-org",
            "--name",
            org.name,
            "--owner-email",
            org.owner_email,
            "--owner-name",
            f"Owner {org.label}",
        ],
        input=PASSWORD + "\n",
        env={**os.environ, **stack_env},
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no terminal: getpass reads the password from stdin
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def login(org: Org, email: str) -> str:
    answer = call("POST", org.url("checkin", "/api/v1/auth/login"), json={"email": email, "password": PASSWORD})
    return str(ok(answer, 200)["token"])


def _people(org: Org) -> None:
    """Users of every role (signed in) and an API token."""

    def add(role: str) -> None:
        email = f"{role}-{org.tag}@example.org"
        body = {"email": email, "name": f"{role} {org.label}", "role": role, "password": PASSWORD}
        org.user_ids[role] = org.api("POST", "checkin", "/api/v1/users", 201, json=body)["id"]
        org.tokens[role] = login(org, email)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(add, USER_ROLES))
    created = org.api(
        "POST",
        "checkin",
        "/api/v1/api-tokens",
        201,
        json={"name": f"CRM sync {org.label}", "role": API_TOKEN_ROLE, "expires_in_days": 7},
    )
    org.tokens["api"], org.api_token_id = created["token"], created["id"]


def _events(org: Org) -> None:
    now = datetime.now(UTC)

    def event(title: str, kind: str) -> dict[str, Any]:
        body = {
            "title": title,
            "kind": kind,
            "starts_at": (now - timedelta(minutes=30)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "timezone": "Europe/Berlin",
        }
        return dict(org.api("POST", "checkin", "/api/v1/events", 201, json=body))

    org.event_now = event(f"{org.name} supper", "volunteer_shift")
    org.event_done = event(f"{org.name} mixer", "networking")
    now_id, done_id = org.event_now["id"], org.event_done["id"]
    kiosk = org.throwaway_kiosk()
    paired = ok(call("POST", org.url("checkin", "/api/v1/kiosk/pair"), json={"code": kiosk["pairing_code"]}), 200)
    org.tokens["kiosk"], org.kiosk_id = paired["token"], kiosk["id"]
    org.spare_kiosk_id = org.throwaway_kiosk()["id"]
    with ThreadPoolExecutor(4) as pool:
        org.done_regs = list(pool.map(lambda i: org.register(done_id, f"Done{i}"), range(4)))
        fresh = list(pool.map(lambda i: org.register(now_id, f"Now{i}"), range(16)))
        came = list(pool.map(lambda i: org.register(now_id, f"In{i}"), range(14)))
        list(pool.map(lambda reg: org.check_in(done_id, reg), org.done_regs[:3]))
        list(pool.map(lambda reg: org.check_in(now_id, reg), came))
    org.now_regs, org.in_regs = fresh, came
    org.person_id = org.done_regs[0]["person_id"]
    org.api("POST", "checkin", f"/api/v1/events/{done_id}/end", 200)
    csv = f"first_name,last_name,email\nImported,{org.surname},imported.{org.tag}@example.org\n"
    job = org.api(
        "POST",
        "checkin",
        f"/api/v1/events/{now_id}/imports",
        202,
        params={"format": "generic", "mapping": '{"first_name":"first_name","last_name":"last_name","email":"email"}'},
        data=csv.encode(),
        headers={"Content-Type": "text/csv"},
    )
    org.import_id = job["id"]
    start = now + timedelta(days=7)
    series = {
        "title": f"{org.name} weekly",
        "kind": "volunteer_shift",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "timezone": "Europe/Berlin",
        "recurrence": {"frequency": "weekly", "count": 2},
    }
    org.series_id = org.api("POST", "checkin", "/api/v1/series", 201, json=series)["series_id"]
    page = call("GET", org.url("checkin", f"/events/{now_id}"), cookies={SESSION_COOKIE: org.tokens["owner"]})
    found = re.search(r"/r/([A-Za-z0-9_-]{8,40})", ok(page, 200))
    assert found, "the event page shows no public registration link"
    org.public_token = found.group(1)


def _wait(what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not arrive within {timeout:.0f}s"
        time.sleep(0.3)


def _flowed(org: Org) -> None:
    """Wait until followup planned the ended event's nudges and analytics counted both events."""
    done_id, now_id = org.event_done["id"], org.event_now["id"]

    def messages() -> bool:
        answer = call("GET", org.url("followup", f"/api/v1/events/{done_id}/messages"), headers=org.owner)
        if answer.status_code != 200:
            return False
        org.followup_ids = [m["id"] for m in answer.json()["messages"]]
        return len(org.followup_ids) >= 4

    def attendance(event_id: str, checked_in: int) -> Callable[[], bool]:
        def ready() -> bool:
            answer = call("GET", org.url("analytics", f"/api/v1/events/{event_id}/attendance"), headers=org.owner)
            return answer.status_code == 200 and int(answer.json().get("checked_in", -1)) >= checked_in

        return ready

    def person() -> bool:
        path = f"/api/v1/people/{org.person_id}"
        return call("GET", org.url("analytics", path), headers=org.owner).status_code == 200

    def series() -> bool:
        path = f"/api/v1/series/{org.series_id}"
        return call("GET", org.url("analytics", path), headers=org.owner).status_code == 200

    def settings() -> bool:
        path = f"/api/v1/events/{now_id}/settings"
        return call("GET", org.url("followup", path), headers=org.owner).status_code == 200

    _wait(f"org {org.label}: followup's messages", messages)
    _wait(f"org {org.label}: analytics' ended event", attendance(done_id, 3))
    _wait(f"org {org.label}: analytics' open event", attendance(now_id, len(org.in_regs)))
    _wait(f"org {org.label}: analytics' person", person)
    _wait(f"org {org.label}: followup's open event", settings)
    _wait(f"org {org.label}: analytics' series", series)


def build_world(stack: RunningStack) -> tuple[Org, Org]:
    tag = uuid.uuid4().hex[:8]
    orgs = []
    for label in ("A", "B"):
        org = Org(label, stack, f"{label.lower()}{tag}")
        org.name = f"Security Org {label} {tag}"
        org.owner_email = f"owner-{org.tag}@example.org"
        org.surname = f"Zq{label}{tag}"
        org.secret = stack_secret(stack)
        orgs.append(org)

    def setup(org: Org) -> None:
        _create_org(stack, org)
        org.tokens["owner"] = login(org, org.owner_email)
        _people(org)
        _events(org)
        _flowed(org)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(setup, orgs))
    return orgs[0], orgs[1]
