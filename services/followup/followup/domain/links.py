"""The signed tokens in follow-up emails' links.

Each link kind has its own key (``LinkSigner`` purposes), so a token made
for an open pixel cannot unsubscribe anyone. Tokens are
``<id>.<signature>``: short enough for a URL, checkable without a database.
A click token signs the destination too, so the redirect goes nowhere but
where the email said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from turnout_common.auth import LinkSigner

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class InvalidLink(ValueError):
    """The token is malformed or its signature does not match."""


@dataclass(frozen=True, slots=True)
class IntroductionToken:
    introduction_id: str
    person_id: str


class LinkTokens:
    def __init__(self, secret: str) -> None:
        self._signers = {
            purpose: LinkSigner(secret, f"followup.{purpose}.v1")
            for purpose in ("unsubscribe", "open", "click", "feedback", "introduction")
        }

    # -- making --------------------------------------------------------------
    def _make(self, purpose: str, value: str) -> str:
        return f"{value}.{self._signers[purpose].sign(value)}"

    def unsubscribe(self, followup_id: str) -> str:
        return self._make("unsubscribe", followup_id)

    def open(self, followup_id: str) -> str:
        return self._make("open", followup_id)

    def feedback(self, followup_id: str) -> str:
        return self._make("feedback", followup_id)

    def click(self, followup_id: str, url: str) -> str:
        return f"{followup_id}.{self._signers['click'].sign(f'{followup_id} {url}')}"

    def introduction(self, introduction_id: str, person_id: str) -> str:
        return self._make("introduction", f"{introduction_id}.{person_id}")

    # -- checking ------------------------------------------------------------
    def _check(self, purpose: str, token: str, parts: int = 1) -> list[str]:
        pieces = token.split(".")
        if len(pieces) != parts + 1 or not all(_ID.match(piece) for piece in pieces):
            raise InvalidLink("malformed link token")
        value = ".".join(pieces[:parts])
        if not self._signers[purpose].verify(value, pieces[-1]):
            raise InvalidLink("link signature is not valid")
        return pieces[:parts]

    def check_unsubscribe(self, token: str) -> str:
        return self._check("unsubscribe", token)[0]

    def check_open(self, token: str) -> str:
        return self._check("open", token)[0]

    def check_feedback(self, token: str) -> str:
        return self._check("feedback", token)[0]

    def check_click(self, token: str, url: str) -> str:
        pieces = token.split(".")
        if len(pieces) != 2 or not all(_ID.match(piece) for piece in pieces):
            raise InvalidLink("malformed link token")
        if not self._signers["click"].verify(f"{pieces[0]} {url}", pieces[1]):
            raise InvalidLink("this link's destination is not signed")
        return pieces[0]

    def check_introduction(self, token: str) -> IntroductionToken:
        introduction_id, person_id = self._check("introduction", token, parts=2)
        return IntroductionToken(introduction_id, person_id)
