"""A recurring series on the dashboard: each occurrence's figures from its own messages,
totals, returners and regulars across the series, and the link from an occurrence's report."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo import MongoClient

from tests.analytics.history import History, oid
from tests.analytics.integration.conftest import app_settings, auth, project_directly, token

pytestmark = pytest.mark.integration

Doc = dict[str, Any]


def series_history() -> tuple[History, str, list[dict[str, Any]]]:
    """Four weekly shifts: three held, one cancelled. Ann came to all three, Bo to two, Cy to one."""
    history = History()
    series_id = oid()
    first = datetime.now(UTC).replace(hour=23, minute=0, second=0, microsecond=0) - timedelta(weeks=4)
    shifts = []
    for number in range(1, 5):
        shift = history.event("Thursday Pantry Shift", "volunteer_shift", first + timedelta(weeks=number - 1))
        history.messages[-1].data.update(series_id=series_id, occurrence=number, name_labels=False)
        shifts.append(shift)
    ann, bo, cy, dee = oid(), oid(), oid(), oid()
    came = {0: [ann, bo, cy], 1: [ann, bo], 2: [ann]}
    for index, people in came.items():
        for person in [*people, dee]:
            history.register(shifts[index], person)
        for minute, person in enumerate(people):
            history.check_in(shifts[index], person, minutes=minute)
        history.end(shifts[index])
    history.cancel_event(shifts[3])
    history.messages[-1].data.update(series_id=series_id, occurrence=4)
    one_off = history.event("Board meeting", "meeting", first)  # in no series
    history.register(one_off, ann)
    history.check_in(one_off, ann, minutes=1)
    return history, series_id, shifts


@pytest.fixture(scope="module")
def series_db(mongo_client: MongoClient[Doc]) -> Iterator[tuple[str, History, str, list[dict[str, Any]]]]:
    from analytics.adapters.mongo import ensure_indexes

    name = f"t_analytics_series_{uuid.uuid4().hex[:8]}"
    db = mongo_client[name]
    ensure_indexes(db)
    history, series_id, shifts = series_history()
    project_directly(db, history.messages)
    yield name, history, series_id, shifts
    mongo_client.drop_database(name)


@pytest.fixture
def series_app(
    series_db: tuple[str, History, str, list[dict[str, Any]]], service_env: dict[str, str]
) -> Iterator[Flask]:
    from analytics import create_app

    application = create_app(app_settings(database=series_db[0]))
    yield application
    application.extensions["analytics"].client.close()


def test_the_series_report_adds_up_its_occurrences_and_finds_the_regulars(
    series_app: Flask, series_db: tuple[str, History, str, list[dict[str, Any]]]
) -> None:
    _, history, series_id, shifts = series_db
    client: FlaskClient = series_app.test_client()
    answer = client.get(f"/api/v1/series/{series_id}", headers=auth(history.org_id))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    report = answer.get_json()
    assert [row["occurrence"] for row in report["occurrences"]] == [1, 2, 3, 4]
    assert [row["event_id"] for row in report["occurrences"]] == [shift["event_id"] for shift in shifts]
    assert [row["checked_in"] for row in report["occurrences"]] == [3, 2, 1, 0]
    assert [row["status"] for row in report["occurrences"]] == ["ended", "ended", "ended", "cancelled"]
    totals = report["totals"]
    assert (totals["held"], totals["cancelled"], totals["checked_in"], totals["registered"]) == (
        3,
        1,
        6,
        9,
    )  # registered: 4 + 3 + 2 (Dee never came)
    assert totals["average_checked_in"] == 2.0 and totals["show_rate"] == pytest.approx(0.667, abs=0.001)
    # Ann at 3 of 3, Bo at 2, Cy at 1; the one-off meeting Ann also came to does not count.
    assert (report["people"], report["returners"], report["returner_share"]) == (3, 2, 0.667)
    assert (report["regular_at"], report["regulars"]) == (3, 1)
    assert report["by_occurrences_attended"] == [
        {"occurrences": 1, "people": 1},
        {"occurrences": 2, "people": 1},
        {"occurrences": 3, "people": 1},
    ]


def test_series_are_scoped_to_the_organization_and_unknown_ones_are_404(
    series_app: Flask, series_db: tuple[str, History, str, list[dict[str, Any]]]
) -> None:
    _, history, series_id, _ = series_db
    client = series_app.test_client()
    assert client.get(f"/api/v1/series/{series_id}", headers=auth(oid())).status_code == 404
    missing = client.get(f"/api/v1/series/{oid()}", headers=auth(history.org_id))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "series_not_found"
    assert client.get("/api/v1/series/not%20an%20id", headers=auth(history.org_id)).status_code in (400, 404)


def test_an_occurrence_report_links_to_its_series_page(
    series_app: Flask, series_db: tuple[str, History, str, list[dict[str, Any]]]
) -> None:
    _, history, series_id, shifts = series_db
    client = series_app.test_client()
    client.set_cookie("turnout_session", token(history.org_id))
    page = client.get(f"/dashboard/events/{shifts[1]['event_id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"/dashboard/series/{series_id}" in html and "Occurrence 2 of a series" in html
    series_page = client.get(f"/dashboard/series/{series_id}")
    assert series_page.status_code == 200
    text = series_page.get_data(as_text=True)
    assert "Attendance per occurrence" in text and "Regulars across the series" in text
    assert "3 occurrences" in text  # Ann's row in the regulars table
