"""Follow-up email links signed as the followup service signs them (its
``LinkTokens``: one ``LinkSigner`` purpose per link kind), from the stack's key,
so tests can make valid, tampered and foreign ones."""

from __future__ import annotations

from turnout_common.auth import LinkSigner

PURPOSES = ("unsubscribe", "open", "click", "feedback", "introduction")


def mint_link(secret: str, purpose: str, value: str, *, url: str | None = None, person: str | None = None) -> str:
    """``<id>.<signature>``; a click link signs its destination too, an introduction link its person."""
    assert purpose in PURPOSES, purpose
    signer = LinkSigner(secret, f"followup.{purpose}.v1")
    if purpose == "click":
        assert url is not None, "a click link signs its destination"
        return f"{value}.{signer.sign(f'{value} {url}')}"
    if purpose == "introduction":
        assert person is not None, "an introduction link names its person"
        value = f"{value}.{person}"
    return f"{value}.{signer.sign(value)}"
