"""The dashboard's API and pages on a populated database: organization scoping,
4xx JSON for every kind of bad input, the OpenAPI document, CSV exports, the
pages with and without Chart.js, the sign-in link, and the live stream."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo import MongoClient

from analytics.adapters.mongo import ProjectionStore
from analytics.service_layer.projector import apply_batch
from tests.analytics.history import Scripted
from tests.analytics.integration.conftest import auth, token
from turnout_common.web import DEFAULT_CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.integration

Doc = dict[str, Any]

TABLES = [
    "/api/v1/events",
    "/api/v1/trends",
    "/api/v1/retention",
    "/api/v1/funnel",
    "/api/v1/people",
    "/api/v1/people/at-risk",
]
PAGES = [
    "/dashboard",
    "/dashboard/retention",
    "/dashboard/at-risk",
    "/dashboard/people",
    "/dashboard/funnel",
]


def _error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def test_every_route_is_documented_in_openapi(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        assert path in spec["paths"], path
        for method in spec["paths"][path].values():
            assert method["summary"] != "(undocumented)", path
    live = spec["paths"]["/api/v1/events/{event_id}/live"]["get"]
    assert "text/event-stream" in live["responses"]["200"]["content"]


def test_another_organization_sees_nothing(client: FlaskClient, scripted: Scripted) -> None:
    stranger = auth(scripted.other.org_id)
    events = client.get("/api/v1/events", headers=stranger).get_json()["events"]
    assert [e["title"] for e in events] == ["Other org meetup"]
    e1 = scripted.events["e1"]["event_id"]
    for path in (f"/api/v1/events/{e1}/attendance", f"/api/v1/events/{e1}/report", f"/api/v1/events/{e1}/live"):
        _error(client.get(path, headers=stranger), 404, "event_not_found")
    _error(client.get(f"/api/v1/people/{scripted.people['ana']}", headers=stranger), 404, "person_not_found")
    people = client.get("/api/v1/people", headers=stranger).get_json()["people"]
    assert [p["name"].split()[0] for p in people] == ["Zed"]
    assert client.get("/api/v1/funnel", headers=stranger).get_json() == {"kinds": []}
    assert client.get("/api/v1/people/at-risk", headers=stranger).get_json() == {"people": []}
    retention = client.get("/api/v1/retention", headers=stranger).get_json()
    assert retention["people"] == 1
    stranger_cookie = token(scripted.other.org_id)
    client.set_cookie("turnout_session", stranger_cookie)
    page = client.get(f"/dashboard/events/{e1}")
    assert page.status_code == 404
    assert "Sorting shift" not in client.get("/dashboard").get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/events?from=2026-13-01", 400, "invalid_date"),
        ("/api/v1/events?from=yesterday", 400, "invalid_date"),
        ("/api/v1/events?from=%ff%fe", 400, "invalid_date"),
        ("/api/v1/events?from=2026-03-10&to=2026-03-01", 400, "invalid_range"),
        ("/api/v1/events?kind=party", 400, "invalid_kind"),
        ("/api/v1/events?kind=%00", 400, "invalid_kind"),
        ("/api/v1/trends?kind[$ne]=x&kind=meetup", 400, "invalid_kind"),
        ("/api/v1/events?format=xml", 400, "invalid_format"),
        ("/api/v1/retention?to=1-1-1", 400, "invalid_date"),
        ("/api/v1/funnel?from=2026-02-30", 400, "invalid_date"),
        ("/api/v1/people?limit=0", 400, "invalid_number"),
        ("/api/v1/people?limit=abc", 400, "invalid_number"),
        ("/api/v1/people?offset=-1", 400, "invalid_number"),
        ("/api/v1/people?limit=99999999999999999999", 400, "invalid_number"),
        ("/api/v1/people/at-risk?limit=501", 400, "invalid_number"),
        ("/api/v1/events/" + "x" * 65 + "/report", 404, "event_not_found"),
        ("/api/v1/events/nope/attendance", 404, "event_not_found"),
        ("/api/v1/events/nope/arrivals?format=csv", 404, "event_not_found"),
        ("/api/v1/events/nope/lanes", 404, "event_not_found"),
        ("/api/v1/events/nope/live", 404, "event_not_found"),
        ("/api/v1/people/nope", 404, "person_not_found"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ],
)
def test_bad_input_gets_a_4xx_json_error(
    client: FlaskClient, scripted: Scripted, path: str, status: int, code: str
) -> None:
    _error(client.get(path, headers=auth(scripted.history.org_id)), status, code)


def test_callers_without_a_valid_session_are_refused(client: FlaskClient, scripted: Scripted) -> None:
    for path in TABLES:
        _error(client.get(path), 401, "unauthenticated")
        _error(client.get(path, headers={"Authorization": "Bearer forged.token"}), 401, "invalid_token")
    kiosk = token(scripted.history.org_id, role="kiosk", kind="kiosk")
    _error(client.get("/api/v1/events", headers={"Authorization": f"Bearer {kiosk}"}), 403, "forbidden")
    _error(client.post("/api/v1/events", headers=auth(scripted.history.org_id)), 405, "method_not_allowed")


def test_every_table_exports_spreadsheet_safe_csv(
    client: FlaskClient, scripted: Scripted, populated: tuple[str, Scripted], mongo_client: MongoClient[Doc]
) -> None:
    org = scripted.history.org_id
    # A person whose name is a formula.
    e2 = scripted.events["e2"]
    scripted.history.register(e2, "mallory-0001", name='=HYPERLINK("http://evil.example","click")')
    scripted.history.check_in(e2, "mallory-0001", 20, kiosk="@door")
    apply_batch(ProjectionStore(mongo_client[populated[0]]), scripted.history.messages[-2:])
    headers = auth(org)
    e1 = scripted.events["e1"]["event_id"]
    for path in [*TABLES, f"/api/v1/events/{e1}/arrivals", f"/api/v1/events/{e1}/lanes"]:
        response = client.get(path + ("&" if "?" in path else "?") + "format=csv", headers=headers)
        assert response.status_code == 200, path
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment; filename=")
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
        assert len(rows) >= 2, path
        for row in rows:
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (path, cell)
                if cell.startswith("-"):
                    float(cell)  # only real (negative) numbers may start with a minus
    people = client.get("/api/v1/people?format=csv", headers=headers).get_data(as_text=True)
    assert "'=HYPERLINK(" in people
    lanes = client.get(f"/api/v1/events/{e2['event_id']}/lanes?format=csv", headers=headers).get_data(as_text=True)
    assert "'@door" in lanes
    arrivals = client.get(f"/api/v1/events/{e1}/arrivals?format=csv", headers=headers).get_data(as_text=True)
    assert "\r\n-10," in arrivals


def test_pages_need_the_checkin_session_and_link_to_its_sign_in(client: FlaskClient) -> None:
    for path in ["/", *PAGES]:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["Content-Security-Policy"] == DEFAULT_CONTENT_SECURITY_POLICY
        text = response.get_data(as_text=True)
        assert "http://checkin.test:8001/login?next=http%3A%2F%2Flocalhost%2F" in text
    client.set_cookie("turnout_session", "forged")
    assert client.get("/dashboard").status_code == 401


def test_pages_render_charts_and_their_tables(client: FlaskClient, scripted: Scripted) -> None:
    client.set_cookie("turnout_session", token(scripted.history.org_id))
    assert client.get("/").status_code == 302
    e1, e4 = scripted.events["e1"]["event_id"], scripted.events["e4"]["event_id"]
    expectations = {
        "/dashboard": ["Attendance by month and kind", "Sorting shift", "Happening now", 'data-chart="trend"'],
        "/dashboard?kind=workshop&from=2020-01-01": ["No events in this range."],
        "/dashboard/retention": ["Cohort retention", "heat-", 'data-chart="retention"'],
        "/dashboard/at-risk": ["Ana Person"],
        "/dashboard/people": ["Ana Person", "Longest streak"],
        "/dashboard/funnel": ["We missed you", 'data-chart="funnel"'],
        f"/dashboard/events/{e1}": [
            "Arrival curve",
            "-10 to -5 min",
            "door-a",
            "Staffing hint",
            'data-chart="arrivals"',
        ],
        f"/dashboard/events/{e4}/live": ['data-live-url="/api/v1/events/', 'id="live-count"', "door-a"],
    }
    for path, needles in expectations.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == DEFAULT_CONTENT_SECURITY_POLICY
        text = response.get_data(as_text=True)
        for needle in needles:
            assert needle in text, (path, needle)
    assert client.get("/dashboard?from=2026-02-31").status_code == 400
    assert client.get("/dashboard/people?page=0").status_code == 400
    not_found = client.get("/dashboard/events/nope")
    assert not_found.status_code == 404
    assert not_found.headers["Content-Security-Policy"] == DEFAULT_CONTENT_SECURITY_POLICY
    assert client.get("/static/dashboard.js").status_code == 200


def test_pages_keep_their_tables_without_the_chart_library(
    client: FlaskClient, scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics.entrypoints import pages

    client.set_cookie("turnout_session", token(scripted.history.org_id))
    with_charts = client.get(f"/dashboard/events/{scripted.events['e1']['event_id']}").get_data(as_text=True)
    assert "vendor/chart.umd.js" in with_charts or not pages.os.path.isfile(pages.VENDOR)
    monkeypatch.setattr(pages, "VENDOR", "/nonexistent/chart.umd.js")
    text = client.get(f"/dashboard/events/{scripted.events['e1']['event_id']}").get_data(as_text=True)
    assert "vendor/chart.umd.js" not in text
    assert '<details class="table-alt" open>' in text
    assert "-10 to -5 min" in text


def test_the_live_stream_sends_a_new_count_after_a_check_in(
    client: FlaskClient, scripted: Scripted, populated: tuple[str, Scripted], mongo_client: MongoClient[Doc]
) -> None:
    e4 = scripted.events["e4"]
    response = client.get(
        f"/api/v1/events/{e4['event_id']}/live", headers=auth(scripted.history.org_id), buffered=False
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert next(chunks).startswith(b"retry: ")
    first = next(chunks).decode()
    assert first.startswith("event: figures\n")
    start = json.loads(first.split("data: ", 1)[1])["checked_in"]
    scripted.history.check_in(e4, scripted.people["ana"], 40, kiosk="door-b")
    apply_batch(ProjectionStore(mongo_client[populated[0]]), scripted.history.messages[-1:])
    seen = []
    for chunk in chunks:
        text = chunk.decode()
        seen.append(text)
        if text.startswith("event: figures"):
            figures = json.loads(text.split("data: ", 1)[1])
            assert figures["checked_in"] == start + 1
            assert {lane["kiosk_id"] for lane in figures["lanes"]} >= {"door-a", "door-b"}
            break
    else:
        pytest.fail(f"no new figures in the stream: {seen}")
    response.close()
    # The stream ends by itself (ANALYTICS_LIVE_MAX_SECONDS) with a reconnect event.
    again = client.get(f"/api/v1/events/{e4['event_id']}/live", headers=auth(scripted.history.org_id))
    assert "event: reconnect" in again.get_data(as_text=True)
