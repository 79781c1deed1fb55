"""Organizations and organizer users: creation and sign-in."""

from __future__ import annotations

import re
import secrets

from checkin.adapters.ids import new_id
from checkin.domain.model import RuleBroken
from checkin.service_layer.context import Context
from checkin.service_layer.ports import AlreadyStored, Transaction
from turnout_common.auth import ROLES, Principal, hash_password, verify_password
from turnout_common.clock import utcnow
from turnout_common.emails import normalize_email
from turnout_common.types import Doc

# A fixed hash to compare against when the email is unknown, so a wrong email
# and a wrong password take the same time.
_DUMMY_HASH = hash_password("not-a-real-password")


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")[:60] or "org"


def create_organization(ctx: Context, name: str, owner_email: str, owner_name: str, password: str) -> Doc:
    """A new organization with its first owner."""
    org: Doc = {"_id": new_id(), "name": name, "slug": slugify(name), "created_at": utcnow()}
    user = new_user_doc(org["_id"], owner_email, owner_name, password, "owner")

    def work(tx: Transaction) -> Doc:
        try:
            tx.store.organizations.add(org)
            tx.store.users.add(user)
        except AlreadyStored as exc:
            raise RuleBroken(
                "already_exists", "an organization with that name or a user with that email exists"
            ) from exc
        return org

    return ctx.uow().run(work)


def new_user_doc(org_id: str, email: str, name: str, password: str, role: str) -> Doc:
    if role not in ROLES:
        raise RuleBroken("invalid_role", f"role must be one of {', '.join(ROLES)}", "role")
    if len(password) < 10:
        raise RuleBroken("weak_password", "passwords need at least 10 characters", "password")
    return {
        "_id": new_id(),
        "org_id": org_id,
        "email": normalize_email(email),
        "name": name,
        "role": role,
        "password_hash": hash_password(password),
        "created_at": utcnow(),
    }


def sign_in(ctx: Context, email: str, password: str) -> tuple[str, Doc]:
    """Check the password and return a session token and the user."""
    user = ctx.store.users.by_email(normalize_email(email))
    if user is None:
        verify_password(password, _DUMMY_HASH)
        raise RuleBroken("invalid_credentials", "email or password is wrong")
    if not verify_password(password, user["password_hash"]) or user.get("deactivated_at"):
        raise RuleBroken("invalid_credentials", "email or password is wrong")
    org = ctx.store.organizations.get(user["org_id"]) or {}
    principal = Principal(
        kind="user",
        subject_id=user["_id"],
        org_id=user["org_id"],
        role=user["role"],
        name=user["name"],
        # This sign-in's own id: signing out ends it and no other session of the user.
        session_id=secrets.token_urlsafe(12),
    )
    return ctx.signer.issue(principal), {
        "id": user["_id"],
        "name": user["name"],
        "email": user["email"],
        "role": user["role"],
        "organization": {"id": user["org_id"], "name": org.get("name")},
    }


def organization_name(ctx: Context, org_id: str) -> str | None:
    return ctx.store.organizations.name_of(org_id)


def find_by_slug(ctx: Context, slug: str) -> Doc | None:
    return ctx.store.organizations.by_slug(slug)
