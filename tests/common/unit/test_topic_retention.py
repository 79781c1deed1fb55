"""Topic retention: how long the broker keeps messages (they carry personal data).

The admin client is a recording stand-in (pure logic: which settings go to
which topic); creating topics with these settings on the real broker is
covered by tests/common/integration/test_topic_retention.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from turnout_common import kafka
from turnout_common.kafka import retention_configs


def test_a_message_is_gone_within_the_retention_plus_one_day_segment_roll() -> None:
    assert retention_configs(168) == {"retention.ms": str(168 * 3_600_000), "segment.ms": str(24 * 3_600_000)}
    # A retention under a day rolls segments as often as it retains.
    assert retention_configs(6) == {"retention.ms": str(6 * 3_600_000), "segment.ms": str(6 * 3_600_000)}


class RecordingAdmin:
    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.created: list[Any] = []
        self.altered: list[Any] = []

    def list_topics(self) -> list[str]:
        return sorted(self.existing)

    def create_topics(self, topics: list[Any]) -> None:
        self.created.extend(topics)

    def alter_configs(self, resources: list[Any]) -> None:
        self.altered.extend(resources)

    def close(self) -> None:
        pass


def test_new_topics_are_created_with_the_retention_and_existing_ones_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = RecordingAdmin(existing={"turnout.checkin", "turnout.checkin.dlq"})
    monkeypatch.setattr(kafka, "KafkaAdminClient", lambda **_: admin)
    monkeypatch.setenv("TURNOUT_TOPIC_RETENTION_HOURS", "72")

    created = kafka.ensure_topics("127.0.0.1:1", 6)

    assert created == ["turnout.followup", "turnout.followup.dlq", "turnout.privacy", "turnout.privacy.dlq"]
    for topic in admin.created:
        assert topic.topic_configs == {"retention.ms": str(72 * 3_600_000), "segment.ms": str(24 * 3_600_000)}
    assert {resource.name for resource in admin.altered} == {"turnout.checkin", "turnout.checkin.dlq"}
    assert all(resource.configs["retention.ms"] == str(72 * 3_600_000) for resource in admin.altered)


def test_a_broker_that_refuses_to_alter_retention_still_gets_its_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = RecordingAdmin(existing={"turnout.checkin"})

    def refuse(resources: list[Any]) -> None:
        raise PermissionError("not allowed")

    admin.alter_configs = refuse  # type: ignore[method-assign]
    monkeypatch.setattr(kafka, "KafkaAdminClient", lambda **_: admin)
    assert "turnout.followup" in kafka.ensure_topics("127.0.0.1:1", 3, retention_hours=24)
