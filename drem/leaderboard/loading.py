"""Feeding the ranking engine from the database: the event's ranking config, loading the
counted races (``drem.events.models.COUNTED``) with their laps, and reading the
leaderboard versions (``drem.events.versions``) that tell a process whether its cached
leaderboard is current. Used by :mod:`drem.leaderboard.service`.

Units: times in integer milliseconds, points in time UNIX seconds (float).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from drem.auth.models import User
from drem.events.models import COUNTED, Event, Lap, Race, Track
from drem.leaderboard.ranking_records import LapInput, RaceInput, RacerInfo, RankingConfig
from drem.platform.errors import NotFound

log = logging.getLogger(__name__)

NAMESPACE = "/leaderboard"
COMBINED = "combined"

TrackKey = int | str  # a track id or COMBINED


def room(event_id: int, track: TrackKey) -> str:
    """The Socket.IO room of one leaderboard: ``lb:<event_id>:<track_id|combined>``."""
    return f"lb:{event_id}:{track}"


def parse_track(event: Event, raw: Any) -> TrackKey:
    """A track id of ``event`` or :data:`COMBINED` from user input (``None``/empty = the
    first track of a one-track event, else combined). NotFound for a foreign track."""
    if raw in (None, "") and len(event.tracks) == 1:
        return event.tracks[0].id
    if raw in (None, "", COMBINED):
        return COMBINED
    try:
        track_id = int(raw)
    except (TypeError, ValueError):
        raise NotFound("no such track") from None
    if not any(t.id == track_id for t in event.tracks):
        raise NotFound("no such track")
    return track_id


@dataclass(frozen=True)
class EventConfig:
    """The columns of an event the ranking needs (read with the lap in one query)."""

    id: int
    ranking_method: str
    resets_allowed_per_lap: int | None
    averaging_window: int
    lap_target: int | None


def ranking_config(event: Event | EventConfig) -> RankingConfig:
    """The event's race config as the ranking engine's :class:`RankingConfig`.

    The event's ``ranking_method`` decides (never a URL switch). A lap-count event
    without a lap target (impossible through the event forms) falls back to best lap.
    """
    method = event.ranking_method if event.ranking_method in ("best_lap", "best_average") else "best_lap"
    if event.ranking_method == "total_time" and event.lap_target:
        method = "total_time"
    window = min(7, max(3, event.averaging_window or 3))
    return RankingConfig(method=method, resets_allowed_per_lap=event.resets_allowed_per_lap,
                         averaging_window=window, lap_target=event.lap_target or None)


# ----------------------------------------------------------------------------- loading


def _ts(value) -> float:
    return value.timestamp() if value is not None else 0.0


def load_races(s: Session, event_id: int, track_id: int | None = None, *,
               exclude_lap: int | None = None, exclude_race: int | None = None) -> tuple[list[RaceInput], list[RacerInfo]]:
    """The counted races of an event (one track, or all when ``track_id`` is None) as
    ranking inputs, with the racers' names and countries.

    ``exclude_lap`` / ``exclude_race`` leave one lap / race out (the state just before
    that lap or race arrived). Two queries for races and laps, one for the racers.
    """
    race_q = sa.select(Race.id, Race.racer_id, Race.track_id, Race.started_at, Race.created_at,
                       Race.raced_by_proxy, Race.penalty_ms, Race.disqualified).where(Race.event_id == event_id,
                                                  Race.status.in_(COUNTED))
    if track_id is not None:
        race_q = race_q.where(Race.track_id == track_id)
    if exclude_race is not None:
        race_q = race_q.where(Race.id != exclude_race)
    races: dict[int, RaceInput] = {}
    for rid, racer_id, tid, started, created, proxy, penalty, disqualified in s.execute(race_q):
        races[rid] = RaceInput(race_id=rid, racer_id=racer_id, track_id=tid,
                               started_at=_ts(started or created), raced_by_proxy=bool(proxy),
                               penalty_ms=penalty or 0, disqualified=bool(disqualified))
    if races:
        lap_q = (sa.select(Lap.id, Lap.race_id, Lap.lap_number, Lap.time_ms, Lap.resets,
                           Lap.invalidated, Lap.dnf, Lap.recorded_at, Lap.penalty_ms)
                 .join(Race, Race.id == Lap.race_id)
                 .where(Race.event_id == event_id, Race.status.in_(COUNTED))
                 .order_by(Lap.race_id, Lap.lap_number))
        if track_id is not None:
            lap_q = lap_q.where(Race.track_id == track_id)
        if exclude_lap is not None:
            lap_q = lap_q.where(Lap.id != exclude_lap)
        for lap_id, race_id, number, time_ms, resets, invalidated, dnf, recorded, penalty in s.execute(lap_q):
            race = races.get(race_id)
            if race is not None:
                race.laps.append(LapInput(lap_id=lap_id, race_id=race_id, racer_id=race.racer_id,
                                          lap_number=number, time_ms=time_ms, resets=resets,
                                          invalidated=bool(invalidated or dnf),  # DNF: never valid
                                          recorded_at=_ts(recorded), penalty_ms=penalty or 0))
    racer_ids = {r.racer_id for r in races.values()}
    infos = [RacerInfo(uid, name, cc) for uid, name, cc in s.execute(
        sa.select(User.id, User.username, User.country_code).where(User.id.in_(racer_ids)))] if racer_ids else []
    return list(races.values()), infos


def _lap_input(lap: Lap, race: Race) -> LapInput:
    return LapInput(lap_id=lap.id, race_id=race.id, racer_id=race.racer_id, lap_number=lap.lap_number,
                    time_ms=lap.time_ms, resets=lap.resets, invalidated=bool(lap.invalidated or lap.dnf),
                    recorded_at=_ts(lap.recorded_at), penalty_ms=lap.penalty_ms or 0)


# ---------------------------------------------------------------------------- versions


def read_version(s: Session, event_id: int, track: TrackKey) -> int | None:
    """The leaderboard version of one track (``Track.leaderboard_version``) or of the
    combined board (``Event.leaderboard_version``) as committed now; None when the track
    or event is gone. One query."""
    if track == COMBINED:
        return s.scalar(sa.select(Event.leaderboard_version).where(Event.id == event_id))
    return s.scalar(sa.select(Track.leaderboard_version).where(Track.id == track, Track.event_id == event_id))
