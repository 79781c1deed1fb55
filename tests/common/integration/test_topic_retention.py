"""Topics get their retention on the real broker (created with it, or altered when they exist)."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient

from tests.conftest import Infrastructure
from turnout_common.kafka import ensure_topics

pytestmark = pytest.mark.integration


def test_topics_are_created_with_retention_and_a_second_start_keeps_them(infra: Infrastructure) -> None:
    topic = f"retention-{uuid.uuid4().hex[:8]}"
    created = ensure_topics(infra.bootstrap, 2, [topic], retention_hours=24)
    assert created == [topic, f"{topic}.dlq"]
    # A second start finds them and sets the (changed) retention instead of failing.
    assert ensure_topics(infra.bootstrap, 2, [topic], retention_hours=12) == []
    admin = KafkaAdminClient(bootstrap_servers=infra.bootstrap)
    try:
        assert {topic, f"{topic}.dlq"} <= set(admin.list_topics())
    finally:
        admin.close()
