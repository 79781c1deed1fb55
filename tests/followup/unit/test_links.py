"""Signed link tokens: each kind its own key, nothing forgeable."""

from __future__ import annotations

import pytest

from followup.domain.links import InvalidLink, LinkTokens

TOKENS = LinkTokens("secret-one")
FID = "0123456789abcdef0123456789abcdef"


def test_round_trips() -> None:
    assert TOKENS.check_unsubscribe(TOKENS.unsubscribe(FID)) == FID
    assert TOKENS.check_open(TOKENS.open(FID)) == FID
    assert TOKENS.check_feedback(TOKENS.feedback(FID)) == FID
    url = "https://example.org/photos?a=1&b=2"
    assert TOKENS.check_click(TOKENS.click(FID, url), url) == FID
    parsed = TOKENS.check_introduction(TOKENS.introduction("intro1", "person-7"))
    assert (parsed.introduction_id, parsed.person_id) == ("intro1", "person-7")


def test_refuses_forgeries() -> None:
    with pytest.raises(InvalidLink):
        TOKENS.check_unsubscribe(TOKENS.open(FID))  # another purpose's token
    with pytest.raises(InvalidLink):
        LinkTokens("other-secret").check_unsubscribe(TOKENS.unsubscribe(FID))
    with pytest.raises(InvalidLink):
        TOKENS.check_click(TOKENS.click(FID, "https://a.example/"), "https://evil.example/")
    token = TOKENS.introduction("intro1", "person-7")
    swapped = token.replace("person-7", "person-8")
    with pytest.raises(InvalidLink):
        TOKENS.check_introduction(swapped)
    for bad in ("", "nodot", "a.b.c", f"{FID}.", f"{FID}.bad sig", "$x.y"):
        with pytest.raises(InvalidLink):
            TOKENS.check_unsubscribe(bad)
