"""Session tokens, roles, password hashes and signed links."""

import base64
import json
import time
from dataclasses import replace

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from turnout_common.auth import (
    InvalidToken,
    LinkSigner,
    Principal,
    TokenSigner,
    hash_password,
    verify_password,
)

ALICE = Principal(kind="user", subject_id="u1", org_id="o1", role="organizer", name="Alice")
KIOSK = Principal(kind="kiosk", subject_id="k1", org_id="o1", role="kiosk", name="Door", event_id="e1")


def test_token_round_trip_keeps_the_principal() -> None:
    signer = TokenSigner("secret-a")
    assert signer.verify(signer.issue(ALICE)) == ALICE
    assert signer.verify(signer.issue(KIOSK)) == KIOSK


def test_token_is_url_safe() -> None:
    token = TokenSigner("secret-a").issue(ALICE)
    assert all(ch.isalnum() or ch in "-_." for ch in token)


def test_tampered_token_is_refused() -> None:
    signer = TokenSigner("secret-a")
    token = signer.issue(ALICE)
    _payload, timestamp, signature = token.rsplit(".", 2)
    # Keep the signature, swap in a payload that promotes Alice to owner.
    forged_payload = base64.urlsafe_b64encode(
        json.dumps({"k": "user", "s": "u1", "o": "o1", "r": "owner", "n": "Alice"}).encode()
    )
    forged = f"{forged_payload.decode().rstrip('=')}.{timestamp}.{signature}"
    with pytest.raises(InvalidToken, match="signature"):
        signer.verify(forged)
    # Change a character in the middle of the signature (the last one carries padding bits).
    middle = len(token) - 10
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    with pytest.raises(InvalidToken, match="signature"):
        signer.verify(flipped)
    with pytest.raises(InvalidToken):
        signer.verify(token[:-2])


def test_token_from_another_secret_is_refused() -> None:
    token = TokenSigner("secret-a").issue(ALICE)
    with pytest.raises(InvalidToken):
        TokenSigner("secret-b").verify(token)


class _ThirteenHoursAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 13 * 3600


def test_expired_token_is_refused() -> None:
    signer = TokenSigner("secret-a")
    # Genuinely signed with the same key and salt, 13 hours ago (sessions last 12 h).
    past = URLSafeTimedSerializer("secret-a", salt="turnout.token.v1", signer=_ThirteenHoursAgo)
    old = past.dumps({"k": "user", "s": "u1", "o": "o1", "r": "owner", "n": "A"})
    assert signer.verify(old, max_age=None).role == "owner"  # valid signature, just old
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(old)


def test_short_max_age_expires() -> None:
    signer = TokenSigner("secret-a")
    token = signer.issue(ALICE)
    time.sleep(1.1)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, max_age=0)


@pytest.mark.parametrize("token", ["", "x" * 2049, "garbage", "a.b.c"])
def test_empty_oversized_or_garbage_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        TokenSigner("secret-a").verify(token)


def test_well_signed_but_incomplete_payload_is_refused() -> None:
    serializer = URLSafeTimedSerializer("secret-a", salt="turnout.token.v1")
    with pytest.raises(InvalidToken, match="incomplete"):
        TokenSigner("secret-a").verify(serializer.dumps({"k": "user"}))


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("owner", {"view", "checkin", "manage", "admin"}),
        ("organizer", {"view", "checkin", "manage"}),
        ("door_staff", {"view", "checkin"}),
        ("viewer", {"view"}),
        ("hacker", set()),
    ],
)
def test_permissions_by_role(role: str, allowed: set[str]) -> None:
    user = Principal(kind="user", subject_id="u", org_id="o", role=role, name="n")
    for permission in ("view", "checkin", "manage", "admin", "kiosk"):
        assert user.can(permission) is (permission in allowed), (role, permission)


