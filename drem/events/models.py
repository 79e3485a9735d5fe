"""Events, their tracks and race config, the racers registered for them, races and laps.

The race rules every package shares (statuses with their counted and live sets, lap
validity, plausible lap times) are written once in :mod:`drem.events.rules` and
re-exported here with the tables. The leaderboard
versions (``Event.leaderboard_version``, ``Track.leaderboard_version``) are bumped by the
flush listener of :mod:`drem.events.versions`.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.events import versions  # noqa: F401 - registers the leaderboard-version flush listener
from drem.events.rules import (  # noqa: F401 - re-exported: the race rules, with the tables
    COUNTED,
    DISCARDED,
    ENDED,
    LIVE,
    MAX_LAP_MS,
    MIN_LAP_MS,
    PAUSED,
    READY,
    RUNNING,
    SUBMITTED,
    RaceStatus,
    lap_is_valid,
    max_lap_ms,
)
from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db

RANKING_METHODS = ("best_lap", "best_average", "total_time")
EVENT_TYPES = ("official_track_race", "private_track_race", "official_workshop",
               "private_workshop", "other")
DIRECTIONS = ("ccw", "cw")


class Event(db.Model):
    """A race event with its race config (shared by all its tracks)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    date: Mapped[date] = mapped_column(Date, nullable=False)
    country_code: Mapped[str | None] = mapped_column(String(2))
    event_type: Mapped[str] = mapped_column(String(32), nullable=False, default="private_track_race")
    sponsor: Mapped[str | None] = mapped_column(String(100))
    # race config
    race_time_min: Mapped[int] = mapped_column(Integer, nullable=False, default=4)
    resets_allowed_per_lap: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    ranking_method: Mapped[str] = mapped_column(String(16), nullable=False, default="best_lap")
    averaging_window: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    max_runs_per_racer: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    lap_target: Mapped[int | None] = mapped_column(Integer)
    landing_links: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    #: Racers may be enrolled (desk, CSV import, walk-up, "Register") only while this is true.
    enrolment_open: Mapped[bool] = mapped_column(db.Boolean, nullable=False, default=True, server_default=true())
    # grows by one with every change of the combined leaderboard (drem.events.versions)
    leaderboard_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    tracks = relationship("Track", back_populates="event", cascade="all, delete-orphan",
                          order_by="Track.position")
    registrations = relationship("EventRacer", back_populates="event", cascade="all, delete-orphan")

    def race_config(self) -> dict:
        """The race config as a dict: minutes, counts, method names."""
        return {
            "race_time_min": self.race_time_min, "resets_allowed_per_lap": self.resets_allowed_per_lap,
            "ranking_method": self.ranking_method, "averaging_window": self.averaging_window,
            "max_runs_per_racer": self.max_runs_per_racer, "lap_target": self.lap_target,
        }

    def to_dict(self) -> dict:
        """JSON shape of an event with its tracks."""
        return {
            "id": self.id, "name": self.name, "date": self.date.isoformat(),
            "country_code": self.country_code, "event_type": self.event_type, "sponsor": self.sponsor,
            "race_config": self.race_config(), "landing_links": self.landing_links,
            "enrolment_open": self.enrolment_open, "tracks": [t.to_dict() for t in self.tracks],
            "combined_leaderboard": len(self.tracks) >= 2,
        }


class Track(db.Model):
    """A physical track at an event; each has its own leaderboard."""

    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    layout: Mapped[str] = mapped_column(String(60), nullable=False, default="other")
    direction: Mapped[str] = mapped_column(String(3), nullable=False, default="ccw")
    leaderboard_title: Mapped[str | None] = mapped_column(String(100))
    leaderboard_footer: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # grows by one with every change of this track's leaderboard (drem.events.versions)
    leaderboard_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")

    event = relationship("Event", back_populates="tracks")

    def to_dict(self) -> dict:
        """JSON shape of a track."""
        return {
            "id": self.id, "event_id": self.event_id, "name": self.name, "layout": self.layout,
            "direction": self.direction, "leaderboard_title": self.leaderboard_title,
            "leaderboard_footer": self.leaderboard_footer,
        }


