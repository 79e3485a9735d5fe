"""Admin JSON API: users and the audit log."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user

from drem.admin import service
from drem.auth.models import User
from drem.auth.service import create_user, get_user
from drem.platform.effects import commit
from drem.platform.extensions import db
from drem.platform.inputs import int_arg
from drem.platform.permissions import require
from drem.platform.web import json_body

bp = Blueprint("admin_api", __name__, url_prefix="/api")


@bp.get("/users")
@require("users.manage")
def list_users():
    query = db.select(User).order_by(User.username_key)
    if request.args.get("role"):
        query = query.where(User.role == request.args["role"])
    return jsonify(users=[u.to_dict() for u in db.session.scalars(query)])


@bp.post("/users")
@require("users.manage")
def create():
    data = json_body()
    user = create_user(str(data.get("username", "")), data.get("password"), role=str(data.get("role", "racer")),
                       email=data.get("email"), country_code=data.get("country_code"), actor=current_user)
    commit()
    return jsonify(user.to_dict()), 201


@bp.patch("/users/<int:user_id>")
@require("users.manage")
def update(user_id: int):
    data = json_body()
    user = get_user(user_id)
    if "role" in data:
        service.change_role(current_user, user, str(data["role"]))
    if "is_disabled" in data:
        service.set_disabled(current_user, user, bool(data["is_disabled"]))
    commit()
    return jsonify(user.to_dict())


@bp.delete("/users/<int:user_id>")
@require("users.manage")
def delete(user_id: int):
    service.delete_user(current_user, get_user(user_id))
    commit()
    return "", 204


@bp.get("/audit")
@require("users.manage")
def audit():
    page = service.list_audit(page=int_arg("page", 1, 1, 100000), per_page=int_arg("per_page", 50, 1, 500),
                              action=request.args.get("action") or None)
    return jsonify(entries=[e.to_dict() for e in page.items], page=page.page, pages=page.pages,
                   total=page.total)
