"""The small helpers every service shares: one email key, optional timestamps, page arguments."""

from datetime import UTC, datetime

import pytest
from flask import Flask

from turnout_common.clock import to_rfc3339_or_none
from turnout_common.emails import normalize_email
from turnout_common.web import ApiError, page_args


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("  Ada@Example.ORG ", "ada@example.org"),
        ("STRASSE@example.org", "strasse@example.org"),
        # "ß" stays "ß": casefold would merge it with "ss", a different mailbox.
        ("Straße@Example.org", "straße@example.org"),
        # A precomposed "é" and "e" + combining acute are one address.
        ("Jose\u0301@example.org", "jos\u00e9@example.org"),
        ("jos\u00e9@example.org", "jos\u00e9@example.org"),
        # Dotted capital I lower-cases to "i" + combining dot, the same everywhere.
        ("\u0130LKER@example.org", "i\u0307lker@example.org"),
    ],
)
def test_normalize_email_gives_one_key_per_mailbox(typed: str, key: str) -> None:
    assert normalize_email(typed) == key


def test_normalize_email_keeps_ss_and_sharp_s_apart() -> None:
    assert normalize_email("straße@x.org") != normalize_email("strasse@x.org")


def test_optional_rfc3339_passes_none_through() -> None:
    assert to_rfc3339_or_none(None) is None
    moment = datetime(2026, 12, 5, 18, 30, 1, 250000, tzinfo=UTC)
    assert to_rfc3339_or_none(moment) == "2026-12-05T18:30:01.250Z"


def _args(query: str, **kwargs: int) -> tuple[int, int]:
    app = Flask("page-args")
    with app.test_request_context(f"/x?{query}"):
        return page_args(**kwargs)


def test_page_args_defaults_and_values() -> None:
    assert _args("") == (100, 0)
    assert _args("", default_limit=25) == (25, 0)
    assert _args("limit=5&offset=10") == (5, 10)


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=1001", "offset=-1", "offset=2000000"])
def test_page_args_refuse_out_of_range_with_the_allowed_range(query: str) -> None:
    with pytest.raises(ApiError) as caught:
        _args(query)
    assert caught.value.status == 400
    assert "limit" in caught.value.message
