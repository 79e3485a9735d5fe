"""Laps as they happen: operator capture, car reports (timer crossings: ``crossings``); resets, DNF, undo.

Every lap carries the sender's id (``source_id``): the same id twice is stored once.
Lap times are whole milliseconds. A lap finishing after the race time ran out still
counts and then ends the race; a lap-count race ends at its target.
"""

from __future__ import annotations

from drem.events.models import ENDED, MIN_LAP_MS, PAUSED, RUNNING, Lap, Race, max_lap_ms
from drem.platform.db_types import utcnow
from drem.platform.errors import Conflict, ServiceError
from drem.platform.extensions import db
from drem.timekeeper import clock, timers
from drem.timekeeper.models import COUNTED_CROSSINGS, UNDONE, TimerCrossing
from drem.timekeeper.service import _need, check_operator, end_race, push_state

CAPTURE_DEBOUNCE_MS = 1500  # two captures closer than this are one crossing (two operators, one press)


def existing_lap(race: Race, source_id: str) -> Lap | None:
    """The lap of this race already stored under ``source_id``, if any.

    Looks through ``race.laps`` (loaded once: the lap path needs them anyway for the next
    lap number), so a lap costs no statement of its own for this check; a lap stored by
    another request meanwhile still hits the unique ``(race_id, source_id)`` at the flush."""
    return next((lap for lap in race.laps if lap.source_id == source_id), None)


def _valid_count(race: Race) -> int:
    limit = race.event.resets_allowed_per_lap
    return sum(1 for lap in race.laps if lap.is_valid(limit))


def _record(race: Race, time_ms: int, source: str, source_id: str, resets: int | None = None,
            invalidated: bool = False, dnf: bool = False, advance_ms: int | None = None) -> Lap:
    """Store a lap now, start the next one, and end the race when its time is up or the lap
    target is reached. ``advance_ms`` moves the next lap's start (default: now)."""
    now = utcnow()
    with db.session.no_autoflush:  # the race's pending changes go out in the one flush below
        number = len(race.laps) + 1
    lap = Lap(race=race, lap_number=number, time_ms=int(time_ms),
              resets=race.current_resets if resets is None else resets, invalidated=invalidated, dnf=dnf,
              source=source, source_id=source_id[:64], recorded_at=now)
    db.session.add(lap)
    race.lap_start_ms = clock.elapsed_ms(race, now) if advance_ms is None else advance_ms
    race.current_resets = 0
    db.session.flush()
    push_state(race, lap_id=lap.id)  # the standings change and the race state, one message
    target_done = race.lap_target is not None and _valid_count(race) >= race.lap_target
    if race.status == RUNNING and (clock.is_time_up(race, now) or target_done):
        end_race(None, race, reason="time up" if not target_done else "lap target")
    return lap


def capture_lap(actor, race: Race, source_id: str) -> tuple[Lap, bool]:
    """The operator pressed "lap": the lap time is the race clock since the last lap.

    Returns (lap, created). A repeated ``source_id``, or a second press within
    ``CAPTURE_DEBOUNCE_MS`` of the last lap (two operators, one crossing), returns the
    stored lap with created False. Conflict when the race is not running.
    """
    check_operator(actor, race)
    if not source_id or len(source_id) > 64:
        raise ServiceError("send a lap id (1-64 characters) made by the console", "source_id")
    seen = existing_lap(race, source_id)
    if seen is not None:
        return seen, False
    _need(race, RUNNING, action="capture a lap")
    now = utcnow()
    lap_ms = clock.current_lap_ms(race, now)
    if race.laps and lap_ms < CAPTURE_DEBOUNCE_MS:
        return race.laps[-1], False
    if lap_ms < MIN_LAP_MS:
        raise ServiceError("a lap under one second is not a lap (double press?)")
    return _record(race, lap_ms, "operator", source_id), True


