"""Account operations: create users, check passwords, sign-in codes, API tokens.

Services flush and never commit; the request commits once.
"""

from __future__ import annotations

import re
from datetime import timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from drem.auth.models import ApiToken, SignInCode, User
from drem.platform.audit import record_audit
from drem.platform.countries import check_country
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Conflict, NotFound, ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.permissions import RACER, ROLES, allowed, end_user_sockets
from drem.platform.tokens import code_hash, find_by_token, new_code, new_token

USERNAME_RE = re.compile(r"^[A-Za-z0-9._]{2,20}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "drem_"
#: A hash checked when the username does not exist, so a wrong name takes as long as a
#: wrong password and the answer's timing does not tell which usernames exist.
_DUMMY_HASH = generate_password_hash("drem-no-such-user")


def check_username(username: str) -> str:
    """Return ``username`` stripped, or raise ServiceError: 2-20 letters, digits, ``.``, ``_``."""
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise ServiceError(
            "username must be 2-20 characters: letters, digits, '.' or '_'", "username")
    return username


def check_new_password(password: str) -> None:
    """ServiceError (field ``password``) unless ``password`` is text of at least
    :data:`MIN_PASSWORD` characters."""
    if not isinstance(password, str):
        raise ServiceError("password must be text", "password")
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"password must be at least {MIN_PASSWORD} characters", "password")


def find_user(username: str) -> User | None:
    """The user with this username (case-insensitive), or None."""
    return db.session.scalar(db.select(User).where(User.username_key == (username or "").strip().lower()))


def list_users(role: str | None = None, newest_first: bool = False, limit: int | None = None) -> list[User]:
    """Users, optionally of one ``role``: by username (case-insensitive), or newest first;
    at most ``limit`` of them (None: all)."""
    order = (User.created_at.desc(), User.id.desc()) if newest_first else (User.username_key,)
    query = db.select(User).order_by(*order).limit(limit)
    if role:
        query = query.where(User.role == role)
    return list(db.session.scalars(query))


