"""Timer crossings: every crossing a lap timer reports is kept, with what became of it.

A crossing is ``(timer, crossing_id, sensor, device_time_ms)``; ``device_time_ms`` is the
device's own clock, so a lap time is the difference of two device timestamps and network
delay cancels out. For the track's live race (see :data:`drem.timekeeper.models.CROSSING_STATUSES`):

- no running race: ``outside_race`` (kept with the live race, if any, so a marshal can
  restore it); a ``ready`` race on a track whose first crossing starts the race is
  started by it (``first``, the race clock starts at the crossing's server time);
- the first counted crossing of a running race starts its first timed lap (``first``);
- within ``TIMER_DEBOUNCE_MS`` of the last counted crossing: ``debounced`` (same sensor)
  or ``duplicate`` (the other sensor saw the same car);
- a lap under ``MIN_LAP_MS`` or a device clock that went back: ``too_short``; longer than
  the race allows: ``too_long``;
- otherwise a ``lap`` (``drem.timekeeper.laps._record``).

A marshal turns a rejected crossing of a race into a lap with :func:`restore_crossing`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app

from drem.events import race_admin
from drem.events.models import MIN_LAP_MS, READY, RUNNING, Race, max_lap_ms
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Conflict, NotFound, ServiceError
from drem.platform.extensions import db, socketio
from drem.timekeeper import clock, laps, service
from drem.timekeeper.models import (
    COUNTED_CROSSINGS,
    DEBOUNCED,
    DUPLICATE,
    FIRST,
    LAP,
    OUTSIDE_RACE,
    RESTORABLE,
    RESTORED,
    TOO_LONG,
    TOO_SHORT,
    TimerCrossing,
    TimerDevice,
    TrackTiming,
)

#: The largest gap (ms) between a crossing's server time (device time + clock offset) and
#: its arrival for which that time starts a race; older crossings start it on arrival.
START_AT_CROSSING_MAX_MS = 60_000


def server_time(device: TimerDevice, device_time_ms: int, now: datetime) -> datetime:
    """The server time of a crossing: device time + the device's clock offset, when the
    offset is known and the result is not in the future nor over a minute old; else ``now``."""
    if device.clock_offset_ms is None:
        return now
    at_ms = device_time_ms + device.clock_offset_ms
    age_ms = now.timestamp() * 1000 - at_ms
    if not 0 <= age_ms <= START_AT_CROSSING_MAX_MS:
        return now
    return datetime.fromtimestamp(at_ms / 1000, UTC)


def _last_counted(race: Race) -> TimerCrossing | None:
    return db.session.scalar(db.select(TimerCrossing).where(
        TimerCrossing.race_id == race.id, TimerCrossing.status.in_(COUNTED_CROSSINGS))
        .order_by(TimerCrossing.device_time_ms.desc(), TimerCrossing.id.desc()).limit(1))


def _first_starts_race(track_id: int) -> bool:
    row = db.session.get(TrackTiming, track_id)
    return bool(row and row.first_crossing_starts_race)


def report_crossing(device: TimerDevice, crossing_id: str, device_time_ms: int, sensor: int = 1) -> dict:
    """Store a crossing and apply it to the track's live race (module docstring).

    Returns the ack: ``{"ok": true, "stored": bool (a lap was stored), "status", "reason",
    "crossing": id, "lap_number"?}``; ``ok`` is False for ``too_short``/``too_long``
    (kept, but not a lap). A repeated ``crossing_id`` of this timer is stored once and
    answered ``{"ok": true, "duplicate": true, …}`` with the first answer's status.
    """
    with db.session.no_autoflush:  # the timer's pending last-seen time goes out with the crossing
        seen = db.session.scalar(db.select(TimerCrossing).where(
            TimerCrossing.timer_id == device.id, TimerCrossing.crossing_id == crossing_id))
        if seen is not None:
            return {"ok": True, "stored": seen.status == LAP, "duplicate": True, "status": seen.status,
                    "reason": seen.reason, "crossing": seen.id}
        now = utcnow()
        race = service.live_race(device.track_id)
        row = TimerCrossing(timer_id=device.id, track_id=device.track_id, race_id=race.id if race else None,
                            crossing_id=crossing_id, sensor=sensor, device_time_ms=device_time_ms,
                            received_at=now)
        device.last_crossing_at = now
        status, reason, lap = _apply(device, race, row, now)
    row.status, row.reason, row.lap_id = status, reason[:200], lap.id if lap is not None else None
    db.session.add(row)
    db.session.flush()
    _push_crossing(row, lap.lap_number if lap is not None else None)
    answer = {"ok": status not in (TOO_SHORT, TOO_LONG), "stored": lap is not None, "status": status,
              "reason": reason, "crossing": row.id}
    if lap is not None:
        answer["lap_number"] = lap.lap_number
    return answer


def _apply(device: TimerDevice, race: Race | None, row: TimerCrossing, now: datetime):
    """What the crossing ``row`` does to ``race``: ``(status, reason, lap or None)``."""
    if race is None:
        return OUTSIDE_RACE, "no running race on this track", None
    if race.status == READY and _first_starts_race(race.track_id):
        service.start_race(None, race, at=server_time(device, row.device_time_ms, now))
        race.timer_last_crossing_ms = row.device_time_ms
        return FIRST, "first crossing: race started", None
    if race.status != RUNNING:
        return OUTSIDE_RACE, f"no running race on this track (the race is {race.status})", None
    last = _last_counted(race)
    if last is None:
        race.timer_last_crossing_ms = row.device_time_ms
        race.lap_start_ms = clock.elapsed_ms(race, now)
        service.push_state(race)
        return FIRST, "first crossing: lap started", None
    lap_ms = row.device_time_ms - last.device_time_ms
    debounce = current_app.config["TIMER_DEBOUNCE_MS"]
    if 0 <= lap_ms < debounce:
        if last.sensor != row.sensor:
            return DUPLICATE, f"sensor {last.sensor} saw this car {lap_ms} ms before", None
        return DEBOUNCED, f"within the {debounce} ms debounce ({lap_ms} ms after the last crossing)", None
    if lap_ms < MIN_LAP_MS:
        return TOO_SHORT, f"lap time {lap_ms} ms is not plausible (device clock?)", None
    if lap_ms > max_lap_ms(race.time_limit_ms):
        return TOO_LONG, f"lap time {lap_ms} ms is not plausible (device clock?)", None
    race.timer_last_crossing_ms = row.device_time_ms
    lap = laps._record(race, lap_ms, "timer", f"timer:{device.id}:{row.crossing_id}")
    return LAP, f"lap {lap.lap_number}: {lap_ms} ms", lap


def _push_crossing(row: TimerCrossing, lap_number: int | None) -> None:
    """After the commit, tell the track's consoles (``timer_crossing``) so they flash."""
    payload = {"id": row.id, "timer_id": row.timer_id, "race_id": row.race_id, "sensor": row.sensor,
               "status": row.status, "reason": row.reason, "lap_number": lap_number}
    track_id = row.track_id
    after_commit(lambda: socketio.emit("timer_crossing", payload, namespace="/timekeeper", to=f"tk:{track_id}"))


