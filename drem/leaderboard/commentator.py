"""What the commentator calls a race from, and the run summary the big screen shows.

:func:`commentator_state` is one JSON document per track: the live race with every lap,
the racer's position (current and projected) and gaps, the racer's previous runs, the
next racers (races set up and waiting on the track, then the race queue's called and
checked-in racers) and the track's top 10. The commentator page (``/events/<id>/commentator``) reads it on load and again
within a second of every leaderboard message, so a reload shows the same.

:func:`run_summary` is one run's result: position before and after it, gap, best lap,
laps and resets. Positions and gaps are the ranking engine's
(:mod:`drem.leaderboard.ranking`), never recomputed here.

Units: times in integer ms (averages may be float ms), points in time ISO-8601 UTC.
"""

from __future__ import annotations

from statistics import mean

import sqlalchemy as sa

from drem.events.models import COUNTED, LIVE, Event, Race
from drem.events.rules import RaceStatus
from drem.events.service import get_track
from drem.leaderboard import service
from drem.leaderboard.loading import COMBINED, TrackKey, load_races, ranking_config
from drem.leaderboard.ranking import RankingState
from drem.leaderboard.ranking_records import LeaderboardEntry
from drem.platform.errors import NotFound
from drem.platform.extensions import db
from drem.race_queue.state import queue_state
from drem.timekeeper.service import race_state

TOP = 10
NEXT_RACERS = 5


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _race_laps(race: Race) -> tuple[list[int], int]:
    """The race's valid lap times (lap order) and its resets over all laps."""
    allowed = race.event.resets_allowed_per_lap
    return ([lap.time_ms for lap in race.laps if lap.is_valid(allowed)],
            sum(lap.resets for lap in race.laps))


def projected_value(event: Event, valid_ms: list[int]) -> float | None:
    """The ranking value one run's valid laps (ms, lap order) point to, by the event's method:

    - best lap: the fastest of them;
    - best average of N: the best mean of N consecutive laps, or, with fewer than N laps,
      the mean of those driven so far (as if the racer kept that pace);
    - total time of a lap target T: the sum of the first T laps, or, short of T, the mean
      lap times T.

    None without a valid lap."""
    if not valid_ms:
        return None
    config = ranking_config(event)
    if config.method == "best_average":
        n = config.averaging_window
        if len(valid_ms) < n:
            return mean(valid_ms)
        return min(mean(valid_ms[i:i + n]) for i in range(len(valid_ms) - n + 1))
    if config.method == "total_time":
        target = config.lap_target or 1
        if len(valid_ms) >= target:
            return float(sum(valid_ms[:target]))
        return mean(valid_ms) * target
    return float(min(valid_ms))


def _projected_rank(entries: list[LeaderboardEntry], racer_id: int, value: float | None) -> int | None:
    """Where ``value`` would place the racer among the others (a tie goes to the other
    racer: they set the time first)."""
    own = next((e for e in entries if e.racer_id == racer_id), None)
    if own is not None and own.ranking_value_ms is not None:
        value = own.ranking_value_ms if value is None else min(value, own.ranking_value_ms)
    if value is None:
        return own.rank if own is not None else None
    ahead = sum(1 for e in entries if e.racer_id != racer_id and e.ranking_value_ms is not None
                and e.ranking_value_ms <= value)
    return ahead + 1


def _position(entries: list[LeaderboardEntry], racer_id: int, projected: float | None) -> dict:
    """``{"rank", "projected_rank", "count", "ranking_value_ms", "gap_to_leader_ms",
    "gap_to_next_ms"}``: the racer's line of the ranking engine (gap to the next place =
    to the racer one place ahead) and the projection of :func:`projected_value`."""
    own = next((e for e in entries if e.racer_id == racer_id), None)
    return {"rank": own.rank if own else None,
            "projected_rank": _projected_rank(entries, racer_id, projected),
            "count": len(entries),
            "ranking_value_ms": own.ranking_value_ms if own else None,
            "projected_value_ms": projected,
            "gap_to_leader_ms": own.gap_to_leader_ms if own else None,
            "gap_to_next_ms": own.gap_to_ahead_ms if own else None}


def _run_row(race: Race) -> dict:
    valid, resets = _race_laps(race)
    return {"race_id": race.id, "track_id": race.track_id, "track": race.track.name,
            "status": race.status, "started_at": _iso(race.started_at or race.created_at),
            "laps": len(race.laps), "valid_laps": len(valid), "resets": resets,
            "best_lap_ms": min(valid) if valid else None, "raced_by_proxy": race.raced_by_proxy}


def _current_race(event: Event, track_id: int) -> Race | None:
    """The track's race to call: the live race that has started (running, paused, ended),
    else the most recently started counted race."""
    base = sa.select(Race).where(Race.event_id == event.id, Race.track_id == track_id)
    live = db.session.scalar(base.where(Race.status.in_([s for s in LIVE if s != RaceStatus.READY]))
                             .order_by(Race.created_at.desc(), Race.id.desc()).limit(1))
    if live is not None:
        return live
    return db.session.scalar(base.where(Race.status.in_(COUNTED))
                             .order_by(Race.started_at.desc(), Race.id.desc()).limit(1))


