"""Who may use an organization: its users (with roles) and its API tokens."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from checkin.adapters.mongo import API_TOKENS, USERS
from checkin.bootstrap import Context
from checkin.domain.model import RuleBroken
from checkin.service_layer.messages import access_revoked_message
from checkin.service_layer.organizations import new_user_doc
from turnout_common.auth import ROLES, Principal
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.mongo import UnitOfWork, find_in_org

Doc = dict[str, Any]


def _no_higher_than(granter: Principal, role: str) -> None:
    """Nobody hands out more power than they hold (only an owner makes owners)."""
    if role not in ROLES:
        raise RuleBroken("invalid_role", f"role must be one of {', '.join(ROLES)}", "role")
    if ROLES.index(role) < ROLES.index(granter.role):
        raise RuleBroken("forbidden_role", f"a {granter.role} cannot grant the {role} role", "role")


def add_user(ctx: Context, granter: Principal, email: str, name: str, role: str, password: str) -> Doc:
    _no_higher_than(granter, role)
    user = new_user_doc(granter.org_id, email, name, password, role)
    try:
        ctx.db[USERS].insert_one(user)
    except DuplicateKeyError as exc:
        raise RuleBroken("already_exists", "a user with that email already exists", "email") from exc
    return user


def list_users(ctx: Context, org_id: str) -> list[Doc]:
    return list(ctx.db[USERS].find({"org_id": org_id}, {"password_hash": 0}).sort("created_at", 1))


def public_user(user: Doc) -> Doc:
    return {
        "id": user["_id"],
        "email": user["email"],
        "name": user["name"],
        "role": user["role"],
        "active": not user.get("deactivated_at"),
    }


def deactivate_user(ctx: Context, granter: Principal, user_id: str) -> Doc:
    user = ctx.db[USERS].find_one({"_id": user_id, "org_id": granter.org_id})
    if user is None:
        raise RuleBroken("user_not_found", "no such user in your organization")
    if user_id == granter.subject_id:
        raise RuleBroken("forbidden_role", "you cannot deactivate yourself")
    _no_higher_than(granter, user["role"])
    # Deactivating again keeps the first moment, and announces it again (harmless:
    # consumers keep the first record), so a user deactivated before the message
    # existed reaches followup and analytics too.
    deactivated_at = user.get("deactivated_at") or utcnow()

    def work(uow: UnitOfWork) -> None:
        uow.db[USERS].update_one({"_id": user_id}, {"$set": {"deactivated_at": deactivated_at}}, session=uow.session)
        uow.publish(access_revoked_message(granter.org_id, user_id, "user", "user_deactivated", deactivated_at))

    ctx.uow().run(work)
    ctx.access.forget_user(user_id)
    user["deactivated_at"] = deactivated_at
    return user


def create_api_token(ctx: Context, granter: Principal, name: str, role: str, days: int) -> tuple[str, Doc]:
    """A long-lived token for an integration; the secret is shown once."""
    _no_higher_than(granter, role)
    token_id = secrets.token_urlsafe(12)
    now = utcnow()
    doc: Doc = {
        "_id": token_id,
        "org_id": granter.org_id,
        "name": name.strip(),
        "role": role,
        "created_by": granter.subject_id,
        "created_at": now,
        "expires_at": now + timedelta(days=days),
        "revoked_at": None,
    }
    ctx.db[API_TOKENS].insert_one(doc)
    token = ctx.signer.issue(
        Principal(
            kind="api",
            subject_id=f"api:{token_id}",
            org_id=granter.org_id,
            role=role,
            name=doc["name"],
            session_id=token_id,
            # Signed into the token, so followup and analytics refuse it after
            # its lifetime too, not only after API_TOKEN_MAX_AGE.
            expires_at=int(doc["expires_at"].timestamp()),
        )
    )
    return token, doc


def list_api_tokens(ctx: Context, org_id: str) -> list[Doc]:
    return list(ctx.db[API_TOKENS].find({"org_id": org_id}).sort("created_at", -1))


def public_api_token(doc: Doc) -> Doc:
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "role": doc["role"],
        "created_at": to_rfc3339(doc["created_at"]),
        "expires_at": to_rfc3339(doc["expires_at"]),
        "revoked": doc.get("revoked_at") is not None,
    }


def revoke_api_token(ctx: Context, org_id: str, token_id: str) -> Doc:
    """Revoke at once here, and (through ``access.revoked``) in followup and analytics."""

    def work(uow: UnitOfWork) -> Doc:
        doc = find_in_org(uow.db[API_TOKENS], token_id, org_id, session=uow.session)
        if doc is None:
            raise RuleBroken("token_not_found", "no such API token in your organization")
        # Revoking again keeps the first moment and announces it again (harmless).
        doc["revoked_at"] = doc.get("revoked_at") or utcnow()
        uow.db[API_TOKENS].update_one(
            {"_id": token_id}, {"$set": {"revoked_at": doc["revoked_at"]}}, session=uow.session
        )
        uow.publish(access_revoked_message(org_id, f"api:{token_id}", "api", "api_token_revoked", doc["revoked_at"]))
        return doc

    doc = ctx.uow().run(work)
    ctx.access.forget(token_id)
    return doc


class AccessChecks:
    """Is this API token still valid, is this user still active (cached a few seconds per process)."""

    def __init__(self, db: Database[Doc], ttl: float = 3.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: str, load: Any) -> bool:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = bool(load())
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, value)
        return value

    def api_token_valid(self, token_id: str) -> bool:
        def load() -> bool:
            doc = self.db[API_TOKENS].find_one({"_id": token_id}, {"revoked_at": 1, "expires_at": 1})
            return doc is not None and doc.get("revoked_at") is None and doc["expires_at"] > utcnow()

        return self._cached(f"t:{token_id}", load)

    def user_active(self, user_id: str) -> bool:
        def load() -> bool:
            doc = self.db[USERS].find_one({"_id": user_id}, {"deactivated_at": 1})
            return doc is not None and not doc.get("deactivated_at")

        return self._cached(f"u:{user_id}", load)

    def forget(self, token_id: str) -> None:
        with self._lock:
            self._cache.pop(f"t:{token_id}", None)

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._cache.pop(f"u:{user_id}", None)
