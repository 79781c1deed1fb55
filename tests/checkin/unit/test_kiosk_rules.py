"""Kiosk rules: pairing codes, masks and the name search (pure, no servers)."""

from __future__ import annotations

from checkin.domain.kiosks import (
    PAIRING_ALPHABET,
    SearchEntry,
    mask_email,
    new_pairing_code,
    normalize_pairing_code,
    search_names,
)


def entries(*names: str) -> list[SearchEntry]:
    return [SearchEntry(f"r{index}", name) for index, name in enumerate(names)]


def test_pairing_codes_avoid_lookalike_characters_and_normalize_typing() -> None:
    codes = {new_pairing_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(len(code) == 8 and set(code) <= set(PAIRING_ALPHABET) for code in codes)
    assert not set("01OIL") & set(PAIRING_ALPHABET)
    assert normalize_pairing_code(" abcd-2345 ") == "ABCD2345"


def test_mask_hides_the_address() -> None:
    assert mask_email("amber.nguyen@example.org") == "a…n@e…"
    assert mask_email("x@example.org") == "x@e…"
    assert mask_email("not-an-email") == ""


def test_search_matches_prefixes_typos_and_every_word() -> None:
    people = entries("amber nguyen", "amber stone", "ambrose lee", "mei sato", "jose garcia")
    assert search_names("amb", people) == ["r0", "r1", "r2"]
    assert search_names("amber s", people) == ["r1"]
    assert search_names("jsoe", people) == ["r4"]  # swapped letters
    assert search_names("garica", people) == ["r4"]
    assert search_names("zz", people) == []
    assert search_names("   ", people) == []


def test_search_ranks_exact_names_first_and_limits_results() -> None:
    people = entries(*[f"sam person{i}" for i in range(30)], "sam")
    found = search_names("sam", people, limit=10)
    assert found[0] == "r30"
    assert len(found) == 10
