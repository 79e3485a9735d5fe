"""The Users page: create staff accounts, reset passwords, disable and enable; the audit
page's filter. Each action is checked with its refusals (role, CSRF, bad input) and
against the JSON API (the same service: the same result and audit entry)."""

from __future__ import annotations

import re

from tests.page_forms import audit, same_entry, signed_in


def _shown_password(html: str) -> str:
    match = re.search(r'id="one-time-password">([^<]+)<', html)
    assert match, "no one-time password on the page"
    return match.group(1)


def _token_works(api, username: str, password: str) -> bool:
    return api.post("/api/auth/tokens", json={"username": username, "password": password}).status_code == 201


def test_admin_creates_staff_accounts_on_the_page(client, app, factory):
    _admin, csrf = signed_in(client, factory, "admin")
    api_h, api = factory.headers("admin"), app.test_client()
    resp = client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "op_ola", "new-role": "operator",
                                             "new-password": "", "new-email": ""})
    assert resp.status_code == 200
    generated = _shown_password(resp.get_data(as_text=True))
    assert len(generated) == 12 and _token_works(api, "op_ola", generated)
    resp = client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "desk_dan",
                                             "new-role": "registration", "new-password": "desk-pass-1"})
    assert resp.status_code == 200 and "one-time-password" not in resp.get_data(as_text=True)
    assert _token_works(api, "desk_dan", "desk-pass-1")
    users = {u["username"]: u["role"] for u in api.get("/api/users", headers=api_h).get_json()["users"]}
    assert users["op_ola"] == "operator" and users["desk_dan"] == "registration"

    made = api.post("/api/users", json={"username": "op_api", "password": "api-pass-1", "role": "operator"},
                    headers=api_h)
    assert made.status_code == 201
    page_entry, api_entry = (next(e for e in audit(api, api_h, "user.create") if e["details"]["username"] == n)
                             for n in ("op_ola", "op_api"))
    assert same_entry(page_entry, api_entry, "username")


def test_creating_a_staff_account_refuses_bad_input_roles_and_missing_csrf(client, app, factory):
    _admin, csrf = signed_in(client, factory, "admin")
    api_h, api = factory.headers("admin"), app.test_client()
    taken = client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "Taken_1", "new-role": "operator"})
    assert taken.status_code == 200
    again = client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "taken_1", "new-role": "admin"})
    assert again.status_code == 409 and "is taken" in again.get_data(as_text=True)
    short = client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "op_short", "new-role": "operator",
                                              "new-password": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(as_text=True)
    bad = client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "x", "new-role": "operator"})
    assert bad.status_code == 400 and "2-20 characters" in bad.get_data(as_text=True)
    racer = client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "r_page", "new-role": "racer"})
    assert racer.status_code == 400  # racers come from the desk: not a choice here
    no_csrf = client.post("/admin/users", data={"new-username": "op_nocsrf", "new-role": "operator"})
    assert no_csrf.status_code == 400
    names = {u["username"] for u in api.get("/api/users", headers=api_h).get_json()["users"]}
    assert not names & {"op_short", "x", "r_page", "op_nocsrf"} and "Taken_1" in names

    operator_client = app.test_client()
    _op, op_csrf = signed_in(operator_client, factory, "operator")
    refused = operator_client.post("/admin/users", data={"new-csrf_token": op_csrf, "new-username": "op_sneak",
                                                         "new-role": "admin"})
    assert refused.status_code == 403
    assert operator_client.get("/admin/users").status_code == 403
    assert "op_sneak" not in {u["username"] for u in api.get("/api/users", headers=api_h).get_json()["users"]}


