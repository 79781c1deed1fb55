"""Bad input on the launched stack: each gets a clear 4xx or is neutralised.

MongoDB operator injection, invalid UTF-8 and lone surrogates, bodies over
the limit, deep nesting, CSV imports with huge rows or binary content,
formula injection in every CSV export, header injection through a name or an
email, and errors that never echo an unbounded input back.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.utils import formataddr
from typing import Any

import pytest
import requests

from tests.e2e.stack import RunningStack
from tests.security.fuzz_support import demo_session

pytestmark = pytest.mark.e2e

TIMEOUT = 60
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Names a spreadsheet would run as formulas (the "=HYPERLINK" attack, DDE, ...).
FORMULA_NAMES = ('=HYPERLINK("http://x.example","y")', "+1+1", "-2+3", "@SUM(1)", "\tTabbed", "\rReturned")


class Demo:
    """The demo organization, signed in with a session of its own, and an open event of its own."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.headers = demo_session(stack)
        self.tag = uuid.uuid4().hex[:6]
        now = datetime.now(UTC)
        self.event_id = self.ok(
            self.call(
                "POST",
                "checkin",
                "/api/v1/events",
                json={
                    "title": f"=Bad input {self.tag}",
                    "kind": "workshop",
                    "starts_at": (now - timedelta(minutes=30)).isoformat(),
                    "ends_at": (now + timedelta(hours=3)).isoformat(),
                    "timezone": "Europe/Berlin",
                },
            ),
            201,
        )["id"]

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return requests.request(method, self.stack.url(service, path), headers=headers, **kwargs)

    @staticmethod
    def ok(answer: requests.Response, *statuses: int) -> Any:
        assert answer.status_code in (statuses or (200, 201)), (answer.url, answer.status_code, answer.text[:300])
        return answer.json()

    def register(self, first: str, last: str = "", **extra: Any) -> requests.Response:
        body = {
            "first_name": first,
            "last_name": last or f"Bad{self.tag}",
            "email": f"bad-{uuid.uuid4().hex[:10]}@example.org",
            "consent_email": True,
            **extra,
        }
        return self.call("POST", "checkin", f"/api/v1/events/{self.event_id}/registrations", json=body)


@pytest.fixture(scope="module")
def demo(running_stack: RunningStack) -> Demo:
    return Demo(running_stack)


def refused(answer: requests.Response, *statuses: int, code: str | None = None) -> dict[str, Any]:
    """A clear 4xx: the expected status and the JSON error shape."""
    assert answer.status_code in statuses, (answer.url, answer.status_code, answer.text[:300])
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers["Content-Type"]
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


# -- MongoDB operator injection -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"email": {"$ne": None}, "password": {"$ne": None}},
        {"email": "demo@turnout.localhost", "password": {"$gt": ""}},
        {"email": {"$regex": ".*"}, "password": "x"},
        {"email": {"$where": "return true"}, "password": "x"},
        {"$where": "sleep(1000)", "email": "a@b.c", "password": "x"},
    ],
)
def test_operators_in_the_sign_in_body_are_refused(demo: Demo, body: dict[str, Any]) -> None:
    answer = requests.post(demo.stack.url("checkin", "/api/v1/auth/login"), json=body, timeout=TIMEOUT)
    refused(answer, 400)
    assert "token" not in answer.text


def test_operator_strings_are_plain_text(demo: Demo) -> None:
    # A JavaScript `$where` or a regex in a string value is only text: no sign-in, no match for all.
    for email in ("' || '1'=='1", "demo@turnout.localhost' || 'a'=='a", "$where: function() { return true }"):
        answer = requests.post(
            demo.stack.url("checkin", "/api/v1/auth/login"), json={"email": email, "password": "x"}, timeout=TIMEOUT
        )
        refused(answer, 401, 429)
    demo.ok(demo.register("Plain"))
    for query in (".*", "$where", '{"$ne": null}', "[a-z]+", "^"):
        found = demo.ok(
            demo.call("GET", "checkin", f"/api/v1/events/{demo.event_id}/registrations/search", params={"q": query})
        )
        assert found["results"] == [], (query, found)


