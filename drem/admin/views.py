"""Admin pages: users (create staff, roles, passwords, disable, delete) and the audit log."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from drem.admin import service
from drem.admin.forms import ResetPasswordForm, StaffUserForm
from drem.auth import service as accounts
from drem.auth.forms import RoleForm
from drem.platform.audit import audit_actions, list_audit
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import flag, int_arg
from drem.platform.permissions import require
from drem.platform.web import EmptyForm

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


def _users_page(new_form: StaffUserForm | None = None, shown: dict | None = None, status: int = 200):
    """The Users page; ``shown`` is ``{username, password}`` of a password shown once."""
    return render_template("admin/users.html", users=accounts.list_users(), role_form=RoleForm(),
                           form=EmptyForm(), new_form=new_form or StaffUserForm(prefix="new"),
                           password_form=ResetPasswordForm(prefix="pw"), shown=shown), status


@bp.get("/users")
@require("users.manage")
def users():
    return _users_page()


@bp.post("/users")
@require("users.manage")
def create_user():
    """Create a staff account (the API's ``accounts.create_user``); an empty password is
    generated and shown once on the answer page."""
    form = StaffUserForm(prefix="new")
    if not form.validate_on_submit():
        return _users_page(form, status=400)
    password = form.password.data or service.new_password()
    try:
        user = accounts.create_user(form.username.data, password, role=form.role.data, email=form.email.data,
                                    actor=current_user)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _users_page(form, status=exc.status)
    commit()
    flash(f"{user.username} ({user.role}) created", "info")
    shown = None if form.password.data else {"username": user.username, "password": password}
    return _users_page(shown=shown)


@bp.post("/users/<int:user_id>/password")
@require("users.manage")
def reset_password(user_id: int):
    """A new password for a user (given, or generated and shown once); their sessions end
    and their API tokens are revoked."""
    user = accounts.get_user(user_id)
    form = ResetPasswordForm(prefix="pw")
    if not form.validate_on_submit():
        return _users_page(status=400)
    try:
        generated, revoked = service.reset_password(current_user, user, form.password.data or None)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _users_page(status=exc.status)
    commit()
    if user.id == current_user.id:
        login_user(user)  # this session continues with the new session version
    flash(f"new password for {user.username}; their sessions ended and {revoked} API token(s) were revoked",
          "info")
    return _users_page(shown={"username": user.username, "password": generated} if generated else None)


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
    action = request.args.get("action") or None
    page = list_audit(page=int_arg("page", 1, 1, 100000), action=action)
    return render_template("admin/audit.html", page=page, action=action, actions=audit_actions())
