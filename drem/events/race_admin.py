"""Race admin after the fact: list races, edit, delete and restore laps, delete races. Audited;
after the commit each changed race is announced once with
:data:`drem.platform.signals.race_changed` (the leaderboard ranks again)."""

from __future__ import annotations

from drem.events.models import (
    DISCARDED,
    ENDED,
    LIVE,
    MAX_LAP_MS,
    MIN_LAP_MS,
    PAUSED,
    RUNNING,
    Lap,
    Race,
)
from drem.platform.audit import record_audit
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Conflict, NotFound, ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import flag, text, whole_number
from drem.platform.signals import race_changed

_CHANGED = "drem_races_changed"


def list_races(event_id: int, track_id: int | None = None, racer_id: int | None = None) -> list[Race]:
    """Races of an event, newest first, optionally of one track and/or racer."""
    query = db.select(Race).where(Race.event_id == event_id).order_by(Race.created_at.desc(), Race.id.desc())
    if track_id is not None:
        query = query.where(Race.track_id == track_id)
    if racer_id is not None:
        query = query.where(Race.racer_id == racer_id)
    return list(db.session.scalars(query))


def race_dict(race: Race) -> dict:
    """JSON shape of a race with its laps (times in ms), its time penalty (``penalty_ms``,
    ``penalty_reason``) and disqualification (``disqualified``, ``disqualified_reason``)."""
    return {"id": race.id, "event_id": race.event_id, "track_id": race.track_id, "track": race.track.name,
            "racer_id": race.racer_id, "racer": race.racer.username, "status": race.status,
            "raced_by_proxy": race.raced_by_proxy, "car_id": race.car_id, "model_id": race.model_id,
            "penalty_ms": race.penalty_ms, "penalty_reason": race.penalty_reason,
            "disqualified": race.disqualified, "disqualified_reason": race.disqualified_reason,
            "started_at": race.started_at.isoformat() if race.started_at else None,
            "submitted_at": race.submitted_at.isoformat() if race.submitted_at else None,
            "laps": [lap.to_dict(race.event.resets_allowed_per_lap) for lap in race.laps]}


def get_lap(lap_id: int) -> Lap:
    """The lap with this id; NotFound otherwise."""
    lap = db.session.get(Lap, lap_id)
    if lap is None:
        raise NotFound("no such lap")
    return lap


def _announce(race: Race) -> None:
    """After the commit, send ``race_changed`` for ``race`` (once per race and transaction;
    the ids are taken now, so a race deleted by then is still announced)."""
    session = db.session()
    transaction = session.get_transaction() or session.begin()
    holder = session.info.get(_CHANGED)
    if holder is None or holder[0] is not transaction:
        holder = session.info[_CHANGED] = (transaction, {})
        after_commit(lambda changed=holder[1]: _send(changed))
    holder[1][race.id] = (race.event_id, race.track_id)


def _send(changed: dict[int, tuple[int, int]]) -> None:
    for race_id, (event_id, track_id) in changed.items():
        race_changed.send("events", race_id=race_id, event_id=event_id, track_id=track_id, state=None)


def _penalty(data: dict) -> tuple[int, str]:
    """``(penalty_ms, penalty_reason)`` from ``data``: whole ms 0..MAX_LAP_MS (0 removes the
    penalty) and a reason of up to 200 characters, required with a penalty (ServiceError)."""
    penalty = whole_number(data, "penalty_ms", 0, MAX_LAP_MS, strict=True)
    reason = text(data, "penalty_reason", 0, 200, default="") or ""
    if penalty and not reason:
        raise ServiceError("give the penalty a reason (e.g. \"cone\")", "penalty_reason")
    return penalty, reason if penalty else ""


def edit_lap(actor, lap: Lap, data: dict) -> Lap:
    """Change a lap's time (whole ms), resets, invalidated flag or time penalty
    (``penalty_ms`` whole ms, 0 removes it, with ``penalty_reason``; docs/ranking.md
    "Penalties and disqualification"). Audited with before/after. ServiceError for a
    value out of range, a penalty without a reason or nothing to change."""
    changes = {}
    if "time_ms" in data:
        changes["time_ms"] = whole_number(data, "time_ms", MIN_LAP_MS, MAX_LAP_MS, strict=True)
    if "resets" in data:
        changes["resets"] = whole_number(data, "resets", 0, 1000, strict=True)
    if "invalidated" in data:
        changes["invalidated"] = flag(data, "invalidated")
    if "penalty_ms" in data:
        changes["penalty_ms"], changes["penalty_reason"] = _penalty(data)
    if not changes:
        raise ServiceError("nothing to change: send time_ms, resets, invalidated or penalty_ms")
    before = {k: getattr(lap, k) for k in changes}
    for key, value in changes.items():
        setattr(lap, key, value)
    record_audit(actor, "lap.edit", "lap", lap.id, race_id=lap.race_id, lap_number=lap.lap_number,
                 before=before, after=changes)
    _announce(lap.race)
    db.session.flush()
    return lap