def _race_detail(race: Race) -> dict:
    """The timekeeper's race state (every lap, with ``valid``) plus model and car names."""
    state = race_state(race)
    state["model"] = race.model.filename if race.model is not None else None
    state["car"] = race.car.hostname if race.car is not None else None
    state["resets"] = sum(lap["resets"] for lap in state["laps"])
    state["valid_laps"] = sum(1 for lap in state["laps"] if lap["valid"])
    return state


def commentator_state(event: Event, track: TrackKey) -> dict:
    """Everything the commentator page shows for one track of ``event``.

    ``{"event", "track", "version", "race" (race state with all ``laps``, ``model``,
    ``car``, ``resets``, ``valid_laps``; None before the first run), "position" (see
    :func:`_position`; None without a race), "previous_runs" (the racer's other runs at
    this event, newest first), "next_racers" (:func:`next_racers`: races set up on the
    track, then the race queue's called and checked-in racers), "top" (the first 10 leaderboard entries, entry dicts)}``.
    NotFound for the combined board (a race runs on one track)."""
    if track == COMBINED:
        raise NotFound("the commentator follows one track: pass ?track=<id>")
    state = service.leaderboard_state(event, track)
    entries = service.entries(event, track)
    race = _current_race(event, int(track))
    out = {"event": state["event"], "track": track, "tracks": state["tracks"], "title": state["title"],
           "version": state["version"], "top": state["entries"][:TOP], "race": None, "position": None,
           "previous_runs": [], "next_racers": []}
    if race is not None:
        out["race"] = _race_detail(race)
        valid, _ = _race_laps(race)
        out["position"] = _position(entries, race.racer_id, projected_value(event, valid))
        others = db.session.scalars(sa.select(Race).where(
            Race.event_id == event.id, Race.racer_id == race.racer_id, Race.id != race.id,
            Race.status.in_(COUNTED)).order_by(Race.started_at.desc(), Race.id.desc()))
        out["previous_runs"] = [_run_row(r) for r in others]
    out["next_racers"] = next_racers(event, int(track))
    return out


def next_racers(event: Event, track_id: int) -> list[dict]:
    """Who races next on a track, at most :data:`NEXT_RACERS`: the races set up and waiting
    (status ``ready``, oldest first), then the race queue's called and checked-in racers in
    call order (:func:`drem.race_queue.state.queue_state`), each racer once.
    ``[{"race_id" (None for a queue entry), "racer" (username), "country_code", "state"
    ("ready", "called" or "checked_in")}]``."""
    waiting = db.session.scalars(sa.select(Race).where(
        Race.event_id == event.id, Race.track_id == track_id, Race.status == RaceStatus.READY)
        .order_by(Race.created_at, Race.id).limit(NEXT_RACERS))
    out = [{"race_id": r.id, "racer": r.racer.username, "country_code": r.racer.country_code, "state": "ready",
            "racer_id": r.racer_id} for r in waiting]
    queue = queue_state(db.session, get_track(track_id, event))
    entries = {e["id"]: e for e in queue["entries"]}
    for entry_id in queue["next"]:
        e = entries[entry_id]
        if not any(n["racer_id"] == e["racer"]["id"] for n in out):
            out.append({"race_id": None, "racer": e["racer"]["username"], "country_code": e["racer"]["country_code"],
                        "state": e["state"], "racer_id": e["racer"]["id"]})
    return out[:NEXT_RACERS]


def _entries_without(event: Event, track: TrackKey, race_id: int) -> list[LeaderboardEntry]:
    """The board as it was without one race (the standings before that run)."""
    races, infos = load_races(db.session, event.id, None if track == COMBINED else int(track),
                              exclude_race=race_id)
    state = RankingState(ranking_config(event), infos, combined=track == COMBINED)
    state.rebuild(races)
    return state.entries()


def run_summary(event: Event, race_id: int) -> dict:
    """The result of one run on its track's leaderboard, for the big screen's summary panel.

    ``{"race_id", "track_id", "status", "racer" {id, username, country_code}, "rank"
    (after the run), "rank_before" (None: new on the board), "rank_change" (positive =
    places gained; None when new), "count", "ranking_value_ms", "gap_to_leader_ms",
    "best_lap_ms" (this run's), "laps", "valid_laps", "resets"}``. NotFound for a race of
    another event, or one that does not count (ready, discarded)."""
    race = db.session.get(Race, race_id)
    if race is None or race.event_id != event.id or race.status not in COUNTED:
        raise NotFound("no such run on the leaderboard")
    after = service.entries(event, race.track_id)
    before = _entries_without(event, race.track_id, race.id)
    mine = next((e for e in after if e.racer_id == race.racer_id), None)
    prev = next((e for e in before if e.racer_id == race.racer_id), None)
    row = _run_row(race)
    return {"race_id": race.id, "track_id": race.track_id, "status": race.status,
            "racer": {"id": race.racer_id, "username": race.racer.username,
                      "country_code": race.racer.country_code},
            "rank": mine.rank if mine else None, "rank_before": prev.rank if prev else None,
            "rank_change": (prev.rank - mine.rank) if prev and mine else None,
            "count": len(after), "ranking_value_ms": mine.ranking_value_ms if mine else None,
            "gap_to_leader_ms": mine.gap_to_leader_ms if mine else None,
            "best_lap_ms": row["best_lap_ms"], "laps": row["laps"], "valid_laps": row["valid_laps"],
            "resets": row["resets"]}
