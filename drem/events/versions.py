"""Leaderboard versions: one whole number per track and one per event (combined board).

A flush listener bumps them in the same transaction as the change, whenever what a
leaderboard ranks changes: a lap of a counted race is inserted, updated or deleted; a
race enters or leaves the counted statuses, or a counted race's ranked columns change
(racer, track, start, raced by proxy), or it is deleted; the event's ranking config
changes or a track is deleted (every track of the event). The bump is one
``UPDATE ... SET leaderboard_version = leaderboard_version + 1 ... RETURNING`` per table
and flush: the database serialises concurrent writers on the row, so two workers never
get the same number and the numbers never skip.

A process that caches a leaderboard stores the version it was built at; a board at
another version than the database's is ranked again. When one flush changed a board
because of one lap insert (or one race that just became counted) and nothing else,
:func:`bump_of` gives the versions after that flush, so the process holding the board at
``version - 1`` applies exactly that change (``lb_update`` ``from`` = ``to - 1``).

This module reads rows through the session's flush state only (no import of the models:
:mod:`drem.events.models` imports it, which registers the listener).
"""

from __future__ import annotations

from collections.abc import Hashable

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from drem.events.rules import COUNTED as _COUNTED
from drem.platform.extensions import db

_BUMPS = "drem_leaderboard_bumps"
_KEEP = 256  # bumps remembered per session (a request's session lives for one request)

_tracks = sa.table("tracks", sa.column("id"), sa.column("event_id"), sa.column("leaderboard_version"))
_events = sa.table("events", sa.column("id"), sa.column("leaderboard_version"))
_races = sa.table("races", sa.column("id"), sa.column("event_id"), sa.column("track_id"), sa.column("status"))

#: Columns whose change re-ranks: of an event (its ranking config), a race, a lap.
EVENT_RANKED = ("ranking_method", "resets_allowed_per_lap", "averaging_window", "lap_target")
RACE_RANKED = ("status", "racer_id", "track_id", "event_id", "raced_by_proxy", "started_at", "penalty_ms",
               "disqualified")
LAP_RANKED = ("race_id", "lap_number", "time_ms", "resets", "invalidated", "dnf", "recorded_at", "penalty_ms")



def bump_of(cause: tuple[str, int], session: Session | None = None) -> dict | None:
    """The versions after the flush that changed the leaderboards because of ``cause``
    alone: ``("lap", lap_id)`` (a lap inserted) or ``("race", race_id)`` (a race that
    became counted). Returns ``{"event_id", "track_id", "track_version",
    "event_version"}`` (ints), or None when that flush changed something else too (the
    boards are then ranked again). Kept after the commit (the after-commit callbacks read
    it) and dropped on rollback."""
    s = session or db.session()
    return s.info.get(_BUMPS, {}).get(cause)


def _history(obj, name: str):
    """(old value, new value) of a column in this flush (old == new when unchanged)."""
    hist = sa.inspect(obj).attrs[name].history
    new = hist.added[0] if hist.added else getattr(obj, name)
    old = hist.deleted[0] if hist.deleted else new
    return old, new


def _changed(obj, names: tuple[str, ...]) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[n].history.has_changes() for n in names)


