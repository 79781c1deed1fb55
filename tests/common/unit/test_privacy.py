"""The keys an erased person leaves behind, and the retention periods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from turnout_common.privacy import (
    DEFAULT_RETENTION,
    RetentionPeriods,
    email_digest,
    is_pseudonym,
    months_ago,
    pseudonym,
)


def test_a_pseudonym_is_stable_per_person_and_organization_and_hides_the_id() -> None:
    first = pseudonym("org-a", "66a0b1c2d3e4f5a6b7c8d9e0")
    assert first == pseudonym("org-a", "66a0b1c2d3e4f5a6b7c8d9e0")
    assert first != pseudonym("org-b", "66a0b1c2d3e4f5a6b7c8d9e0")
    assert first != pseudonym("org-a", "66a0b1c2d3e4f5a6b7c8d9e1")
    assert "66a0b1c2d3e4f5a6b7c8d9e0" not in first
    assert is_pseudonym(first) and not is_pseudonym("66a0b1c2d3e4f5a6b7c8d9e0")
    # Anonymising twice (a replayed erasure) changes nothing.
    assert pseudonym("org-a", first) == first


def test_an_email_digest_does_not_contain_the_address() -> None:
    digest = email_digest("org-a", "amara@example.org")
    assert digest == email_digest("org-a", "amara@example.org")
    assert "amara" not in digest and "example" not in digest
    assert digest != email_digest("org-b", "amara@example.org")


def test_retention_defaults_and_partial_policies() -> None:
    assert DEFAULT_RETENTION.as_dict() == {
        "checkin_details": 24,
        "message_bodies": 6,
        "delivery_journal": 12,
        "tracking_events": 12,
        "inactive_people": 36,
    }
    periods = RetentionPeriods.from_dict({"message_bodies": 3, "unknown": 9})
    assert periods.message_bodies == 3 and periods.checkin_details == 24


@pytest.mark.parametrize("months", [0, 121, -1, 2.5, True, "6"])
def test_retention_refuses_periods_out_of_range(months: object) -> None:
    with pytest.raises(ValueError, match="message_bodies must be a whole number of months from 1 to 120"):
        RetentionPeriods.from_dict({"message_bodies": months})


def test_months_ago_clamps_to_the_end_of_a_shorter_month() -> None:
    assert months_ago(datetime(2026, 3, 31, 12, tzinfo=UTC), 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert months_ago(datetime(2026, 1, 15, tzinfo=UTC), 24) == datetime(2024, 1, 15, tzinfo=UTC)
    assert months_ago(datetime(2026, 1, 15, tzinfo=UTC), 1) == datetime(2025, 12, 15, tzinfo=UTC)
