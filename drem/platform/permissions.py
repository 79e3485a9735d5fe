"""Roles and permissions: the one place that decides who may do what.

Every HTTP route declares the permission it needs with :func:`require` (or
:func:`public`), every Socket.IO handler calls :func:`allowed`, and
``create_app`` refuses to start if a route declares nothing. The route-walk test
checks every route against :data:`ROLE_PERMISSIONS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import abort, jsonify, redirect, request, url_for
from flask_login import current_user

ADMIN = "admin"
OPERATOR = "operator"
REGISTRATION = "registration"
COMMENTATOR = "commentator"
RACER = "racer"
ROLES = (ADMIN, OPERATOR, REGISTRATION, COMMENTATOR, RACER)

# Permission names: "<area>.<verb>".
PERMISSIONS = {
    "account.self": "sign in, change own password, manage own API tokens",
    "users.manage": "change roles, disable and delete users, read the audit log",
    "racers.register": "create racer accounts and one-time sign-in codes",
    "events.view": "see events, tracks and registered racers in the organizer UI",
    "events.manage": "create, edit and delete events and tracks; add racers",
    "events.join": "register oneself for an event",
    "models.upload": "upload, list, download and delete one's own models",
    "models.view_all": "list and download every racer's models",
    "models.admin": "delete quarantined models, download quarantined files",
    "fleet.view": "see fleets and cars",
    "fleet.manage": "fleets, car activation, commands to cars",
    "fleet.admin": "revoke car tokens and deregister cars",
    "races.run": "run the timekeeper, edit and delete races and laps",
    "races.view": "see live race data (commentator view)",
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    ADMIN: frozenset(PERMISSIONS),
    OPERATOR: frozenset({
        "account.self", "events.view", "events.manage", "models.upload", "models.view_all",
        "fleet.view", "fleet.manage", "races.run", "races.view", "racers.register",
    }),
    REGISTRATION: frozenset({"account.self", "events.view", "racers.register"}),
    COMMENTATOR: frozenset({"account.self", "events.view", "races.view", "fleet.view"}),
    RACER: frozenset({"account.self", "events.join", "models.upload"}),
}


def role_has(role: str | None, permission: str) -> bool:
    """True when ``role`` (None = the public) holds ``permission``.

    Raises KeyError for a permission name that does not exist, so a typo fails loudly.
    """
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())


def allowed(user, permission: str) -> bool:
    """True when ``user`` (a User, or an anonymous user) holds ``permission``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return role_has(None, permission)
    if getattr(user, "is_disabled", False):
        return False
    return role_has(user.role, permission)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def require(permission: str) -> Callable:
    """View decorator: answer 401/403 unless the current user holds ``permission``.

    HTML routes send an anonymous visitor to the login page; JSON routes answer
    ``401 {"error": "login required"}`` or ``403 {"error": "forbidden"}``.
    """
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if allowed(current_user, permission):
                return view(*args, **kwargs)
            if not current_user.is_authenticated:
                if _wants_json():
                    return jsonify(error="login required"), 401
                return redirect(url_for("auth.login", next=request.full_path))
            if _wants_json():
                return jsonify(error="forbidden", needs=permission), 403
            abort(403)

        wrapper.required_permission = permission
        return wrapper

    return decorate


def public(view: Callable) -> Callable:
    """Mark a view as open to everyone (the public role: no login)."""
    view.required_permission = None
    return view


def check_routes(app) -> None:
    """Raise RuntimeError naming every route that declares no permission."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "required_permission"):
            missing.append(f"{rule.rule} ({rule.endpoint})")
    if missing:
        raise RuntimeError("routes without a permission: " + ", ".join(sorted(missing)))
