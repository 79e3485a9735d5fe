"""Accounts: sign-up, login, codes, tokens, CSRF, rate limiting, roles."""

from __future__ import annotations

from tests.factories import PASSWORD, csrf_from


def _form(client, url: str, data: dict, page: str | None = None):
    token = csrf_from(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token} | data)


def test_signup_login_logout(client, app):
    resp = _form(client, "/signup", {"username": "Ada.L_1", "password": PASSWORD, "country_code": "gb"})
    assert resp.status_code == 302
    me = client.get("/account")
    assert me.status_code == 200 and "Ada.L_1" in me.get_data(as_text=True)
    from drem.auth.models import User
    from drem.platform.extensions import db

    with app.app_context():
        user = db.session.scalar(db.select(User).filter_by(username="Ada.L_1"))
        assert user.country_code == "GB" and user.role == "racer" and user.password_hash != PASSWORD
    token = csrf_from(client.get("/account").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/account").status_code == 302  # back to login


def test_bad_and_duplicate_usernames(client, factory, app):
    factory.user(username="taken")
    for bad in ("a", "x" * 21, "has space", "bad!char", "ümlaut"):
        resp = _form(client, "/signup", {"username": bad, "password": PASSWORD})
        assert resp.status_code == 200
        assert "username must be 2-20 characters" in resp.get_data(as_text=True)
    resp = _form(client, "/signup", {"username": "TAKEN", "password": PASSWORD, "country_code": "DE"})
    assert "is taken" in resp.get_data(as_text=True)
    from drem.auth.models import User
    from drem.platform.extensions import db

    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


def test_wrong_password_is_refused(client, factory):
    user = factory.user()
    resp = _form(client, "/login", {"username": user["username"], "password": "wrong-password"})
    assert resp.status_code == 200 and "wrong username or password" in resp.get_data(as_text=True)
    resp = _form(client, "/login", {"username": "nobody", "password": "wrong-password"})
    assert "wrong username or password" in resp.get_data(as_text=True)
    assert client.get("/account").status_code == 302


def test_forged_csrf_token_changes_nothing(client, app):
    resp = client.post("/signup", data={"csrf_token": "forged", "username": "mallory", "password": PASSWORD})
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    resp = client.post("/signup", data={"username": "mallory", "password": PASSWORD})
    assert resp.status_code == 400
    from drem.auth.service import find_user

    with app.app_context():
        assert find_user("mallory") is None


def test_cookie_json_call_needs_csrf_header(client, factory):
    admin = factory.user("admin")
    factory.login(client, admin)
    resp = client.post("/api/events", json={"name": "X", "date": "2026-11-22"})
    assert resp.status_code == 400 and "CSRF" in resp.get_json()["error"]
    token = csrf_from(client.get("/account").get_data(as_text=True))
    resp = client.post("/api/events", json={"name": "X", "date": "2026-11-22"}, headers={"X-CSRFToken": token})
    assert resp.status_code == 201


def test_desk_code_sign_in_once(client, factory, app):
    desk = factory.user("registration")
    headers = {"Authorization": f"Bearer {factory.token(desk)}"}
    resp = client.post("/api/racers", json={"username": "racer.joe", "country_code": "FR"}, headers=headers)
    assert resp.status_code == 201
    code = resp.get_json()["sign_in_code"]
    assert len(code) == 9 and code[4] == "-"
    racer_client = app.test_client()
    resp = _form(racer_client, "/login/code", {"code-code": code.lower().replace("-", " ")}, page="/login")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
    assert "racer.joe" in racer_client.get("/account").get_data(as_text=True)
    # the racer sets a first password without a current one
    token = csrf_from(racer_client.get("/account").get_data(as_text=True))
    assert racer_client.post("/account", data={"csrf_token": token, "new_password": PASSWORD}).status_code == 302
    # reused code
    again = app.test_client()
    resp = _form(again, "/login/code", {"code-code": code}, page="/login")
    assert "already used" in again.get(resp.headers["Location"]).get_data(as_text=True)
    factory.login(again, {"username": "racer.joe", "password": PASSWORD})


def test_expired_and_replaced_codes(client, factory, app):
    from datetime import timedelta

    from drem.auth import service
    from drem.auth.models import SignInCode, User
    from drem.platform.db_types import utcnow
    from drem.platform.errors import ServiceError
    from drem.platform.extensions import db

    desk, racer = factory.user("registration"), factory.user("racer", password=None)
    with app.app_context():
        actor, user = db.session.get(User, desk["id"]), db.session.get(User, racer["id"])
        first = service.create_sign_in_code(user, actor, timedelta(hours=1))
        second = service.create_sign_in_code(user, actor, timedelta(hours=1))
        db.session.commit()
        for code, message in ((first, "expired"), ("ZZZZ-ZZZZ", "unknown")):
            try:
                service.redeem_sign_in_code(code)
            except ServiceError as exc:
                assert message in exc.message
            else:
                raise AssertionError(f"{code} was accepted")
        for row in db.session.scalars(db.select(SignInCode)):
            row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        try:
            service.redeem_sign_in_code(second)
        except ServiceError as exc:
            assert "expired" in exc.message
        else:
            raise AssertionError("expired code accepted")


def test_api_tokens(client, factory):
    user = factory.user("operator")
    resp = client.post("/api/auth/tokens", json={"username": user["username"], "password": PASSWORD, "name": "ci"})
    assert resp.status_code == 201
    token = resp.get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).get_json()["username"] == user["username"]
    assert client.post("/api/auth/tokens", json={"username": user["username"], "password": "nope"}).status_code == 400
    token_id = client.get("/api/me/tokens", headers=headers).get_json()["tokens"][0]["id"]
    assert client.delete(f"/api/me/tokens/{token_id}", headers=headers).status_code == 204
    assert client.get("/api/me", headers=headers).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Bearer drem_forged"}).status_code == 401