@pytest.mark.parametrize(
    ("service", "method", "path", "body"),
    [
        (
            "checkin",
            "POST",
            "/api/v1/events/{event}/registrations",
            {"first_name": "X", "email": {"$ne": None}, "consent_email": True},
        ),
        (
            "checkin",
            "POST",
            "/api/v1/events/{event}/registrations",
            {"first_name": {"$gt": ""}, "email": "a@b.co", "consent_email": True},
        ),
        ("checkin", "PATCH", "/api/v1/events/{event}", {"title": {"$set": {"org_id": "other"}}}),
        ("checkin", "PATCH", "/api/v1/events/{event}", {"$set": {"org_id": "other"}}),
        ("checkin", "PATCH", "/api/v1/events/{event}", {"venue.org_id": "other"}),
        ("followup", "POST", "/api/v1/suppressions", {"email": {"$where": "1 == 1"}}),
        ("followup", "PATCH", "/api/v1/settings", {"$unset": {"org_id": 1}}),
    ],
)
def test_operators_and_dotted_keys_in_bodies_are_refused(
    demo: Demo, service: str, method: str, path: str, body: dict[str, Any]
) -> None:
    refused(demo.call(method, service, path.format(event=demo.event_id), json=body), 400)


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("checkin", "/api/v1/events?status[$ne]=x&limit[$gt]=0"),
        ("checkin", "/api/v1/events/{event}/registrations?q[$regex]=.*"),
        ("analytics", "/api/v1/people?limit[$gt]=0&offset[$ne]=1"),
        ("analytics", "/api/v1/events?kind[$ne]=x"),
        ("followup", "/api/v1/contacts?email[$ne]=x"),
    ],
)
def test_operator_syntax_in_query_strings_is_only_text(demo: Demo, service: str, path: str) -> None:
    answer = demo.call("GET", service, path.format(event=demo.event_id))
    assert answer.status_code in (200, 400), (path, answer.status_code, answer.text[:300])
    assert answer.headers["Content-Type"].startswith("application/json")


# -- encodings ----------------------------------------------------------------------------------


