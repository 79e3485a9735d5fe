"""The audit log of privileged actions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db


class AuditEntry(db.Model):
    """One privileged action: who did what to which object, and the details."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)

    actor = relationship("User")

    def to_dict(self) -> dict:
        """JSON shape of an audit entry."""
        return {
            "id": self.id, "at": self.at.isoformat(), "actor": self.actor_name,
            "action": self.action, "target_type": self.target_type,
            "target_id": self.target_id, "details": self.details,
        }
