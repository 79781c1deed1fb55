"""A recurring series from the organizer's pages, on the real SecantusDB: the new-event form's
"Repeats" fields schedule the whole series in one step (or say what to fix), the events list shows
the series as one line, an occurrence's page places it in its series, and its edit and cancel
forms offer "this occurrence" or "this and following"."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.checkin.integration.conftest import Org
from tests.checkin.integration.test_pages import SAME_SITE, browser, text_of

pytestmark = pytest.mark.integration

CHICAGO = ZoneInfo("America/Chicago")


def next_weekday(weekday: int, after: date) -> date:
    return after + timedelta(days=(weekday - after.weekday()) % 7 or 7)


def form(**changes: str) -> dict[str, str]:
    """A Saturday-morning shift a few days ahead, repeating weekly 8 times."""
    day = next_weekday(5, date.today() + timedelta(days=2)).isoformat()
    values = {
        "title": "Weekly food bank shift",
        "kind": "volunteer_shift",
        "starts_at": f"{day}T09:00",
        "ends_at": f"{day}T12:00",
        "timezone": "America/Chicago",
        "venue": "Warehouse",
        "repeat": "weekly",
        "repeat_interval": "1",
        "monthly_by": "day_of_month",
        "repeat_end": "count",
        "repeat_count": "8",
        "repeat_until": "",
    }
    values.update(changes)
    return values


def created(app: Flask, client: FlaskClient, values: dict[str, str]) -> list[dict[str, Any]]:
    response = client.post("/events", data=values, headers=SAME_SITE)
    assert response.status_code == 303, text_of(response)[:600]
    first_id = response.headers["Location"].split("/events/")[1].split("?")[0]
    first = app.extensions["checkin"].db["events"].find_one({"_id": first_id})
    found = app.extensions["checkin"].db["events"].find({"series_id": first["series_id"]}).sort("occurrence", 1)
    return [dict(doc) for doc in found]


def local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(CHICAGO) if moment.tzinfo is None else moment.astimezone(CHICAGO)


def test_a_weekly_series_by_count_is_one_line_and_each_occurrence_knows_its_place(app: Flask, org: Org) -> None:
    client = browser(app, org.owner_email)
    response = client.post("/events", data=form(), headers=SAME_SITE)
    assert response.status_code == 303 and "created=8" in response.headers["Location"]
    page = text_of(client.get(response.headers["Location"]))
    assert "Series created: 8 events, weekly on Saturday" in page

    shifts = created(app, client, form(title="Second weekly shift", repeat_count="3"))
    assert [doc["occurrence"] for doc in shifts] == [1, 2, 3]
    starts = [local(doc["starts_at"]) for doc in shifts]
    assert {(t.strftime("%A %H:%M")) for t in starts} == {"Saturday 09:00"}
    assert [(b - a).days for a, b in pairwise(starts)] == [7, 7]

    # The events list: each series is one line ("1 of 8") with its other dates folded under it.
    listing = client.get("/events")
    text = text_of(listing)
    assert text.count("Weekly food bank shift") == 1 and "Weekly on Saturday · 1 of 8" in text
    assert "7 more upcoming dates of this series" in text and "2 more upcoming dates" in text
    assert "Upcoming 11" in text

    # An occurrence's page: its place in the series, its neighbours, the dashboard's series view.
    middle = shifts[1]
    html = client.get(f"/events/{middle['_id']}").get_data(as_text=True)
    assert "occurrence 2 of 3" in html
    assert f'href="/events/{shifts[0]["_id"]}" rel="prev"' in html
    assert f'href="/events/{shifts[2]["_id"]}" rel="next"' in html
    assert f"/dashboard/series/{middle['series_id']}" in html
    assert 'name="scope" value="following"' in html


def test_a_monthly_series_by_weekday_until_a_date(app: Flask, org: Org) -> None:
    client = browser(app, org.owner_email)
    first = date.today().replace(day=1) + timedelta(days=40)
    first = first.replace(day=1)
    second_tuesday = next_weekday(1, first - timedelta(days=1)) + timedelta(days=7)
    until = (second_tuesday + timedelta(days=4 * 31)).isoformat()
    day = second_tuesday.isoformat()
    values = form(
        title="Networking evening",
        kind="networking",
        starts_at=f"{day}T18:00",
        ends_at=f"{day}T20:00",
        repeat="monthly",
        monthly_by="weekday",
        repeat_end="until",
        repeat_count="",
        repeat_until=until,
    )
    evenings = created(app, client, values)
    assert len(evenings) == 5
    for doc in evenings:
        moment = local(doc["starts_at"])
        assert moment.strftime("%A %H:%M") == "Tuesday 18:00" and 8 <= moment.day <= 14  # the 2nd Tuesday
        assert moment.date() <= date.fromisoformat(until)
    assert evenings[0]["recurrence"]["monthly_by"] == "weekday"
    assert "Monthly on the 2nd Tuesday · 1 of 5" in text_of(client.get("/events"))


BAD_REPEATS = [
    ({"repeat_count": "0"}, "repeat_count", "How many times, from 1 to 104"),
    ({"repeat_count": "200"}, "repeat_count", "At most 104 occurrences in one series"),
    ({"repeat_end": "until", "repeat_until": "2020-01-01"}, "repeat_until", "Must not be before the first"),
    ({"repeat_end": "until", "repeat_until": "2099-01-01"}, "repeat_until", "more than 104 occurrences"),
    ({"repeat_end": "until"}, "repeat_until", "Choose the date of the last occurrence"),
    ({"repeat_interval": "13"}, "repeat_interval", "A whole number from 1 to 12"),
]


def test_a_bad_repeat_re_renders_the_form_with_what_to_fix_and_writes_nothing(app: Flask, org: Org) -> None:
    client = browser(app, org.owner_email)
    for changes, field, message in BAD_REPEATS:
        response = client.post("/events", data=form(**changes), headers=SAME_SITE)
        assert response.status_code == 400, changes
        html = response.get_data(as_text=True)
        assert f'id="f-{field}-error"' in html and message in text_of(response), changes
        assert 'value="Weekly food bank shift"' in html  # what was typed is kept
        assert re.search(r'<option value="weekly"\s+selected', html)
    assert app.extensions["checkin"].db["events"].count_documents({"org_id": org.id}) == 0


def test_an_occurrence_is_edited_with_the_following_ones_and_cancelled_alone(app: Flask, org: Org) -> None:
    client = browser(app, org.owner_email)
    shifts = created(app, client, form(repeat_count="4"))
    db = app.extensions["checkin"].db["events"]
    second = shifts[1]
    start = local(second["starts_at"]).strftime("%Y-%m-%dT")
    edit = {
        "title": second["title"],
        "starts_at": f"{start}10:00",
        "ends_at": f"{start}13:00",
        "venue": "Church hall",
        "capacity": "",
        "scope": "following",
    }
    assert (
        client.post(f"/events/{second['_id']}/edit", data=edit, headers={"Origin": "https://evil.example"}).status_code
        == 403
    )
    response = client.post(f"/events/{second['_id']}/edit", data=edit, headers=SAME_SITE)
    assert response.status_code == 303 and "updated=3" in response.headers["Location"]
    assert "this event and the 2 following ones" in text_of(client.get(response.headers["Location"]))
    after = list(db.find({"series_id": second["series_id"]}).sort("occurrence", 1))
    assert [doc["venue"] for doc in after] == ["Warehouse", "Church hall", "Church hall", "Church hall"]
    assert [local(doc["starts_at"]).strftime("%H:%M") for doc in after] == ["09:00", "10:00", "10:00", "10:00"]

    bad = client.post(f"/events/{second['_id']}/edit", data={**edit, "ends_at": f"{start}08:00"}, headers=SAME_SITE)
    assert bad.status_code == 400 and 'id="f-ends_at-error"' in bad.get_data(as_text=True)

    response = client.post(f"/events/{after[2]['_id']}/cancel", data={"scope": "this"}, headers=SAME_SITE)
    assert response.status_code == 303 and "cancelled=1" in response.headers["Location"]
    assert [doc["status"] for doc in db.find({"series_id": second["series_id"]}).sort("occurrence", 1)] == [
        "scheduled",
        "scheduled",
        "cancelled",
        "scheduled",
    ]
    response = client.post(f"/events/{after[2]['_id']}/edit", data=edit, headers=SAME_SITE)
    assert response.status_code == 409 and "it can no longer be edited" in text_of(response)
