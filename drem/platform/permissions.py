"""Roles and permissions: the one place that decides who may do what.

Every HTTP route declares the permission it needs with :func:`require` (or
:func:`public`); every Socket.IO handler declares it with :func:`socket_requires` (a
permission, or a :class:`SocketAuthority` such as the car token) or
:func:`socket_public`. ``create_app`` refuses to start if a route or a socket handler
declares nothing (:func:`check_routes`, :func:`check_socket_handlers`). The route-walk
test checks every route against :data:`ROLE_PERMISSIONS`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import abort, jsonify, redirect, request, url_for
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

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
    "racers.enrol": "enrol racers in an event (desk, CSV import, walk-up form, event page, API)",
    "queue.join": "join a track's race queue, check in and leave it oneself",
    "models.upload": "upload, list, download and delete one's own models",
    "models.view_all": "list and download every racer's models",
    "models.delete_any": "delete any racer's model (soft delete, audited; not quarantined ones)",
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
        "models.delete_any", "fleet.view", "fleet.manage", "races.run", "races.view", "racers.register",
        "racers.enrol",
    }),
    REGISTRATION: frozenset({"account.self", "events.view", "racers.register", "racers.enrol"}),
    COMMENTATOR: frozenset({"account.self", "events.view", "races.view", "fleet.view"}),
    RACER: frozenset({"account.self", "events.join", "queue.join", "models.upload"}),
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


# ------------------------------------------------------------------- Socket.IO handlers

#: Acknowledgement of a socket message refused for want of a permission.
SOCKET_FORBIDDEN = {"ok": False, "error": "forbidden"}


@dataclass(frozen=True)
class SocketAuthority:
    """Who may use a Socket.IO handler when it is not a role permission (e.g. a car token).

    ``name`` is what the handler's ``required_permission`` shows (``"car token"``).
    ``holds(*args)`` gets the handler's arguments (the ``auth`` dict on connect, the
    message otherwise) and answers True when the caller holds the authority.
    ``refusal`` is the acknowledgement of a refused message; ``connect_refusal`` the
    reason sent with a refused connection (None: the connection is refused silently).
    """

    name: str
    holds: Callable[..., bool] = field(compare=False)
    refusal: dict = field(default_factory=lambda: dict(SOCKET_FORBIDDEN), compare=False)
    connect_refusal: str | None = None


def _permission_authority(permission: str) -> SocketAuthority:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return SocketAuthority(permission, lambda *_args: allowed(current_user, permission))


def socket_requires(authority: str | SocketAuthority) -> Callable:
    """Socket.IO handler decorator (under ``@socketio.on``): run the handler only for a
    caller who holds ``authority`` (a permission name or a :class:`SocketAuthority`).

    Checked on every call. A refused ``connect`` is refused (``ConnectionRefusedError``
    with the authority's ``connect_refusal``, else a plain refusal); a refused message
    is answered with the authority's ``refusal`` (``{"ok": false, "error": "forbidden"}``
    for a permission); a ``disconnect`` of a caller who no longer holds it is ignored.
    Raises KeyError at import time for an unknown permission name.
    """
    guard = _permission_authority(authority) if isinstance(authority, str) else authority

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args):
            event = (getattr(request, "event", None) or {}).get("message")
            if guard.holds(*args):
                if event == "connect" and getattr(current_user, "is_authenticated", False):
                    join_room(user_room(current_user.id))  # end_user_sockets finds it here
                return handler(*args)
            if event == "connect":
                if guard.connect_refusal:
                    raise ConnectionRefusedError(guard.connect_refusal)
                return False
            if event == "disconnect":
                return None
            return dict(guard.refusal)

        wrapper.required_permission = guard.name
        return wrapper

    return decorate


def user_room(user_id: int) -> str:
    """The Socket.IO room of every socket a signed-in user opened through
    :func:`socket_requires` (in each namespace)."""
    return f"user:{user_id}"


def end_user_sockets(socketio, user_id: int) -> int:
    """Disconnect every socket of ``user_id`` this process serves (all namespaces), so a
    disabled, demoted or signed-out user stops receiving pushes; the browser reconnects
    and is checked again. Returns how many were disconnected. Call after the commit."""
    server = getattr(socketio, "server", None)
    if server is None:
        return 0
    room, count = user_room(user_id), 0
    for namespace in list(server.manager.get_namespaces()):
        for sid, _eio_sid in list(server.manager.get_participants(namespace, room)):
            server.disconnect(sid, namespace=namespace)
            count += 1
    return count


def socket_public(handler: Callable) -> Callable:
    """Mark a Socket.IO handler as open to everyone (the public role: no login)."""
    handler.required_permission = None
    return handler


def socket_handlers(socketio) -> list[tuple[str, str, Callable]]:
    """Every registered Socket.IO handler as ``(namespace, event, handler)``: the ones
    Flask-SocketIO keeps until ``init_app`` (``socketio.handlers``) and the ones on its
    server (``socketio.server.handlers``), plus class-based namespaces (event ``*``)."""
    found = [(namespace or "/", event, handler) for event, handler, namespace in socketio.handlers]
    found += [(ns.namespace or "/", "*", ns) for ns in socketio.namespace_handlers]
    server = getattr(socketio, "server", None)
    if server is not None:
        for namespace, events in server.handlers.items():
            found += [(namespace, event, handler) for event, handler in events.items()]
        found += [(namespace, "*", ns) for namespace, ns in server.namespace_handlers.items()]
    return found


def check_socket_handlers(socketio) -> None:
    """Raise RuntimeError naming every Socket.IO handler that declares no permission
    (neither :func:`socket_requires` nor :func:`socket_public`)."""
    missing = {f"{event} on {namespace} ({getattr(handler, '__qualname__', type(handler).__name__)})"
               for namespace, event, handler in socket_handlers(socketio)
               if not hasattr(handler, "required_permission")}
    if missing:
        raise RuntimeError("Socket.IO handlers without a permission: " + ", ".join(sorted(missing)))