def test_reset_password_on_the_page_ends_sessions_and_tokens(client, app, factory):
    _admin, csrf = signed_in(client, factory, "admin")
    api_h, api = factory.headers("admin"), app.test_client()
    victim = factory.user("operator", username="op_lost")
    victim_h = {"Authorization": f"Bearer {factory.token(victim)}"}
    victim_client = app.test_client()
    factory.login(victim_client, victim)
    assert victim_client.get("/fleet/").status_code == 200

    resp = client.post(f"/admin/users/{victim['id']}/password", data={"pw-csrf_token": csrf, "pw-password": ""})
    assert resp.status_code == 200 and "1 API token(s) were revoked" in resp.get_data(as_text=True)
    new = _shown_password(resp.get_data(as_text=True))
    assert _token_works(api, "op_lost", new) and not _token_works(api, "op_lost", victim["password"])
    assert api.get("/api/me", headers=victim_h).status_code == 401
    assert victim_client.get("/fleet/").status_code == 302  # the old session ended: back to the login page

    chosen = client.post(f"/admin/users/{victim['id']}/password", data={"pw-csrf_token": csrf,
                                                                         "pw-password": "chosen-pass-9"})
    assert chosen.status_code == 200 and "one-time-password" not in chosen.get_data(as_text=True)
    assert _token_works(api, "op_lost", "chosen-pass-9")
    by_api = api.post(f"/api/users/{victim['id']}/password", json={"password": "api-chosen-9"}, headers=api_h)
    assert by_api.status_code == 200 and by_api.get_json() == {"password": None, "tokens_revoked": 1}
    generated = api.post(f"/api/users/{victim['id']}/password", json={}, headers=api_h).get_json()
    assert _token_works(api, "op_lost", generated["password"])
    entries = audit(api, api_h, "user.password_reset")
    assert len(entries) == 4 and same_entry(entries[2], entries[1])  # page (chosen) and API (chosen)
    assert entries[3]["details"] == {"username": "op_lost", "generated": True, "tokens_revoked": 1}
    assert all("password" not in str(e["details"].keys()) for e in entries)


def test_reset_password_refusals(client, app, factory):
    _admin, csrf = signed_in(client, factory, "admin")
    api_h, api = factory.headers("admin"), app.test_client()
    victim = factory.user("operator", username="op_safe")
    short = client.post(f"/admin/users/{victim['id']}/password", data={"pw-csrf_token": csrf, "pw-password": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(as_text=True)
    no_csrf = client.post(f"/admin/users/{victim['id']}/password", data={"pw-password": "no-csrf-pass"})
    assert no_csrf.status_code == 400
    assert client.post("/admin/users/987654/password", data={"pw-csrf_token": csrf}).status_code == 404
    assert api.post(f"/api/users/{victim['id']}/password", json={"password": 12345678},
                       headers=api_h).status_code == 400
    operator_client = app.test_client()
    _op, op_csrf = signed_in(operator_client, factory, "operator")
    assert operator_client.post(f"/admin/users/{victim['id']}/password",
                                data={"pw-csrf_token": op_csrf, "pw-password": "taken-over-1"}).status_code == 403
    assert api.post(f"/api/users/{victim['id']}/password", json={},
                       headers=factory.headers("registration")).status_code == 403
    assert _token_works(api, "op_safe", victim["password"])
    assert audit(api, api_h, "user.password_reset") == []


def test_own_password_reset_keeps_the_admin_signed_in(client, factory):
    admin, csrf = signed_in(client, factory, "admin")
    resp = client.post(f"/admin/users/{admin['id']}/password", data={"pw-csrf_token": csrf, "pw-password": "my-new-pass-1"})
    assert resp.status_code == 200 and client.get("/admin/users").status_code == 200


def test_disable_and_enable_on_the_page(client, app, factory):
    _admin, csrf = signed_in(client, factory, "admin")
    api_h, api = factory.headers("admin"), app.test_client()
    op = factory.user("operator", username="op_off")
    resp = client.post(f"/admin/users/{op['id']}/disable", data={"csrf_token": csrf, "disabled": "1"})
    assert resp.status_code == 302 and not _token_works(api, "op_off", op["password"])
    client.post(f"/admin/users/{op['id']}/disable", data={"csrf_token": csrf, "disabled": "0"})
    assert _token_works(api, "op_off", op["password"])
    assert [e["action"] for e in audit(api, api_h, "user.disable")] == ["user.disable"]
    assert len(audit(api, api_h, "user.enable")) == 1
    operator_client = app.test_client()
    _op, op_csrf = signed_in(operator_client, factory, "operator")
    refused = operator_client.post(f"/admin/users/{op['id']}/disable", data={"csrf_token": op_csrf, "disabled": "1"})
    assert refused.status_code == 403 and _token_works(api, "op_off", op["password"])


def test_audit_page_filters_by_action(client, factory):
    _admin, csrf = signed_in(client, factory, "admin")
    client.post("/admin/users", data={"new-csrf_token": csrf, "new-username": "op_one", "new-role": "operator"})
    op = factory.user("operator", username="op_two")
    client.post(f"/admin/users/{op['id']}/disable", data={"csrf_token": csrf, "disabled": "1"})
    page = client.get("/admin/audit?action=user.disable").get_data(as_text=True)
    assert "<td>user.disable</td>" in page and "<td>user.create</td>" not in page
    assert '<option selected>user.disable</option>' in page and "<option >user.create</option>" in page
    everything = client.get("/admin/audit").get_data(as_text=True)
    assert "<td>user.disable</td>" in everything and "<td>user.create</td>" in everything