@sa_event.listens_for(Session, "after_flush")
def _bump(session: Session, _flush_context) -> None:
    tracks: dict[int, list[Hashable]] = {}   # track id -> causes
    track_events: dict[int, int] = {}        # track id -> event id
    configs: set[int] = set()                # events whose ranking config changed
    lap_races: dict[int, list[Hashable]] = {}  # race id -> causes (laps whose race is looked up)

    def touch(event_id, track_id, cause) -> None:
        if event_id is None or track_id is None:
            return
        tracks.setdefault(track_id, []).append(cause)
        track_events[track_id] = event_id

    for obj, kind in [(o, "new") for o in session.new] + [(o, "dirty") for o in session.dirty] \
            + [(o, "deleted") for o in session.deleted]:
        table = getattr(type(obj), "__tablename__", None)
        if table == "laps":
            if kind == "dirty" and not _changed(obj, LAP_RANKED):
                continue
            cause = ("lap", obj.id) if kind == "new" else ("other", id(obj))
            old_race, new_race = _history(obj, "race_id") if kind == "dirty" else (obj.race_id, obj.race_id)
            for race_id in {old_race, new_race}:
                lap_races.setdefault(race_id, []).append(cause)
        elif table == "races":
            old = {n: _history(obj, n)[0] for n in ("status", "event_id", "track_id")} if kind == "dirty" \
                else {"status": obj.status, "event_id": obj.event_id, "track_id": obj.track_id}
            counted_before = kind != "new" and old["status"] in _COUNTED
            counted_now = kind != "deleted" and obj.status in _COUNTED
            if not counted_now and not counted_before:
                continue
            other_columns = kind == "dirty" and _changed(obj, RACE_RANKED[1:])
            if kind == "dirty" and counted_now == counted_before and not other_columns:
                continue  # e.g. running -> paused -> ended -> submitted: the same standing
            became_counted = counted_now and not counted_before  # started (its start time set too)
            cause = ("race", obj.id) if became_counted else ("other", id(obj))
            if counted_before:
                touch(old["event_id"], old["track_id"], cause)
            if counted_now:
                touch(obj.event_id, obj.track_id, cause)
        elif table == "events" and kind == "dirty" and _changed(obj, EVENT_RANKED):
            configs.add(obj.id)
        elif table == "tracks" and kind == "deleted":  # its races leave the combined board
            configs.add(obj.event_id)

    if lap_races:
        known = {}
        loaded = {o.id: o for o in session.identity_map.values()
                  if getattr(type(o), "__tablename__", None) == "races"}
        loaded.update({o.id: o for o in session.deleted if getattr(type(o), "__tablename__", None) == "races"})
        for race_id in lap_races:
            race = loaded.get(race_id)
            if race is not None:
                known[race_id] = (race.event_id, race.track_id, set(_history(race, "status")))
        missing = [r for r in lap_races if r not in known and r is not None]
        if missing:
            for rid, ev, tr, status in session.connection().execute(
                    sa.select(_races.c.id, _races.c.event_id, _races.c.track_id, _races.c.status)
                    .where(_races.c.id.in_(missing))):
                known[rid] = (ev, tr, {status})
        for race_id, causes in lap_races.items():
            if race_id in known and known[race_id][2] & set(_COUNTED):
                for cause in causes:
                    touch(known[race_id][0], known[race_id][1], cause)

    if not tracks and not configs:
        return
    conn = session.connection()
    bump = {"leaderboard_version": sa.literal_column("leaderboard_version") + 1}
    track_versions: dict[int, int] = {}
    where = []
    if tracks:
        where.append(_tracks.c.id.in_(sorted(tracks)))
    if configs:
        where.append(_tracks.c.event_id.in_(sorted(configs)))
    for tid, eid, version in conn.execute(sa.update(_tracks).where(sa.or_(*where)).values(bump)
                                          .returning(_tracks.c.id, _tracks.c.event_id,
                                                     _tracks.c.leaderboard_version)):
        track_versions[tid] = version
        track_events[tid] = eid
    event_ids = sorted(set(track_events[t] for t in tracks if t in track_events) | configs)
    event_versions = dict(conn.execute(sa.update(_events).where(_events.c.id.in_(event_ids)).values(bump)
                                       .returning(_events.c.id, _events.c.leaderboard_version)).all())
    _refresh_loaded(session, track_versions, event_versions)

    event_causes: dict[int, list[Hashable]] = {}
    for tid, causes in tracks.items():
        event_causes.setdefault(track_events[tid], []).extend(causes)
    for eid in configs:
        event_causes.setdefault(eid, []).append(("config", eid))
    record = session.info.setdefault(_BUMPS, {})
    for causes in tracks.values():
        for cause in causes:
            record.pop(cause, None)  # an older bump of the same cause is no longer the latest
    while len(record) > _KEEP:
        record.pop(next(iter(record)))
    for tid, causes in tracks.items():
        eid = track_events[tid]
        only = set(causes)
        if len(only) == 1 and set(event_causes[eid]) == only and eid not in configs \
                and tid in track_versions and eid in event_versions:
            cause = only.pop()
            if cause[0] in ("lap", "race"):
                record[cause] = {"event_id": eid, "track_id": tid, "track_version": track_versions[tid],
                                 "event_version": event_versions[eid]}


def _refresh_loaded(session: Session, track_versions: dict[int, int], event_versions: dict[int, int]) -> None:
    """Set the new numbers on the Track and Event rows this session holds (no reload)."""
    for obj in list(session.identity_map.values()):
        table = getattr(type(obj), "__tablename__", None)
        if table == "tracks" and obj.id in track_versions:
            set_committed_value(obj, "leaderboard_version", track_versions[obj.id])
        elif table == "events" and obj.id in event_versions:
            set_committed_value(obj, "leaderboard_version", event_versions[obj.id])


@sa_event.listens_for(Session, "after_soft_rollback")
def _forget_on_rollback(session: Session, _previous_transaction) -> None:
    session.info.pop(_BUMPS, None)
