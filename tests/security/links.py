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


def hours_link(secret: str, org_id: str, person_id: str) -> str:
    """The path of a volunteer's own hours page, signed as checkin signs it (``service_layer.hours``)."""
    from datetime import UTC, datetime

    from itsdangerous import URLSafeSerializer

    from checkin.domain.hours import HOURS_LINK_LIFETIME, HoursLink, hours_link_claims
    from checkin.service_layer.hours import HOURS_LINK_SALT

    link = HoursLink(org_id, person_id, datetime.now(UTC) + HOURS_LINK_LIFETIME)
    return f"/hours/me/{URLSafeSerializer(secret, salt=HOURS_LINK_SALT).dumps(hours_link_claims(link))}"


def statement_link(secret: str, org_id: str, person_id: str) -> str:
    """The path of an hour statement's verification page (this year so far), signed as checkin signs it."""
    from datetime import UTC, date, datetime

    from itsdangerous import URLSafeSerializer

    from checkin.domain.hours import Period, StatementClaims, statement_claims
    from checkin.service_layer.hours import STATEMENT_SALT

    today = datetime.now(UTC).date()
    claims = StatementClaims(org_id, person_id, Period(date(today.year, 1, 1), today), datetime.now(UTC), 0.0)
    return f"/hours/verify/{URLSafeSerializer(secret, salt=STATEMENT_SALT).dumps(statement_claims(claims))}"
