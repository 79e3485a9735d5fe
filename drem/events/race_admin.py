"""Race admin after the fact: list races, edit and delete laps, delete races. Audited;
the leaderboard is recomputed after the commit."""

from __future__ import annotations

from drem.admin.service import record_audit
from drem.events.models import LIVE_STATUSES, Lap, Race
from drem.platform.effects import after_commit
from drem.platform.errors import Conflict, NotFound, ServiceError
from drem.platform.extensions import db

MAX_LAP_MS = 60 * 60 * 1000


def list_races(event_id: int, track_id: int | None = None, racer_id: int | None = None) -> list[Race]:
    """Races of an event, newest first, optionally of one track and/or racer."""
    query = db.select(Race).where(Race.event_id == event_id).order_by(Race.created_at.desc(), Race.id.desc())
    if track_id is not None:
        query = query.where(Race.track_id == track_id)
    if racer_id is not None:
        query = query.where(Race.racer_id == racer_id)
    return list(db.session.scalars(query))


def race_dict(race: Race) -> dict:
    """JSON shape of a race with its laps (times in ms)."""
    return {"id": race.id, "event_id": race.event_id, "track_id": race.track_id, "track": race.track.name,
            "racer_id": race.racer_id, "racer": race.racer.username, "status": race.status,
            "raced_by_proxy": race.raced_by_proxy, "car_id": race.car_id, "model_id": race.model_id,
            "started_at": race.started_at.isoformat() if race.started_at else None,
            "submitted_at": race.submitted_at.isoformat() if race.submitted_at else None,
            "laps": [lap.to_dict() for lap in race.laps]}


def get_lap(lap_id: int) -> Lap:
    """The lap with this id; NotFound otherwise."""
    lap = db.session.get(Lap, lap_id)
    if lap is None:
        raise NotFound("no such lap")
    return lap


def _recompute(race_id: int, event_id: int | None = None, track_id: int | None = None) -> None:
    """After the commit, rank the race's leaderboards again (``event_id``/``track_id``
    for a race that is deleted by then)."""
    def run():
        from drem.leaderboard import service as lb

        lb.on_race_changed(race_id, event_id=event_id, track_id=track_id)

    after_commit(run)


def edit_lap(actor, lap: Lap, data: dict) -> Lap:
    """Change a lap's time (whole ms), resets or invalidated flag. Audited with before/after."""
    changes = {}
    if "time_ms" in data:
        value = data["time_ms"]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LAP_MS:
            raise ServiceError(f"time_ms must be whole milliseconds in 1..{MAX_LAP_MS}", "time_ms")
        changes["time_ms"] = value
    if "resets" in data:
        value = data["resets"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
            raise ServiceError("resets must be a whole number >= 0", "resets")
        changes["resets"] = value
    if "invalidated" in data:
        if not isinstance(data["invalidated"], bool):
            raise ServiceError("invalidated must be true or false", "invalidated")
        changes["invalidated"] = data["invalidated"]
    if not changes:
        raise ServiceError("nothing to change: send time_ms, resets or invalidated")
    before = {k: getattr(lap, k) for k in changes}
    for key, value in changes.items():
        setattr(lap, key, value)
    record_audit(actor, "lap.edit", "lap", lap.id, race_id=lap.race_id, lap_number=lap.lap_number,
                 before=before, after=changes)
    _recompute(lap.race_id)
    db.session.flush()
    return lap


def delete_lap(actor, lap: Lap) -> None:
    """Delete a lap of a finished race and renumber the later laps. Audited."""
    race = lap.race
    if race.status in LIVE_STATUSES and race.status != "ended":
        raise Conflict("use the timekeeper (undo) while the race runs")
    record_audit(actor, "lap.delete", "lap", lap.id, race_id=race.id, lap_number=lap.lap_number,
                 time_ms=lap.time_ms)
    race.laps.remove(lap)
    db.session.delete(lap)
    db.session.flush()
    for number, other in enumerate(sorted(race.laps, key=lambda x: x.lap_number), start=1):
        other.lap_number = number
    _recompute(race.id)
    db.session.flush()


def delete_race(actor, race: Race) -> None:
    """Delete a race with its laps (not a running one). Audited."""
    if race.status in ("running", "paused"):
        raise Conflict("end the race before deleting it")
    record_audit(actor, "race.delete", "race", race.id, racer=race.racer.username, laps=len(race.laps),
                 status=race.status)
    race_id, event_id, track_id = race.id, race.event_id, race.track_id
    db.session.delete(race)
    db.session.flush()
    _recompute(race_id, event_id, track_id)
