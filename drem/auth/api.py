"""Account JSON API: tokens, who am I, racer accounts at the desk."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_user

from drem.auth import service
from drem.platform.effects import commit
from drem.platform.permissions import public, require
from drem.platform.tokens import bearer_token
from drem.platform.web import json_body, no_csrf

bp = Blueprint("auth_api", __name__, url_prefix="/api")


@bp.post("/auth/tokens")
@public
@no_csrf
def create_token():
    """Exchange username + password for a personal API token (shown once)."""
    data = json_body()
    user = service.authenticate(str(data.get("username", "")), str(data.get("password", "")))
    token, plain = service.create_api_token(user, str(data.get("name") or "api"),
                                            timedelta(days=current_app.config["API_TOKEN_TTL_DAYS"]))
    commit()
    return jsonify(token=plain, **token.to_dict()), 201


@bp.get("/me")
@require("account.self")
def me():
    return jsonify(current_user.to_dict())


@bp.get("/me/tokens")
@require("account.self")
def list_tokens():
    return jsonify(tokens=[t.to_dict() for t in service.list_api_tokens(current_user)])


@bp.delete("/me/tokens/<int:token_id>")
@require("account.self")
def revoke_token(token_id: int):
    service.revoke_api_token(current_user, token_id)
    commit()
    return "", 204


@bp.post("/me/password")
@require("account.self")
def change_password():
    data = json_body()
    revoked = service.change_password(current_user, data.get("current_password"), str(data.get("new_password", "")))
    commit()
    if current_user.is_authenticated and bearer_token(request) is None:
        login_user(current_user._get_current_object())  # the cookie session continues with the new version
    return jsonify(tokens_revoked=revoked), 200


@bp.post("/racers")
@require("racers.register")
def create_racer():
    """Create a racer account at the desk (country required); answers the one-time sign-in
    code. To enrol in an event too, use ``POST /api/events/<id>/enrol`` (drem.enrolment)."""
    data = json_body()
    racer = service.create_user(str(data.get("username", "")), None, email=data.get("email"),
                                country_code=data.get("country_code"), actor=current_user,
                                country_required=True)
    code = service.create_sign_in_code(racer, current_user, _ttl())
    commit()
    return jsonify(user=racer.to_dict(), sign_in_code=code), 201


@bp.post("/racers/<int:user_id>/sign-in-code")
@require("racers.register")
def new_code(user_id: int):
    racer = service.get_user(user_id)
    code = service.create_sign_in_code(racer, current_user, _ttl())
    commit()
    return jsonify(sign_in_code=code), 201


@bp.post("/auth/code")
@public
@no_csrf
def redeem_code():
    """Redeem a one-time sign-in code for an API token (for kiosk and script sign-in); the
    token lives as long as a sign-in code (``SIGN_IN_CODE_TTL_H``)."""
    data = json_body()
    user = service.redeem_sign_in_code(str(data.get("code", "")))
    token, plain = service.create_api_token(user, "sign-in code", _ttl())
    commit()
    return jsonify(token=plain, user=user.to_dict()), 201


def _ttl() -> timedelta:
    return timedelta(hours=current_app.config["SIGN_IN_CODE_TTL_H"])
