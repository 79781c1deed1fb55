"""Who may call what: every HTTP route of checkin, followup and analytics x
every principal (owner, organizer, door staff, viewer, a paired kiosk, an
API token, anonymous) x the caller's own organization versus another's, over
real HTTP against the launched stack (every web, relay and worker process,
real broker and database).

The routes come from each app's URL map: a route without a row in ``ROWS``
fails the test, and so does a row whose route no longer exists. Each row
writes down the expected status of all fourteen cells: ``own`` when the
request names organization A's resources, ``other`` when it names
organization B's (the callers are always A's). A route that names no
resource at all (a list, a search, a walk-in) is called the same way in both
columns; what ``other`` checks there is that nothing of B's comes back.

Beyond the status, every answer to one of A's callers is searched for B's
markers (ids, badge codes, names, titles): an organization's data never
appears in another's answer. Refusals of the JSON APIs are JSON errors, and
no cell answers a 5xx (except the bounce webhook's documented 503 while no
webhook secret is configured).
"""

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import RunningStack
from tests.security.conftest import SUMMARY
from tests.security.links import hours_link, mint_link, statement_link
from tests.security.world import PASSWORD, PRINCIPALS, USER_ROLES, Org, bearer, call
from turnout_common.auth import SESSION_COOKIE, TokenSigner
from turnout_common.privacy import DEFAULT_RETENTION

pytestmark = pytest.mark.e2e

SERVICES = ("checkin", "followup", "analytics")


@dataclass(frozen=True)
class Req:
    path: str
    params: dict[str, str] | None = None
    json: Any = None
    data: Any = None
    content_type: str | None = None
    stream: bool = False  # Server-Sent Events: read the status and the first bytes, then hang up
    token: str | None = None  # the caller's credential for this call instead of its usual one (see own_session)


@dataclass(frozen=True)
class Cell:
    """One call to make: who calls (always org A's principal), whose resources it names."""

    me: Org
    org: Org  # whose ids fill the request: ``me`` (own) or the other organization
    principal: str
    expect: int

    @property
    def other(self) -> bool:
        return self.org is not self.me

    @property
    def allowed(self) -> bool:
        return 200 <= self.expect < 400

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{self.principal}-{uuid.uuid4().hex[:8]}"


Build = Callable[[Cell], Req]


@dataclass(frozen=True)
class Row:
    service: str
    method: str
    rule: str
    # How callers present themselves: "api" (Authorization: Bearer), "page" (the
    # session cookie, as a browser, plus the header; same-origin Origin), or
    # "public" (as "page"; the path's token or code is the credential, so B's
    # answer to B's token is B's page, not a leak).
    kind: str
    # Expected status per principal, in PRINCIPALS order:
    # owner organizer door_staff viewer kiosk api anonymous
    own: str
    other: str
    build: Build
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.service, self.method, self.rule)

    def expected(self, other: bool) -> list[int]:
        statuses = [int(part) for part in (self.other if other else self.own).split()]
        assert len(statuses) == len(PRINCIPALS), f"{self.key}: {len(statuses)} statuses for {len(PRINCIPALS)}"
        return statuses


def fixed(path: str, **kwargs: Any) -> Build:
    return lambda c: Req(path, **kwargs)


# -- request builders ---------------------------------------------------------------------------------


def now_event(c: Cell) -> str:
    return str(c.org.event_now["id"])


def done_event(c: Cell) -> str:
    return str(c.org.event_done["id"])


def fresh_reg(c: Cell) -> dict[str, Any]:
    """A registration not yet checked in: a fresh one for each call expected to check in."""
    return c.org.take(c.org.now_regs) if c.allowed and not c.other else c.org.now_regs[0]


def checked_in_reg(c: Cell) -> dict[str, Any]:
    return c.org.take(c.org.in_regs) if c.allowed and not c.other else c.org.in_regs[0]


def client_key(c: Cell) -> str:
    return c.unique("key").replace("_", "-")


def event_body(c: Cell) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "title": c.unique("Matrix event"),
        "kind": "workshop",
        "starts_at": (now + timedelta(days=5)).isoformat(),
        "ends_at": (now + timedelta(days=5, hours=2)).isoformat(),
        "timezone": "Europe/Berlin",
    }


def registration_body(c: Cell) -> dict[str, Any]:
    return {"first_name": "Matrix", "email": f"{c.unique('reg')}@example.org".lower(), "consent_email": False}


def series_body(c: Cell) -> Req:
    body = {**event_body(c), "title": c.unique("Matrix series"), "recurrence": {"frequency": "weekly", "count": 2}}
    return Req("/api/v1/series", json=body)


def form_event(c: Cell) -> Req:
    day = (datetime.now(UTC) + timedelta(days=6)).strftime("%Y-%m-%d")
    form = {
        "title": c.unique("Form event"),
        "kind": "meeting",
        "starts_at": f"{day}T18:00",
        "ends_at": f"{day}T20:00",
        "timezone": "Europe/Berlin",
    }
    return Req("/events", data=form)


def form_registration(c: Cell) -> Req:
    form = {"first_name": "Formy", "email": f"{c.unique('form')}@example.org".lower(), "consent_email": "yes"}
    return Req(f"/events/{now_event(c)}/registrations", data=form)


def login_form(c: Cell) -> Req:
    email = f"viewer-{c.org.tag}@example.org"
    return Req("/login", data={"email": email, "password": PASSWORD, "next": "/events"})


def login_json(c: Cell) -> Req:
    return Req("/api/v1/auth/login", json={"email": f"viewer-{c.org.tag}@example.org", "password": PASSWORD})


def own_session(path: str) -> Build:
    """For a call that ends the caller's session (signing out): a user calls with a
    new session of their own, made for this call, so their usual one lives on."""

    def build(c: Cell) -> Req:
        token = c.me.tokens.get(c.principal)
        if token is None or c.principal not in ("owner", *USER_ROLES):
            return Req(path)
        signer = TokenSigner(c.me.secret)
        return Req(path, token=signer.issue(replace(signer.verify(token), session_id=uuid.uuid4().hex[:16])))

    return build


def public_register(c: Cell) -> Req:
    form = {"first_name": "Public", "email": f"{c.unique('public')}@example.org".lower(), "consent_email": "yes"}
    return Req(f"/r/{c.org.public_token}", data=form)


MAPPING = '{"first_name": "first_name", "email": "email"}'


def csv_upload(c: Cell, path: str) -> Req:
    text = f"first_name,email\nCsv,{c.unique('csv')}@example.org\n".lower()
    return Req(path, data=text.encode(), content_type="text/csv", params={"format": "generic", "mapping": MAPPING})


def pair(c: Cell) -> Req:
    code = c.org.throwaway_kiosk()["pairing_code"] if c.allowed else "ZZZZ-ZZZZ"
    return Req("/api/v1/kiosk/pair", json={"code": code})


def kiosk_scan(reg: Callable[[Cell], dict[str, Any]], path: str) -> Build:
    return lambda c: Req(path, json={"badge_code": reg(c)["badge_code"], "client_key": client_key(c)})


def staff_checkin(c: Cell) -> Req:
    body = {"badge_code": fresh_reg(c)["badge_code"], "client_key": client_key(c)}
    return Req(f"/api/v1/events/{now_event(c)}/checkins", json=body)


