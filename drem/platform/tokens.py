"""Secrets that identify a caller: long-lived tokens and one-time codes, stored hashed.

Three kinds of token use the same rule (prefix + random part, only the sha256 stored,
a revoked token is never found): personal API tokens (``drem_``, drem.auth), car
tokens (``car_``, drem.fleet) and lap-timer tokens (``timer_``, drem.timekeeper). One-time
codes (racer sign-in codes, car activation codes) are 8 characters without look-alikes,
printed as ``XXXX-XXXX`` and also stored as a sha256.

The plain secret is returned once, when it is made; the database holds only hashes.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from drem.platform.extensions import db

#: Random bytes in a token (encoded as 43 URL-safe characters after the prefix).
TOKEN_BYTES = 32
#: One-time code characters: no 0/O, 1/I/L, so a code can be typed from paper.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def token_hash(plain: str) -> str:
    """The stored form of a token or normalised code: sha256 as 64 hex characters."""
    return hashlib.sha256(plain.encode()).hexdigest()


def new_token(prefix: str) -> tuple[str, str]:
    """A new token ``prefix + 43 URL-safe characters``; returns ``(plain, hash)``.

    Show ``plain`` once and store only ``hash``.
    """
    plain = prefix + secrets.token_urlsafe(TOKEN_BYTES)
    return plain, token_hash(plain)


def find_by_token(model, column, plain: str | None, prefix: str, *, revoked_column=None):
    """The row of ``model`` whose ``column`` (a hash column, e.g. ``Car.token_hash``) holds
    the hash of ``plain``, or None.

    None also when ``plain`` is empty, not text or lacks ``prefix`` (no query is made
    then), and when ``revoked_column`` (e.g. ``Car.token_revoked_at``) is set on the row.
    """
    if not isinstance(plain, str) or not plain.startswith(prefix) or len(plain) <= len(prefix):
        return None
    row = db.session.scalar(db.select(model).where(column == token_hash(plain)))
    if row is None or (revoked_column is not None and getattr(row, revoked_column.key) is not None):
        return None
    return row


def normalise_code(code: str | None) -> str:
    """A typed one-time code upper-cased, without spaces and dashes (``"abcd-efgh"`` ->
    ``"ABCDEFGH"``)."""
    return re.sub(r"[\s-]", "", code or "").upper()


def new_code() -> tuple[str, str]:
    """A new one-time code; returns ``(printed "XXXX-XXXX", hash)``. Store only the hash."""
    plain = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{plain[:4]}-{plain[4:]}", token_hash(plain)


def code_hash(typed: str | None) -> str:
    """The stored hash of a code as a person typed it (any case, spaces or dashes)."""
    return token_hash(normalise_code(typed))


def bearer_token(request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header of ``request`` (a Flask or
    Werkzeug request), stripped; None when the header is absent, another scheme or empty."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return header[7:].strip() or None