def test_invalid_utf8_in_a_json_body_is_refused(demo: Demo) -> None:
    for raw in (
        b'{"email": "\xff\xfe@x.org", "password": "x"}',
        b'{"email": "a\xc3@x.org", "password": "\xed\xa0\x80"}',
    ):
        answer = requests.post(
            demo.stack.url("checkin", "/api/v1/auth/login"),
            data=raw,
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
        refused(answer, 400, code="bad_encoding")


def test_lone_surrogates_in_a_json_body_are_refused(demo: Demo) -> None:
    raw = '{"first_name": "A\\ud800", "email": "s@example.org", "consent_email": true}'
    answer = demo.call(
        "POST",
        "checkin",
        f"/api/v1/events/{demo.event_id}/registrations",
        data=raw.encode(),
        headers={"Content-Type": "application/json"},
    )
    refused(answer, 400, code="bad_encoding")
    answer = demo.call(
        "POST",
        "followup",
        "/api/v1/suppressions",
        data=b'{"email": "\\udfff@example.org"}',
        headers={"Content-Type": "application/json"},
    )
    refused(answer, 400)


@pytest.mark.parametrize("junk", ["%FF%FE", "%ED%A0%80", "%C3", "a%00b", "%F4%90%80%80"])
def test_invalid_utf8_and_surrogates_in_query_strings_and_paths(demo: Demo, junk: str) -> None:
    for service, path in (
        ("checkin", f"/api/v1/events/{demo.event_id}/registrations/search?q={junk}"),
        ("checkin", f"/api/v1/events/{junk}"),
        ("analytics", f"/api/v1/people?limit={junk}"),
        ("analytics", f"/api/v1/events/{junk}/report"),
        ("followup", f"/api/v1/events/{junk}/messages"),
        ("followup", f"/api/v1/events/{demo.event_id}/preview?nudge={junk}"),
    ):
        answer = demo.call("GET", service, path)
        assert answer.status_code in (200, 400, 404), (path, answer.status_code, answer.text[:300])
        assert answer.headers["Content-Type"].startswith("application/json"), path


# -- sizes and nesting -----------------------------------------------------------------------------


def test_bodies_over_the_limit_get_a_json_413(demo: Demo) -> None:
    # checkin takes CSV imports up to 16 MB; followup and analytics 1 MB.
    for service, path, size in (
        ("checkin", "/api/v1/auth/login", 17 * 1024 * 1024),
        ("followup", "/api/v1/settings", 2 * 1024 * 1024),
        ("followup", "/api/v1/webhooks/bounces", 2 * 1024 * 1024),
    ):
        body = b'{"email": "' + b"a" * size + b'"}'
        method = "PATCH" if path.endswith("settings") else "POST"
        try:
            answer = demo.call(method, service, path, data=body, headers={"Content-Type": "application/json"})
        except requests.ConnectionError:  # the server may close before reading it all: also a refusal
            continue
        error = refused(answer, 413, code="body_too_large")
        assert len(answer.content) < 2048, error


@pytest.mark.parametrize("depth", [64, 500, 10_000])
def test_deep_nesting_is_a_clear_400(demo: Demo, depth: int) -> None:
    arrays = "[" * depth + "]" * depth
    objects = '{"a":' * depth + "1" + "}" * depth
    for nested in (arrays, objects):
        for service, method, path, prefix in (
            ("checkin", "POST", "/api/v1/auth/login", '{"email": "a@b.co", "password": '),
            ("checkin", "POST", f"/api/v1/events/{demo.event_id}/registrations", '{"consent_email": true, "offers": '),
            ("followup", "PATCH", "/api/v1/settings", '{"branding": '),
        ):
            body = f"{prefix}{nested}}}".encode()
            answer = demo.call(method, service, path, data=body, headers={"Content-Type": "application/json"})
            refused(answer, 400)


# -- CSV imports ----------------------------------------------------------------------------------


def _upload(demo: Demo, data: bytes, path: str = "/api/v1/imports/preview", **params: str) -> requests.Response:
    return demo.call("POST", "checkin", path, data=data, params=params, headers={"Content-Type": "text/csv"})


def test_binary_files_are_refused_as_not_csv(demo: Demo) -> None:
    for data in (
        b"name,email\n\x00\x01\x02\xff,x\n",
        b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8,  # an .xlsx (zip) file
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512),  # an .xls (OLE) file
        bytes(range(256)) * 64,
    ):
        refused(_upload(demo, data), 400)
        refused(_upload(demo, data, f"/api/v1/events/{demo.event_id}/imports"), 400)


def test_huge_rows_are_refused_or_read_within_bounds(demo: Demo) -> None:
    huge_cell = b"first_name,last_name,email\n" + b"x" * 300_000 + b",y,a@example.org\n"
    refused(_upload(demo, huge_cell), 400)
    many_columns = b"first_name,last_name,email\n" + b"a,b,c@example.org," + b"z," * 2_000_000 + b"\n"
    answer = _upload(demo, many_columns)
    assert answer.status_code in (200, 400, 413), (answer.status_code, answer.text[:300])
    assert len(answer.content) < 100_000  # extra cells are ignored, never echoed back
    too_big = b"first_name,last_name,email\n" + b"a,b,c@example.org\n" * 1_000_000  # 18 MB
    try:
        answer = _upload(demo, too_big)
        refused(answer, 413)
    except requests.ConnectionError:
        pass


# -- formula injection in every CSV export -----------------------------------------------------------


def _cells(text: str) -> Iterator[str]:
    for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))):
        yield from row


def _formula(cell: str) -> bool:
    if not cell.startswith(FORMULA_START):
        return False
    try:
        float(cell)  # a real (negative) number is written as a number: no formula
    except ValueError:
        return True
    return False


