"""Reading a track's race queue: the line (who is called in which order), the waiting-time
estimate, the car to suggest, and the ``queue_update`` pushed after every change.

Messages (namespace ``/queue``, :mod:`drem.race_queue.sockets`): after every committed
change of a track's queue, ``queue_update`` goes to room ``q:<track_id>`` (public shape:
names, states, places and waiting times) and to room ``qs:<track_id>`` (staff shape: also
models, suggested car, race ids). Both carry the queue's ``version`` (whole number, one
more per change): a client keeps the highest version it has and drops older messages.

Units: durations in integer ms, points in time ISO-8601 UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from drem.events.models import COUNTED, EventRacer, Race, Track
from drem.fleet.models import Car, Fleet
from drem.fleet.service import offline_after
from drem.models_mgr.models import AVAILABLE, RacerModel
from drem.platform.db_types import utcnow
from drem.platform.extensions import db, socketio
from drem.platform.permissions import allowed
from drem.race_queue.models import (
    CALLED,
    CHECKED_IN,
    DEFAULT_SKIP_BACK,
    RACING,
    QueueEntry,
    RaceQueue,
)
from drem.timekeeper.service import runs_done

NAMESPACE = "/queue"
#: Extra time per race when no turnaround was measured yet (ms): the race time plus this.
CHANGEOVER_MS = 60_000
#: Races started more than this apart were not back to back (a break): not a turnaround.
BREAK_MS = 10 * 60_000
#: Turnarounds averaged: the last this many of the day.
TURNAROUNDS = 10


def public_room(track_id: int) -> str:
    """The room of the public displays and phones watching a track's queue."""
    return f"q:{track_id}"


def staff_room(track_id: int) -> str:
    """The room of the timekeeper consoles watching a track's queue (staff shape)."""
    return f"qs:{track_id}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def turnaround_ms(s: Session, track: Track, now: datetime | None = None) -> int:
    """The average time from one race's start to the next on ``track`` (ms), measured over
    the last :data:`TURNAROUNDS` back-to-back starts of the past 12 hours (gaps longer than
    the race time plus :data:`BREAK_MS` are breaks and left out); without one, the race
    time plus :data:`CHANGEOVER_MS`."""
    now = now or utcnow()
    race_ms = track.event.race_time_min * 60_000
    starts = list(s.scalars(sa.select(Race.started_at).where(
        Race.track_id == track.id, Race.status.in_(COUNTED), Race.started_at.is_not(None),
        Race.started_at >= now - timedelta(hours=12)).order_by(Race.started_at.desc()).limit(TURNAROUNDS + 1)))
    gaps = [(a - b).total_seconds() * 1000 for a, b in zip(starts, starts[1:], strict=False)]
    gaps = [g for g in gaps if 0 < g <= race_ms + BREAK_MS]
    return round(sum(gaps) / len(gaps)) if gaps else race_ms + CHANGEOVER_MS


def line(entries: list[QueueEntry]) -> list[QueueEntry]:
    """The active entries in the order they go on track: racing, then called (first called
    first), then checked in, then the rest (waiting, skipped), each by position."""
    rank = {RACING: 0, CALLED: 1, CHECKED_IN: 2}

    def key(e: QueueEntry):
        when = e.called_at.timestamp() if e.state in (RACING, CALLED) and e.called_at else 0.0
        return (rank.get(e.state, 3), when, e.position or 0, e.id)

    return sorted(entries, key=key)


def active_entries(s: Session, track_id: int) -> list[QueueEntry]:
    """The track's active entries by position, with racer, model and race loaded (fresh
    from the database, whatever the session held)."""
    return list(s.scalars(sa.select(QueueEntry).where(QueueEntry.active_track_id == track_id)
                          .options(selectinload(QueueEntry.racer), selectinload(QueueEntry.model),
                                   selectinload(QueueEntry.race))
                          .order_by(QueueEntry.position, QueueEntry.id)
                          .execution_options(populate_existing=True)))


def waits(entries: list[QueueEntry], turnaround: int, now: datetime) -> dict[int, int]:
    """Estimated wait (ms from ``now``) of each active entry until its race starts, along
    :func:`line`: a racing entry holds the track for what is left of one turnaround since
    its race started, every other entry ahead for one whole turnaround."""
    out, ahead = {}, 0
    for e in line(entries):
        if e.state == RACING:
            out[e.id] = 0
            started = e.race.started_at if e.race is not None and e.race.started_at else now
            ahead += max(0, turnaround - int((now - started).total_seconds() * 1000))
        else:
            out[e.id] = ahead
            ahead += turnaround
    return out


def suggest_car(s: Session, track: Track, model_id: int | None, now: datetime | None = None) -> int | None:
    """The car to race a model on: among the track's fleet cars (every car when no fleet is
    bound to the track), the first by hostname that has the model loaded, else the first
    online one; None when there is none."""
    now = now or utcnow()
    fleet_ids = set(s.scalars(sa.select(Fleet.id).where(Fleet.track_id == track.id)))
    cars = [c for c in s.scalars(sa.select(Car).order_by(Car.hostname, Car.id))
            if (not fleet_ids or c.fleet_id in fleet_ids) and c.token_revoked_at is None]
    if model_id is not None:
        for car in cars:
            if any(str(m.get("model_id")) == str(model_id) for m in car.loaded_models or []):
                return car.id
    after = offline_after()
    return next((c.id for c in cars if c.is_online(now, after)), None)


