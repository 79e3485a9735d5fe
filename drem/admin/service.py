"""User administration (role changes, disabling, deletion), each audited.

The audit log itself lives in :mod:`drem.platform.audit`.
"""

from __future__ import annotations

import secrets

from werkzeug.security import generate_password_hash

from drem.auth.models import User
from drem.auth.service import check_new_password, end_sessions, revoke_all_api_tokens
from drem.platform.audit import record_audit
from drem.platform.errors import Conflict, ServiceError
from drem.platform.extensions import db
from drem.platform.permissions import ADMIN, ROLES

__all__ = ["change_role", "delete_user", "new_password", "reset_password", "set_disabled"]

#: Length of a password made by :func:`reset_password` (characters of ``token_urlsafe``).
GENERATED_PASSWORD_CHARS = 12


def _last_admin_guard(user: User) -> None:
    if user.role != ADMIN:
        return
    admins = db.session.scalar(
        db.select(db.func.count()).select_from(User)
        .where(User.role == ADMIN, User.is_disabled.is_(False), User.id != user.id)
    )
    if not admins:
        raise Conflict("this is the last active admin; make another admin first")


def change_role(actor: User, user: User, role: str) -> User:
    """Give ``user`` a new role; audited. Their sessions and open sockets end (they sign in
    again under the new role). Raises ServiceError for an unknown role and
    Conflict when it would leave no active admin."""
    if role not in ROLES:
        raise ServiceError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", "role")
    if role == user.role:
        return user
    if role != ADMIN:
        _last_admin_guard(user)
    before = user.role
    user.role = role
    _end_access(user)
    record_audit(actor, "user.role", "user", user.id, username=user.username, before=before, after=role)
    return user


def _end_access(user: User) -> None:
    """End the user's sessions (their cookie carries the old session version) and, after
    the commit, close their open sockets, which were allowed under the old role."""
    end_sessions(user)


def set_disabled(actor: User, user: User, disabled: bool) -> User:
    """Disable or enable ``user`` (a disabled user cannot sign in or use tokens; their sessions
    and open sockets end); audited."""
    if disabled and not user.is_disabled:
        _last_admin_guard(user)
    if user.is_disabled != disabled:
        user.is_disabled = disabled
        if disabled:
            _end_access(user)
        record_audit(actor, "user.disable" if disabled else "user.enable", "user", user.id,
                     username=user.username)
    return user


def delete_user(actor: User, user: User) -> None:
    """Delete ``user`` and their tokens and codes; audited. Conflict for the last admin
    or for deleting oneself."""
    if actor.id == user.id:
        raise Conflict("you cannot delete your own account")
    _last_admin_guard(user)
    record_audit(actor, "user.delete", "user", user.id, username=user.username, role=user.role)
    db.session.delete(user)
    db.session.flush()


def new_password() -> str:
    """A random password of :data:`GENERATED_PASSWORD_CHARS` URL-safe characters (about 72
    bits), for an admin to hand to a staff member once."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_CHARS)[:GENERATED_PASSWORD_CHARS]


def reset_password(actor: User, user: User, password: str | None = None) -> tuple[str | None, int]:
    """Give ``user`` a new password: ``password`` when given (at least 8 characters), else a
    generated one of :data:`GENERATED_PASSWORD_CHARS` characters for the admin to hand over.

    Every session of the user ends, their open sockets close after the commit and every live
    API token is revoked, as :func:`drem.auth.service.change_password` does; audited as
    ``user.password_reset`` (never with the password). Returns ``(generated password or None,
    tokens revoked)``. Raises ServiceError for a password that is too short.
    """
    generated = None
    if password is None:
        generated = password = new_password()
    check_new_password(password)
    user.password_hash = generate_password_hash(password)
    end_sessions(user)
    revoked = revoke_all_api_tokens(user)
    record_audit(actor, "user.password_reset", "user", user.id, username=user.username,
                 generated=generated is not None, tokens_revoked=revoked)
    return generated, revoked
