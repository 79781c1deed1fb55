"""The rebuild and the projection upgrade on in-memory generations: the order
of their steps, and that a rebuilt generation says what the live one says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.service_layer import rebuild as rebuilding
from analytics.service_layer.projector import apply_batch
from analytics.service_layer.rebuild import Progress, rebuild, upgrade_outdated
from tests.analytics.history import Scripted, scripted_history
from tests.analytics.unit.fakes import FakeGenerations
from turnout_common.clock import utcnow

NOW = datetime(2026, 3, 15, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def scripted() -> Scripted:
    return scripted_history(NOW)


def _live(scripted: Scripted) -> FakeGenerations:
    """Generations whose live projections (generation 0) hold the archived history,
    most of it archived long ago and the rest just now (while a rebuild would run)."""
    generations = FakeGenerations()
    messages = scripted.history.messages + scripted.other.messages
    split = len(messages) * 3 // 4
    generations.archive.add(messages[:split], utcnow() - timedelta(hours=2))
    generations.archive.add(messages[split:], utcnow())
    apply_batch(generations.storage(generations.live), messages)
    return generations


def test_a_rebuild_builds_the_next_generation_then_switches_and_drops_the_old(scripted: Scripted) -> None:
    generations = _live(scripted)
    expected = generations.storage({"events": 0, "people": 0}).figures()
    phases: list[str] = []
    report = rebuild(generations, batch_size=50, switch_grace=0, on_progress=lambda p: phases.append(p.phase))
    assert report.projections == ("events", "people")
    assert report.generations == {"events": 1, "people": 1}
    assert report.messages == generations.archive.count()
    assert generations.log == [
        "clear {'events': 1, 'people': 1}",
        "prepare {'events': 1, 'people': 1}",
        "switch events 1",
        "switch people 1",
        "clear {'events': 0, 'people': 0}",
    ]
    # The messages archived just now were read again (catch-up, after the switch): folding is idempotent.
    assert phases[0] == "archive" and "catch-up" in phases and phases[-1] == "after switch"
    assert generations.storage(generations.live).figures() == expected


def test_a_rebuild_whose_cache_fills_up_gives_the_same_figures(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    generations = _live(scripted)
    expected = generations.storage(generations.live).figures()
    monkeypatch.setattr(rebuilding, "MAX_CACHED_PEOPLE", 2)
    monkeypatch.setattr(rebuilding, "MAX_CACHED_REGISTRATIONS", 3)
    rebuild(generations, batch_size=5, switch_grace=0)
    store = generations.storage(generations.live)
    assert store.figures() == expected
    assert store.inserted > 0  # states new to the generation were inserted, not upserted


def test_unknown_projections_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown projection"):
        rebuild(FakeGenerations(), ["nope"], switch_grace=0)


def test_an_upgrade_rebuilds_only_outdated_groups_once_under_a_lease(scripted: Scripted) -> None:
    generations = _live(scripted)
    assert upgrade_outdated(generations) is None  # nothing outdated
    generations.versions_outdated = ["events", "people"]
    seen: list[Progress] = []
    report = upgrade_outdated(generations, seen.append)
    assert report is not None and report.projections == ("events", "people")
    assert seen and not generations.lease_taken


def test_an_upgrade_with_nothing_archived_only_marks_the_groups_current() -> None:
    generations = FakeGenerations()
    generations.versions_outdated = ["people"]
    assert upgrade_outdated(generations) is None
    assert generations.log == ["mark current ['people']"]
    assert generations.outdated_groups() == []


def test_an_upgrade_leaves_it_to_the_worker_holding_the_lease(scripted: Scripted) -> None:
    generations = _live(scripted)
    generations.versions_outdated = ["people"]
    generations.lease_taken = True
    assert upgrade_outdated(generations) is None
    assert generations.live == {"events": 0, "people": 0}
