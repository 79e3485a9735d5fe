"""Lap-timer devices: a sensor at the finish line that reports crossings (docs/timer-protocol.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db


class TimerDevice(db.Model):
    """A lap timer bound to one track, authenticated by a device token (stored hashed)."""

    __tablename__ = "timer_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    track = relationship("Track")

    def to_dict(self) -> dict:
        """JSON shape of a timer (never its token)."""
        return {"id": self.id, "name": self.name, "track_id": self.track_id,
                "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
                "revoked": self.revoked_at is not None}
