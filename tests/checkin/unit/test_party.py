"""The registration's ``party`` (a group/order key): the rule and how imports read it."""

from __future__ import annotations

import pytest

from checkin.domain.imports import ImportRow, parse_import
from checkin.domain.model import RuleBroken, normalize_party

HEADER = "Order #,First Name,Last Name,Email,Ticket Type,Attendee Status\n"


def test_party_is_trimmed_single_spaced_and_blank_means_none() -> None:
    assert normalize_party("  Order  4401 ") == "Order 4401"
    assert normalize_party("   ") is None
    assert normalize_party(None) is None
    assert normalize_party("x" * 100) == "x" * 100


def test_a_party_over_100_characters_is_refused_not_cut() -> None:
    with pytest.raises(RuleBroken) as caught:
        normalize_party("x" * 101)
    assert caught.value.code == "invalid_field"
    assert caught.value.field == "party"


def test_eventbrite_rows_of_one_order_share_a_party() -> None:
    raw = (
        HEADER
        + "4401,Ada,Lovelace,ada@example.org,GA,Attending\n"
        + "4401,Charles,Babbage,charles@example.org,GA,Attending\n"
        + "4402,Grace,Hopper,grace@example.org,GA,Attending\n"
        + ",Alan,Turing,alan@example.org,GA,Attending\n"
    ).encode()
    parsed = parse_import(raw)
    assert parsed.mapping["party"] == "Order #"
    assert [(row.first_name, row.party) for row in parsed.rows] == [
        ("Ada", "4401"),
        ("Charles", "4401"),
        ("Grace", "4402"),
        ("Alan", None),
    ]


def test_a_generic_csv_maps_party_and_a_too_long_one_fails_its_row() -> None:
    raw = (
        "Name,Mail,Household\nAda Lovelace,ada@example.org,Lovelace family\nBob Smith,bob@example.org,"
        + "h" * 101
        + "\n"
    ).encode()
    parsed = parse_import(raw, "generic", {"name": "Name", "email": "Mail", "party": "Household"})
    assert [row.party for row in parsed.rows] == ["Lovelace family"]
    assert [(problem.row, problem.reason) for problem in parsed.rejected] == [
        (3, "party too long (over 100 characters)")
    ]


def test_an_import_row_keeps_its_party_through_storage() -> None:
    row = ImportRow(row=2, first_name="Ada", last_name="L", email="a@example.org", consent_email=False, party="4401")
    assert ImportRow.from_doc(row.to_doc()) == row
    bare = ImportRow(row=3, first_name="Bo", last_name="", email="b@example.org", consent_email=False)
    assert "party" not in bare.to_doc()
    assert ImportRow.from_doc(bare.to_doc()).party is None
