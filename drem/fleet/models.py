"""Fleet tables: fleets, cars, one-time activation codes, commands, car lap reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db

# command status only moves forward: queued -> sent -> acknowledged -> done | failed
QUEUED, SENT, ACKNOWLEDGED, DONE, FAILED = "queued", "sent", "acknowledged", "done", "failed"
COMMAND_ORDER = {QUEUED: 0, SENT: 1, ACKNOWLEDGED: 2, DONE: 3, FAILED: 3}
FINISHED = (DONE, FAILED)


class Fleet(db.Model):
    """A group of cars, optionally assigned to one event track."""

    __tablename__ = "fleets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False, unique=True)
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    cars = relationship("Car", back_populates="fleet")
    track = relationship("Track")

    def to_dict(self) -> dict:
        """JSON shape of a fleet."""
        return {"id": self.id, "name": self.name, "track_id": self.track_id,
                "car_ids": sorted(c.id for c in self.cars)}


class Car(db.Model):
    """A car (real or simulated) running the car client, with its last reported status."""

    __tablename__ = "cars"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(63), nullable=False)
    fleet_id: Mapped[int | None] = mapped_column(ForeignKey("fleets.id", ondelete="SET NULL"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    connected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    sid: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    software_version: Mapped[str | None] = mapped_column(String(40))
    battery_pct: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str | None] = mapped_column(String(20))
    loaded_models: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    model_in_use: Mapped[str | None] = mapped_column(String(40))
    max_speed_mps: Mapped[float | None] = mapped_column(Float)
    tail_light: Mapped[str | None] = mapped_column(String(10))
    error: Mapped[str | None] = mapped_column(Text)
    #: the model formats the car runs (its heartbeat says; None until it has said)
    model_formats: Mapped[list | None] = mapped_column(JSON)
    #: frames per second of the car's drive loop while driving (None when it reports none)
    fps: Mapped[float | None] = mapped_column(Float)

    fleet = relationship("Fleet", back_populates="cars")

    def runs(self, model_format: str | None) -> bool:
        """Whether the car can run a model of ``model_format`` (True while it has not said)."""
        return self.model_formats is None or model_format in self.model_formats

    def is_online(self, now: datetime, offline_after_s: int) -> bool:
        """Connected and heard from within ``offline_after_s`` seconds."""
        return bool(self.connected and self.last_seen_at
                    and (now - self.last_seen_at).total_seconds() <= offline_after_s)

    def to_dict(self, now: datetime, offline_after_s: int) -> dict:
        """JSON shape of a car with its live status (``online`` computed at ``now``)."""
        return {
            "id": self.id, "hostname": self.hostname, "fleet_id": self.fleet_id,
            "fleet": self.fleet.name if self.fleet else None,
            "online": self.is_online(now, offline_after_s), "revoked": self.token_revoked_at is not None,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "ip": self.ip, "software_version": self.software_version, "battery_pct": self.battery_pct,
            "state": self.state, "loaded_models": self.loaded_models, "model_in_use": self.model_in_use,
            "max_speed_mps": self.max_speed_mps, "tail_light": self.tail_light, "error": self.error,
            "model_formats": self.model_formats, "fps": self.fps,
        }


class ActivationCode(db.Model):
    """A one-time code that lets one car client register itself (stored hashed)."""

    __tablename__ = "activation_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    hostname: Mapped[str] = mapped_column(String(63), nullable=False)
    fleet_id: Mapped[int | None] = mapped_column(ForeignKey("fleets.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    car_id: Mapped[int | None] = mapped_column(ForeignKey("cars.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class CarCommand(db.Model):
    """A command to one car and how far it got (sent, acknowledged, done, failed)."""

    __tablename__ = "car_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    car_id: Mapped[int] = mapped_column(ForeignKey("cars.id", ondelete="CASCADE"), nullable=False, index=True)
    command_type: Mapped[str] = mapped_column(String(20), nullable=False)
    params: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=QUEUED, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float | None] = mapped_column(Float)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("racer_models.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    car = relationship("Car")
    model = relationship("RacerModel")
    created_by = relationship("User")

    @property
    def command_id(self) -> str:
        """The id on the wire: ``c-<row id>``."""
        return f"c-{self.id}"

    def wire(self) -> dict:
        """The ``command`` message sent to the car (docs/car-protocol.md)."""
        return {"command_id": self.command_id, "type": self.command_type, "params": self.params}

    def to_dict(self) -> dict:
        """JSON shape for operators (signed URLs left out)."""
        params = {k: v for k, v in self.params.items() if k != "url"}
        return {
            "id": self.id, "command_id": self.command_id, "car_id": self.car_id,
            "hostname": self.car.hostname if self.car else None, "type": self.command_type,
            "params": params, "status": self.status, "reason": self.reason, "progress": self.progress,
            "model_id": self.model_id, "model": self.model.filename if self.model else None,
            "created_by": self.created_by.username if self.created_by else None,
            "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class CarLapReport(db.Model):
    """Every lap a car reported, stored once per car-made ``lap_id`` (the car's lap log)."""

    __tablename__ = "car_lap_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lap_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    car_id: Mapped[int] = mapped_column(ForeignKey("cars.id", ondelete="CASCADE"), nullable=False, index=True)
    model_id: Mapped[str | None] = mapped_column(String(40))
    lap_time_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    resets: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lap_number: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    race_id: Mapped[int | None] = mapped_column(ForeignKey("races.id", ondelete="SET NULL"), index=True)
    outcome: Mapped[str | None] = mapped_column(String(80))

    def to_dict(self) -> dict:
        """JSON shape of one lap in a car's lap log."""
        return {
            "id": self.id, "lap_id": self.lap_id, "car_id": self.car_id, "model_id": self.model_id,
            "lap_time_ms": self.lap_time_ms, "resets": self.resets, "lap_number": self.lap_number,
            "finished_at": self.finished_at, "received_at": self.received_at.isoformat(),
            "race_id": self.race_id, "outcome": self.outcome,
        }