def test_no_csv_export_starts_a_cell_with_a_formula(demo: Demo) -> None:
    surname = f"Csv{demo.tag}"
    registrations = [demo.ok(demo.register(name, surname)) for name in FORMULA_NAMES]
    for reg in registrations:
        body = {"badge_code": reg["badge_code"], "client_key": f"bad-input-{uuid.uuid4().hex}"}
        demo.ok(demo.call("POST", "checkin", f"/api/v1/events/{demo.event_id}/checkins", json=body), 201)

    # checkin: an import's error report (rows refused for their email, named like formulas)
    rows = "".join(f"{name},{surname},not-an-email-{i}\n" for i, name in enumerate(FORMULA_NAMES))
    rows += "=cmd|'/C calc'!A0,x,=1+1\n"
    job = demo.ok(
        _upload(
            demo,
            ("first_name,last_name,email\n" + rows).encode(),
            f"/api/v1/events/{demo.event_id}/imports",
            format="generic",
            mapping='{"first_name":"first_name","last_name":"last_name","email":"email"}',
        ),
        202,
    )
    deadline = time.monotonic() + 60
    exports: dict[str, str] = {}
    while True:
        state = demo.ok(demo.call("GET", "checkin", f"/api/v1/imports/{job['id']}"))
        if state["status"] in ("done", "failed"):
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.3)
    answer = demo.call("GET", "checkin", f"/api/v1/imports/{job['id']}/errors.csv")
    assert answer.status_code == 200
    exports["checkin errors.csv"] = answer.content.decode("utf-8-sig")
    assert "'=HYPERLINK" in exports["checkin errors.csv"]

    # analytics: every route with a CSV format, once the check-ins have arrived there
    def arrived() -> bool:
        events = demo.ok(demo.call("GET", "analytics", "/api/v1/events"))["events"]
        mine = [event for event in events if event["event_id"] == demo.event_id]
        return bool(mine) and mine[0]["checked_in"] >= len(FORMULA_NAMES)

    deadline = time.monotonic() + 90
    while not arrived():
        assert time.monotonic() < deadline, "the check-ins did not reach analytics within 90 s"
        time.sleep(0.5)
    spec = demo.ok(demo.call("GET", "analytics", "/openapi.json"))
    csv_routes = {
        path: {param["name"] for param in operation.get("parameters", [])}
        for path, methods in spec["paths"].items()
        for operation in methods.values()
        if any(param["name"] == "format" for param in operation.get("parameters", []))
    }
    assert len(csv_routes) >= 8, csv_routes
    for path, names in csv_routes.items():
        # Every page of a paged export: the session's stack holds other suites' people too,
        # so ours need not be on the first page.
        pages: list[str] = []
        offset = 0
        while True:
            params = {"format": "csv", **({"limit": "500", "offset": str(offset)} if "limit" in names else {})}
            answer = demo.call("GET", "analytics", path.replace("{event_id}", demo.event_id), params=params)
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
            assert answer.headers["Content-Type"].startswith("text/csv"), path
            text = answer.content.decode("utf-8-sig")
            pages.append(text)
            rows = len(text.splitlines()) - 1
            if "limit" not in names or rows < 500:
                break
            offset += 500
        exports[f"analytics {path}"] = "".join(pages)
    assert "'=HYPERLINK" in exports["analytics /api/v1/people"]
    assert f"'=Bad input {demo.tag}" in exports["analytics /api/v1/events"]

    for where, text in exports.items():
        bad = [cell for cell in _cells(text) if _formula(cell)]
        assert not bad, (where, bad)


# -- header injection through names and emails -----------------------------------------------------


def test_line_breaks_in_an_email_are_refused_at_registration(demo: Demo) -> None:
    for email in ("eve@example.org\r\nBcc: x@y.example", "eve@example.org\nBcc: x@y.example", "eve\r@example.org"):
        answer = demo.call(
            "POST",
            "checkin",
            f"/api/v1/events/{demo.event_id}/registrations",
            json={"first_name": "Eve", "email": email, "consent_email": True},
        )
        refused(answer, 400)


