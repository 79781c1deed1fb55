"""Who may use an organization: its users (with roles), their sessions and its API tokens.

Adding a user, changing a role and deactivating a user are audited (``user.*``).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from checkin.domain.audit import USER_CREATED, USER_DEACTIVATED, USER_ROLE_CHANGED, Subject, actor_of
from checkin.domain.model import RuleBroken
from checkin.service_layer import audit
from checkin.service_layer.caches import AccessChecks
from checkin.service_layer.context import Context
from checkin.service_layer.messages import SOURCE, access_revoked_message
from checkin.service_layer.organizations import new_user_doc
from checkin.service_layer.ports import AlreadyStored, Transaction
from turnout_common.auth import ROLES, SESSION_MAX_AGE, Principal
from turnout_common.clock import to_rfc3339, utcnow
from turnout_common.revocations import role_changed_message, session_subject
from turnout_common.types import Doc

__all__ = ["AccessChecks"]


def _no_higher_than(granter: Principal, role: str) -> None:
    """Nobody hands out more power than they hold (only an owner makes owners)."""
    if role not in ROLES:
        raise RuleBroken("invalid_role", f"role must be one of {', '.join(ROLES)}", "role")
    if ROLES.index(role) < ROLES.index(granter.role):
        raise RuleBroken("forbidden_role", f"a {granter.role} cannot grant the {role} role", "role")


def add_user(ctx: Context, granter: Principal, email: str, name: str, role: str, password: str) -> Doc:
    _no_higher_than(granter, role)
    user = new_user_doc(granter.org_id, email, name, password, role)

    def work(tx: Transaction) -> None:
        try:
            tx.store.users.add(user)
        except AlreadyStored as exc:
            raise RuleBroken("already_exists", "a user with that email already exists", "email") from exc
        audit.record(
            tx.store,
            granter.org_id,
            actor_of(granter),
            USER_CREATED,
            Subject("user", user["_id"]),
            at=user["created_at"],
            details={"role": role},
        )

    ctx.uow().run(work)
    return user


def list_users(ctx: Context, org_id: str) -> list[Doc]:
    return ctx.store.users.of_org(org_id)


def public_user(user: Doc) -> Doc:
    return {
        "id": user["_id"],
        "email": user["email"],
        "name": user["name"],
        "role": user["role"],
        "active": not user.get("deactivated_at"),
    }


def _active_owners(tx: Transaction, org_id: str) -> list[str]:
    return [u["_id"] for u in tx.store.users.of_org(org_id) if u["role"] == "owner" and not u.get("deactivated_at")]


def _keep_an_owner(tx: Transaction, org_id: str, user: Doc, at: datetime) -> None:
    """Refuse to leave the organization without an active owner. Every role change
    and deactivation also writes the organization, so two at once conflict and the
    second is decided again on what the first left."""
    tx.store.organizations.mark_roles_changed(org_id, at)
    owners = _active_owners(tx, org_id)
    if owners == [user["_id"]]:
        raise RuleBroken("last_owner", "this is the organization's last owner; make someone else an owner first")


def change_role(ctx: Context, granter: Principal, user_id: str, role: str) -> Doc:
    """Give a user of the organization another role (owners only); audited as ``user.role_changed``.

    The last active owner cannot be demoted (``last_owner``). The user's
    sessions begun before the change carry the old role, so they are refused
    (``role_changed``): here from the user's ``role_changed_at`` (``AccessChecks``),
    in followup and analytics through ``access.revoked``, published in the same
    transaction; the user signs in again to get the new role.
    """
    if not granter.can("admin"):
        raise RuleBroken("forbidden_role", "only an owner changes roles", "role")
    _no_higher_than(granter, role)

    def work(tx: Transaction) -> Doc:
        now = utcnow()
        user = tx.store.users.get_in_org(user_id, granter.org_id)
        if user is None:
            raise RuleBroken("user_not_found", "no such user in your organization")
        before = user["role"]
        if before == role:
            return user
        if before == "owner":
            _keep_an_owner(tx, granter.org_id, user, now)
        else:
            tx.store.organizations.mark_roles_changed(granter.org_id, now)
        tx.store.users.set_role(user_id, role, now)
        audit.record(
            tx.store,
            granter.org_id,
            actor_of(granter),
            USER_ROLE_CHANGED,
            Subject("user", user_id),
            at=now,
            details={"from": before, "to": role},
        )
        tx.publish(role_changed_message(granter.org_id, user_id, role, now, SOURCE))
        return {**user, "role": role, "role_changed_at": now}

    changed = ctx.uow().run(work)
    ctx.access.forget_user(user_id)
    return changed


def deactivate_user(ctx: Context, granter: Principal, user_id: str) -> Doc:
    user = ctx.store.users.get_in_org(user_id, granter.org_id)
    if user is None:
        raise RuleBroken("user_not_found", "no such user in your organization")
    if user_id == granter.subject_id:
        raise RuleBroken("forbidden_role", "you cannot deactivate yourself")
    _no_higher_than(granter, user["role"])
    # Deactivating again keeps the first moment, and announces it again (harmless:
    # consumers keep the first record), so a user deactivated before the message
    # existed reaches followup and analytics too.
    first_time = not user.get("deactivated_at")
    deactivated_at = user.get("deactivated_at") or utcnow()

    def work(tx: Transaction) -> None:
        if first_time and user["role"] == "owner":
            _keep_an_owner(tx, granter.org_id, user, deactivated_at)
        tx.store.users.set_deactivated(user_id, deactivated_at)
        tx.publish(access_revoked_message(granter.org_id, user_id, "user", "user_deactivated", deactivated_at))
        if first_time:
            audit.record(
                tx.store,
                granter.org_id,
                actor_of(granter),
                USER_DEACTIVATED,
                Subject("user", user_id),
                at=deactivated_at,
                details={"role": user["role"]},
            )

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
    ctx.store.api_tokens.add(doc)
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
    return ctx.store.api_tokens.of_org(org_id)


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

    def work(tx: Transaction) -> Doc:
        doc = tx.store.api_tokens.get_in_org(token_id, org_id)
        if doc is None:
            raise RuleBroken("token_not_found", "no such API token in your organization")
        # Revoking again keeps the first moment and announces it again (harmless).
        doc["revoked_at"] = doc.get("revoked_at") or utcnow()
        tx.store.api_tokens.set_revoked(token_id, doc["revoked_at"])
        tx.publish(access_revoked_message(org_id, f"api:{token_id}", "api", "api_token_revoked", doc["revoked_at"]))
        return doc

    doc = ctx.uow().run(work)
    ctx.access.forget(token_id)
    return doc


def sign_out(ctx: Context, principal: Principal) -> bool:
    """End this session: refused here at once and, through ``access.revoked``, in
    followup and analytics as soon as the message arrives. The record lasts as
    long as the session could (``SESSION_MAX_AGE`` from now bounds it), then
    expires. Return False when there is no session to end (an API token or a
    kiosk, which are revoked instead; a session token from before sessions had
    ids, which only expires)."""
    session_id = principal.session_id
    if principal.kind != "user" or not session_id:
        return False
    ended_at = utcnow()
    expires_at = ended_at + timedelta(seconds=SESSION_MAX_AGE)
    session: Doc = {
        "_id": session_id,
        "org_id": principal.org_id,
        "user_id": principal.subject_id,
        "ended_at": ended_at,
        "expires_at": expires_at,
    }

    def work(tx: Transaction) -> None:
        tx.store.ended_sessions.end(session)
        tx.publish(
            access_revoked_message(
                principal.org_id, session_subject(session_id), "session", "signed_out", ended_at, expires_at
            )
        )

    ctx.uow().run(work)
    ctx.access.forget_session(session_id)
    return True
