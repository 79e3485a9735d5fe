"""Account pages: login (password or one-time code), sign-up, account, registration desk."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from drem.auth import service
from drem.auth.forms import CodeLoginForm, LoginForm, PasswordForm, RacerForm, SignupForm, TokenForm
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import limiter
from drem.platform.permissions import public, require
from drem.platform.web import EmptyForm

bp = Blueprint("auth", __name__, template_folder="templates")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _safe_next(default: str) -> str:
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else default


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def login():
    form, code_form = LoginForm(), CodeLoginForm(prefix="code")
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.username.data, form.password.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
            login_user(user)
            return redirect(_safe_next(url_for("main.home")))
    return render_template("auth/login.html", form=form, code_form=code_form)


@bp.route("/login/code", methods=["POST"])
@public
@limiter.limit(_login_limit)
def login_code():
    form = CodeLoginForm(prefix="code")
    if form.validate_on_submit():
        try:
            user = service.redeem_sign_in_code(form.code.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
            login_user(user)
            flash("Welcome! Choose a password so you can sign in again later.", "info")
            return redirect(url_for("auth.account"))
    else:
        flash("type the code from your slip", "error")
    return redirect(url_for("auth.login"))


@bp.route("/logout", methods=["POST"])
@require("account.self")
def logout():
    logout_user()
    return redirect(url_for("main.home"))


@bp.route("/signup", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = service.create_user(form.username.data, form.password.data, email=form.email.data,
                                       country_code=form.country_code.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
            login_user(user)
            return redirect(url_for("main.home"))
    return render_template("auth/signup.html", form=form)


@bp.route("/account", methods=["GET", "POST"])
@require("account.self")
@login_required
def account():
    form, token_form = PasswordForm(), TokenForm(prefix="token")
    if form.validate_on_submit():
        try:
            service.change_password(current_user, form.current_password.data, form.new_password.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
            flash("password changed", "info")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, token_form=token_form,
                           new_token=None, revoke_form=EmptyForm())


@bp.route("/account/tokens", methods=["POST"])
@require("account.self")
def create_token():
    token_form = TokenForm(prefix="token")
    new_token = None
    if token_form.validate_on_submit():
        try:
            _, new_token = service.create_api_token(current_user, token_form.name.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
    return render_template("auth/account.html", form=PasswordForm(), token_form=TokenForm(prefix="token"),
                           new_token=new_token, revoke_form=EmptyForm())


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@require("account.self")
def revoke_token(token_id: int):
    if EmptyForm().validate_on_submit():
        service.revoke_api_token(current_user, token_id)
        commit()
        flash("token revoked", "info")
    return redirect(url_for("auth.account"))


@bp.route("/desk", methods=["GET", "POST"])
@require("racers.register")
def desk():
    form = RacerForm()
    if form.validate_on_submit():
        try:
            racer = service.create_user(form.username.data, None, email=form.email.data,
                                        country_code=form.country_code.data, actor=current_user)
            code = service.create_sign_in_code(racer, current_user, _code_ttl())
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
            return render_template("auth/slip.html", racer=racer, code=code, ttl_h=_code_ttl_h())
    racers = service.list_users(role="racer", newest_first=True, limit=50)
    return render_template("auth/desk.html", form=form, racers=racers, code_form=EmptyForm())


@bp.route("/desk/racers/<int:user_id>/code", methods=["POST"])
@require("racers.register")
def new_code(user_id: int):
    racer = service.get_user(user_id)
    if not EmptyForm().validate_on_submit():
        flash("the form expired; try again", "error")
        return redirect(url_for("auth.desk"))
    if racer.role != "racer":
        flash("sign-in codes are for racer accounts only", "error")
        return redirect(url_for("auth.desk"))
    code = service.create_sign_in_code(racer, current_user, _code_ttl())
    commit()
    return render_template("auth/slip.html", racer=racer, code=code, ttl_h=_code_ttl_h())


def _code_ttl_h() -> int:
    return current_app.config["SIGN_IN_CODE_TTL_H"]


def _code_ttl() -> timedelta:
    return timedelta(hours=_code_ttl_h())
