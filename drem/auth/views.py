"""Account pages: login (password or one-time code), sign-up, account (password, country,
API tokens). The registration desk is in :mod:`drem.enrolment` (it enrols in events too)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from drem.auth import service
from drem.auth.forms import (
    CodeLoginForm,
    CountryForm,
    LoginForm,
    PasswordForm,
    SignupForm,
    TokenForm,
)
from drem.platform.db_types import utcnow
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.permissions import public, require
from drem.platform.web import EmptyForm

bp = Blueprint("auth", __name__, template_folder="templates")


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site, else ``default``.

    A path starts with one ``/`` and holds no control character, space or backslash:
    browsers drop tabs and newlines and read ``\\`` as ``/``, so ``/\t/evil.example`` or
    ``/\\evil.example`` would leave the site.
    """
    target = target or ""
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target)):
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Password sign-in; ``?code=XXXX-XXXX`` (the QR code of a desk slip) fills in the
    one-time code form. A GET never uses the code: the racer presses "Sign in" (a POST), so a
    phone's link preview cannot spend it."""
    form, code_form = LoginForm(), CodeLoginForm(prefix="code")
    if request.method == "GET" and request.args.get("code"):
        code_form.code.data = request.args["code"][:20]
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.username.data, form.password.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
            login_user(user)
            return redirect(safe_next(request.args.get("next"), url_for("main.home")))
    return render_template("auth/login.html", form=form, code_form=code_form,
                           code_given=bool(code_form.code.data))


@bp.route("/login/code", methods=["POST"])
@public
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
    """Sign out everywhere: every session cookie of this user stops working (a copied
    cookie too); API tokens stay (revoke them on the account page)."""
    service.end_sessions(current_user)
    commit()
    logout_user()
    return redirect(url_for("main.home"))


@bp.route("/signup", methods=["GET", "POST"])
@public
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = service.create_user(form.username.data, form.password.data, email=form.email.data,
                                       country_code=form.country_code.data, country_required=True)
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
            revoked = service.change_password(current_user, form.current_password.data, form.new_password.data)
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
            login_user(current_user._get_current_object())  # this session continues with the new version
            flash(f"password changed; your other sessions ended and {revoked} API token(s) were revoked", "info")
            return redirect(url_for("auth.account"))
    return _account_page(form=form, token_form=token_form)


def _account_page(**forms):
    """The account page with fresh forms where ``forms`` gives none."""
    forms.setdefault("form", PasswordForm())
    forms.setdefault("token_form", TokenForm(prefix="token"))
    forms.setdefault("country_form", CountryForm(prefix="country", country_code=current_user.country_code))
    forms.setdefault("new_token", None)
    return render_template("auth/account.html", revoke_form=EmptyForm(),
                           tokens=service.list_api_tokens(current_user), now=utcnow(), **forms)


@bp.post("/account/country")
@require("account.self")
def change_country():
    """Change one's own country (ISO 3166-1 code from the page's ``<select>``)."""
    country_form = CountryForm(prefix="country")
    if not country_form.validate_on_submit():
        flash("the form expired; try again", "error")
        return redirect(url_for("auth.account"))
    try:
        service.set_country(current_user, country_form.country_code.data)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _account_page(country_form=country_form), 400
    commit()
    flash("country saved", "info")
    return redirect(url_for("auth.account"))


@bp.route("/account/tokens", methods=["POST"])
@require("account.self")
def create_token():
    token_form = TokenForm(prefix="token")
    new_token = None
    if token_form.validate_on_submit():
        try:
            _, new_token = service.create_api_token(current_user, token_form.name.data, _token_ttl())
        except ServiceError as exc:
            flash(exc.message, "error")
        else:
            commit()
    return _account_page(new_token=new_token)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@require("account.self")
def revoke_token(token_id: int):
    if EmptyForm().validate_on_submit():
        service.revoke_api_token(current_user, token_id)
        commit()
        flash("token revoked", "info")
    return redirect(url_for("auth.account"))


def _token_ttl() -> timedelta:
    return timedelta(days=current_app.config["API_TOKEN_TTL_DAYS"])