def delete_lap(actor, lap: Lap) -> None:
    """Delete a lap of a finished race and renumber the later laps. Audited."""
    race = lap.race
    if race.status in LIVE and race.status != ENDED:
        raise Conflict("use the timekeeper (undo) while the race runs")
    record_audit(actor, "lap.delete", "lap", lap.id, race_id=race.id, lap_number=lap.lap_number,
                 time_ms=lap.time_ms)
    race.laps.remove(lap)
    db.session.delete(lap)
    db.session.flush()
    for number, other in enumerate(sorted(race.laps, key=lambda x: x.lap_number), start=1):
        other.lap_number = number
    _announce(race)
    db.session.flush()


def delete_race(actor, race: Race) -> None:
    """Delete a race with its laps (not a running one). Audited."""
    if race.status in (RUNNING, PAUSED):
        raise Conflict("end the race before deleting it")
    record_audit(actor, "race.delete", "race", race.id, racer=race.racer.username, laps=len(race.laps),
                 status=race.status)
    _announce(race)
    db.session.delete(race)
    db.session.flush()


def penalise_race(actor, race: Race, data: dict) -> Race:
    """Set the time penalty of a whole run: ``{"penalty_ms": whole ms (0 removes it),
    "penalty_reason": text}`` (docs/ranking.md "Penalties and disqualification"). Audited
    (``race.penalty``, before/after); the race is ranked again after the commit.
    ServiceError for a value out of range or a penalty without a reason; Conflict for a
    discarded race."""
    if race.status == DISCARDED:
        raise Conflict("the race was discarded: its laps do not count")
    penalty, reason = _penalty(data)
    record_audit(actor, "race.penalty", "race", race.id, racer=race.racer.username,
                 before={"penalty_ms": race.penalty_ms, "penalty_reason": race.penalty_reason},
                 after={"penalty_ms": penalty, "penalty_reason": reason})
    race.penalty_ms, race.penalty_reason = penalty, reason
    _announce(race)
    db.session.flush()
    return race


def disqualify_race(actor, race: Race, data: dict) -> Race:
    """Disqualify a run (``{"disqualified": true, "reason": text}``, the reason required) or
    lift it (``{"disqualified": false}``). A disqualified run counts as a run used with no
    result (docs/ranking.md). Audited (``race.disqualify``); ranked again after the commit.
    ServiceError without a reason; Conflict for a discarded race."""
    if race.status == DISCARDED:
        raise Conflict("the race was discarded: its laps do not count")
    disqualified = flag(data, "disqualified", default=True)
    reason = text(data, "reason", 0, 200, default="") or ""
    if disqualified and not reason:
        raise ServiceError("give the disqualification a reason", "reason")
    record_audit(actor, "race.disqualify", "race", race.id, racer=race.racer.username,
                 disqualified=disqualified, reason=reason, before=race.disqualified)
    race.disqualified, race.disqualified_reason = disqualified, reason if disqualified else ""
    _announce(race)
    db.session.flush()
    return race


def restore_lap(actor, race: Race, time_ms: int, source: str, source_id: str, *, split: Lap | None = None,
                split_time_ms: int | None = None, detail: dict | None = None, number: int | None = None) -> Lap:
    """Add a lap a marshal restored (e.g. a timer crossing that was rejected). Audited
    (``lap.restore``, with ``detail``); the race is ranked again after the commit.

    ``time_ms`` (whole ms) is the new lap's time. With ``split`` (a lap of ``race``) the
    new lap ends inside that lap: it takes ``split``'s number, ``split`` keeps the rest
    (``split_time_ms``) and later laps move up by one. With ``number`` (1..laps + 1) the
    lap is inserted as that lap and later laps move up by one (a lap the operator
    missed). Without either the lap is appended.
    Raises ServiceError when a time is outside ``MIN_LAP_MS``..``MAX_LAP_MS`` or
    ``number`` is out of range, and Conflict for a discarded race; nothing changes then.
    """
    if race.status == DISCARDED:
        raise Conflict("the race was discarded: its laps do not count")
    times = [time_ms] if split is None else [time_ms, split_time_ms]
    for value in times:
        if value is None or not MIN_LAP_MS <= value <= MAX_LAP_MS:
            shown = "none" if value is None else f"{value} ms"
            raise ServiceError(f"a restored lap would last {shown}: a lap lasts {MIN_LAP_MS}-{MAX_LAP_MS} ms")
    if split is not None and split.race_id != race.id:
        raise ServiceError("that lap belongs to another race")
    if number is not None and not 1 <= number <= len(race.laps) + 1:
        raise ServiceError(f"a lap can be inserted as lap 1 to {len(race.laps) + 1}", "lap_number")
    if split is not None:
        number = split.lap_number
    if number is None or number == len(race.laps) + 1:
        number = len(race.laps) + 1
    else:
        for other in sorted(race.laps, key=lambda x: -x.lap_number):
            if other.lap_number >= number:
                other.lap_number += 1
        db.session.flush()
        if split is not None:
            split.time_ms = split_time_ms
    lap = Lap(race=race, lap_number=number, time_ms=int(time_ms), resets=0, source=source,
              source_id=source_id[:64], recorded_at=utcnow())
    db.session.add(lap)
    db.session.flush()
    race.laps.sort(key=lambda x: x.lap_number)
    record_audit(actor, "lap.restore", "lap", lap.id, race_id=race.id, lap_number=number, time_ms=lap.time_ms,
                 split_lap_id=split.id if split is not None else None, split_time_ms=split_time_ms,
                 **(detail or {}))
    _announce(race)
    return lap
