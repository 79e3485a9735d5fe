"""Account tables: users, one-time sign-in codes, personal API tokens."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db


class User(UserMixin, db.Model):
    """A person with a role: admin, operator, registration, commentator or racer."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    username_key: Mapped[str] = mapped_column(String(20), unique=True, nullable=False, index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    country_code: Mapped[str | None] = mapped_column(String(2))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="racer")
    is_disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Bumped by logout, password change, disabling and role changes: every session cookie
    #: carries the version it was made with and stops working when it differs.
    session_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    tokens = relationship("ApiToken", back_populates="user", cascade="all, delete-orphan")
    sign_in_codes = relationship(
        "SignInCode", back_populates="user", cascade="all, delete-orphan",
        foreign_keys="SignInCode.user_id",
    )

    @property
    def is_active(self) -> bool:  # Flask-Login: disabled users cannot sign in
        return not self.is_disabled

    def get_id(self) -> str:
        """Flask-Login's session id: ``"<user id>:<session version>"``."""
        return f"{self.id}:{self.session_version or 0}"

    def to_dict(self) -> dict:
        """JSON shape of a user (no secrets)."""
        return {
            "id": self.id, "username": self.username, "email": self.email,
            "country_code": self.country_code, "role": self.role,
            "is_disabled": self.is_disabled, "created_at": self.created_at.isoformat(),
        }


class SignInCode(db.Model):
    """A printed one-time code that signs a racer in without e-mail (stored hashed)."""

    __tablename__ = "sign_in_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    user = relationship("User", back_populates="sign_in_codes", foreign_keys=[user_id])


class ApiToken(db.Model):
    """A personal API token (``Authorization: Bearer drem_…``), stored as a sha256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: After this the token no longer works (None: tokens made before expiry existed).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user = relationship("User", back_populates="tokens")

    def to_dict(self) -> dict:
        """JSON shape of a token (never the secret itself)."""
        return {
            "id": self.id, "name": self.name, "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked": self.revoked_at is not None,
        }