def car_lap(car, report, race_id: int | None) -> dict | None:
    """Take a lap reported by a car (``report``: its ``CarLapReport``) into the car's race.

    On a track with a lap timer (not revoked) the timer times the race: the car's lap then
    stays in the car's lap log only (``stored`` False, "this track is timed by its lap timer").

    ``race_id`` is the race the car says it drove the lap in (None: the car's live race).
    Returns the ack fields with ``outcome`` (a line for the car's lap log), or None when
    no race is live for the car (the lap then stays in the car's lap log only).
    """
    if race_id is not None:
        race = db.session.get(Race, race_id)
        if race is None or race.car_id != car.id:
            outcome = f"race {race_id} is not a race of this car"
            return {"stored": False, "reason": outcome, "outcome": outcome}
    else:
        race = db.session.scalar(db.select(Race).where(Race.car_id == car.id, Race.live_track_id.is_not(None)))
    if race is None:
        return None
    if timers.list_timers(race.track_id, include_revoked=False):
        outcome = f"race {race.id}'s track is timed by its lap timer"
        return {"stored": False, "reason": "this track is timed by its lap timer", "outcome": outcome}
    if race.status != RUNNING:
        return {"stored": False, "reason": f"the race is {race.status}", "outcome": f"race {race.id} is {race.status}"}
    if not MIN_LAP_MS <= report.lap_time_ms <= max_lap_ms(race.time_limit_ms):
        return {"stored": False, "reason": f"lap time {report.lap_time_ms} ms is not plausible",
                "outcome": "absurd lap time"}
    if existing_lap(race, f"car:{report.lap_id}") is not None:
        return {"stored": True, "duplicate": True, "race_id": race.id, "outcome": f"repeat of a lap of race {race.id}"}
    lap = _record(race, report.lap_time_ms, "car", f"car:{report.lap_id}", resets=report.resets)
    report.race_id = race.id
    return {"stored": True, "race_id": race.id, "lap_number": lap.lap_number,
            "outcome": f"lap {lap.lap_number} of race {race.id}"}


def change_resets(actor, race: Race, delta: int) -> Race:
    """Reset +1 / -1 on the lap in progress (never below 0)."""
    check_operator(actor, race)
    if delta not in (1, -1):
        raise ServiceError("resets change by +1 or -1", "delta")
    _need(race, RUNNING, PAUSED, action="count a reset")
    race.current_resets = max(0, race.current_resets + delta)
    push_state(race)
    db.session.flush()
    return race


def dnf(actor, race: Race, source_id: str) -> Lap:
    """The car did not finish the lap: store it as an invalid (DNF) lap and pause the race."""
    check_operator(actor, race)
    seen = existing_lap(race, source_id)
    if seen is not None:
        return seen
    _need(race, RUNNING, action="mark DNF")
    lap = _record(race, max(1, clock.current_lap_ms(race, utcnow())), "operator", source_id,
                  invalidated=True, dnf=True)
    if race.status == RUNNING:
        race.status, race.paused_at = PAUSED, utcnow()
        push_state(race)
    db.session.flush()
    return lap


def undo_last_lap(actor, race: Race) -> Race:
    """Undo a false finish: remove the last lap and give its time back to the running lap."""
    check_operator(actor, race)
    _need(race, RUNNING, PAUSED, ENDED, action="undo a lap")
    if not race.laps:
        raise Conflict("there is no lap to undo")
    lap = race.laps[-1]
    race.lap_start_ms = max(0, race.lap_start_ms - lap.time_ms)
    race.current_resets = lap.resets
    if lap.source == "timer":
        _undo_crossing(race, lap)
    race.laps.remove(lap)
    db.session.delete(lap)
    push_state(race, rerank=True)
    db.session.flush()
    return race


def _undo_crossing(race: Race, lap: Lap) -> None:
    """The timer crossing that ended ``lap`` no longer counts (status ``undone``, restorable):
    the next lap is measured from the counted crossing before it."""
    crossing = db.session.scalar(db.select(TimerCrossing).where(TimerCrossing.lap_id == lap.id))
    if crossing is None:
        return
    crossing.status, crossing.lap_id = UNDONE, None
    crossing.reason = f"lap {lap.lap_number} undone on the console"
    db.session.flush()
    previous = db.session.scalar(db.select(TimerCrossing).where(
        TimerCrossing.race_id == race.id, TimerCrossing.status.in_(COUNTED_CROSSINGS))
        .order_by(TimerCrossing.device_time_ms.desc()).limit(1))
    race.timer_last_crossing_ms = previous.device_time_ms if previous is not None else None


def invalidate_lap(actor, race: Race, lap_number: int, invalid: bool = True) -> Lap:
    """The operator marks a lap invalid (or valid again) during or after the race."""
    check_operator(actor, race)
    lap = next((lap for lap in race.laps if lap.lap_number == lap_number), None)
    if lap is None:
        raise ServiceError(f"race {race.id} has no lap {lap_number}", "lap_number")
    lap.invalidated = invalid
    push_state(race, rerank=True)
    db.session.flush()
    return lap


