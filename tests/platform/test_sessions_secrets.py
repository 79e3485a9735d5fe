"""Issue 18, the review's account findings: sessions end on logout and password change,
API tokens expire and are revoked with the password, disabled or demoted users lose their
open sockets, production refuses placeholder secrets, sign-in limits are shared and per
account, login timing does not tell which usernames exist, desk staff cannot take over a
racer who chose a password."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest

from drem.platform.config import ConfigError, load_config
from drem.platform.extensions import db, limiter, socketio
from tests.factories import PASSWORD, csrf_from

ROOT = Path(__file__).resolve().parents[2]


def _session_client(app, factory, user):
    c = app.test_client()
    factory.login(c, user)
    return c


def _post_form(c, url: str, data: dict | None = None, page: str = "/account"):
    token = csrf_from(c.get(page).get_data(as_text=True))
    return c.post(url, data={"csrf_token": token} | (data or {}))


# ------------------------------------------------------------------ sessions

def test_logout_ends_every_session_of_the_user(app, factory):
    user = factory.user()
    phone, laptop = _session_client(app, factory, user), _session_client(app, factory, user)
    copied = app.test_client()
    copied.set_cookie("session", laptop.get_cookie("session").value)  # a stolen copy of the cookie
    assert copied.get("/account").status_code == 200
    assert _post_form(laptop, "/logout").status_code == 302
    for c in (laptop, phone, copied):
        assert c.get("/account").status_code == 302  # sent to the login page
    assert _session_client(app, factory, user).get("/account").status_code == 200  # signing in again works


def test_password_change_ends_other_sessions_and_revokes_tokens(app, factory):
    user = factory.user()
    token = factory.token(user)
    here, elsewhere = _session_client(app, factory, user), _session_client(app, factory, user)
    assert here.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    resp = _post_form(here, "/account", {"current_password": PASSWORD, "new_password": "a-new-password-9"})
    assert resp.status_code == 302
    page = here.get("/account")
    assert page.status_code == 200  # this session goes on
    assert "your other sessions ended and 1 API token(s) were revoked" in page.get_data(as_text=True)
    assert elsewhere.get("/account").status_code == 302
    assert app.test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_password_change_by_api_revokes_tokens(app, client, factory):
    user = factory.user()
    old, also_old = factory.token(user), factory.token(user)
    resp = client.post("/api/me/password", json={"current_password": PASSWORD, "new_password": "b-new-password-9"},
                       headers={"Authorization": f"Bearer {old}"})
    assert resp.status_code == 200 and resp.get_json() == {"tokens_revoked": 2}
    for token in (old, also_old):
        assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_api_tokens_expire_and_are_listed_with_their_expiry(app, client, factory):
    from drem.auth.models import ApiToken, User
    from drem.auth.service import create_api_token
    from drem.platform.db_types import utcnow

    user = factory.user()
    resp = client.post("/api/auth/tokens", json={"username": user["username"], "password": PASSWORD})
    assert resp.status_code == 201
    expires = resp.get_json()["expires_at"]
    assert expires is not None
    with app.app_context():
        row = db.session.get(ApiToken, resp.get_json()["id"])
        days = (row.expires_at - utcnow()) / timedelta(days=1)
        assert app.config["API_TOKEN_TTL_DAYS"] - 1 < days <= app.config["API_TOKEN_TTL_DAYS"]
        _, expired = create_api_token(db.session.get(User, user["id"]), "old", ttl=timedelta(seconds=-1))
        db.session.commit()
    assert client.get("/api/me", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    live = resp.get_json()["token"]
    listed = client.get("/api/me/tokens", headers={"Authorization": f"Bearer {live}"}).get_json()["tokens"]
    assert {t["name"] for t in listed} == {"api", "old"} and all(t["expires_at"] for t in listed)
    page = _session_client(app, factory, user).get("/account").get_data(as_text=True)
    assert "expired" in page and "Revoke" in page


def test_sign_in_code_token_expires_with_the_code(app, client, factory):
    desk_h = factory.headers("registration")
    resp = client.post("/api/racers", json={"username": "kiosk1", "country_code": "NL"}, headers=desk_h)
    code = resp.get_json()["sign_in_code"]
    answer = client.post("/api/auth/code", json={"code": code}).get_json()
    from datetime import datetime

    [token] = client.get("/api/me/tokens", headers={"Authorization": f"Bearer {answer['token']}"}).get_json()["tokens"]
    expires, created = datetime.fromisoformat(token["expires_at"]), datetime.fromisoformat(token["created_at"])
    assert expires - created <= timedelta(hours=app.config["SIGN_IN_CODE_TTL_H"], seconds=5)


def test_disabled_or_demoted_users_lose_their_sockets(app, factory):
    from drem.admin.service import change_role, set_disabled
    from drem.auth.models import User
    from drem.platform.effects import commit

    admin = factory.user("admin")
    for change in (lambda a, u: set_disabled(a, u, True), lambda a, u: change_role(a, u, "racer")):
        operator = factory.user("operator")
        browser = _session_client(app, factory, operator)
        sock = socketio.test_client(app, namespace="/fleet", flask_test_client=browser)
        assert sock.is_connected("/fleet")
        with app.test_request_context():
            change(db.session.get(User, admin["id"]), db.session.get(User, operator["id"]))
            commit()
        assert not sock.is_connected("/fleet")
        assert browser.get("/account").status_code == 302  # the session ended too


# ------------------------------------------------------------------ secrets

EXAMPLE = dict(re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / "deploy" / "drem.env.example").read_text(), re.M))


@pytest.mark.parametrize("secret", [EXAMPLE["SECRET_KEY"], "x" * 64, "short-key", "dev-key-" + "0123456789" * 3,
                                    "changeme" + "5f0c3a9e71b24d68a0e1c7b93d4f2a6e"])
def test_production_refuses_placeholder_secret_keys(tmp_path, secret):
    with pytest.raises(ConfigError, match="SECRET_KEY") as info:
        load_config(str(tmp_path), {"DREM_ENV": "production", "SECRET_KEY": secret})
    assert secret not in str(info.value)  # the message never repeats the secret


@pytest.mark.parametrize("password", [EXAMPLE["DREM_ADMIN_PASSWORD"], "admin", "password1234", "aaaaaaaaaaaaaaa"])
def test_production_refuses_placeholder_admin_passwords(tmp_path, password):
    with pytest.raises(ConfigError, match="DREM_ADMIN_PASSWORD"):
        load_config(str(tmp_path), {"DREM_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
                                    "DREM_ADMIN_PASSWORD": password})


def test_production_takes_real_secrets_and_development_anything(tmp_path):
    cfg = load_config(str(tmp_path), {"DREM_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
                                      "DREM_ADMIN_PASSWORD": secrets.token_urlsafe(16)})
    assert len(cfg["SECRET_KEY"]) == 64
    assert load_config(str(tmp_path), {"SECRET_KEY": "dev", "DREM_ADMIN_PASSWORD": "change-me"})["SECRET_KEY"] == "dev"


def test_forged_cookie_with_the_example_key_is_not_admin(tmp_path):
    """The review signed a session with the example key; production no longer starts with it."""
    from drem.app import create_app

    with pytest.raises(ConfigError):
        create_app(env={"DREM_ENV": "production", "SECRET_KEY": EXAMPLE["SECRET_KEY"],
                        "DREM_INSTANCE_PATH": str(tmp_path)})


# ------------------------------------------------------------------ sign-in limits

@pytest.fixture
def tight_limit(app):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    yield
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    limiter.reset()


def test_one_sign_in_limit_across_every_way_in(client, factory, tight_limit):
    user = factory.user()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    codes = [client.post("/login", data={"csrf_token": token, "username": user["username"], "password": "x"}).status_code,
             client.post("/api/auth/tokens", json={"username": "someone", "password": "x"}).status_code,
             client.post("/api/auth/code", json={"code": "ABCD-EFGH"}).status_code,
             client.post("/api/car/activate", json={"code": "ABCD-EFGH"}).status_code,
             client.post("/api/auth/code", json={"code": "ABCD-EFGH"}).status_code]
    assert codes[:3] != [429, 429, 429] and 429 not in codes[:3]
    assert codes[3:] == [429, 429]


def test_per_account_limit_across_addresses(client, factory, tight_limit):
    user = factory.user()
    codes = [client.post("/api/auth/tokens", json={"username": user["username"], "password": "bad"},
                         environ_base={"REMOTE_ADDR": f"10.1.0.{i}"}).status_code for i in range(5)]
    assert codes == [400, 400, 400, 429, 429]
    other = client.post("/api/auth/tokens", json={"username": "another", "password": "bad"},
                        environ_base={"REMOTE_ADDR": "10.1.0.99"})
    assert other.status_code == 400  # another account from a fresh address is not held back


def test_login_checks_a_hash_even_for_unknown_usernames(app, factory, monkeypatch):
    from drem.auth import service

    factory.user(username="known1")
    checked = []
    real = service.check_password_hash
    monkeypatch.setattr(service, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    with app.app_context():
        for name in ("known1", "nobody_here"):
            with pytest.raises(service.ServiceError, match="wrong username or password"):
                service.authenticate(name, "wrong-password")
    assert len(checked) == 2  # one hash check each: the same work whether the user exists or not


# ------------------------------------------------------------------ desk codes

def test_desk_cannot_mint_a_code_for_a_racer_with_a_password(client, factory):
    secured = factory.user("racer")  # chose a password
    fresh = factory.user("racer", password=None)
    desk_h = factory.headers("registration")
    resp = client.post(f"/api/racers/{secured['id']}/sign-in-code", headers=desk_h)
    assert resp.status_code == 400 and "only an admin" in resp.get_json()["error"]
    assert client.post(f"/api/racers/{fresh['id']}/sign-in-code", headers=desk_h).status_code == 201
    assert client.post(f"/api/racers/{secured['id']}/sign-in-code", headers=factory.headers("admin")).status_code == 201
    staff = factory.user("operator")
    resp = client.post(f"/api/racers/{staff['id']}/sign-in-code", headers=factory.headers("admin"))
    assert resp.status_code == 400 and "racer accounts only" in resp.get_json()["error"]