def test_kiosk_may_only_act_as_kiosk() -> None:
    assert KIOSK.can("kiosk")
    for permission in ("view", "checkin", "manage", "admin"):
        assert not KIOSK.can(permission)
    # Even a kiosk token claiming an owner role is still only a kiosk.
    sneaky = Principal(kind="kiosk", subject_id="k", org_id="o", role="owner", name="n")
    assert not sneaky.can("manage")


def test_users_cannot_act_as_kiosks() -> None:
    owner = Principal(kind="user", subject_id="u", org_id="o", role="owner", name="n")
    assert not owner.can("kiosk")


def test_password_hash_verifies_only_the_right_password() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$")
    assert "correct horse" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_same_password_hashes_differently_each_time() -> None:
    first, second = hash_password("ünïcode pässword"), hash_password("ünïcode pässword")
    assert first != second
    assert verify_password("ünïcode pässword", first)
    assert verify_password("ünïcode pässword", second)


@pytest.mark.parametrize("stored", ["", "garbage", "bcrypt$1$2$3$4$5", "a$b$c"])
def test_garbage_stored_hash_never_verifies(stored: str) -> None:
    assert verify_password("anything", stored) is False


def test_link_signer_round_trip_and_purpose_separation() -> None:
    links = LinkSigner("secret-a", "unsubscribe")
    signature = links.sign("person-1")
    assert links.verify("person-1", signature)
    assert not links.verify("person-2", signature)
    assert not links.verify("person-1", "")
    assert not links.verify("person-1", ("A" if signature[0] != "A" else "B") + signature[1:])
    assert not LinkSigner("secret-a", "feedback").verify("person-1", signature)
    assert not LinkSigner("secret-b", "unsubscribe").verify("person-1", signature)
    assert "=" not in signature and len(signature) >= 20


API = Principal(
    kind="api", subject_id="api:t1", org_id="o1", role="viewer", name="CRM sync", session_id="t1", expires_at=None
)


def test_token_carries_its_own_expiry() -> None:
    signer = TokenSigner("secret-a")
    later = int(time.time()) + 3600
    principal = replace(API, expires_at=later)
    assert signer.verify(signer.issue(principal)) == principal
    assert signer.verify(signer.issue(principal)).expires_at == later


def test_token_past_its_own_expiry_is_refused_whatever_its_kind_allows() -> None:
    signer = TokenSigner("secret-a")
    # An API token may live a year by its kind; this one was made to end a second ago.
    token = signer.issue(replace(API, expires_at=int(time.time()) - 1))
    with pytest.raises(InvalidToken, match="token expired; sign in again"):
        signer.verify(token)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token, max_age=None)


def test_token_expiring_in_a_moment_expires() -> None:
    signer = TokenSigner("secret-a")
    token = signer.issue(replace(ALICE, expires_at=int(time.time()) + 1))
    assert signer.verify(token).subject_id == "u1"
    time.sleep(2.05)
    with pytest.raises(InvalidToken, match="expired"):
        signer.verify(token)


def test_token_without_expiry_has_none() -> None:
    signer = TokenSigner("secret-a")
    token = signer.issue(ALICE)
    assert signer.verify(token).expires_at is None
    assert "x" not in URLSafeTimedSerializer("secret-a", salt="turnout.token.v1").loads(token)


@pytest.mark.parametrize("expiry", ["tomorrow", 1.5e12, True, None])
def test_well_signed_but_malformed_expiry_is_refused(expiry: object) -> None:
    serializer = URLSafeTimedSerializer("secret-a", salt="turnout.token.v1")
    payload: dict[str, object] = {"k": "api", "s": "api:t1", "o": "o1", "r": "viewer", "n": "n"}
    # None stands for a payload that is not even an object.
    token = serializer.dumps([payload]) if expiry is None else serializer.dumps({**payload, "x": expiry})
    with pytest.raises(InvalidToken, match="incomplete"):
        TokenSigner("secret-a").verify(token)
