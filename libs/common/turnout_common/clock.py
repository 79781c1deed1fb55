"""UTC time helpers; every timestamp on the wire is RFC 3339 UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    # Millisecond precision: what MongoDB stores, so a round trip compares equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def to_rfc3339(moment: datetime) -> str:
    """Format an aware datetime (naive ones are taken as UTC) as ``...Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_rfc3339_or_none(moment: datetime | None) -> str | None:
    """``to_rfc3339`` for an optional moment: None (or a missing value) stays None."""
    return to_rfc3339(moment) if moment is not None else None


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp that carries a zone; raise ValueError otherwise."""
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("timestamp must be an RFC 3339 string")
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp must include a time zone (Z or +hh:mm)")
    return value.astimezone(UTC)


def as_utc(moment: datetime) -> datetime:
    """MongoDB returns naive UTC datetimes; make them aware."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
