"""The registration page's "Add to calendar": the event's calendar file, keyed by
the event's public link (nothing about any person), read back with icalendar."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from icalendar import Calendar

from tests.checkin.integration.conftest import Org, create_event, headers, iso
from turnout_common.calendar import event_uid

pytestmark = pytest.mark.integration

CHICAGO = ZoneInfo("America/Chicago")


def ics(client: FlaskClient, url: str) -> Any:
    answer = client.get(url)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert answer.mimetype == "text/calendar"
    assert 'filename="Repair-cafe.ics"' in answer.headers["Content-Disposition"]
    cal = Calendar.from_ical(answer.get_data())
    assert str(cal["method"]) == "PUBLISH"
    (event,) = cal.events
    return event


def test_the_registered_page_offers_the_event_for_calendars(client: FlaskClient, org: Org, ctx: Any) -> None:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    event = create_event(
        client,
        org.token,
        title="Repair café",
        starts_at=iso(starts),
        ends_at=iso(starts + timedelta(hours=3)),
        venue="Library, room 2",
    )
    token = ctx.db["events"].find_one({"_id": event["id"]})["public_token"]
    answer = client.post(f"/r/{token}", data={"first_name": "Ada", "email": "ada@example.org"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 201
    match = re.search(r'href="([^"]+\.ics)"[^>]*>Add to calendar', page)
    assert match is not None and match.group(1) == f"/r/{token}/calendar.ics"
    assert "America/Chicago" in page

    first = ics(client, match.group(1))
    assert str(first["uid"]) == event_uid(org.id, event["id"])
    assert first["dtstart"].params["TZID"] == "America/Chicago"
    assert first["dtstart"].dt == starts.astimezone(CHICAGO)
    assert first["dtend"].dt == (starts + timedelta(hours=3)).astimezone(CHICAGO)
    assert str(first["location"]) == "Library, room 2" and str(first["status"]) == "CONFIRMED"
    assert f"/r/{token}" in str(first["description"]) and "attendee" not in first
    assert int(first["sequence"]) == 0
    assert "ada" not in match.group(1).lower()  # the link names the event's public link only

    # Moved: the same UID, a higher SEQUENCE, the new time.
    later = starts + timedelta(hours=1)
    moved = client.patch(
        f"/api/v1/events/{event['id']}",
        json={"starts_at": iso(later), "ends_at": iso(later + timedelta(hours=3))},
        headers=headers(org.token),
    )
    assert moved.status_code == 200, moved.get_json()
    second = ics(client, match.group(1))
    assert str(second["uid"]) == str(first["uid"]) and int(second["sequence"]) > 0
    assert second["dtstart"].dt == later.astimezone(CHICAGO)

    # Cancelled: the file says so, with a higher SEQUENCE still.
    assert client.post(f"/api/v1/events/{event['id']}/cancel", json={}, headers=headers(org.token)).status_code == 200
    third = ics(client, match.group(1))
    assert str(third["status"]) == "CANCELLED" and int(third["sequence"]) >= int(second["sequence"])


def test_no_calendar_link_for_the_waitlist_and_a_bad_link_is_404(client: FlaskClient, org: Org, ctx: Any) -> None:
    event = create_event(client, org.token, title="Repair café", capacity=1)
    token = ctx.db["events"].find_one({"_id": event["id"]})["public_token"]
    assert client.post(f"/r/{token}", data={"first_name": "Ada", "email": "ada@example.org"}).status_code == 201
    waitlisted = client.post(f"/r/{token}", data={"first_name": "Bea", "email": "bea@example.org"})
    page = waitlisted.get_data(as_text=True)
    assert "waitlist" in page and "Add to calendar" not in page
    missing = client.get("/r/not-a-real-token-at-all/calendar.ics")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert client.get("/r/x/calendar.ics").status_code == 404