def undo(c: Cell) -> Req:
    return Req(f"/api/v1/events/{now_event(c)}/checkins/{checked_in_reg(c)['id']}/undo", json={"reason": "matrix"})


def walk_in(c: Cell) -> Req:
    body = {
        "client_key": client_key(c),
        "first_name": "Walker",
        "email": f"{c.unique('walk')}@example.org".lower(),
        "consent_email": False,
    }
    return Req("/api/v1/kiosk/walk-ins", json=body)


def kiosk_search(c: Cell) -> Req:
    # Own: A's people by their surname. Other: B's surname; the kiosk must find none of them.
    return Req("/api/v1/kiosk/search", params={"q": c.org.surname})


def throwaway(path: str, make: Callable[[Org], str], **kwargs: Any) -> Build:
    """For calls that destroy what they touch: a resource of the named organization, made for this call."""
    return lambda c: Req(path.format(make(c.org)), **kwargs)


def reg_of_done(c: Cell) -> str:
    return str(c.org.done_regs[0]["id"])


def followup_id(c: Cell) -> str:
    return c.org.followup_ids[0]


def link(purpose: str, suffix: str = "", **params: str) -> Build:
    """A follow-up email's link for a message of the named organization, signed as the service signs it."""

    def build(c: Cell) -> Req:
        fid = c.org.followup_ids[1]
        url = params.get("u")
        token = mint_link(c.org.secret, purpose, fid, url=url)
        return Req(f"/{purpose[0]}/{token}{suffix}", params=params or None)

    return build


def introduction_link(c: Cell) -> Req:
    # An introduction exists only once the follow-ups go out (matched at send
    # time, hours after the event): a correctly signed link to one that does
    # not exist yet is what a caller can have.
    token = mint_link(c.org.secret, "introduction", f"{c.org.event_done['id'][:20]}x", person=c.org.person_id)
    return Req(f"/i/{token}")


def preview(c: Cell) -> Req:
    return Req(f"/api/v1/events/{done_event(c)}/preview", params={"nudge": "thank_you", "person_id": c.org.person_id})


def feedback_comment(c: Cell) -> Req:
    return Req(link("feedback")(c).path, data={"rating": "4", "comment": "lovely"})


def bounce(c: Cell) -> Req:
    return Req("/api/v1/webhooks/bounces", json={"email": "someone@example.org", "type": "hard"})


def new_user(c: Cell) -> Req:
    email = f"{c.unique('added')}@example.org".lower()
    return Req("/api/v1/users", json={"email": email, "name": "Added", "role": "viewer", "password": PASSWORD})


def new_api_token(c: Cell) -> Req:
    return Req("/api/v1/api-tokens", json={"name": c.unique("token"), "role": "viewer", "expires_in_days": 1})


def delete_suppression(c: Cell) -> Req:
    return Req(f"/api/v1/suppressions/{c.org.throwaway_suppression()}")


def erasable(c: Cell) -> str:
    """A person to erase: a fresh one for each call expected to erase; else the org's usual attendee."""
    if c.allowed and not c.other:
        return str(c.org.register(c.org.event_now["id"], "Erasable")["person_id"])
    return c.org.person_id


def data_request(c: Cell) -> str:
    """An export of the organization's attendee, filed by its owner (still working: followup and analytics answer)."""
    return str(c.org.api("POST", "checkin", f"/api/v1/people/{c.org.person_id}/export", 201)["id"])


def erasure_request(c: Cell) -> str:
    """An erasure of a fresh person of the organization, filed by its owner (an erasure has no archive)."""
    person_id = c.org.register(c.org.event_now["id"], "Erased")["person_id"]
    return str(c.org.api("POST", "checkin", f"/api/v1/people/{person_id}/erasure", 201)["id"])


def org_slug(c: Cell) -> str:
    from checkin.service_layer.organizations import slugify

    return slugify(c.org.name)


def privacy_link(c: Cell) -> str:
    """A person's signed self-service link (an export of the org's attendee), signed as checkin signs it."""
    from itsdangerous import URLSafeSerializer

    from checkin.domain.privacy import Link, link_claims
    from checkin.service_layer.privacy import LINK_SALT

    org_id = str(c.org.api("GET", "checkin", "/api/v1/me")["org_id"])
    link = Link(org_id, c.org.person_id, "export", uuid.uuid4().hex[:16], datetime.now(UTC) + timedelta(hours=1))
    token = URLSafeSerializer(c.org.secret, salt=LINK_SALT).dumps(link_claims(link))
    return f"/privacy/requests/{token}"


_ORG_IDS: dict[str, str] = {}


def org_id_of(c: Cell) -> str:
    if c.org.label not in _ORG_IDS:
        _ORG_IDS[c.org.label] = str(c.org.api("GET", "checkin", "/api/v1/me")["org_id"])
    return _ORG_IDS[c.org.label]


def hours_page(c: Cell) -> str:
    """The org's attendee's own hours page, signed as checkin signs it."""
    return hours_link(c.org.secret, org_id_of(c), c.org.person_id)


def off_site_entry(c: Cell) -> str:
    """A pending off-site entry of the org's attendee, logged through their signed page."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    logged = call("POST", c.org.url("checkin", hours_page(c)), data={"date": yesterday, "hours": "1", "note": "matrix"})
    assert logged.status_code == 303, logged.text[:300]
    return str(c.org.api("GET", "checkin", "/api/v1/hours/pending")["entries"][-1]["entry_id"])


def hours_review(c: Cell) -> Req:
    """A fresh off-site entry approved through the open event's review (other: B's event and entry)."""
    item = {"entry_id": off_site_entry(c), "action": "approve"}
    return Req(f"/api/v1/events/{now_event(c)}/hours/review", json={"items": [item]})


def greeter(c: Cell) -> dict[str, Any]:
    """A volunteer greeter of the named organization's open event, named by its owner for this call."""
    body = {"name": "Greeter", "email": f"{c.unique('greeter')}@example.org"}
    return dict(c.org.api("POST", "checkin", f"/api/v1/events/{now_event(c)}/greeters", 201, json=body))


def greet_link(c: Cell) -> str:
    """``/greet/<token>``: a greeter's signed page link (the link is the credential)."""
    return urlsplit(str(greeter(c)["link"])).path


def greet_api(c: Cell, suffix: str) -> str:
    return greet_link(c).replace("/greet/", "/api/v1/greet/") + suffix


def first_timer(c: Cell) -> str:
    """A first-timer of the named organization who just checked in at its open event."""
    reg = c.org.register(now_event(c), "Newcomer")
    c.org.check_in(now_event(c), reg)
    return str(reg["id"])


def named_greeter_page(c: Cell) -> Req:
    """The signed-in greeter page: the calling user is named a greeter of their own event first."""
    if not c.other and c.principal in ("owner", *USER_ROLES):
        me = c.org.api("GET", "checkin", "/api/v1/me")["id"] if c.principal == "owner" else c.org.user_ids[c.principal]
        path = f"/api/v1/events/{now_event(c)}/greeters"
        c.org.api("POST", "checkin", path, 201, 200, json={"user_id": me})
    return Req(f"/events/{now_event(c)}/greet")