def list_crossings(race_id: int | None = None, track_id: int | None = None, limit: int = 500) -> list[TimerCrossing]:
    """Crossings of a race or a track, oldest first by device time (at most ``limit``)."""
    query = db.select(TimerCrossing).order_by(TimerCrossing.timer_id, TimerCrossing.device_time_ms,
                                              TimerCrossing.id).limit(limit)
    if race_id is not None:
        query = query.where(TimerCrossing.race_id == race_id)
    if track_id is not None:
        query = query.where(TimerCrossing.track_id == track_id)
    return list(db.session.scalars(query))


def restore_crossing(actor, crossing_id: int) -> TimerCrossing:
    """Turn a rejected crossing (debounced, duplicate, too short or long, outside the race)
    of a race into a lap, as a marshal decides. Audited (``lap.restore``).

    The crossing falls between two counted crossings of the same timer: the lap that
    ended at the later one is split in two (its time is shared at the crossing), or,
    after the last one, a new lap ends at it. NotFound for an unknown crossing; Conflict
    when it is not rejected or belongs to no race; ServiceError when it comes before
    the race's first crossing or a lap would fall outside the plausible times.
    """
    row = db.session.get(TimerCrossing, crossing_id)
    if row is None:
        raise NotFound("no such crossing")
    if row.status not in RESTORABLE:
        raise Conflict(f"this crossing is {row.status}, not a rejected one")
    if row.race_id is None:
        raise Conflict("this crossing came when the track had no race: there is no race to add it to")
    race = db.session.get(Race, row.race_id)
    counted = list(db.session.scalars(db.select(TimerCrossing).where(
        TimerCrossing.race_id == race.id, TimerCrossing.timer_id == row.timer_id,
        TimerCrossing.status.in_(COUNTED_CROSSINGS)).order_by(TimerCrossing.device_time_ms)))
    before = [c for c in counted if c.device_time_ms < row.device_time_ms]
    after = [c for c in counted if c.device_time_ms > row.device_time_ms]
    if not before:
        raise ServiceError("this crossing comes before the race's first crossing: no lap ends at it")
    time_ms = row.device_time_ms - before[-1].device_time_ms
    split = split_ms = None
    if after and after[0].lap_id is not None:
        split = next((lap for lap in race.laps if lap.id == after[0].lap_id), None)
        split_ms = after[0].device_time_ms - row.device_time_ms
    elif after:
        raise ServiceError("the next crossing of this timer ended no lap: restore that one first")
    lap = race_admin.restore_lap(actor, race, time_ms, "timer", f"timer:{row.timer_id}:{row.crossing_id}",
                                 split=split, split_time_ms=split_ms,
                                 detail={"crossing_id": row.id, "crossing_status": row.status})
    if not after and race.status == RUNNING:
        race.timer_last_crossing_ms = row.device_time_ms
        race.lap_start_ms = clock.elapsed_ms(race, utcnow())
    row.reason = f"restored as lap {lap.lap_number} (was {row.status}: {row.reason})"[:200]
    row.status, row.lap_id, row.restored_at = RESTORED, lap.id, utcnow()
    db.session.flush()
    if race.live_track_id is not None:
        service.push_state(race)
    return row
