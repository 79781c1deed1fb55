"""Signed links: the one place that signs and reads the tokens of checkin's links.

Every kind of link (a person's privacy request, a volunteer's hours page, an hour
statement's verification, a greeter's phone page) is the service's secret with a
salt of its own, so a token of one kind never verifies as another, nor as a
session token. Each caller turns ``Unreadable`` into its own refusal.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

from checkin.service_layer.context import Context


class Unreadable(ValueError):
    """A token that is not one of ours: ``blank`` when empty or longer than allowed
    (never verified), else forged, altered or cut short."""

    def __init__(self, blank: bool) -> None:
        super().__init__("blank or too long" if blank else "bad signature")
        self.blank = blank


def sign(ctx: Context, salt: str, claims: object) -> str:
    return str(URLSafeSerializer(ctx.settings.secret_key, salt=salt).dumps(claims))


def unsign(ctx: Context, salt: str, token: str, max_length: int) -> object:
    """The claims a token carries (``Unreadable``: blank, too long, or not signed by us with ``salt``)."""
    if not token or len(token) > max_length:
        raise Unreadable(blank=True)
    try:
        return URLSafeSerializer(ctx.settings.secret_key, salt=salt).loads(token)
    except BadSignature as exc:
        raise Unreadable(blank=False) from exc