def test_login_rate_limit(client, app, factory):
    from drem.platform.extensions import limiter

    user = factory.user()
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    try:
        codes = [client.post("/api/auth/tokens", json={"username": user["username"], "password": "bad"}).status_code
                 for _ in range(5)]
        assert codes == [400, 400, 400, 429, 429]
        assert "3 per 1 minute" in client.post("/api/auth/tokens", json={}).get_json()["error"]
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
        limiter.reset()


def test_admin_manages_users_with_audit(client, factory):
    admin_h = factory.headers("admin")
    racer = factory.user("racer")
    resp = client.patch(f"/api/users/{racer['id']}", json={"role": "operator"}, headers=admin_h)
    assert resp.status_code == 200 and resp.get_json()["role"] == "operator"
    assert client.patch(f"/api/users/{racer['id']}", json={"role": "pilot"}, headers=admin_h).status_code == 400
    resp = client.patch(f"/api/users/{racer['id']}", json={"is_disabled": True}, headers=admin_h)
    assert resp.get_json()["is_disabled"] is True
    assert client.post("/api/auth/tokens", json={"username": racer["username"], "password": PASSWORD}).status_code == 400
    assert client.delete(f"/api/users/{racer['id']}", headers=admin_h).status_code == 204
    audit = client.get("/api/audit", headers=admin_h).get_json()["entries"]
    assert [e["action"] for e in audit][:3] == ["user.delete", "user.disable", "user.role"]
    assert audit[2]["details"] == {"username": racer["username"], "before": "racer", "after": "operator"}


def test_last_admin_is_protected(client, factory, app):
    admin = factory.user("admin")
    headers = {"Authorization": f"Bearer {factory.token(admin)}"}
    resp = client.patch(f"/api/users/{admin['id']}", json={"role": "racer"}, headers=headers)
    assert resp.status_code == 409 and "last active admin" in resp.get_json()["error"]


def test_racer_on_operator_route_gets_403(client, factory):
    headers = factory.headers("racer")
    resp = client.post("/api/events", json={"name": "Nope", "date": "2026-11-22"}, headers=headers)
    assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden"
    assert client.get("/api/events").status_code == 401
