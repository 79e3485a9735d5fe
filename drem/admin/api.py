"""Admin JSON API: users and the audit log."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user

from drem.admin import service
from drem.auth import service as accounts
from drem.platform.audit import list_audit
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.inputs import flag, int_arg, text
from drem.platform.permissions import require
from drem.platform.web import json_body

bp = Blueprint("admin_api", __name__, url_prefix="/api")


@bp.get("/users")
@require("users.manage")
def list_users():
    """``?role=`` (optional) -> ``{users: [user, ..]}`` by username."""
    return jsonify(users=[u.to_dict() for u in accounts.list_users(role=request.args.get("role") or None)])


@bp.post("/users")
@require("users.manage")
def create():
    """``{username, password?, role?, email?, country_code?}`` -> the new user (201)."""
    data = json_body()
    user = accounts.create_user(text(data, "username", 0, 200, default=""), data.get("password"),
                                role=text(data, "role", 0, 40, default="racer"), email=text(data, "email", 0, 254),
                                country_code=text(data, "country_code", 0, 10), actor=current_user)
    commit()
    return jsonify(user.to_dict()), 201


@bp.patch("/users/<int:user_id>")
@require("users.manage")
def update(user_id: int):
    """``{role?, is_disabled?}`` -> the user; refused when it would leave no active admin."""
    data = json_body()
    user = accounts.get_user(user_id)
    if "role" in data:
        service.change_role(current_user, user, text(data, "role", 0, 40, default=""))
    if "is_disabled" in data:
        service.set_disabled(current_user, user, flag(data, "is_disabled"))
    commit()
    return jsonify(user.to_dict())


@bp.post("/users/<int:user_id>/password")
@require("users.manage")
def reset_password(user_id: int):
    """``{password?}`` -> ``{password (only when generated), tokens_revoked}``: a new password
    (given, or generated and shown once); the user's sessions end and API tokens are revoked."""
    data = json_body()
    given = data.get("password")
    if given is not None and not isinstance(given, str):
        raise ServiceError("password must be text", "password")
    generated, revoked = service.reset_password(current_user, accounts.get_user(user_id), given or None)
    commit()
    return jsonify(password=generated, tokens_revoked=revoked)


@bp.delete("/users/<int:user_id>")
@require("users.manage")
def delete(user_id: int):
    service.delete_user(current_user, accounts.get_user(user_id))
    commit()
    return "", 204


@bp.get("/audit")
@require("users.manage")
def audit():
    """``?page=&per_page=&action=`` -> ``{entries, page, pages, total}``, newest first."""
    page = list_audit(page=int_arg("page", 1, 1, 100000), per_page=int_arg("per_page", 50, 1, 500),
                      action=request.args.get("action") or None)
    return jsonify(entries=[e.to_dict() for e in page.items], page=page.page, pages=page.pages,
                   total=page.total)