def _entry_dict(e: QueueEntry, place: int, wait: int, now: datetime) -> dict:
    return {"id": e.id, "track_id": e.track_id, "state": e.state, "position": e.position, "place": place,
            "racer": {"id": e.racer_id, "username": e.racer.username, "country_code": e.racer.country_code},
            "skips": e.skips, "wait_ms": wait, "eta": _iso(now + timedelta(milliseconds=wait)),
            "checked_in_at": _iso(e.checked_in_at), "called_at": _iso(e.called_at)}


def queue_state(s: Session, track: Track, staff: bool = False) -> dict:
    """A track's queue: ``{"track_id", "event_id", "version", "skip_back", "turnaround_ms",
    "entries" (active entries in :func:`line` order, each ``{"id", "state", "position",
    "place" (1 = next on track), "racer" {id, username, country_code}, "skips", "wait_ms",
    "eta", "checked_in_at", "called_at"}``), "next" (ids of the called and checked-in
    entries in call order)}``. ``staff`` adds per entry ``"model" {id, filename} | None``,
    ``"car_id"`` (the car to suggest, :func:`suggest_car`), ``"race_id"``, ``"created_at"``,
    ``"added_by"``. Reads the version before and after the entries, so they match."""
    for _ in range(5):
        version, skip_back = _queue_row(s, track.id)
        entries = active_entries(s, track.id)
        if _queue_row(s, track.id)[0] == version:
            break
    now = utcnow()
    turnaround = turnaround_ms(s, track, now)
    wait = waits(entries, turnaround, now)
    ordered = line(entries)
    out = []
    for place, e in enumerate(ordered, start=1):
        row = _entry_dict(e, place, wait[e.id], now)
        if staff:
            row.update(model={"id": e.model.id, "filename": e.model.filename} if e.model else None,
                       car_id=e.car_id or suggest_car(s, track, e.model_id, now), race_id=e.race_id,
                       created_at=_iso(e.created_at), added_by=e.added_by.username if e.added_by else None)
        out.append(row)
    return {"track_id": track.id, "event_id": track.event_id, "version": version, "skip_back": skip_back,
            "turnaround_ms": turnaround, "entries": out,
            "next": [e.id for e in ordered if e.state in (CALLED, CHECKED_IN)]}


def _queue_row(s: Session, track_id: int) -> tuple[int, int]:
    row = s.execute(sa.select(RaceQueue.version, RaceQueue.skip_back)
                    .where(RaceQueue.track_id == track_id)).first()
    return (row[0], row[1]) if row else (0, DEFAULT_SKIP_BACK)


def racer_queue(s: Session, event, user) -> list[dict]:
    """What a racer's phone shows for each track of ``event``: ``[{"track" {id, name},
    "entry" (the racer's active entry as in :func:`queue_state`, with ``"model"`` and
    ``"ahead"`` (entries before it in the line); None when not queued), "turnaround_ms"}]``."""
    out = []
    for track in event.tracks:
        state = queue_state(s, track, staff=False)
        mine = next((e for e in state["entries"] if e["racer"]["id"] == user.id), None)
        if mine is not None:
            entry = s.get(QueueEntry, mine["id"])
            mine = dict(mine, ahead=mine["place"] - 1,
                        model={"id": entry.model.id, "filename": entry.model.filename} if entry.model else None)
        out.append({"track": {"id": track.id, "name": track.name}, "entry": mine,
                    "turnaround_ms": state["turnaround_ms"], "version": state["version"]})
    return out


def phone_view(s: Session, event, user) -> dict:
    """What the event's landing page shows a visitor about the race queue:
    ``{"signed_in", "may_queue" (holds ``queue.join``), "registered" (for the event),
    "tracks" (:func:`racer_queue`, only when registered), "models" ([{id, filename}]: the
    racer's available models), "runs_left" ({track id: runs left or None = unlimited}),
    "versions" ({track id (text): queue version the card shows})}``."""
    out = {"signed_in": bool(getattr(user, "is_authenticated", False)), "may_queue": False,
           "registered": False, "tracks": [], "models": [], "runs_left": {}, "versions": {}}
    if not out["signed_in"] or not allowed(user, "queue.join"):
        return out
    out["may_queue"] = True
    out["registered"] = s.scalar(sa.select(EventRacer.id).where(EventRacer.event_id == event.id,
                                                                 EventRacer.user_id == user.id)) is not None
    if not out["registered"]:
        return out
    out["tracks"] = racer_queue(s, event, user)
    out["versions"] = {str(row["track"]["id"]): row["version"] for row in out["tracks"]}
    out["models"] = [{"id": m.id, "filename": m.filename} for m in available_models(s, user.id)]
    limit = event.max_runs_per_racer
    out["runs_left"] = {t.id: None if limit is None else max(0, limit - runs_done(t.id, user.id))
                        for t in event.tracks}
    return out


def available_models(s: Session, user_id: int) -> list[RacerModel]:
    """The racer's available models, newest first (what they may check in with)."""
    return list(s.scalars(sa.select(RacerModel).where(RacerModel.owner_id == user_id, RacerModel.status == AVAILABLE)
                          .order_by(RacerModel.uploaded_at.desc(), RacerModel.id.desc())))


def push_queue(track_id: int) -> None:
    """Send the track's queue as ``queue_update`` to its public and staff rooms (call after
    the commit; works in any process, through Redis when several serve). Reads in a session
    of its own."""
    s = Session(db.engine)
    try:
        track = s.get(Track, track_id)
        if track is None:
            return
        public, staff = queue_state(s, track), queue_state(s, track, staff=True)
    finally:
        s.close()
    socketio.emit("queue_update", public, namespace=NAMESPACE, to=public_room(track_id))
    socketio.emit("queue_update", staff, namespace=NAMESPACE, to=staff_room(track_id))

