"""Signed tokens shared by the three services, and password hashing.

One login serves every service: checkin issues a signed, expiring session
token (itsdangerous over HMAC-SHA256 with ``TURNOUT_SECRET_KEY``) carrying the
user id, organization and role; followup and analytics verify the signature
and the expiry without calling checkin. Kiosk device tokens are signed the
same way but are also checked against checkin's kiosk list, so they can be
revoked; only checkin accepts them. API tokens carry their own expiry in the
signed payload, so every service refuses one past it. Each session token
carries its own session id, so signing out ends that session only. API token
revocations, deactivations, sign-outs and role changes reach followup and
analytics as ``access.revoked`` messages (``turnout_common.revocations``). A
token also carries the moment it was issued, to the millisecond, so a role
change refuses the sessions begun before it and not the one begun just after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

ROLES = ("owner", "organizer", "door_staff", "viewer")

# What each role may do; routes ask for a permission, never for a role name.
PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"view", "checkin", "manage", "admin"}),
    "organizer": frozenset({"view", "checkin", "manage"}),
    "door_staff": frozenset({"view", "checkin"}),
    "viewer": frozenset({"view"}),
}

SESSION_MAX_AGE = 12 * 3600
# A kiosk stays paired for its event's life; revocation (checked by checkin on
# every kiosk call) is how it ends early.
KIOSK_MAX_AGE = 30 * 24 * 3600
# API tokens (for integrations) carry their own expiry, at most a year; checkin
# checks they were not revoked.
API_TOKEN_MAX_AGE = 366 * 24 * 3600
SESSION_COOKIE = "turnout_session"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidToken(ValueError):
    """The token is forged, expired or not of the expected kind."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an organizer user, or a kiosk paired to one event."""

    kind: str  # "user" or "kiosk"
    subject_id: str  # user id or kiosk id
    org_id: str
    role: str  # a user's role; kiosks are "kiosk"
    name: str
    event_id: str | None = None
    # A kiosk's pairing (re-pairing or revoking the kiosk invalidates older tokens),
    # a user's sign-in (signing out ends it) or an API token's id.
    session_id: str | None = None
    # When the token stops being valid (epoch seconds), for tokens shorter-lived
    # than their kind's age limit (an API token created for 30 days).
    expires_at: int | None = None
    # When the token was issued (epoch seconds, to the millisecond), set by
    # ``TokenSigner.verify``; not part of who is calling, so not compared.
    issued_at: float | None = field(default=None, compare=False)

    def issued_before(self, moment: datetime) -> bool:
        """Whether this principal's token was issued before ``moment`` (naive: UTC);
        False when the issue time is unknown (a principal not read from a token)."""
        if self.issued_at is None:
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # Both to the millisecond, as the database and the messages keep moments.
        return round(self.issued_at * 1000) < (moment - _EPOCH) // timedelta(milliseconds=1)

    def can(self, permission: str) -> bool:
        if self.kind == "kiosk":
            return permission == "kiosk"
        return permission in PERMISSIONS.get(self.role, frozenset())


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="turnout.token.v1")

    def issue(self, principal: Principal) -> str:
        payload: dict[str, Any] = {
            "k": principal.kind,
            "s": principal.subject_id,
            "o": principal.org_id,
            "r": principal.role,
            "n": principal.name,
        }
        if principal.event_id:
            payload["e"] = principal.event_id
        if principal.session_id:
            payload["p"] = principal.session_id
        if principal.expires_at is not None:
            payload["x"] = int(principal.expires_at)
        # The signature's own timestamp is in whole seconds: too coarse to tell a
        # session begun just before a role change from one begun just after.
        payload["i"] = int(time.time() * 1000)
        return str(self._serializer.dumps(payload))

    def verify(self, token: str, max_age: int | None = SESSION_MAX_AGE) -> Principal:
        """Check signature, age (kiosk tokens live up to ``KIOSK_MAX_AGE``) and the
        token's own expiry, if it carries one (checked even with ``max_age=None``)."""
        if not token or len(token) > 2048:
            raise InvalidToken("missing or oversized token")
        try:
            payload, issued = self._serializer.loads(token, return_timestamp=True)
        except BadSignature as exc:
            raise InvalidToken("token signature is not valid") from exc
        if max_age is not None and isinstance(payload, dict):
            limit = {"kiosk": KIOSK_MAX_AGE, "api": API_TOKEN_MAX_AGE}.get(str(payload.get("k")), max_age)
            age = time.time() - issued.timestamp()
            if age > limit or age < -60:
                raise InvalidToken("token expired; sign in again")
        try:
            expires_at = payload.get("x")
            if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, int)):
                raise TypeError("expiry is not a whole number of seconds")
            issued_ms = payload.get("i")
            if issued_ms is not None and (isinstance(issued_ms, bool) or not isinstance(issued_ms, int)):
                raise TypeError("issue time is not a whole number of milliseconds")
            principal = Principal(
                kind=payload["k"],
                subject_id=payload["s"],
                org_id=payload["o"],
                role=payload["r"],
                name=payload["n"],
                event_id=payload.get("e"),
                session_id=payload.get("p"),
                expires_at=expires_at,
                # A token issued before issue times were signed in: its signature's second.
                issued_at=issued_ms / 1000 if issued_ms is not None else issued.timestamp(),
            )
        except (AttributeError, KeyError, TypeError) as exc:
            raise InvalidToken("token payload is incomplete") from exc
        if principal.expires_at is not None and time.time() >= principal.expires_at:
            raise InvalidToken("token expired; sign in again")
        return principal


class LinkSigner:
    """Short signed values for links in emails and badges (no expiry by default)."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()

    def sign(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def verify(self, value: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(value), signature or "")


# scrypt (RFC 7914) from the standard library: memory-hard, no native extra.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    encoded_salt = base64.b64encode(salt).decode()
    encoded_digest = base64.b64encode(digest).decode()
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded_salt}${encoded_digest}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt_b64),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=32,
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))
