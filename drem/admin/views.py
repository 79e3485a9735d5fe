"""Admin pages: users (roles, disable, delete) and the audit log."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from drem.admin import service
from drem.auth import service as accounts
from drem.auth.forms import RoleForm
from drem.platform.audit import list_audit
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import flag, int_arg
from drem.platform.permissions import require
from drem.platform.web import EmptyForm

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@bp.get("/users")
@require("users.manage")
def users():
    return render_template("admin/users.html", users=accounts.list_users(), role_form=RoleForm(), form=EmptyForm())


@bp.post("/users/<int:user_id>/role")
@require("users.manage")
def change_role(user_id: int):
    form = RoleForm()
    if form.validate_on_submit():
        _apply(lambda u: service.change_role(current_user, u, form.role.data), user_id)
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/disable")
@require("users.manage")
def disable(user_id: int):
    if EmptyForm().validate_on_submit():
        disabled = flag(request.form, "disabled")
        _apply(lambda u: service.set_disabled(current_user, u, disabled), user_id)
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/delete")
@require("users.manage")
def delete(user_id: int):
    if EmptyForm().validate_on_submit():
        _apply(lambda u: service.delete_user(current_user, u), user_id)
    return redirect(url_for("admin.users"))


def _apply(change, user_id: int) -> None:
    try:
        change(accounts.get_user(user_id))
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        commit()
        flash("saved", "info")


@bp.get("/audit")
@require("users.manage")
def audit():
    page = list_audit(page=int_arg("page", 1, 1, 100000), action=request.args.get("action") or None)
    return render_template("admin/audit.html", page=page)