# -- the table ----------------------------------------------------------------------------------------
# Columns: owner organizer door_staff viewer kiosk api anonymous.
# The kiosk holds the "kiosk" permission only; the API token has the organizer role;
# checkin's pages take only a user's session cookie (kiosk, API token, nobody: to /login, 302);
# analytics' pages answer 401 with a link to sign in; followup's pages take any principal
# with "view" (Bearer or cookie) and send the signed-out to checkin's sign-in (302).

ALL_200 = "200 200 200 200 200 200 200"
VIEW = "200 200 200 200 403 200 401"
VIEW_OTHER = "404 404 404 404 403 404 401"
CHECKIN_PAGE_VIEW = "200 200 200 200 302 302 302"
CHECKIN_PAGE_VIEW_OTHER = "404 404 404 404 302 302 302"
DASHBOARD = "200 200 200 200 401 401 401"
DASHBOARD_OTHER = "404 404 404 404 401 401 401"
OWNER_ONLY = "200 403 403 403 403 403 401"
DEFAULT_PERIODS = DEFAULT_RETENTION.as_dict()

# fmt: off
ROWS: list[Row] = [
    # ---- checkin: operations and static files (public)
    Row("checkin", "GET", "/healthz", "public", ALL_200, ALL_200, fixed("/healthz")),
    Row("checkin", "GET", "/readyz", "public", ALL_200, ALL_200, fixed("/readyz")),
    Row("checkin", "GET", "/metrics", "public", ALL_200, ALL_200, fixed("/metrics")),
    Row("checkin", "GET", "/openapi.json", "public", ALL_200, ALL_200, fixed("/openapi.json")),
    Row("checkin", "GET", "/static/<path:filename>", "public", ALL_200, ALL_200, fixed("/static/css/app.css")),
    Row("checkin", "GET", "/kiosk", "public", ALL_200, ALL_200, fixed("/kiosk")),
    Row("checkin", "GET", "/kiosk/sw.js", "public", ALL_200, ALL_200, fixed("/kiosk/sw.js")),
    Row("checkin", "GET", "/kiosk/static/<path:filename>", "public", ALL_200, ALL_200,
        fixed("/kiosk/static/kiosk.css")),
    # ---- checkin: signing in and out
    Row("checkin", "POST", "/api/v1/auth/login", "public", ALL_200, ALL_200, login_json,
        "other: B's viewer signs in with B's password (the password is the credential)"),
    Row("checkin", "GET", "/", "page", "302 302 302 302 200 200 200", "302 302 302 302 200 200 200", fixed("/"),
        "a signed-in user: to /events; anyone else: the sign-in form"),
    Row("checkin", "GET", "/login", "page", "302 302 302 302 200 200 200", "302 302 302 302 200 200 200",
        fixed("/login")),
    Row("checkin", "POST", "/login", "public", "303 303 303 303 303 303 303", "303 303 303 303 303 303 303",
        login_form),
    Row("checkin", "POST", "/logout", "page", "303 303 303 303 303 303 303", "303 303 303 303 303 303 303",
        own_session("/logout"), "ends a user's session (test_tokens) and clears the cookie; others: clears it"),
    Row("checkin", "POST", "/api/v1/auth/logout", "api", "204 204 204 204 403 400 401",
        "204 204 204 204 403 400 401", own_session("/api/v1/auth/logout"),
        "ends the caller's session; an API token is not a session (400)"),
    # ---- checkin: the public registration link (its token is the credential)
    Row("checkin", "GET", "/r/<token>", "public", ALL_200, ALL_200, lambda c: Req(f"/r/{c.org.public_token}")),
    Row("checkin", "GET", "/r/<token>/calendar.ics", "public", ALL_200, ALL_200,
        lambda c: Req(f"/r/{c.org.public_token}/calendar.ics")),
    Row("checkin", "POST", "/r/<token>", "public", "201 201 201 201 201 201 201", "201 201 201 201 201 201 201",
        public_register),
    # ---- checkin JSON API: who am I, events
    Row("checkin", "GET", "/api/v1/me", "api", VIEW, VIEW, fixed("/api/v1/me")),
    Row("checkin", "GET", "/api/v1/events", "api", VIEW, VIEW, fixed("/api/v1/events")),
    Row("checkin", "POST", "/api/v1/events", "api", "201 201 403 403 403 201 401", "201 201 403 403 403 201 401",
        lambda c: Req("/api/v1/events", json=event_body(c))),
    Row("checkin", "GET", "/api/v1/events/<event_id>", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}")),
    Row("checkin", "PATCH", "/api/v1/events/<event_id>", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/events/{now_event(c)}", json={"description": c.unique("patched")})),
    Row("checkin", "POST", "/api/v1/events/<event_id>/cancel", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", throwaway("/api/v1/events/{}/cancel", Org.throwaway_event, json={})),
    Row("checkin", "POST", "/api/v1/events/<event_id>/end", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", throwaway("/api/v1/events/{}/end", Org.throwaway_event)),
    Row("checkin", "GET", "/api/v1/events/<event_id>/arrivals", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/arrivals")),
    # ---- checkin JSON API: registrations, check-ins, badges
    Row("checkin", "POST", "/api/v1/events/<event_id>/registrations", "api", "201 201 403 403 403 201 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/events/{now_event(c)}/registrations", json=registration_body(c))),
    Row("checkin", "GET", "/api/v1/events/<event_id>/registrations", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/registrations")),
    Row("checkin", "GET", "/api/v1/events/<event_id>/registrations/search", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/registrations/search", params={"q": c.org.surname})),
    Row("checkin", "POST", "/api/v1/registrations/<registration_id>/cancel", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401",
        throwaway("/api/v1/registrations/{}/cancel", Org.throwaway_registration, json={})),
    Row("checkin", "POST", "/api/v1/events/<event_id>/checkins", "api", "201 201 201 403 403 201 401",
        "404 404 404 403 403 404 401", staff_checkin),
    Row("checkin", "POST", "/api/v1/events/<event_id>/checkins/<registration_id>/undo", "api",
        "200 200 200 403 403 200 401", "404 404 404 403 403 404 401", undo),
    Row("checkin", "GET", "/api/v1/events/<event_id>/registrations/<registration_id>/group", "api", VIEW,
        VIEW_OTHER, lambda c: Req(f"/api/v1/events/{now_event(c)}/registrations/{c.org.now_regs[0]['id']}/group")),
    Row("checkin", "GET", "/api/v1/registrations/<registration_id>/badge.svg", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/registrations/{reg_of_done(c)}/badge.svg")),
    Row("checkin", "GET", "/api/v1/registrations/<registration_id>/badge.png", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/registrations/{reg_of_done(c)}/badge.png")),
    # ---- checkin JSON API: recurring series
    Row("checkin", "POST", "/api/v1/series", "api", "201 201 403 403 403 201 401", "201 201 403 403 403 201 401",
        series_body),
    Row("checkin", "GET", "/api/v1/series/<series_id>", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/series/{c.org.series_id}")),
    # ---- checkin JSON API: imports
    Row("checkin", "POST", "/api/v1/events/<event_id>/imports", "api", "202 202 403 403 403 202 401",
        "404 404 403 403 403 404 401", lambda c: csv_upload(c, f"/api/v1/events/{now_event(c)}/imports")),
    Row("checkin", "GET", "/api/v1/events/<event_id>/imports", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/events/{now_event(c)}/imports")),
    Row("checkin", "POST", "/api/v1/imports/preview", "api", "200 200 403 403 403 200 401",
        "200 200 403 403 403 200 401", lambda c: csv_upload(c, "/api/v1/imports/preview")),
    Row("checkin", "GET", "/api/v1/imports/<import_id>", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/imports/{c.org.import_id}")),
    Row("checkin", "GET", "/api/v1/imports/<import_id>/errors.csv", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/imports/{c.org.import_id}/errors.csv")),
    # ---- checkin JSON API: kiosks (organizer side)
    Row("checkin", "POST", "/api/v1/events/<event_id>/kiosks", "api", "201 201 403 403 403 201 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/events/{now_event(c)}/kiosks", json={"name": "Door 9", "staff_pin": "1357"})),
    Row("checkin", "GET", "/api/v1/events/<event_id>/kiosks", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/kiosks")),
    Row("checkin", "POST", "/api/v1/kiosks/<kiosk_id>/pairing-code", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/kiosks/{c.org.spare_kiosk_id}/pairing-code")),
    Row("checkin", "POST", "/api/v1/kiosks/<kiosk_id>/revoke", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", throwaway("/api/v1/kiosks/{}/revoke", lambda o: o.throwaway_kiosk()["id"])),
    # ---- checkin JSON API: the kiosk's own calls (its one event; other: B's badge, B's people)
    Row("checkin", "POST", "/api/v1/kiosk/pair", "public", ALL_200, ALL_200, pair,
        "the one-time code is the credential: other = B's code pairs B's kiosk"),
    Row("checkin", "GET", "/api/v1/kiosk/roster", "api", "403 403 403 403 200 403 401",
        "403 403 403 403 200 403 401", fixed("/api/v1/kiosk/roster")),
    Row("checkin", "GET", "/api/v1/kiosk/search", "api", "403 403 403 403 200 403 401",
        "403 403 403 403 200 403 401", kiosk_search, "other: B's surname finds nobody (leak check)"),
    Row("checkin", "POST", "/api/v1/kiosk/checkins", "api", "403 403 403 403 201 403 401",
        "403 403 403 403 404 403 401", kiosk_scan(fresh_reg, "/api/v1/kiosk/checkins")),
    Row("checkin", "POST", "/api/v1/kiosk/checkouts", "api", "403 403 403 403 200 403 401",
        "403 403 403 403 404 403 401", kiosk_scan(checked_in_reg, "/api/v1/kiosk/checkouts")),
    Row("checkin", "POST", "/api/v1/kiosk/walk-ins", "api", "403 403 403 403 201 403 401",
        "403 403 403 403 201 403 401", walk_in),
    Row("checkin", "POST", "/api/v1/kiosk/registrations/<registration_id>/email", "api",
        "403 403 403 403 409 403 401", "403 403 403 403 404 403 401",
        lambda c: Req(f"/api/v1/kiosk/registrations/{c.org.in_regs[0]['id']}/email",
                      json={"email": f"{c.unique('given')}@example.org".lower()}),
        "own: allowed, but the checked-in person already has an email (409 email_already_set)"),
    Row("checkin", "POST", "/api/v1/kiosk/heartbeat", "api", "403 403 403 403 200 403 401",
        "403 403 403 403 200 403 401", lambda c: Req("/api/v1/kiosk/heartbeat", json={"queue_length": 0})),
    # ---- checkin JSON API: users and API tokens (new ones get the viewer role: anyone managing may grant it)
    Row("checkin", "GET", "/api/v1/users", "api", "200 200 403 403 403 200 401", "200 200 403 403 403 200 401",
        fixed("/api/v1/users")),
    Row("checkin", "POST", "/api/v1/users", "api", "201 201 403 403 403 201 401", "201 201 403 403 403 201 401",
        new_user),
    Row("checkin", "POST", "/api/v1/users/<user_id>/deactivate", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", throwaway("/api/v1/users/{}/deactivate", Org.throwaway_user)),
    Row("checkin", "PATCH", "/api/v1/users/<user_id>", "api", OWNER_ONLY, "404 403 403 403 403 403 401",
        throwaway("/api/v1/users/{}", Org.throwaway_user, json={"role": "viewer"}),
        "owners only (the API token is an organizer's)"),
    Row("checkin", "GET", "/api/v1/api-tokens", "api", "200 200 403 403 403 200 401",
        "200 200 403 403 403 200 401", fixed("/api/v1/api-tokens")),
    Row("checkin", "POST", "/api/v1/api-tokens", "api", "201 201 403 403 403 201 401",
        "201 201 403 403 403 201 401", new_api_token),
    Row("checkin", "POST", "/api/v1/api-tokens/<token_id>/revoke", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", throwaway("/api/v1/api-tokens/{}/revoke", Org.throwaway_api_token)),
    # ---- checkin JSON API: the audit trail (owners) and the retention policy (owners set it, organizers read it)
    Row("checkin", "GET", "/api/v1/audit", "api", OWNER_ONLY, OWNER_ONLY, fixed("/api/v1/audit"),
        "other: nothing of B's in A's trail (leak check)"),
    Row("checkin", "GET", "/api/v1/audit.csv", "api", OWNER_ONLY, OWNER_ONLY, fixed("/api/v1/audit.csv")),
    Row("checkin", "GET", "/api/v1/retention", "api", "200 200 403 403 403 200 401",
        "200 200 403 403 403 200 401", fixed("/api/v1/retention")),
    Row("checkin", "PUT", "/api/v1/retention", "api", OWNER_ONLY, OWNER_ONLY,
        fixed("/api/v1/retention", json={"periods": DEFAULT_PERIODS})),
    # ---- checkin JSON API: volunteer hours (owners and organizers review them)
    Row("checkin", "GET", "/api/v1/events/<event_id>/hours", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/events/{now_event(c)}/hours")),
    Row("checkin", "POST", "/api/v1/events/<event_id>/hours/review", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", hours_review),
    Row("checkin", "GET", "/api/v1/hours/pending", "api", "200 200 403 403 403 200 401",
        "200 200 403 403 403 200 401", fixed("/api/v1/hours/pending"), "other: nothing of B's (leak check)"),
    # ---- checkin organizer pages (session cookie)
    Row("checkin", "GET", "/events", "page", CHECKIN_PAGE_VIEW, CHECKIN_PAGE_VIEW, fixed("/events")),
    Row("checkin", "POST", "/events", "page", "303 303 403 403 302 302 302", "303 303 403 403 302 302 302",
        form_event),
    Row("checkin", "GET", "/events/<event_id>", "page", CHECKIN_PAGE_VIEW, CHECKIN_PAGE_VIEW_OTHER,
        lambda c: Req(f"/events/{now_event(c)}")),
    Row("checkin", "GET", "/events/<event_id>/badges", "page", CHECKIN_PAGE_VIEW, CHECKIN_PAGE_VIEW_OTHER,
        lambda c: Req(f"/events/{now_event(c)}/badges")),
    Row("checkin", "GET", "/events/<event_id>/staff", "page", CHECKIN_PAGE_VIEW, CHECKIN_PAGE_VIEW_OTHER,
        lambda c: Req(f"/events/{now_event(c)}/staff")),
    Row("checkin", "GET", "/events/<event_id>/imports", "page", "200 200 403 403 302 302 302",
        "404 404 403 403 302 302 302", lambda c: Req(f"/events/{now_event(c)}/imports")),
    Row("checkin", "POST", "/events/<event_id>/registrations", "page", "303 303 403 403 302 302 302",
        "404 404 403 403 302 302 302", form_registration),
    Row("checkin", "POST", "/events/<event_id>/name-labels", "page", "303 303 403 403 302 302 302",
        "404 404 403 403 302 302 302", throwaway("/events/{}/name-labels", Org.throwaway_event,
                                                 data={"name_labels": "yes"})),
    Row("checkin", "POST", "/events/<event_id>/edit", "page", "303 303 403 403 302 302 302",
        "404 404 403 403 302 302 302", throwaway("/events/{}/edit", Org.throwaway_event,
                                                 data={"venue": "Matrix hall", "scope": "this"})),
    Row("checkin", "POST", "/events/<event_id>/cancel", "page", "303 303 403 403 302 302 302",
        "404 404 403 403 302 302 302", throwaway("/events/{}/cancel", Org.throwaway_event,
                                                 data={"reason": "Matrix", "scope": "this"})),
    Row("checkin", "GET", "/events/<event_id>/registrations/<registration_id>/label", "page", CHECKIN_PAGE_VIEW,
        CHECKIN_PAGE_VIEW_OTHER,
        lambda c: Req(f"/events/{now_event(c)}/registrations/{c.org.in_regs[0]['id']}/label")),
    Row("checkin", "GET", "/badges/<registration_id>", "page", CHECKIN_PAGE_VIEW, CHECKIN_PAGE_VIEW_OTHER,
        lambda c: Req(f"/badges/{reg_of_done(c)}")),
    Row("checkin", "GET", "/audit", "page", "200 403 403 403 302 302 302", "200 403 403 403 302 302 302",
        fixed("/audit")),
    Row("checkin", "GET", "/retention", "page", "200 200 403 403 302 302 302", "200 200 403 403 302 302 302",
        fixed("/retention")),
    Row("checkin", "POST", "/retention", "page", "303 403 403 403 302 302 302", "303 403 403 403 302 302 302",
        fixed("/retention", data={kind: str(months) for kind, months in DEFAULT_PERIODS.items()})),
    Row("checkin", "GET", "/events/<event_id>/hours", "page", "200 200 403 403 302 302 302",
        "404 404 403 403 302 302 302", lambda c: Req(f"/events/{now_event(c)}/hours")),
    Row("checkin", "POST", "/events/<event_id>/hours", "page", "409 409 403 403 302 302 302",
        "404 404 403 403 302 302 302",
        lambda c: Req(f"/events/{now_event(c)}/hours", data={"selected": c.org.now_regs[0]["id"], "action": "approve"}),
        "own: allowed, but the registration has no check-out yet (409)"),
    Row("checkin", "GET", "/hours", "page", "200 200 403 403 302 302 302", "200 200 403 403 302 302 302",
        fixed("/hours")),
    Row("checkin", "POST", "/hours", "page", "303 303 403 403 302 302 302", "404 404 403 403 302 302 302",
        lambda c: Req("/hours", data={"selected": off_site_entry(c), "action": "approve"})),
    # ---- checkin: people and their data requests (owners and organizers)
    Row("checkin", "GET", "/api/v1/people", "api", "200 200 403 403 403 200 401", "200 200 403 403 403 200 401",
        lambda c: Req("/api/v1/people", params={"q": c.org.surname}), "other: B's surname finds nobody (leak check)"),
    Row("checkin", "GET", "/api/v1/people/<person_id>", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/people/{c.org.person_id}")),
    Row("checkin", "PATCH", "/api/v1/people/<person_id>", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/people/{c.org.person_id}", json={"last_name": c.org.surname})),
    Row("checkin", "POST", "/api/v1/people/<person_id>/export", "api", "201 201 403 403 403 201 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/people/{c.org.person_id}/export")),
    Row("checkin", "POST", "/api/v1/people/<person_id>/erasure", "api", "201 201 403 403 403 201 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/people/{erasable(c)}/erasure")),
    Row("checkin", "GET", "/api/v1/data-requests", "api", "200 200 403 403 403 200 401",
        "200 200 403 403 403 200 401", fixed("/api/v1/data-requests")),
    Row("checkin", "GET", "/api/v1/data-requests/<request_id>", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/data-requests/{data_request(c)}")),
    Row("checkin", "GET", "/api/v1/data-requests/<request_id>/archive.json", "api", "409 409 403 403 403 409 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/data-requests/{erasure_request(c)}/archive.json"),
        "own: allowed, but an erasure has no archive (409)"),
    Row("checkin", "GET", "/people", "page", "200 200 403 403 302 302 302", "200 200 403 403 302 302 302",
        lambda c: Req("/people", params={"q": c.org.surname})),
    Row("checkin", "GET", "/people/<person_id>", "page", "200 200 403 403 302 302 302",
        "404 404 403 403 302 302 302", lambda c: Req(f"/people/{c.org.person_id}")),
    Row("checkin", "GET", "/data-requests", "page", "200 200 403 403 302 302 302", "200 200 403 403 302 302 302",
        fixed("/data-requests")),
    Row("checkin", "GET", "/data-requests/<request_id>", "page", "200 200 403 403 302 302 302",
        "404 404 403 403 302 302 302", lambda c: Req(f"/data-requests/{data_request(c)}")),
    # ---- checkin: the public privacy page and the person's signed link (the link is the credential)
    Row("checkin", "GET", "/privacy/<org_slug>", "public", ALL_200, ALL_200, lambda c: Req(f"/privacy/{org_slug(c)}")),
    Row("checkin", "POST", "/privacy/<org_slug>", "public", ALL_200, ALL_200,
        lambda c: Req(f"/privacy/{org_slug(c)}", data={"email": f"{c.unique('nobody')}@example.org",
                                                      "purpose": "export"}),
        "the same answer whoever asks"),
    Row("checkin", "GET", "/privacy/requests/<token>", "public", ALL_200, ALL_200, lambda c: Req(privacy_link(c))),
    Row("checkin", "POST", "/privacy/requests/<token>", "public", "303 303 303 303 303 303 303",
        "303 303 303 303 303 303 303", lambda c: Req(privacy_link(c))),
    Row("checkin", "GET", "/privacy/requests/<token>/archive.json", "public", "409 409 409 409 409 409 409",
        "409 409 409 409 409 409 409", lambda c: Req(f"{privacy_link(c)}/archive.json"),
        "a link not confirmed yet has no export to download"),
    # ---- checkin: the volunteer's signed hours page and a statement's verification link (the link is the credential)
    Row("checkin", "GET", "/hours/me/<token>", "public", ALL_200, ALL_200, lambda c: Req(hours_page(c))),
    Row("checkin", "POST", "/hours/me/<token>", "public", "303 303 303 303 303 303 303",
        "303 303 303 303 303 303 303",
        lambda c: Req(hours_page(c), data={"date": datetime.now(UTC).date().isoformat(), "hours": "1", "note": "m"})),
    Row("checkin", "GET", "/hours/me/<token>/statement.pdf", "public", ALL_200, ALL_200,
        lambda c: Req(f"{hours_page(c)}/statement.pdf")),
    Row("checkin", "GET", "/hours/me/<token>/statement.csv", "public", ALL_200, ALL_200,
        lambda c: Req(f"{hours_page(c)}/statement.csv")),
    Row("checkin", "GET", "/hours/verify/<token>", "public", ALL_200, ALL_200,
        lambda c: Req(statement_link(c.org.secret, org_id_of(c), c.org.person_id))),
    # ---- checkin: greeters (named by owners and organizers; each greeter's signed link is the credential)
    Row("checkin", "GET", "/api/v1/events/<event_id>/greeters", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/events/{now_event(c)}/greeters")),
    Row("checkin", "POST", "/api/v1/events/<event_id>/greeters", "api", "201 201 403 403 403 201 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/events/{now_event(c)}/greeters",
                      json={"name": "Volunteer", "email": f"{c.unique('volunteer')}@example.org"})),
    Row("checkin", "DELETE", "/api/v1/events/<event_id>/greeters/<greeter_id>", "api",
        "200 200 403 403 403 200 401", "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/events/{now_event(c)}/greeters/{greeter(c)['id']}")),
    Row("checkin", "GET", "/api/v1/greet/<token>/arrivals", "public", ALL_200, ALL_200,
        lambda c: Req(greet_api(c, "/arrivals"))),
    Row("checkin", "POST", "/api/v1/greet/<token>/welcomes", "public", "201 201 201 201 201 201 201",
        "201 201 201 201 201 201 201",
        lambda c: Req(greet_api(c, "/welcomes"), json={"registration_id": first_timer(c)}),
        "a fresh first-timer each call: the first welcome"),
    Row("checkin", "GET", "/greet/<token>", "public", ALL_200, ALL_200, lambda c: Req(greet_link(c))),
    Row("checkin", "GET", "/events/<event_id>/greet", "page", CHECKIN_PAGE_VIEW, CHECKIN_PAGE_VIEW_OTHER,
        named_greeter_page, "own: each user is named a greeter of the event first"),
    # ---- followup: operations, static, landing page (public)
    Row("followup", "GET", "/healthz", "public", ALL_200, ALL_200, fixed("/healthz")),
    Row("followup", "GET", "/readyz", "public", ALL_200, ALL_200, fixed("/readyz")),
    Row("followup", "GET", "/metrics", "public", ALL_200, ALL_200, fixed("/metrics")),
    Row("followup", "GET", "/openapi.json", "public", ALL_200, ALL_200, fixed("/openapi.json")),
    Row("followup", "GET", "/static/<path:filename>", "public", ALL_200, ALL_200, fixed("/static/followup.css")),
    Row("followup", "GET", "/", "public", ALL_200, ALL_200, fixed("/")),
    # ---- followup: the links in emails (the signed token is the credential; other = B's message's link)
    Row("followup", "GET", "/u/<token>", "public", ALL_200, ALL_200, link("unsubscribe")),
    Row("followup", "POST", "/u/<token>", "public", ALL_200, ALL_200, link("unsubscribe")),
    Row("followup", "GET", "/o/<token>.gif", "public", ALL_200, ALL_200, link("open", ".gif")),
    Row("followup", "GET", "/c/<token>", "public", "302 302 302 302 302 302 302", "302 302 302 302 302 302 302",
        link("click", u="https://example.org/photos")),
    Row("followup", "GET", "/f/<token>", "public", ALL_200, ALL_200, link("feedback", rating="5")),
    Row("followup", "POST", "/f/<token>", "public", ALL_200, ALL_200, feedback_comment),
    Row("followup", "GET", "/i/<token>", "public", "404 404 404 404 404 404 404", "404 404 404 404 404 404 404",
        introduction_link, "introductions are matched when the follow-ups go out (hours later): none exists yet"),
    Row("followup", "POST", "/i/<token>", "public", "404 404 404 404 404 404 404", "404 404 404 404 404 404 404",
        introduction_link),
    Row("followup", "POST", "/api/v1/webhooks/bounces", "public", "503 503 503 503 503 503 503",
        "503 503 503 503 503 503 503", bounce,
        "no FOLLOWUP_WEBHOOK_SECRET on the test stack: refused before any principal is looked at"),
    # ---- followup JSON API
    Row("followup", "GET", "/api/v1/contacts", "api", "200 200 403 403 403 200 401", "200 200 403 403 403 200 401",
        fixed("/api/v1/contacts")),
    Row("followup", "GET", "/api/v1/contacts/<person_id>/consent", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/contacts/{c.org.person_id}/consent")),
    Row("followup", "GET", "/api/v1/events/<event_id>/messages", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{done_event(c)}/messages")),
    Row("followup", "GET", "/api/v1/events/<event_id>/preview", "api", VIEW, VIEW_OTHER, preview),
    Row("followup", "GET", "/api/v1/events/<event_id>/settings", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/settings")),
    Row("followup", "PATCH", "/api/v1/events/<event_id>/settings", "api", "200 200 403 403 403 200 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/events/{now_event(c)}/settings", json={"content": {"note": c.unique("note")}})),
    Row("followup", "GET", "/api/v1/messages/<followup_id>", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/messages/{followup_id(c)}")),
    Row("followup", "POST", "/api/v1/messages/<followup_id>/resolution", "api", "409 409 403 403 403 409 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/messages/{followup_id(c)}/resolution", json={"action": "mark_sent"}),
        "own: allowed, but a scheduled message has nothing to resolve (409)"),
    Row("followup", "GET", "/api/v1/settings", "api", VIEW, VIEW, fixed("/api/v1/settings")),
    Row("followup", "PATCH", "/api/v1/settings", "api", "200 200 403 403 403 200 401", "200 200 403 403 403 200 401",
        lambda c: Req("/api/v1/settings", json={"introductions_per_person": 3})),
    Row("followup", "GET", "/api/v1/suppressions", "api", "200 200 403 403 403 200 401",
        "200 200 403 403 403 200 401", fixed("/api/v1/suppressions")),
    Row("followup", "POST", "/api/v1/suppressions", "api", "201 201 403 403 403 201 401",
        "201 201 403 403 403 201 401",
        lambda c: Req("/api/v1/suppressions", json={"email": f"{c.unique('sup')}@example.org".lower()})),
    Row("followup", "DELETE", "/api/v1/suppressions/<address>", "api", "204 204 403 403 403 204 401",
        "404 404 403 403 403 404 401", delete_suppression, "other: an address on B's list is not on A's"),
    # ---- followup win-back drafts (the world has no regular at risk: a thank-you is no win-back, 404)
    Row("followup", "GET", "/api/v1/winback", "api", VIEW, VIEW, fixed("/api/v1/winback")),
    Row("followup", "PATCH", "/api/v1/winback/<followup_id>", "api", "404 404 403 403 403 404 401",
        "404 404 403 403 403 404 401",
        lambda c: Req(f"/api/v1/winback/{followup_id(c)}", json={"subject": "Hello", "body": "We miss you"}),
        "own: allowed, but a thank-you is not a win-back draft (404)"),
    Row("followup", "DELETE", "/api/v1/winback/<followup_id>", "api", "404 404 403 403 403 404 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/winback/{followup_id(c)}"),
        "own: allowed, but a thank-you is not a win-back draft (404)"),
    Row("followup", "POST", "/api/v1/winback/<followup_id>/approval", "api", "404 404 403 403 403 404 401",
        "404 404 403 403 403 404 401", lambda c: Req(f"/api/v1/winback/{followup_id(c)}/approval"),
        "own: allowed, but a thank-you is not a win-back draft (404)"),
    Row("followup", "POST", "/api/v1/winback/approvals", "api", "200 200 403 403 403 200 401",
        "200 200 403 403 403 200 401", lambda c: Req("/api/v1/winback/approvals", json={"ids": [followup_id(c)]}),
        "allowed; the id names no win-back of A's: counted in not_found, never echoed"),
    # ---- followup organizer pages (Bearer or cookie; signed out: to checkin's sign-in)
    Row("followup", "GET", "/winback", "page", "200 200 200 200 403 200 302", "200 200 200 200 403 200 302",
        fixed("/winback")),
    Row("followup", "POST", "/winback", "page", "409 409 403 403 403 409 302", "409 409 403 403 403 409 302",
        lambda c: Req("/winback", data={"action": "approve_selected", "ids": followup_id(c)}),
        "allowed; the id names no win-back draft of A's: the page again, with why (409)"),
    Row("followup", "GET", "/events/<event_id>/messages", "page", "200 200 200 200 403 200 302",
        "404 404 404 404 403 404 302", lambda c: Req(f"/events/{done_event(c)}/messages")),
    Row("followup", "GET", "/messages/<followup_id>", "page", "200 200 200 200 403 200 302",
        "404 404 404 404 403 404 302", lambda c: Req(f"/messages/{followup_id(c)}")),
    Row("followup", "GET", "/messages/<followup_id>/preview", "page", "200 200 200 200 403 200 302",
        "404 404 404 404 403 404 302", lambda c: Req(f"/messages/{followup_id(c)}/preview")),
    # ---- analytics: operations and static (public)
    Row("analytics", "GET", "/healthz", "public", ALL_200, ALL_200, fixed("/healthz")),
    Row("analytics", "GET", "/readyz", "public", ALL_200, ALL_200, fixed("/readyz")),
    Row("analytics", "GET", "/metrics", "public", ALL_200, ALL_200, fixed("/metrics")),
    Row("analytics", "GET", "/openapi.json", "public", ALL_200, ALL_200, fixed("/openapi.json")),
    Row("analytics", "GET", "/static/<path:filename>", "public", ALL_200, ALL_200, fixed("/static/dashboard.css")),
    # ---- analytics JSON API
    Row("analytics", "GET", "/api/v1/events", "api", VIEW, VIEW, fixed("/api/v1/events")),
    Row("analytics", "GET", "/api/v1/events/<event_id>/attendance", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{done_event(c)}/attendance")),
    Row("analytics", "GET", "/api/v1/events/<event_id>/report", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{done_event(c)}/report")),
    Row("analytics", "GET", "/api/v1/events/<event_id>/arrivals", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/arrivals")),
    Row("analytics", "GET", "/api/v1/events/<event_id>/lanes", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/lanes")),
    Row("analytics", "GET", "/api/v1/events/<event_id>/live", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/events/{now_event(c)}/live", stream=True)),
    Row("analytics", "GET", "/api/v1/overview", "api", VIEW, VIEW, fixed("/api/v1/overview")),
    Row("analytics", "GET", "/api/v1/trends", "api", VIEW, VIEW, fixed("/api/v1/trends")),
    Row("analytics", "GET", "/api/v1/retention", "api", VIEW, VIEW, fixed("/api/v1/retention")),
    Row("analytics", "GET", "/api/v1/funnel", "api", VIEW, VIEW, fixed("/api/v1/funnel")),
    Row("analytics", "GET", "/api/v1/people", "api", VIEW, VIEW, fixed("/api/v1/people")),
    Row("analytics", "GET", "/api/v1/people/loyalty", "api", VIEW, VIEW, fixed("/api/v1/people/loyalty")),
    Row("analytics", "GET", "/api/v1/people/at-risk", "api", VIEW, VIEW, fixed("/api/v1/people/at-risk")),
    Row("analytics", "GET", "/api/v1/people/<person_id>", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/people/{c.org.person_id}")),
    Row("analytics", "GET", "/api/v1/series/<series_id>", "api", VIEW, VIEW_OTHER,
        lambda c: Req(f"/api/v1/series/{c.org.series_id}")),
    # ---- analytics dashboard pages (a user's session cookie)
    Row("analytics", "GET", "/", "page", "302 302 302 302 401 401 401", "302 302 302 302 401 401 401", fixed("/")),
    Row("analytics", "GET", "/dashboard", "page", DASHBOARD, DASHBOARD, fixed("/dashboard")),
    Row("analytics", "GET", "/dashboard/at-risk", "page", DASHBOARD, DASHBOARD, fixed("/dashboard/at-risk")),
    Row("analytics", "GET", "/dashboard/funnel", "page", DASHBOARD, DASHBOARD, fixed("/dashboard/funnel")),
    Row("analytics", "GET", "/dashboard/people", "page", DASHBOARD, DASHBOARD, fixed("/dashboard/people")),
    Row("analytics", "GET", "/dashboard/retention", "page", DASHBOARD, DASHBOARD, fixed("/dashboard/retention")),
    Row("analytics", "GET", "/dashboard/events/<event_id>", "page", DASHBOARD, DASHBOARD_OTHER,
        lambda c: Req(f"/dashboard/events/{done_event(c)}")),
    Row("analytics", "GET", "/dashboard/events/<event_id>/live", "page", DASHBOARD, DASHBOARD_OTHER,
        lambda c: Req(f"/dashboard/events/{now_event(c)}/live")),
    Row("analytics", "GET", "/dashboard/series/<series_id>", "page", DASHBOARD, DASHBOARD_OTHER,
        lambda c: Req(f"/dashboard/series/{c.org.series_id}")),
]
# fmt: on


@dataclass(frozen=True)
class KnownBug:
    """Cells of one row that do not answer as written down, because of a bug
    the lead is to fix: they run in their own strict xfail test (a fix makes it
    XPASS, which fails: then delete the entry)."""

    service: str
    method: str
    rule: str
    reason: str
    principals: tuple[str, ...] = PRINCIPALS
    columns: tuple[str, ...] = ("own", "other")

    def covers(self, row: Row, principal: str, column: str) -> bool:
        return (
            row.key == (self.service, self.method, self.rule)
            and principal in self.principals
            and column in self.columns
        )


KNOWN_BUGS: list[KnownBug] = []


def known_bug(row: Row, principal: str, column: str) -> KnownBug | None:
    return next((bug for bug in KNOWN_BUGS if bug.covers(row, principal, column)), None)


# -- the routes each app serves ----------------------------------------------------------------------


@contextmanager
def service_environment(stack: RunningStack, service: str) -> Iterator[None]:
    env = stack.stack.service_env(service)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def served_routes(stack: RunningStack) -> set[tuple[str, str, str]]:
    """(service, method, rule) of every route in each app's URL map, the app built against the stack."""
    found: set[tuple[str, str, str]] = set()
    for service in SERVICES:
        with service_environment(stack, service):
            app = importlib.import_module(service).create_app()
        for rule in app.url_map.iter_rules():
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                found.add((service, method, rule.rule))
    return found


# -- running a cell ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    row: Row
    principal: str
    column: str  # "own" or "other"
    expected: int
    status: int = 0
    problems: list[str] = field(default_factory=list)


def _headers(row: Row, cell: Cell, req: Req) -> tuple[dict[str, str], dict[str, str]]:
    token = req.token or cell.me.tokens.get(cell.principal)
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if token is not None:
        headers.update(bearer(token))
        if row.kind != "api":
            cookies[SESSION_COOKIE] = token
    if row.kind != "api":
        headers["Origin"] = cell.me.url(row.service, "")
    if req.content_type:
        headers["Content-Type"] = req.content_type
    return headers, cookies


def run_cell(row: Row, me: Org, org: Org, principal: str, expected: int, leaks: set[str]) -> Outcome:
    column = "own" if org is me else "other"
    outcome = Outcome(row, principal, column, expected)
    cell = Cell(me, org, principal, expected)
    req = row.build(cell)
    headers, cookies = _headers(row, cell, req)
    url = me.url(row.service, req.path)
    answer = call(
        row.method,
        url,
        params=req.params,
        json=req.json,
        data=req.data,
        headers=headers,
        cookies=cookies,
        stream=req.stream,
    )
    outcome.status = answer.status_code
    if req.stream:
        text = next(answer.iter_content(256), b"").decode("utf-8", "replace")
        answer.close()
    else:
        text = answer.content.decode("utf-8", "replace")
    where = f"{row.method} {req.path} as {principal} ({column})"
    if answer.status_code != expected:
        outcome.problems.append(f"{where}: {answer.status_code}, expected {expected}: {text[:200]!r}")
    if answer.status_code >= 500 and expected < 500:
        outcome.problems.append(f"{where}: server error {answer.status_code}")
    if row.kind == "api" and answer.status_code in (401, 403, 404):
        try:
            error = json.loads(text)["error"]
            assert isinstance(error["code"], str) and error["code"]
        except (ValueError, KeyError, TypeError, AssertionError):
            outcome.problems.append(f"{where}: refusal {answer.status_code} is not a JSON error: {text[:200]!r}")
    if row.kind != "public":
        asked = " ".join(str(part) for part in (req.path, req.params, req.json, req.data))
        leaked = sorted(marker for marker in leaks if marker in text and marker not in asked)
        if leaked:
            outcome.problems.append(f"{where}: answer holds the other organization's {leaked[:5]}")
    return outcome


Spec = tuple[Row, Org, str, int]


def _cells(a: Org, b: Org) -> list[Spec]:
    cells = []
    for row in ROWS:
        for org in (a, b):
            for principal, expected in zip(PRINCIPALS, row.expected(org is b), strict=True):
                cells.append((row, org, principal, expected))
    return cells


def run_cells(a: Org, b: Org, cells: list[Spec]) -> list[Outcome]:
    leaks = b.markers()
    streams = [cell for cell in cells if cell[0].rule.endswith("/live") and cell[0].kind == "api"]
    others = [cell for cell in cells if cell not in streams]

    def run(cell: Spec) -> Outcome:
        row, org, principal, expected = cell
        return run_cell(row, a, org, principal, expected, leaks)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(run, others))
    # An accepted live stream holds a server thread until it notices the hang-up: two at a time.
    with ThreadPoolExecutor(2) as pool:
        outcomes += list(pool.map(run, streams))
    return outcomes


def test_every_route_has_a_row(running_stack: RunningStack) -> None:
    rows = Counter(row.key for row in ROWS)
    doubled = sorted(key for key, count in rows.items() if count > 1)
    served = served_routes(running_stack)
    missing = sorted(served - set(rows))
    stale = sorted(set(rows) - served)
    assert not doubled, f"routes with two rows: {doubled}"
    assert not missing, f"routes without a row in ROWS (decide who may call them): {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"


def test_the_leak_check_sees_the_other_organizations_data(world: tuple[Org, Org]) -> None:
    """The markers searched for in every answer are in B's own answers (so their absence means something)."""
    _, b = world
    markers = b.markers()
    for service, path in (
        ("checkin", f"/api/v1/events/{b.event_now['id']}/registrations"),
        ("followup", f"/api/v1/events/{b.event_done['id']}/messages"),
        ("analytics", "/api/v1/people"),
    ):
        text = call("GET", b.url(service, path), headers=b.owner).text
        assert any(marker in text for marker in markers), (service, path, text[:300])


def test_authorization_matrix(world: tuple[Org, Org]) -> None:
    a, b = world
    started = time.monotonic()
    cells = _cells(a, b)
    mine = [cell for cell in cells if known_bug(cell[0], cell[2], "own" if cell[1] is a else "other") is None]
    outcomes = run_cells(a, b, mine)
    problems = [problem for outcome in outcomes for problem in outcome.problems]
    problems.extend(b_resources_untouched(b))
    elapsed = time.monotonic() - started
    SUMMARY.append(
        f"authorization matrix: {len(ROWS)} routes x {len(PRINCIPALS)} principals x 2 organizations "
        f"= {len(cells)} cells ({len(cells) - len(mine)} of them known bugs, in their own xfail tests); "
        f"{len(mine)} run in {elapsed:.1f}s, {len(problems)} wrong"
    )
    print(SUMMARY[-1])
    assert not problems, f"{len(problems)} cells are wrong:\n" + "\n".join(problems[:60])


@pytest.mark.parametrize(
    "bug",
    [pytest.param(bug, marks=pytest.mark.xfail(strict=True, reason=bug.reason)) for bug in KNOWN_BUGS],
    ids=[f"{bug.service} {bug.method} {bug.rule}" for bug in KNOWN_BUGS],
)
def test_known_bug(world: tuple[Org, Org], bug: KnownBug) -> None:
    """The cells of a known bug answer as the table says they must (they do not yet)."""
    a, b = world
    cells = [cell for cell in _cells(a, b) if bug.covers(cell[0], cell[2], "own" if cell[1] is a else "other")]
    assert cells, f"{bug} covers no cell of the table"
    problems = [problem for outcome in run_cells(a, b, cells) for problem in outcome.problems]
    assert not problems, "\n".join(problems)


def b_resources_untouched(b: Org) -> list[str]:
    """After every call of A's principals: B's own event, kiosk, users and token are as B left them."""
    problems = []
    event = call("GET", b.url("checkin", f"/api/v1/events/{b.event_now['id']}"), headers=b.owner).json()
    if event.get("status") != "scheduled" or event.get("description"):
        problems.append(f"org B's event was changed by org A's calls: {event}")
    kiosks = call("GET", b.url("checkin", f"/api/v1/events/{b.event_now['id']}/kiosks"), headers=b.owner).json()
    paired = {k["id"]: k["status"] for k in kiosks["kiosks"]}
    if paired.get(b.kiosk_id) == "revoked":
        problems.append("org B's kiosk was revoked by org A's calls")
    users = call("GET", b.url("checkin", "/api/v1/users"), headers=b.owner).json()["users"]
    inactive = [u["email"] for u in users if not u["active"]]
    if inactive:
        problems.append(f"org B's users were deactivated by org A's calls: {inactive}")
    tokens = call("GET", b.url("checkin", "/api/v1/api-tokens"), headers=b.owner).json()["tokens"]
    revoked = [t["name"] for t in tokens if t["revoked"]]
    if revoked:
        problems.append(f"org B's API tokens were revoked by org A's calls: {revoked}")
    for role in USER_ROLES:
        if call("GET", b.url("checkin", "/api/v1/me"), headers=bearer(b.tokens[role])).status_code != 200:
            problems.append(f"org B's {role} can no longer call checkin")
    return problems
