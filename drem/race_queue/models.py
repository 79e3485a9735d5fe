"""Tables of the race queue: one ``race_queues`` row per track (its version and settings)
and one ``queue_entries`` row per racer waiting for, racing or done with a run.

The order rule (docs/operations.md, "Race queue"): racers keep the place they joined at
(``position``, 1..n without gaps among the active entries), but only checked-in racers
are called, the lowest position first. A called racer who is not at the track (a no-show)
is skipped: moved back ``skip_back`` places the first time, to the end of the queue after
that, and called again only once checked in again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from drem.platform.db_types import UTCDateTime, utcnow
from drem.platform.extensions import db

#: Entry states: joined, at the venue (checked in), called to the track, on the track,
#: finished (its race submitted or discarded after it started), missed its call.
WAITING, CHECKED_IN, CALLED, RACING, DONE, SKIPPED = (
    "waiting", "checked_in", "called", "racing", "done", "skipped")
STATES = (WAITING, CHECKED_IN, CALLED, RACING, DONE, SKIPPED)
#: States of an entry still in the queue (it has a position; one per racer and track).
ACTIVE = (WAITING, CHECKED_IN, CALLED, RACING, SKIPPED)
#: States a racer may check in from (again).
CHECK_IN_FROM = (WAITING, SKIPPED, CHECKED_IN, CALLED)
#: Places a skipped (no-show) racer moves back the first time, unless the track says otherwise.
DEFAULT_SKIP_BACK = 3


class RaceQueue(db.Model):
    """A track's queue: ``version`` grows by one with every change (an atomic
    ``UPDATE ... RETURNING`` that also locks the row until the commit, so changes of one
    queue happen one after the other); ``skip_back`` is how many places a no-show moves back."""

    __tablename__ = "race_queues"

    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    skip_back: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_SKIP_BACK,
                                           server_default=str(DEFAULT_SKIP_BACK))


class QueueEntry(db.Model):
    """One racer in a track's queue.

    ``position`` is the place in join order (1 = first) while the entry is active, None once
    done; ``active_track_id`` is the track id while active, else None (the unique constraint
    allows one active entry per racer and track, however many requests race to add it).
    ``skips`` counts no-shows; ``race_id`` is the race set up for this entry.
    """

    __tablename__ = "queue_entries"
    __table_args__ = (UniqueConstraint("active_track_id", "racer_id", name="uq_queue_entries_active_racer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False, index=True)
    racer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("racer_models.id", ondelete="SET NULL"))
    car_id: Mapped[int | None] = mapped_column(ForeignKey("cars.id", ondelete="SET NULL"))
    race_id: Mapped[int | None] = mapped_column(ForeignKey("races.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(12), nullable=False, default=WAITING)
    position: Mapped[int | None] = mapped_column(Integer)
    active_track_id: Mapped[int | None] = mapped_column(Integer)
    skips: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    racer = relationship("User", foreign_keys=[racer_id])
    added_by = relationship("User", foreign_keys=[added_by_id])
    model = relationship("RacerModel")
    race = relationship("Race")
    track = relationship("Track")
