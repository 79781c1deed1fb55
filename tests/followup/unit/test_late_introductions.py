"""Late rounds of introductions: people who check in after a gathering's suggestions
were made are matched with the same rules, never twice with the same person (either
way round), within the per-person cap, and only while the follow-up window is open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from followup.domain.introductions import (
    Candidate,
    Proposal,
    late_matching_open,
    late_round,
    pair_key,
    propose_introductions,
)

EARLY = [
    Candidate.of("ann", offers=["Grant Writing"], seeks=["web design"]),
    Candidate.of("ben", offers=["Web-Design"], seeks=["grant writing"]),
    Candidate.of("cat", offers=["fundraising"], seeks=["bookkeeping"]),
]
# The first round paired ann and ben (cat found nobody).
FIRST_ROUND = [Proposal("ann", "ben", ("grant writing",), ("web design",))]


def test_a_late_arrival_is_matched_with_those_who_came_early_in_both_directions() -> None:
    lee = Candidate.of("lee", offers=["bookkeeping"], seeks=["Fundraisings", "grant writings"])
    chosen = propose_introductions([*EARLY, lee], 3, kept=FIRST_ROUND, newcomers={"lee"})
    by_key = {p.key: p for p in chosen}
    assert set(by_key) == {pair_key("cat", "lee"), pair_key("ann", "lee")}
    # Mutual with cat (each offers what the other seeks) ranks first.
    assert chosen[0].key == pair_key("cat", "lee")
    assert by_key[pair_key("cat", "lee")].offered_by("lee") == ("bookkeeping",)
    assert by_key[pair_key("cat", "lee")].offered_by("cat") == ("fundraising",)
    assert by_key[pair_key("ann", "lee")].offered_by("ann") == ("grant writing",)
    assert by_key[pair_key("ann", "lee")].offered_by("lee") == ()


def test_a_late_round_never_pairs_two_early_people() -> None:
    # dan and eve match each other, but neither arrived late: a late round leaves them alone.
    early = [Candidate.of("dan", ["design"], ["funding"]), Candidate.of("eve", ["funding"], ["design"])]
    lee = Candidate.of("lee", offers=["cooking"], seeks=["gardening"])
    assert propose_introductions([*early, lee], 3, newcomers={"lee"}) == []
    # Without the restriction (the first round), they are paired.
    assert [p.key for p in propose_introductions(early, 3)] == [pair_key("dan", "eve")]


def test_two_late_arrivals_may_be_paired_with_each_other() -> None:
    lee = Candidate.of("lee", offers=["cooking"], seeks=["gardening"])
    mo = Candidate.of("mo", offers=["gardening"], seeks=["cooking"])
    chosen = propose_introductions([*EARLY, lee, mo], 3, kept=FIRST_ROUND, newcomers={"lee", "mo"})
    assert [p.key for p in chosen] == [pair_key("lee", "mo")]


def test_a_pair_already_suggested_is_never_suggested_again_either_way_round() -> None:
    lee = Candidate.of("lee", offers=["web design"], seeks=["grant writing"])
    # At this gathering, in an earlier round, ann was suggested to lee (stored as ann|lee).
    kept = [*FIRST_ROUND, Proposal("ann", "lee", ("grant writing",), ("web design",))]
    chosen = propose_introductions([*EARLY, lee], 5, kept=kept, newcomers={"lee"})
    assert pair_key("ann", "lee") not in {p.key for p in chosen}
    assert pair_key("lee", "ann") == pair_key("ann", "lee")
    # At an earlier gathering of the organization: never again either.
    chosen = propose_introductions([*EARLY, lee], 5, kept=FIRST_ROUND, already_paired={pair_key("lee", "ann")})
    assert pair_key("ann", "lee") not in {p.key for p in chosen}
    # Replaying the round with what it made kept proposes nothing more.
    first = propose_introductions([*EARLY, lee], 5, kept=FIRST_ROUND, newcomers={"lee"})
    assert first
    again = propose_introductions([*EARLY, lee], 5, kept=[*FIRST_ROUND, *first], newcomers={"lee"})
    assert again == []


def test_the_per_person_cap_holds_across_rounds() -> None:
    # ann already has one suggestion at this gathering (ben); with a cap of 1 she gets no more.
    lee = Candidate.of("lee", offers=["web design"], seeks=["grant writing"])
    assert propose_introductions([*EARLY, lee], 1, kept=FIRST_ROUND, newcomers={"lee"}) == []
    # With a cap of 2 she gets lee; lee's own suggestions are capped too.
    assert [p.key for p in propose_introductions([*EARLY, lee], 2, kept=FIRST_ROUND, newcomers={"lee"})] == [
        pair_key("ann", "lee")
    ]
    many = [Candidate.of(f"p{n}", offers=["design"], seeks=[]) for n in range(6)]
    seeker = Candidate.of("zed", offers=[], seeks=["design"])
    chosen = propose_introductions([*many, seeker], 3, newcomers={"zed"})
    assert len(chosen) == 3 and all("zed" in (p.a, p.b) for p in chosen)
    # No cap at all: nothing.
    assert propose_introductions([*EARLY, lee], 0, newcomers={"lee"}) == []


def test_people_not_among_the_candidates_are_never_matched() -> None:
    # Candidates are the people who checked in and may be emailed: one who unsubscribed
    # or was erased is not among them, even when named a newcomer.
    lee = Candidate.of("lee", offers=["web design"], seeks=["grant writing"])
    assert propose_introductions(EARLY, 3, kept=FIRST_ROUND, newcomers={"lee"}) == []
    assert propose_introductions([*EARLY, lee], 3, kept=FIRST_ROUND, newcomers=set()) == []


def test_the_window_is_open_until_its_last_moment_inclusive() -> None:
    ended = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    window = timedelta(hours=72)
    assert late_matching_open(ended, ended, window)
    assert late_matching_open(ended, ended + window, window)
    assert not late_matching_open(ended, ended + window + timedelta(microseconds=1), window)
    assert not late_matching_open(ended, ended + timedelta(days=30), window)


def test_a_round_id_depends_on_its_pairs_only() -> None:
    first = late_round([pair_key("ann", "lee"), pair_key("cat", "lee")])
    assert first == late_round([pair_key("cat", "lee"), pair_key("lee", "ann")])
    assert first.startswith("late-") and len(first) == len("late-") + 16
    assert first != late_round([pair_key("ann", "lee")])