class EventRacer(db.Model):
    """A racer registered for an event, with the tail-light colour their car shows."""

    __tablename__ = "event_racers"
    __table_args__ = (UniqueConstraint("event_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    colour: Mapped[str] = mapped_column(String(8), nullable=False, default="blue")
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    event = relationship("Event", back_populates="registrations")
    user = relationship("User")

    def to_dict(self) -> dict:
        """JSON shape of a registration."""
        return {"user_id": self.user_id, "username": self.user.username,
                "country_code": self.user.country_code, "colour": self.colour,
                "registered_at": self.registered_at.isoformat()}


LAP_SOURCES = ("operator", "car", "timer")


class Race(db.Model):
    """One racer's run on one track (also called a run). The clock is kept as server
    timestamps: elapsed = (paused_at or now) - started_at - paused_total_ms."""

    __tablename__ = "races"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False, index=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False, index=True)
    racer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    car_id: Mapped[int | None] = mapped_column(ForeignKey("cars.id", ondelete="SET NULL"), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("racer_models.id", ondelete="SET NULL"))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    raced_by_proxy: Mapped[bool] = mapped_column(db.Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=RaceStatus.READY, index=True)
    # set to track_id while the race is live: the unique index allows one live race per track
    live_track_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    time_limit_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    lap_target: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_total_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lap_start_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    current_resets: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    timer_last_crossing_ms: Mapped[int | None] = mapped_column(db.BigInteger)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # a time penalty on the whole run (ms, docs/ranking.md "Penalties"), with the operator's reason
    penalty_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    penalty_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    # a disqualified run counts as a run used, with no result (docs/ranking.md)
    disqualified: Mapped[bool] = mapped_column(db.Boolean, nullable=False, default=False, server_default=db.false())
    disqualified_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # optimistic locking: two operators (or an operator and a car) cannot overwrite each other
    __mapper_args__ = {"version_id_col": version}

    laps = relationship("Lap", back_populates="race", cascade="all, delete-orphan", order_by="Lap.lap_number")
    racer = relationship("User", foreign_keys=[racer_id])
    operator = relationship("User", foreign_keys=[operator_id])
    track = relationship("Track")
    event = relationship("Event")
    car = relationship("Car")
    model = relationship("RacerModel")


class Lap(db.Model):
    """One lap of a race: whole milliseconds, resets, operator invalidation, and where it
    came from (operator, car or timer) with the sender's id so a repeat is stored once."""

    __tablename__ = "laps"
    __table_args__ = (UniqueConstraint("race_id", "source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    race_id: Mapped[int] = mapped_column(ForeignKey("races.id", ondelete="CASCADE"), nullable=False, index=True)
    lap_number: Mapped[int] = mapped_column(Integer, nullable=False)
    time_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    resets: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    invalidated: Mapped[bool] = mapped_column(db.Boolean, nullable=False, default=False)
    dnf: Mapped[bool] = mapped_column(db.Boolean, nullable=False, default=False)
    source: Mapped[str] = mapped_column(String(10), nullable=False, default="operator")
    source_id: Mapped[str] = mapped_column(String(64), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # a time penalty on this lap (ms, e.g. +2000 for a cone), with the operator's reason
    penalty_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    penalty_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="", server_default="")

    race = relationship("Race", back_populates="laps")

    def is_valid(self, resets_allowed_per_lap: int | None) -> bool:
        """:func:`lap_is_valid` for this lap under the event's resets limit."""
        return lap_is_valid(self.invalidated, self.dnf, self.resets, resets_allowed_per_lap)

    def to_dict(self, resets_allowed_per_lap: int | None = None) -> dict:
        """JSON shape of a lap (times in ms; ``penalty_ms`` its time penalty) with ``valid`` (:func:`lap_is_valid`) under
        ``resets_allowed_per_lap`` (default: the race's event's limit)."""
        if resets_allowed_per_lap is None:
            resets_allowed_per_lap = self.race.event.resets_allowed_per_lap
        return {"id": self.id, "race_id": self.race_id, "lap_number": self.lap_number, "time_ms": self.time_ms,
                "resets": self.resets, "invalidated": self.invalidated, "dnf": self.dnf,
                "valid": self.is_valid(resets_allowed_per_lap),
                "penalty_ms": self.penalty_ms, "penalty_reason": self.penalty_reason,
                "source": self.source, "source_id": self.source_id, "recorded_at": self.recorded_at.isoformat()}
