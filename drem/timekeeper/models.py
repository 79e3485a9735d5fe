"""Lap-timer devices: a sensor at the finish line that reports crossings (docs/timer-protocol.md).

Tables: ``timer_devices`` (one per activated timer, bound to a track),
``timer_activation_codes`` (one-time codes an operator makes per track),
``timer_crossings`` (every crossing a timer reported, with what became of it) and
``track_timing`` (per track: does the first crossing start the race).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db

#: What became of a crossing (``TimerCrossing.status``).
FIRST = "first"                # the first crossing of a race: starts the race or its first timed lap
LAP = "lap"                    # ended a lap (``lap_id``)
DEBOUNCED = "debounced"        # the same sensor within TIMER_DEBOUNCE_MS of the last counted crossing
DUPLICATE = "duplicate"        # the other sensor within TIMER_DEBOUNCE_MS (one car seen twice)
TOO_SHORT = "too_short"        # a lap under MIN_LAP_MS (or a device clock that went back)
TOO_LONG = "too_long"          # a lap longer than the race allows (device clock jump)
OUTSIDE_RACE = "outside_race"  # no running race on the track
RESTORED = "restored"          # a rejected crossing a marshal turned into a lap (``lap_id``)
UNDONE = "undone"              # its lap was undone on the console (a false finish)
CROSSING_STATUSES = (FIRST, LAP, DEBOUNCED, DUPLICATE, TOO_SHORT, TOO_LONG, OUTSIDE_RACE, RESTORED, UNDONE)
#: Crossings that count on the race's timeline (lap times are measured between them).
COUNTED_CROSSINGS = (FIRST, LAP, RESTORED)
#: Rejected crossings a marshal may restore as a lap (when they belong to a race).
RESTORABLE = (DEBOUNCED, DUPLICATE, TOO_SHORT, TOO_LONG, OUTSIDE_RACE, UNDONE)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class TimerDevice(db.Model):
    """A lap timer bound to one track, authenticated by a device token (stored hashed).

    ``clock_offset_ms`` is what the device measured from its last heartbeat: server
    UNIX time in ms minus the device clock, so ``device_time_ms + clock_offset_ms`` is
    the server time of a crossing; ``round_trip_ms`` the heartbeat's round trip.
    """

    __tablename__ = "timer_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hostname: Mapped[str | None] = mapped_column(String(63))
    software_version: Mapped[str | None] = mapped_column(String(40))
    connected: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=db.false())
    sid: Mapped[str | None] = mapped_column(String(64))
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger)
    round_trip_ms: Mapped[int | None] = mapped_column(Integer)
    sensors: Mapped[list | None] = mapped_column(JSON)
    last_crossing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    track = relationship("Track")

    def to_dict(self) -> dict:
        """JSON shape of a timer (never its token); ``online`` is added by
        :func:`drem.timekeeper.timers.timer_dict`."""
        return {"id": self.id, "name": self.name, "track_id": self.track_id,
                "last_seen_at": _iso(self.last_seen_at), "revoked": self.revoked_at is not None,
                "hostname": self.hostname, "software_version": self.software_version,
                "connected": bool(self.connected), "clock_offset_ms": self.clock_offset_ms,
                "round_trip_ms": self.round_trip_ms, "sensors": self.sensors or [],
                "last_crossing_at": _iso(self.last_crossing_at)}


class TimerActivationCode(db.Model):
    """A one-time code that lets one timer device register itself for a track (stored hashed)."""

    __tablename__ = "timer_activation_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timer_id: Mapped[int | None] = mapped_column(ForeignKey("timer_devices.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class TrackTiming(db.Model):
    """How a track's timer times races: ``first_crossing_starts_race`` (DREM's way) or the
    operator starts with S and the first crossing starts the first timed lap."""

    __tablename__ = "track_timing"

    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    first_crossing_starts_race: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                             server_default=db.false())


class TimerCrossing(db.Model):
    """One crossing a timer reported, kept whatever became of it (``status``, ``reason``).

    ``device_time_ms`` is the device's clock; ``race_id`` the track's live race when the
    crossing came (None: no live race); ``lap_id`` the lap it ended (status ``lap`` or
    ``restored``). A ``crossing_id`` is stored once per timer.
    """

    __tablename__ = "timer_crossings"
    __table_args__ = (UniqueConstraint("timer_id", "crossing_id", name="uq_timer_crossings_timer_crossing"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timer_id: Mapped[int] = mapped_column(ForeignKey("timer_devices.id", ondelete="CASCADE"), nullable=False)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False, index=True)
    race_id: Mapped[int | None] = mapped_column(ForeignKey("races.id", ondelete="SET NULL"), index=True)
    crossing_id: Mapped[str] = mapped_column(String(48), nullable=False)
    sensor: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    device_time_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    lap_id: Mapped[int | None] = mapped_column(ForeignKey("laps.id", ondelete="SET NULL"))
    restored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    timer = relationship("TimerDevice")

    def to_dict(self) -> dict:
        """JSON shape of a crossing (times: device ms, ISO received_at)."""
        return {"id": self.id, "timer_id": self.timer_id, "timer": self.timer.name if self.timer else None,
                "track_id": self.track_id, "race_id": self.race_id, "crossing_id": self.crossing_id,
                "sensor": self.sensor, "device_time_ms": self.device_time_ms,
                "received_at": _iso(self.received_at), "status": self.status, "reason": self.reason,
                "lap_id": self.lap_id, "restored_at": _iso(self.restored_at),
                "restorable": self.status in RESTORABLE and self.race_id is not None}
