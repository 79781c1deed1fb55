"""Introductions: normalized tags, good pairs, no self-match, no repeats, a cap per person."""

from __future__ import annotations

from followup.domain.introductions import Candidate, Proposal, normalize_tag, pair_key, propose_introductions


def test_tag_normalization() -> None:
    assert normalize_tag("  Grant-Writing ") == "grant writing"
    assert normalize_tag("grant_writings") == "grant writing"
    assert normalize_tag("#Café  Management!") == "cafe management"
    assert normalize_tag("Charities") == "charity"
    assert normalize_tag("Business") == "business"
    assert normalize_tag("UX/UI") == "ux ui"
    assert normalize_tag("!!!") == ""


def test_pairs_offers_with_seeks_both_ways_scoring_mutual_first() -> None:
    people = [
        Candidate.of("ann", offers=["Grant Writing"], seeks=["web design"]),
        Candidate.of("ben", offers=["Web-Design"], seeks=["grant writing"]),  # mutual with ann
        Candidate.of("cat", offers=["web designs"], seeks=[]),  # one-way with ann
        Candidate.of("dan", offers=[], seeks=[]),
    ]
    chosen = propose_introductions(people, limit=3)
    keys = [p.key for p in chosen]
    assert keys[0] == pair_key("ann", "ben")
    assert set(keys) == {pair_key("ann", "ben"), pair_key("ann", "cat")}
    mutual = chosen[0]
    assert mutual.offered_by("ann") == ("grant writing",) and mutual.offered_by("ben") == ("web design",)
    assert all(p.a != p.b for p in chosen)


def test_no_self_match() -> None:
    alone = [Candidate.of("ann", offers=["design"], seeks=["design"])]
    assert propose_introductions(alone, limit=3) == []


def test_no_repeat_pairs_across_gatherings() -> None:
    people = [Candidate.of("ann", ["design"], ["funding"]), Candidate.of("ben", ["funding"], ["design"])]
    assert propose_introductions(people, limit=3, already_paired={pair_key("ben", "ann")}) == []


def test_at_most_limit_per_person_kept_ones_count() -> None:
    hub = Candidate.of("hub", offers=["mentoring"], seeks=[])
    seekers = [Candidate.of(f"s{n}", offers=[], seeks=["mentoring"]) for n in range(10)]
    chosen = propose_introductions([hub, *seekers], limit=3)
    assert len(chosen) == 3 and all("hub" in (p.a, p.b) for p in chosen)
    kept = [Proposal("hub", "s0", ("mentoring",), ())]
    more = propose_introductions([hub, *seekers], limit=3, kept=kept)
    assert len(more) == 2 and pair_key("hub", "s0") not in {p.key for p in more}


def test_deterministic() -> None:
    people = [Candidate.of(f"p{n}", offers=["a", "b"][n % 2 :], seeks=["a", "b"][: n % 2 + 1]) for n in range(30)]
    assert propose_introductions(people, limit=2) == propose_introductions(list(reversed(people)), limit=2)


def test_bounded_work_on_a_crowd_seeking_the_same_thing() -> None:
    crowd = [Candidate.of(f"p{n:04d}", offers=["help"], seeks=["help"]) for n in range(1500)]
    chosen = propose_introductions(crowd, limit=1)
    assert len(chosen) >= 500
    used = [p for proposal in chosen for p in (proposal.a, proposal.b)]
    assert len(used) == len(set(used))