def get_user(user_id: int) -> User:
    """The user with this id; NotFound otherwise."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


def create_user(username: str, password: str | None = None, role: str = RACER,
                email: str | None = None, country_code: str | None = None, actor=None,
                country_required: bool = False) -> User:
    """Create a user and flush.

    ``password`` may be None for racers created at the registration desk (they sign
    in with a one-time code). ``country_code`` is an ISO 3166-1 alpha-2 code (any case;
    :func:`drem.platform.countries.check_country`), required when ``country_required``
    (sign-up, the desk, enrolment). Raises ServiceError for a bad username, e-mail,
    country, password or role, and Conflict when the username is taken
    (case-insensitive).
    """
    username = check_username(username)
    if role not in ROLES:
        raise ServiceError(f"unknown role {role!r}", "role")
    email = (email or "").strip() or None
    if email and not EMAIL_RE.match(email):
        raise ServiceError("that e-mail address does not look right", "email")
    country_code = check_country(country_code, required=country_required)
    if password is not None:
        check_new_password(password)
    if find_user(username):
        raise Conflict(f"the username {username!r} is taken", "username")
    user = User(
        username=username, username_key=username.lower(), email=email,
        country_code=country_code, role=role,
        password_hash=generate_password_hash(password) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    if actor is not None:
        record_audit(actor, "user.create", "user", user.id, username=username, role=role)
    return user


def set_country(user: User, country_code: str) -> User:
    """Change ``user``'s country (an ISO 3166-1 alpha-2 code, required) and flush.
    ServiceError(field "country_code") for a blank or unknown code."""
    user.country_code = check_country(country_code, required=True)
    db.session.flush()
    return user


def authenticate(username: str, password: str) -> User:
    """The user whose password matches; ServiceError("wrong username or password") otherwise,
    the same message whether the user exists or not."""
    user = find_user(username)
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    matches = check_password_hash(stored, password if isinstance(password, str) else "")
    if user is None or not user.password_hash or not isinstance(password, str) or not matches:
        raise ServiceError("wrong username or password")
    if user.is_disabled:
        raise ServiceError("this account is disabled; ask an admin")
    user.last_login_at = utcnow()
    return user


def change_password(user: User, current: str | None, new: str) -> int:
    """Set a new password. ``current`` must match when the user has one (racers who
    signed in with a code set their first password without it).

    Ends every other session (bumps ``session_version``: the caller signs the current one in
    again) and revokes every API token of the user. Returns the number of tokens revoked.
    """
    if user.password_hash and not (isinstance(current, str) and check_password_hash(user.password_hash, current)):
        raise ServiceError("the current password is wrong", "current_password")
    check_new_password(new)
    user.password_hash = generate_password_hash(new)
    end_sessions(user)
    revoked = revoke_all_api_tokens(user)
    record_audit(user, "user.password_change", "user", user.id, tokens_revoked=revoked)
    db.session.flush()
    return revoked


def end_sessions(user: User) -> None:
    """End every session of ``user`` (each cookie carries the old ``session_version``) and,
    after the commit, close the sockets they opened under it."""
    user.session_version = (user.session_version or 0) + 1
    db.session.flush()
    user_id = user.id
    after_commit(lambda: end_user_sockets(socketio, user_id))


def user_for_session(session_id: str) -> User | None:
    """The enabled user of a session cookie's id ``"<user id>:<session version>"``, or None
    when the id is malformed, the user is gone or disabled, or the version is an old one
    (logout, password change, role change)."""
    user_id, _, version = str(session_id).partition(":")
    if not (user_id.isdigit() and version.isdigit()) or len(user_id) > 18:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.is_disabled or int(version) != (user.session_version or 0):
        return None
    return user


def create_sign_in_code(user: User, actor: User, ttl: timedelta) -> str:
    """Make a new one-time sign-in code for ``user`` (earlier unused ones stop working).

    Returns the plain code, formatted ``XXXX-XXXX``; only its hash is stored. Raises
    ServiceError when ``user`` is not a racer, or has chosen a password and ``actor`` is
    not an admin (desk staff cannot take over an account its owner secured).
    """
    if user.role != RACER:
        raise ServiceError("sign-in codes are for racer accounts only")
    if user.password_hash and not allowed(actor, "users.manage"):
        raise ServiceError(f"{user.username} has set a password; only an admin can give them a new sign-in code")
    now = utcnow()
    live = db.select(SignInCode).where(SignInCode.user_id == user.id, SignInCode.used_at.is_(None),
                                       SignInCode.expires_at > now)
    for old in db.session.scalars(live):
        old.expires_at = now
    printed, hashed = new_code()
    db.session.add(SignInCode(user_id=user.id, code_hash=hashed, expires_at=now + ttl, created_by_id=actor.id))
    record_audit(actor, "user.sign_in_code", "user", user.id, username=user.username)
    db.session.flush()
    return printed


def redeem_sign_in_code(code: str) -> User:
    """Sign in with a one-time code: marks it used and returns its user.

    Raises ServiceError for an unknown, used or expired code (one message each).
    """
    row = db.session.scalar(db.select(SignInCode).where(SignInCode.code_hash == code_hash(code)))
    if row is None:
        raise ServiceError("unknown sign-in code", "code")
    if row.used_at is not None:
        raise ServiceError("this sign-in code was already used; ask the registration desk for a new one", "code")
    if row.expires_at <= utcnow():
        raise ServiceError("this sign-in code has expired; ask the registration desk for a new one", "code")
    if row.user.is_disabled:
        raise ServiceError("this account is disabled; ask an admin", "code")
    row.used_at = utcnow()
    row.user.last_login_at = row.used_at
    db.session.flush()
    return row.user


def create_api_token(user: User, name: str, ttl: timedelta = timedelta(days=90)) -> tuple[ApiToken, str]:
    """Create a personal API token valid for ``ttl``; returns (row, plain token). The plain
    token is shown once. ServiceError for a name that is not 1-80 characters."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise ServiceError("give the token a name of 1-80 characters", "name")
    plain, hashed = new_token(TOKEN_PREFIX)
    token = ApiToken(user_id=user.id, name=name, token_hash=hashed, expires_at=utcnow() + ttl)
    db.session.add(token)
    db.session.flush()
    return token, plain


def user_for_token(plain: str) -> User | None:
    """The enabled user behind a live API token, or None (unknown, revoked, expired, disabled)."""
    token = find_by_token(ApiToken, ApiToken.token_hash, plain, TOKEN_PREFIX, revoked_column=ApiToken.revoked_at)
    if token is None or token.user.is_disabled or (token.expires_at is not None and token.expires_at <= utcnow()):
        return None
    return token.user


def list_api_tokens(user: User) -> list[ApiToken]:
    """``user``'s tokens, newest first (revoked and expired ones too, marked so)."""
    return list(db.session.scalars(db.select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_all_api_tokens(user: User) -> int:
    """Revoke every live token of ``user``; returns how many were live."""
    now, count = utcnow(), 0
    for token in user.tokens:
        if token.revoked_at is None:
            token.revoked_at, count = now, count + 1
    db.session.flush()
    return count


def revoke_api_token(user: User, token_id: int) -> None:
    """Revoke one of ``user``'s tokens; NotFound if it is not theirs."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("no such token")
    token.revoked_at = token.revoked_at or utcnow()
    db.session.flush()
