"""Feeding the ranking engine from the database: which races count, the event's
ranking config, loading races and laps, and the checksums (fingerprints) that tell a
process whether its cached leaderboard is current. Used by :mod:`drem.leaderboard.service`.

Units: times in integer milliseconds, points in time UNIX seconds (float).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from drem.auth.models import User
from drem.events.models import (
    ENDED,
    PAUSED,
    READY,
    RUNNING,
    SUBMITTED,
    Event,
    Lap,
    Race,
)
from drem.leaderboard.ranking_records import LapInput, RaceInput, RacerInfo, RankingConfig
from drem.platform.errors import NotFound

log = logging.getLogger(__name__)

NAMESPACE = "/leaderboard"
COMBINED = "combined"
#: Races on the leaderboard (the timekeeper contract): not ready, not discarded.
COUNTED_STATUSES = (RUNNING, PAUSED, ENDED, SUBMITTED)
#: Races a display shows in its live footer / lower third.
LIVE_STATUSES = (READY, RUNNING, PAUSED, ENDED)

TrackKey = int | str  # a track id or COMBINED


def room(event_id: int, track: TrackKey) -> str:
    """The Socket.IO room of one leaderboard: ``lb:<event_id>:<track_id|combined>``."""
    return f"lb:{event_id}:{track}"


def commentator_room(event_id: int) -> str:
    """The room of the (future) commentator view of an event."""
    return f"commentator:{event_id}"


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


def _config_key(config: RankingConfig) -> tuple:
    return (config.method, config.resets_allowed_per_lap, config.averaging_window, config.lap_target)


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
                       Race.raced_by_proxy).where(Race.event_id == event_id,
                                                  Race.status.in_(COUNTED_STATUSES))
    if track_id is not None:
        race_q = race_q.where(Race.track_id == track_id)
    if exclude_race is not None:
        race_q = race_q.where(Race.id != exclude_race)
    races: dict[int, RaceInput] = {}
    for rid, racer_id, tid, started, created, proxy in s.execute(race_q):
        races[rid] = RaceInput(race_id=rid, racer_id=racer_id, track_id=tid,
                               started_at=_ts(started or created), raced_by_proxy=bool(proxy))
    if races:
        lap_q = (sa.select(Lap.id, Lap.race_id, Lap.lap_number, Lap.time_ms, Lap.resets,
                           Lap.invalidated, Lap.dnf, Lap.recorded_at)
                 .join(Race, Race.id == Lap.race_id)
                 .where(Race.event_id == event_id, Race.status.in_(COUNTED_STATUSES))
                 .order_by(Lap.race_id, Lap.lap_number))
        if track_id is not None:
            lap_q = lap_q.where(Race.track_id == track_id)
        if exclude_lap is not None:
            lap_q = lap_q.where(Lap.id != exclude_lap)
        for lap_id, race_id, number, time_ms, resets, invalidated, dnf, recorded in s.execute(lap_q):
            race = races.get(race_id)
            if race is not None:
                race.laps.append(LapInput(lap_id=lap_id, race_id=race_id, racer_id=race.racer_id,
                                          lap_number=number, time_ms=time_ms, resets=resets,
                                          invalidated=bool(invalidated or dnf),
                                          recorded_at=_ts(recorded)))
    racer_ids = {r.racer_id for r in races.values()}
    infos = [RacerInfo(uid, name, cc) for uid, name, cc in s.execute(
        sa.select(User.id, User.username, User.country_code).where(User.id.in_(racer_ids)))] if racer_ids else []
    return list(races.values()), infos


def _lap_input(lap: Lap, race: Race) -> LapInput:
    return LapInput(lap_id=lap.id, race_id=race.id, racer_id=race.racer_id, lap_number=lap.lap_number,
                    time_ms=lap.time_ms, resets=lap.resets, invalidated=bool(lap.invalidated or lap.dnf),
                    recorded_at=_ts(lap.recorded_at))


# ------------------------------------------------------------------------ fingerprints

_FP_WIDTH = 10  # 4 race terms + 6 lap terms


def _fp_rows(s: Session, event_id: int, *, race_id: int | None = None) -> dict[int, list[int]]:
    """Per-track checksum terms of the counted races and laps of an event, computed by the
    database in one query: race count, sum of ids, of id*racer, of proxy ids; lap count,
    sum of ids, of id*time, id*resets, id*(invalid or DNF), id*lap number (:func:`_lap_terms`).
    ``race_id`` restricts to one race with its laps."""
    big = sa.BigInteger
    rid, lid = sa.cast(Race.id, big), sa.cast(Lap.id, big)
    zero = sa.literal(0, big)
    counted = [Race.event_id == event_id, Race.status.in_(COUNTED_STATUSES)]
    if race_id is not None:
        counted.append(Race.id == race_id)
    races_q = (sa.select(sa.literal(0).label("kind"), Race.track_id, sa.func.count(Race.id), sa.func.sum(rid),
                         sa.func.sum(rid * Race.racer_id),
                         sa.func.sum(sa.case((Race.raced_by_proxy, rid), else_=zero)), zero, zero)
               .where(*counted).group_by(Race.track_id))
    laps_q = (sa.select(sa.literal(1).label("kind"), Race.track_id, sa.func.count(Lap.id), sa.func.sum(lid),
                        sa.func.sum(lid * Lap.time_ms), sa.func.sum(lid * Lap.resets),
                        sa.func.sum(sa.case((sa.or_(Lap.invalidated, Lap.dnf), lid), else_=zero)),
                        sa.func.sum(lid * Lap.lap_number))
              .join(Race, Race.id == Lap.race_id).where(*counted).group_by(Race.track_id))
    out: dict[int, list[int]] = {}
    for kind, tid, *terms in s.execute(sa.union_all(races_q, laps_q)):
        values = [int(v or 0) for v in terms]
        row = out.setdefault(tid, [0] * _FP_WIDTH)
        if kind == 0:
            row[0:4] = values[0:4]
        else:
            row[4:] = values
    return out


def _lap_terms(lap_id: int, time_ms: int, resets: int, invalid: bool, lap_number: int) -> list[int]:
    """One lap's share of the checksum (the lap terms of :func:`_fp_rows`)."""
    return [0, 0, 0, 0, 1, lap_id, lap_id * time_ms, lap_id * resets, lap_id if invalid else 0,
            lap_id * lap_number]


@dataclass
class _Fingerprint:
    """Checksums of one event: per-track terms plus the ranking config."""

    config: tuple
    tracks: dict[int, tuple[int, ...]]

    def key(self, track: TrackKey) -> tuple:
        if track == COMBINED:
            return (self.config, tuple(sorted((t, v) for t, v in self.tracks.items() if any(v))))
        return (self.config, track, self.tracks.get(track, (0,) * _FP_WIDTH))  # type: ignore[arg-type]

    def minus(self, rows: dict[int, list[int]]) -> _Fingerprint:
        tracks = dict(self.tracks)
        for tid, terms in rows.items():
            base = tracks.get(tid, (0,) * _FP_WIDTH)
            tracks[tid] = tuple(a - b for a, b in zip(base, terms, strict=True))
        return _Fingerprint(self.config, tracks)


def _fingerprints(s: Session, event: Event | EventConfig) -> _Fingerprint:
    rows = _fp_rows(s, event.id)
    return _Fingerprint(_config_key(ranking_config(event)), {t: tuple(v) for t, v in rows.items()})


def version_of(fp_key: tuple) -> str:
    """A short version string of a leaderboard checksum (16 hex digits)."""
    return hashlib.blake2b(repr(fp_key).encode(), digest_size=8).hexdigest()
