"""Regulars and returners across a series, from (person, occurrence) check-ins."""

from __future__ import annotations

from analytics.domain.events import EventMeta, fold_event
from analytics.domain.series import series_figures


def test_regulars_need_three_occurrences_or_all_when_fewer_were_held() -> None:
    came = [("ann", "e1"), ("ann", "e2"), ("ann", "e3"), ("bo", "e1"), ("bo", "e3"), ("cy", "e2")]
    figures = series_figures(4, came)
    assert (figures["people"], figures["returners"], figures["regulars"], figures["regular_at"]) == (3, 2, 1, 3)
    assert figures["returner_share"] == 0.667
    two_held = series_figures(2, [("ann", "e1"), ("ann", "e2"), ("bo", "e1")])
    assert (two_held["regular_at"], two_held["regulars"]) == (2, 1)


def test_a_double_check_in_at_one_occurrence_counts_once_and_nobody_means_no_share() -> None:
    assert series_figures(3, [("ann", "e1"), ("ann", "e1")])["returners"] == 0
    empty = series_figures(0, [])
    assert (empty["people"], empty["returner_share"], empty["by_occurrences_attended"]) == (0, None, [])


def test_an_event_keeps_its_series_whatever_message_order() -> None:
    meta = EventMeta(event_id="e1", org_id="o1")
    base = {"title": "Shift", "kind": "volunteer_shift", "starts_at": "2026-01-01T18:00:00Z"}
    base |= {"ends_at": "2026-01-01T20:00:00Z", "timezone": "UTC"}
    fold_event(meta, "event.updated", {**base, "series_id": "s1", "occurrence": 2}, ("2026-01-02T00:00:00Z", "b"))
    fold_event(meta, "event.ended", {**base, "ended_at": "2026-01-01T20:00:00Z"}, ("2026-01-03T00:00:00Z", "c"))
    assert (meta.series_id, meta.occurrence) == ("s1", 2)
    assert EventMeta.from_doc({"_id": "e1", **meta.fields()}).series_id == "s1"
