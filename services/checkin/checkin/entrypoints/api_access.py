"""Users of an organization and its API tokens (owners and organizers manage them)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from checkin.bootstrap import context_of
from checkin.domain.model import RuleBroken
from checkin.entrypoints.api_audit import api_error
from checkin.service_layer import access
from checkin.service_layer.context import Context
from turnout_common.auth import ROLES, SESSION_COOKIE
from turnout_common.web import ApiError, operation

bp = Blueprint("api_access", __name__, url_prefix="/api/v1")

USER_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["email", "name", "role", "password"],
    "properties": {
        "email": {
            "type": "string",
            "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            "maxLength": 254,
            "description": "a valid email address",
        },
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "role": {"enum": list(ROLES)},
        "password": {"type": "string", "minLength": 10, "maxLength": 256},
    },
}
TOKEN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "role"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "role": {"enum": list(ROLES)},
        "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 365},
    },
}


def ctx() -> Context:
    return context_of(current_app)


@bp.post("/auth/logout")
@operation(
    "Sign out: this session token is refused from now on by checkin, and by followup and analytics "
    "within seconds; clears the session cookie",
    auth="view",
    responses={204: "signed out", 400: "not a session (an API token is revoked instead)"},
    tags=["auth"],
)
def logout() -> Response:
    if not access.sign_out(ctx(), g.principal):
        raise ApiError(
            400,
            "not_a_session",
            "only a session signs out; revoke an API token with POST /api/v1/api-tokens/<id>/revoke",
        )
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


@bp.get("/users")
@operation("Your organization's users and their roles", auth="manage", tags=["access"])
def list_users() -> Any:
    return {"users": [access.public_user(u) for u in access.list_users(ctx(), g.principal.org_id)]}


@bp.post("/users")
@operation(
    "Add a user with a role (no higher than your own; audited as user.created)",
    body=USER_BODY,
    auth="manage",
    responses={201: "added", 409: "email taken"},
    tags=["access"],
)
def add_user() -> Any:
    body = g.body
    user = access.add_user(ctx(), g.principal, body["email"], body["name"], body["role"], body["password"])
    return access.public_user(user), 201


ROLE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["role"],
    "properties": {"role": {"enum": list(ROLES)}},
}


@bp.patch("/users/<user_id>")
@operation(
    "Change a user's role (owners only; audited as user.role_changed). The last active owner cannot be "
    "demoted; sessions signed in before keep their role until they expire",
    body=ROLE_BODY,
    auth="admin",
    responses={
        200: "the user with the new role",
        400: "unknown role",
        403: "owners only",
        404: "no such user in your organization",
        409: "the organization's last owner",
    },
    tags=["access"],
)
def change_role(user_id: str) -> Any:
    try:
        user = access.change_role(ctx(), g.principal, user_id, g.body["role"])
    except RuleBroken as error:
        raise api_error(error) from error
    return access.public_user(user)


@bp.post("/users/<user_id>/deactivate")
@operation(
    "Deactivate a user: sign-in and existing sessions stop working (audited as user.deactivated)",
    auth="manage",
    responses={200: "deactivated", 404: "no such user", 409: "the organization's last owner"},
    tags=["access"],
)
def deactivate_user(user_id: str) -> Any:
    return access.public_user(access.deactivate_user(ctx(), g.principal, user_id))


@bp.get("/api-tokens")
@operation("Your organization's API tokens (never their secrets)", auth="manage", tags=["access"])
def list_tokens() -> Any:
    return {"tokens": [access.public_api_token(t) for t in access.list_api_tokens(ctx(), g.principal.org_id)]}


@bp.post("/api-tokens")
@operation(
    "Create an API token for an integration; the token is shown once",
    body=TOKEN_BODY,
    auth="manage",
    responses={201: "created, with the token"},
    tags=["access"],
)
def create_token() -> Any:
    body = g.body
    token, doc = access.create_api_token(
        ctx(), g.principal, body["name"], body["role"], int(body.get("expires_in_days", 90))
    )
    return {**access.public_api_token(doc), "token": token}, 201


@bp.post("/api-tokens/<token_id>/revoke")
@operation(
    "Revoke an API token at once", auth="manage", responses={200: "revoked", 404: "no such token"}, tags=["access"]
)
def revoke_token(token_id: str) -> Any:
    return access.public_api_token(access.revoke_api_token(ctx(), g.principal.org_id, token_id))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
