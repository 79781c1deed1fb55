"""The calendar files of turnout_common.calendar, read back with icalendar (as a
calendar program would): one UID per gathering, a SEQUENCE that grows with every
change, local times with their TZID and VTIMEZONE, REQUEST/CANCEL/PUBLISH."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from turnout_common.calendar import (
    CANCEL,
    PUBLISH,
    REQUEST,
    Gathering,
    Person,
    calendar_file,
    event_uid,
    file_name,
    next_sequence,
    sequence_at,
)

BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
ORGANIZER = Person("Riverside Food Bank", "hello@riverside.example.org")
ANA = Person("Ana Lee", "ana@example.org")


def gathering(**changes: object) -> Gathering:
    fields: dict[str, object] = {
        "org_id": "org-1",
        "event_id": "ev-1",
        "title": "Spring clean-up, Tiergarten",
        # 10:30-13:00 in Berlin on the day summer time starts (UTC+2 from 03:00).
        "starts_at": datetime(2027, 3, 28, 8, 30, tzinfo=UTC),
        "ends_at": datetime(2027, 3, 28, 11, 0, tzinfo=UTC),
        "timezone": "Europe/Berlin",
        "venue": "Gate 3; bring gloves",
        "description": "Litter pickers provided.",
        "url": "https://checkin.example.org/r/abcdefgh",
    }
    fields.update(changes)
    return Gathering(**fields)  # type: ignore[arg-type]


def parse(data: bytes) -> Calendar:
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF lines only
    return Calendar.from_ical(data)


def test_a_request_names_the_gathering_in_its_own_time_zone() -> None:
    cal = parse(calendar_file(gathering(), method=REQUEST, organizer=ORGANIZER, stamp=STAMP, attendee=ANA))
    assert str(cal["method"]) == "REQUEST" and str(cal["version"]) == "2.0"
    (event,) = cal.events
    start, end = event["dtstart"], event["dtend"]
    assert start.params["TZID"] == end.params["TZID"] == "Europe/Berlin"
    assert start.dt == datetime(2027, 3, 28, 10, 30, tzinfo=BERLIN) and start.dt.utcoffset() == timedelta(hours=2)
    assert end.dt == datetime(2027, 3, 28, 13, 0, tzinfo=BERLIN)
    (zone,) = cal.walk("VTIMEZONE")
    assert str(zone["tzid"]) == "Europe/Berlin"
    offsets = {part["tzoffsetto"].to_ical() for part in zone.walk() if part.name in ("STANDARD", "DAYLIGHT")}
    assert {"+0100", "+0200"} <= offsets
    # The VTIMEZONE alone (as a program without the IANA zones reads it) gives the same moments.
    own = zone.to_tz()
    assert datetime(2027, 3, 28, 10, 30, tzinfo=own).astimezone(UTC) == datetime(2027, 3, 28, 8, 30, tzinfo=UTC)
    assert datetime(2027, 3, 27, 10, 30, tzinfo=own).astimezone(UTC) == datetime(2027, 3, 27, 9, 30, tzinfo=UTC)
    assert str(event["summary"]) == "Spring clean-up, Tiergarten"
    assert str(event["location"]) == "Gate 3; bring gloves"
    assert "Litter pickers provided." in str(event["description"])
    assert "Event page: https://checkin.example.org/r/abcdefgh" in str(event["description"])
    assert str(event["status"]) == "CONFIRMED"
    assert int(event["sequence"]) == 0
    assert str(event["organizer"]) == "mailto:hello@riverside.example.org"
    assert event["organizer"].params["CN"] == "Riverside Food Bank"
    assert str(event["attendee"]) == "mailto:ana@example.org"
    assert event["attendee"].params["RSVP"] == "FALSE"
    assert event["dtstamp"].dt == STAMP


def test_one_uid_per_gathering_and_the_sequence_grows_with_each_change() -> None:
    edit = datetime(2027, 2, 1, 9, tzinfo=UTC)
    first = gathering()
    moved = gathering(starts_at=first.starts_at + timedelta(days=7), changed_at=edit, sequence=sequence_at(edit))
    assert first.uid == moved.uid == event_uid("org-1", "ev-1")
    assert event_uid("org-1", "ev-2") != first.uid and event_uid("org-2", "ev-1") != first.uid
    assert "ev-1" not in first.uid and "org-1" not in first.uid  # reveals nothing
    assert first.sequence == 0 < moved.sequence
    # From the change's time, so two services agree without a shared counter ...
    assert sequence_at(edit + timedelta(seconds=5)) - sequence_at(edit) == 5
    assert sequence_at(None) == 0 and sequence_at(edit.replace(tzinfo=None)) == sequence_at(edit)
    # ... and strictly growing even for two edits in one second (or a clock behind).
    assert next_sequence(None, None) == 1
    assert next_sequence(0, edit) == sequence_at(edit)
    assert next_sequence(sequence_at(edit), edit) == sequence_at(edit) + 1
    assert next_sequence(sequence_at(edit) + 10, edit) == sequence_at(edit) + 11
    assert sequence_at(datetime(2092, 1, 1, tzinfo=UTC)) < 2**31  # inside RFC 5545's INTEGER
    assert sequence_at(datetime(2099, 1, 1, tzinfo=UTC)) == 2**31 - 1 == next_sequence(2**31 - 1, None)
    uids = set()
    for g in (first, moved):
        (event,) = parse(calendar_file(g, method=REQUEST, organizer=ORGANIZER, stamp=STAMP, attendee=ANA)).events
        uids.add(str(event["uid"]))
        assert int(event["sequence"]) == g.sequence
    assert uids == {first.uid}


def test_a_cancellation_is_method_cancel_with_status_cancelled() -> None:
    cancelled = gathering(cancelled=True, changed_at=datetime(2027, 3, 1, tzinfo=UTC), sequence=7)
    cal = parse(calendar_file(cancelled, method=CANCEL, organizer=ORGANIZER, stamp=STAMP, attendee=ANA))
    (event,) = cal.events
    assert str(cal["method"]) == "CANCEL" and str(event["status"]) == "CANCELLED"
    assert str(event["uid"]) == gathering().uid and int(event["sequence"]) == cancelled.sequence > 0
    # A download of the cancelled gathering says so too.
    (published,) = parse(calendar_file(cancelled, method=PUBLISH, organizer=None, stamp=STAMP)).events
    assert str(published["status"]) == "CANCELLED"


def test_a_download_has_no_attendee_and_scheduling_methods_need_one() -> None:
    cal = parse(calendar_file(gathering(), method=PUBLISH, organizer=None, stamp=STAMP, attendee=ANA))
    (event,) = cal.events
    assert str(cal["method"]) == "PUBLISH" and "attendee" not in event and "organizer" not in event
    with pytest.raises(ValueError, match="attendee"):
        calendar_file(gathering(), method=REQUEST, organizer=ORGANIZER, stamp=STAMP)
    with pytest.raises(ValueError, match="unknown calendar method"):
        calendar_file(gathering(), method="REPLY", organizer=ORGANIZER, stamp=STAMP, attendee=ANA)


def test_text_is_escaped_and_long_lines_folded() -> None:
    title = "Café, quiz; and \\ backslash " + "x" * 120
    data = calendar_file(gathering(title=title, venue=None), method=PUBLISH, organizer=None, stamp=STAMP)
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    (event,) = parse(data).events
    assert str(event["summary"]) == title and "location" not in event


def test_file_names_are_safe() -> None:
    assert file_name("Spring clean-up, Tiergarten") == "Spring-clean-up-Tiergarten.ics"
    assert file_name('Café "quoted" / ../etc') == "Cafe-quoted-etc.ics"
    assert file_name("???") == "event.ics"
