"""The slow-command diagnostic logs the shape of a query, never its values."""

import logging
from datetime import timedelta

import pytest
from pymongo import monitoring

from turnout_common.mongo import SlowCommandLogger, command_shape, query_shape, slow_threshold_ms


def test_query_shape_keeps_fields_and_operators_and_hides_values() -> None:
    shape = query_shape(
        {
            "_id": {"$in": ["a@example.org", "b@example.org"]},
            "org_id": "org-1",
            "$or": [{"email_norm": "alice@example.org"}, {"visits": {"$gte": 3}}],
            "checkin": None,
        }
    )
    assert shape == {
        "_id": {"$in": "?"},
        "org_id": "?",
        "$or": [{"email_norm": "?"}, {"visits": {"$gte": "?"}}],
        "checkin": "?",
    }
    assert "example" not in repr(shape)


def test_query_shape_of_updates_and_pipelines() -> None:
    assert query_shape({"$set": {"name": "Ana", "tags": ["x", "y"]}, "$inc": {"visits": 1}}) == {
        "$set": {"name": "?", "tags": "?"},
        "$inc": {"visits": "?"},
    }
    assert query_shape([{"$match": {"a": 1}}, {"$group": {"_id": "$b", "n": {"$sum": 1}}}]) == [
        {"$match": {"a": "?"}},
        {"$group": {"_id": "?", "n": {"$sum": "?"}}},
    ]


def test_command_shape_shows_bulk_statements_once_and_never_documents() -> None:
    command = {
        "update": "people",
        "updates": [{"q": {"_id": f"p{i}"}, "u": {"$set": {"name": f"n{i}"}}, "multi": False} for i in range(3)],
        "lsid": {"id": "secret"},
    }
    assert command_shape(command) == {
        "updates": [{"q": {"_id": "?"}, "u": {"$set": {"name": "?"}}, "multi": "?"}],
        "updates_count": 3,
    }
    insert = {"insert": "outbox", "documents": [{"email": "a@example.org"}]}
    assert command_shape(insert) == {"documents_count": 1}
    find = {"find": "registrations", "filter": {"badge_code": "B1"}, "sort": {"created_at": 1}, "limit": 5}
    assert command_shape(find) == {"filter": {"badge_code": "?"}, "sort": {"created_at": "?"}, "limit": "?"}


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("3", 3.0), ("0.5", 0.5), ("x", None)])
def test_threshold_from_the_environment(raw: str | None, expected: float | None) -> None:
    assert slow_threshold_ms(raw) == expected


def test_listener_logs_only_slow_commands(caplog: pytest.LogCaptureFixture) -> None:
    listener = SlowCommandLogger(5, "test")
    address = ("127.0.0.1", 27017)

    def run(request_id: int, ms: int) -> None:
        command = {"find": "people", "filter": {"email_norm": "alice@example.org"}, "$db": "t"}
        listener.started(monitoring.CommandStartedEvent(command, "t", request_id, address, 1))
        listener.succeeded(
            monitoring.CommandSucceededEvent(timedelta(milliseconds=ms), {"ok": 1}, "find", request_id, address, 1)
        )

    with caplog.at_level(logging.WARNING, logger="turnout.mongo.slow"):
        run(1, 1)
        run(2, 12)
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.__dict__["collection"] == "people"
    assert record.__dict__["duration_ms"] == 12.0
    assert record.__dict__["shape"] == {"filter": {"email_norm": "?"}}
    assert "alice" not in caplog.text
    assert "alice" not in repr(record.__dict__)