def test_line_breaks_in_a_name_never_reach_a_mail_header(demo: Demo) -> None:
    """A name may carry them (refused or stored); the rendered message neutralises them."""
    from followup.adapters.rendering import compose_mime

    name = "Eve\r\nBcc: x@y.example"
    answer = demo.register(name, "Mallory\nX-Injected: yes")
    assert answer.status_code in (201, 400), answer.text[:300]
    # What followup's renderer makes of a contact so named: the To header as
    # content.draft_for builds it, the subject with the name in it.
    to_header = formataddr((f"{name} Mallory\nX-Injected: yes", "eve@example.org"))
    raw = compose_mime(
        [("To", to_header), ("Subject", f"Thanks for coming, {name}"), ("From", "Turnout <hello@example.org>")],
        "text",
        "<p>html</p>",
        boundary="=_turnout_test",
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert [address.addr_spec for address in message["To"].addresses] == ["eve@example.org"]
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert all(not line.lower().startswith((b"bcc:", b"x-injected:")) for line in header_block.split(b"\r\n"))


# -- errors never echo an unbounded input ------------------------------------------------------------

FIVE_MB = 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("service", "method", "path", "body"),
    [
        ("checkin", "POST", "/api/v1/auth/login", {"email": "a" * FIVE_MB, "password": "x"}),
        ("checkin", "POST", "/api/v1/auth/login", {"email": "a@b.co", "password": "x", "k" * FIVE_MB: 1}),
        (
            "checkin",
            "POST",
            "/api/v1/events/{event}/registrations",
            {"first_name": "x" * FIVE_MB, "email": "a@b.co", "consent_email": True},
        ),
        (
            "checkin",
            "POST",
            "/api/v1/events/{event}/registrations",
            {"first_name": "x", "email": "@" * FIVE_MB, "consent_email": True},
        ),
        (
            "checkin",
            "POST",
            "/api/v1/events",
            {
                "title": "t",
                "kind": "meeting",
                "starts_at": "2030-01-01T10:00:00Z",
                "ends_at": "2030-01-01T12:00:00Z",
                "timezone": "Z" * FIVE_MB,
            },
        ),
        ("checkin", "PATCH", "/api/v1/events/{event}", {"kind": "k" * FIVE_MB}),
        ("checkin", "POST", "/api/v1/events/{event}/checkins", {"client_key": "c" * FIVE_MB, "badge_code": "b"}),
        ("checkin", "POST", "/api/v1/kiosk/pair", {"code": "9" * FIVE_MB}),
        ("followup", "POST", "/api/v1/suppressions", {"email": "e" * 900_000}),
        ("followup", "PATCH", "/api/v1/settings", {"x" * 900_000: 1}),
    ],
)
def test_an_error_never_echoes_a_huge_value(
    demo: Demo, service: str, method: str, path: str, body: dict[str, Any]
) -> None:
    answer = demo.call(method, service, path.format(event=demo.event_id), json=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert len(answer.content) < 2048, answer.text[:300]


# -- the calendar's ends ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dates",
    [
        {"from": "0001-01-01", "to": "9999-12-31"},
        {"from": "9999-12-31"},
        {"to": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-01"},
    ],
)
def test_analytics_date_filters_take_the_first_and_last_day_there_is(demo: Demo, dates: dict[str, str]) -> None:
    """``to=9999-12-31`` was a 500 (OverflowError: the day after it does not exist)."""
    for path in ("/api/v1/events", "/api/v1/overview", "/api/v1/trends", "/api/v1/retention", "/api/v1/funnel"):
        answer = demo.call("GET", "analytics", path, params=dates)
        assert answer.status_code == 200, (path, dates, answer.status_code, answer.text[:300])
    for path in ("/dashboard", "/dashboard/retention", "/dashboard/funnel"):
        session = {"turnout_session": demo.headers["Authorization"].removeprefix("Bearer ")}
        answer = demo.call("GET", "analytics", path, params=dates, headers={"Authorization": ""}, cookies=session)
        assert answer.status_code == 200, (path, dates, answer.status_code, answer.text[:300])
