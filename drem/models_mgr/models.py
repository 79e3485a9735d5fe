"""The ``racer_models`` table: one row per uploaded driving model."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db

# uploaded -> scanning -> available | quarantined | invalid; any -> deleted
UPLOADED, SCANNING, AVAILABLE, QUARANTINED, INVALID, DELETED = (
    "uploaded", "scanning", "available", "quarantined", "invalid", "deleted")
STATUSES = (UPLOADED, SCANNING, AVAILABLE, QUARANTINED, INVALID, DELETED)
PENDING = (UPLOADED, SCANNING)


class RacerModel(db.Model):
    """A racer's trained driving model (named RacerModel so it is never confused with a
    database model). Sizes in bytes, digests lowercase hex."""

    __tablename__ = "racer_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), index=True)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    storage_key: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=UPLOADED, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    model_format: Mapped[str | None] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # indexed: the detail page finds other racers' uploads of the same file or weights
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    md5: Mapped[str] = mapped_column(String(32), nullable=False)
    model_pb_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    model_pb_md5: Mapped[str | None] = mapped_column(String(32))
    sensors: Mapped[list | None] = mapped_column(JSON)
    action_space_type: Mapped[str | None] = mapped_column(String(16))
    action_space: Mapped[list | dict | None] = mapped_column(JSON)
    neural_network: Mapped[str | None] = mapped_column(String(64))
    training_algorithm: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict | None] = mapped_column(JSON)
    # Donkey settings the car drives the model with (drem.models_mgr.donkey_settings):
    # {"categorical_throttle_range": float, "crop_top": rows, "crop_bottom": rows}
    model_settings: Mapped[dict | None] = mapped_column(JSON)
    virus_signature: Mapped[str | None] = mapped_column(String(255))
    scan_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner = relationship("User")
    event = relationship("Event")

    def to_dict(self) -> dict:
        """JSON shape of a model (storage key and claim bookkeeping left out)."""
        return {
            "id": self.id, "owner_id": self.owner_id, "owner": self.owner.username if self.owner else None,
            "event_id": self.event_id, "filename": self.filename, "status": self.status,
            "status_reason": self.status_reason, "format": self.model_format, "size": self.size,
            "sha256": self.sha256, "md5": self.md5, "model_pb_sha256": self.model_pb_sha256,
            "model_pb_md5": self.model_pb_md5, "sensors": self.sensors,
            "action_space_type": self.action_space_type, "action_space": self.action_space,
            "neural_network": self.neural_network, "training_algorithm": self.training_algorithm,
            "model_settings": self.model_settings or {},
            "virus_signature": self.virus_signature, "scan_attempts": self.scan_attempts,
            "uploaded_at": self.uploaded_at.isoformat(),
            "scanned_at": self.scanned_at.isoformat() if self.scanned_at else None,
            "expires_at": self.expires_at.isoformat(),
        }
