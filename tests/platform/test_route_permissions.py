"""Walk every route with every role and check the answer against the permission module."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from drem.platform.permissions import ROLES, role_has

MISSING_ID = 987654  # ids that exist nowhere: allowed roles get 404/400, never 401/403


def _url(rule) -> str:
    values = {}
    for arg in rule.arguments:
        conv = rule._converters[arg]
        if isinstance(conv, IntegerConverter):  # drem.platform.inputs.IdConverter
            values[arg] = MISSING_ID
        elif conv.__class__.__name__ == "AnyConverter":
            values[arg] = sorted(conv.items)[0]
        else:
            values[arg] = "missing.bin"
    return rule.build(values, append_unknown=False)[1]


def _permission_refusal(resp) -> bool:
    """True for the answers of drem.platform.permissions.require (not a domain refusal such as
    "activation code expired", which a public route may give with 403)."""
    if resp.status_code == 401:
        return True
    if resp.status_code != 403:
        return False
    if resp.is_json:
        return resp.get_json().get("error") == "forbidden"
    return "Forbidden. You may not do this." in resp.get_data(as_text=True)


def _method(rule) -> str:
    for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        if method in rule.methods:
            return method
    raise AssertionError(rule)


def test_every_route_declares_a_permission(app):
    from drem.platform.permissions import check_routes

    check_routes(app)  # raises if any route lacks a declaration
    declared = [getattr(app.view_functions[r.endpoint], "required_permission", "none")
                for r in app.url_map.iter_rules() if r.endpoint != "static"]
    assert "none" not in declared and len(declared) > 30


def test_walk_every_route_with_every_role(app, client, factory):
    headers = {role: {"Authorization": f"Bearer {factory.token(factory.user(role))}"} for role in ROLES}
    from tests.factories import csrf_from

    # the public has no token: give it a valid CSRF token so the permission answer shows
    headers[None] = {"X-CSRFToken": csrf_from(client.get("/login").get_data(as_text=True))}
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        needed = app.view_functions[rule.endpoint].required_permission
        method, url = _method(rule), _url(rule)
        for role, hdrs in headers.items():
            resp = client.open(url, method=method, headers=hdrs, json={} if method != "GET" else None)
            status = resp.status_code
            where = f"{method} {rule.rule} as {role or 'public'} -> {status}"
            assert status < 500, where
            if needed is None or role_has(role, needed):
                assert not _permission_refusal(resp), where
                if needed is not None:  # a public form may send you back to /login itself
                    assert not (status == 302 and "/login" in resp.headers.get("Location", "")), where
            elif role is None:
                assert status == 401 or (status == 302 and "/login" in resp.headers["Location"]), where
            else:
                assert status == 403 and _permission_refusal(resp), where
            checked += 1
    assert checked >= 30 * len(headers)
