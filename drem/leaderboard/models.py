"""Leaderboard package tables: the import page's staged documents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db


class StagedImport(db.Model):
    """An uploaded event export waiting between the import page's preview and its
    "Import" button (one per user; dropped on import, discard, or after a day)."""

    __tablename__ = "staged_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    document: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
