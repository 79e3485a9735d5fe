"""Leaderboards from the database, kept up to date lap by lap, and pushed to the displays.

The ranking rules are the pure functions of :mod:`drem.leaderboard.ranking`; this
module feeds them from the ``races`` and ``laps`` tables and sends the results to the
Socket.IO rooms of the ``/leaderboard`` namespace (:mod:`drem.leaderboard.sockets`).

Which races count
    Races whose status is running, paused, ended or submitted (:data:`COUNTED_STATUSES`);
    ready and discarded races are not on the leaderboard. A DNF lap counts as invalid.

Rooms and messages (namespace ``/leaderboard``)
    ``lb:<event_id>:<track_id>`` and ``lb:<event_id>:combined`` get:

    - ``lb_full``: the whole state (:func:`leaderboard_state`), sent on a race edit;
    - ``lb_update``: a small change, ``{"event_id", "track", "from", "to", "entries",
      "count", "highlight", "lap"}``: the entries whose rank, value or summary changed
      (displays recompute the gaps themselves), the number of entries after the change,
      the racer to highlight (new or improved) and the lap that caused it. ``from`` /
      ``to`` are the leaderboard versions before and after: a display whose version is
      not ``from`` asks for the full state again (``to``: it has the change already);
    - ``race_state``: the live race (:func:`push_race_state`), also to
      ``commentator:<event_id>``.

Several processes
    Every process keeps its own :class:`~drem.leaderboard.ranking.RankingState` per
    leaderboard. A version is a checksum of the counted races and laps computed by the
    database (:func:`_fingerprints`), so each process can tell whether its state is
    current without talking to the others: a snapshot is re-ranked from the database
    whenever the checksum moved, and a lap recorded by another process is applied to a
    state rebuilt "without that lap" first. Messages go through ``drem.platform.extensions.socketio``,
    i.e. through the Redis message queue when ``REDIS_URL`` is set.

Units: times in integer milliseconds (``*_ms``), points in time UNIX seconds (float).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from drem.auth.models import User
from drem.events.models import (
    Event,
    Lap,
    Race,
)
from drem.leaderboard.loading import (  # noqa: F401 - re-exported for callers
    _FP_WIDTH,
    COMBINED,
    COUNTED_STATUSES,
    LIVE_STATUSES,
    NAMESPACE,
    EventConfig,
    TrackKey,
    _config_key,
    _Fingerprint,
    _fingerprints,
    _fp_rows,
    _lap_input,
    _lap_terms,
    _ts,
    commentator_room,
    load_races,
    parse_track,
    ranking_config,
    room,
    version_of,
)
from drem.leaderboard.ranking import RankingState, is_lap_valid
from drem.leaderboard.ranking_records import (
    LapInput,
    LeaderboardEntry,
    RaceInput,
    RacerInfo,
    RankingConfig,
)
from drem.platform.extensions import db, socketio

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- cache


@dataclass
class _Board:
    """One process's ranked leaderboard: the state, its checksum and serialised entries."""

    state: RankingState
    fp_key: tuple
    races: set = field(default_factory=set)
    _dicts: list[dict] | None = None

    @property
    def version(self) -> str:
        return version_of(self.fp_key)

    def entry_dicts(self) -> list[dict]:
        if self._dicts is None:
            self._dicts = [entry_dict(e) for e in self.state.entries()]
        return self._dicts


_boards: dict[tuple[int, TrackKey], _Board] = {}
_race_index: dict[int, tuple[int, int]] = {}  # race id -> (event id, track id), for deleted races
_lock = threading.RLock()
_MAX_BOARDS = 256


def _build(s: Session, event_id: int, track: TrackKey, config: RankingConfig, fp_key: tuple,
           **exclude) -> _Board:
    races, infos = load_races(s, event_id, None if track == COMBINED else int(track), **exclude)
    state = RankingState(config, infos, combined=track == COMBINED)
    state.rebuild(races)
    for r in races:
        _race_index[r.race_id] = (event_id, r.track_id)
    return _Board(state, fp_key, {r.race_id for r in races})


def _store(event_id: int, track: TrackKey, board: _Board) -> None:
    if len(_boards) >= _MAX_BOARDS and (event_id, track) not in _boards:
        _boards.pop(next(iter(_boards)))
    _boards[(event_id, track)] = board


def _current_board(s: Session, event: Event, track: TrackKey) -> _Board:
    """This process's board for the leaderboard, re-ranked from the database if stale."""
    fp = _fingerprints(s, event)
    key = fp.key(track)
    board = _boards.get((event.id, track))
    if board is None or board.fp_key != key:
        board = _build(s, event.id, track, ranking_config(event), key)
        _store(event.id, track, board)
    return board


def clear_cache() -> None:
    """Forget every cached leaderboard of this process (tests; they rebuild on demand)."""
    with _lock:
        _boards.clear()
        _race_index.clear()


# ------------------------------------------------------------------------ serialising


def entry_dict(entry: LeaderboardEntry) -> dict:
    """JSON shape of a leaderboard entry (``LeaderboardEntry.to_dict()``; values in ms)."""
    return entry.to_dict()


def _track_dicts(event: Event) -> list[dict]:
    return [{"id": t.id, "name": t.name, "title": t.leaderboard_title, "footer": t.leaderboard_footer}
            for t in event.tracks]


def event_dict(event: Event) -> dict:
    """What a display needs to know about the event (race config times in ms)."""
    return {"id": event.id, "name": event.name, "date": event.date.isoformat(),
            "country_code": event.country_code, "ranking_method": event.ranking_method,
            "averaging_window": event.averaging_window, "lap_target": event.lap_target,
            "resets_allowed_per_lap": event.resets_allowed_per_lap,
            "race_time_ms": event.race_time_min * 60_000,
            "combined": len(event.tracks) >= 2}


def leaderboard_state(event: Event, track: TrackKey, session: Session | None = None) -> dict:
    """The full state of one leaderboard, as sent on (re)connect and by the JSON API.

    ``{"event", "track" (id or "combined"), "tracks", "title", "footer", "version",
    "entries" (rank order, see docs/ranking.md), "races" ({track id: race state} of the
    live races), "server_time" (UNIX s)}``. Always ranked from current database content
    (``session``: the one ``event`` belongs to, default ``db.session``).
    """
    s = session or db.session
    with _lock:
        board = _current_board(s, event, track)
        entries, version = board.entry_dicts(), board.version
    tracks = _track_dicts(event)
    if track == COMBINED:
        title, footer = event.name, None
    else:
        t = next(t for t in tracks if t["id"] == track)
        title, footer = t["title"] or f"{event.name} · {t['name']}", t["footer"]
    return {"event": event_dict(event), "track": track, "tracks": tracks, "title": title,
            "footer": footer, "version": version, "entries": entries,
            "races": {str(k): v for k, v in live_races(s, event, track).items()},
            "server_time": time.time()}


def entries(event: Event, track: TrackKey) -> list[LeaderboardEntry]:
    """The ranked entries of one leaderboard (track id or COMBINED), current with the database."""
    with _lock:
        return _current_board(db.session, event, track).state.entries()


# -------------------------------------------------------------------------- race state


def race_state(race: Race, now: float | None = None) -> dict:
    """The live-race message of the timekeeper contract, built from a Race row.

    Times in ms; ``elapsed_ms`` and ``current_lap_ms`` at ``server_time`` (UNIX s).
    """
    now = time.time() if now is None else now
    elapsed = 0
    if race.started_at is not None:
        until = race.paused_at or race.ended_at
        end = until.timestamp() if until is not None else now
        elapsed = max(0, int((end - race.started_at.timestamp()) * 1000) - (race.paused_total_ms or 0))
    allowed = race.event.resets_allowed_per_lap if race.event is not None else None
    laps = [{"lap_number": lap.lap_number, "time_ms": lap.time_ms, "resets": lap.resets,
             "invalidated": lap.invalidated, "dnf": lap.dnf, "source": lap.source} for lap in race.laps]
    valid = [lap.time_ms for lap in race.laps
             if not lap.invalidated and not lap.dnf and (allowed is None or lap.resets <= allowed)]
    racer = race.racer
    return {
        "race_id": race.id, "event_id": race.event_id, "track_id": race.track_id, "status": race.status,
        "racer": {"id": racer.id, "username": racer.username, "country_code": racer.country_code},
        "raced_by_proxy": race.raced_by_proxy, "time_limit_ms": race.time_limit_ms,
        "elapsed_ms": elapsed, "server_time": now,
        "current_lap_ms": max(0, elapsed - (race.lap_start_ms or 0)),
        "current_resets": race.current_resets, "lap_target": race.lap_target, "laps": laps,
        "best_lap_ms": min(valid) if valid else None,
        "last_lap_ms": race.laps[-1].time_ms if race.laps else None,
    }


def _race_state_of(race: Race) -> dict:
    """The timekeeper's own race state when it has one (same shape), else :func:`race_state`."""
    try:
        from drem.timekeeper import service as tk  # noqa: PLC0415 - optional, built in parallel
    except ImportError:
        return race_state(race)
    builder = getattr(tk, "race_state", None)
    if builder is None:
        return race_state(race)
    try:
        return builder(race)
    except Exception:  # a different signature: ours has the contract's shape
        log.debug("timekeeper race_state failed; using the leaderboard's own", exc_info=True)
        return race_state(race)


def display_race(state: dict) -> dict:
    """The race state as the displays get it: the timekeeper's race-state dict with its
    ``laps`` list (one more entry every few seconds; 30 laps are about 3 KB) replaced by
    ``lap_count`` and ``last_lap`` (the last lap's dict, or None). A display shows only
    those, and every byte is sent once per display per lap."""
    laps = state.get("laps") or []
    out = {k: v for k, v in state.items() if k != "laps"}
    out["lap_count"], out["last_lap"] = len(laps), (laps[-1] if laps else None)
    return out


def live_races(s: Session, event: Event, track: TrackKey) -> dict[int, dict]:
    """Race states of the live races (ready, running, paused, ended) of one track or of all
    tracks (COMBINED), keyed by track id; the most recent race per track."""
    q = sa.select(Race).where(Race.event_id == event.id, Race.status.in_(LIVE_STATUSES)) \
        .order_by(Race.created_at, Race.id)
    if track != COMBINED:
        q = q.where(Race.track_id == track)
    out: dict[int, dict] = {}
    for race in s.scalars(q):
        out[race.track_id] = display_race(_race_state_of(race))
    return out


# ------------------------------------------------------------------------------ pushes


def _emit(name: str, data: dict, event_id: int, track: TrackKey) -> None:
    socketio.emit(name, data, namespace=NAMESPACE, to=room(event_id, track))


def _diff(before: dict[Hashable, LeaderboardEntry], changed: Iterable[LeaderboardEntry]) -> list[dict]:
    """The changed entries minus those whose only change is a gap (displays recompute gaps)."""
    out = []
    for e in changed:
        prev = before.get(e.racer_id)
        if (prev is not None and prev.rank == e.rank and prev.ranking_value_ms == e.ranking_value_ms
                and prev.summary == e.summary and prev.username == e.username
                and prev.country == e.country):
            continue
        out.append(entry_dict(e))
    return out


def _improved(prev: LeaderboardEntry | None, new: LeaderboardEntry | None) -> bool:
    if new is None:
        return False
    if prev is None:
        return True
    if new.ranking_value_ms is not None and (prev.ranking_value_ms is None
                                             or new.ranking_value_ms < prev.ranking_value_ms):
        return True
    nb, pb = new.summary.best_lap_ms, prev.summary.best_lap_ms
    return nb is not None and (pb is None or nb < pb) or new.rank < prev.rank


def _apply(s: Session, event: Event | EventConfig, track: TrackKey, fp_now: _Fingerprint, fp_before: _Fingerprint,
           change, exclude: dict, lap: dict | None, racer_id: int) -> dict | None:
    """Bring this process's board of ``track`` from ``fp_before`` to ``fp_now`` with
    ``change(state)`` and return the ``lb_update`` message (None when nothing changed)."""
    key_now, key_before = fp_now.key(track), fp_before.key(track)
    if key_now == key_before:
        return None
    board = _boards.get((event.id, track))
    if board is not None and board.fp_key == key_now:
        return None  # this process applied it already (a repeated call)
    if board is None or board.fp_key != key_before:
        board = _build(s, event.id, track, ranking_config(event), key_before, **exclude)
    before = {e.racer_id: e for e in board.state.entries()}
    changed = change(board)
    board.fp_key, board._dicts = key_now, None
    _store(event.id, track, board)
    new = board.state.entry(racer_id)
    return {"event_id": event.id, "track": track, "from": version_of(key_before),
            "to": version_of(key_now), "entries": _diff(before, changed),
            "count": len(board.state.entries()),
            "highlight": racer_id if _improved(before.get(racer_id), new) else None, "lap": lap,
            "race": None}


def _racer_info(race: Race) -> RacerInfo:
    return RacerInfo(race.racer_id, race.racer.username, race.racer.country_code)


def _merged(first: list[LeaderboardEntry], second: list[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """Changed entries of two successive updates: the latest entry per racer."""
    if not first:
        return second
    latest = {e.racer_id: e for e in first}
    latest.update({e.racer_id: e for e in second})
    return sorted(latest.values(), key=lambda e: e.rank)


@contextlib.contextmanager
def _reading():
    """A session of its own: the pushes run inside the caller's after-commit hook, where
    the caller's session may not emit SQL any more."""
    s = Session(db.engine)
    try:
        yield s
    finally:
        s.close()


def on_lap_recorded(race_id: int, lap_id: int, race: dict | None = None) -> None:
    """A new lap was committed: update the race's track leaderboard and the combined one
    incrementally and push an ``lb_update`` to rooms ``lb:<event>:<track>`` and
    ``lb:<event>:combined``. Call after the commit (``drem.platform.effects.after_commit``); works
    in any process (web worker, job runner, CLI) inside an app context. Laps of ready or
    discarded races do not count and push nothing. Lap times in ms.

    ``race`` is the race state after this lap (the timekeeper's race-state dict): it rides
    in the ``lb_update`` as ``race``, so each display gets one message per lap instead of
    a change and then a ``race_state`` (a room that gets no change, and
    ``commentator:<event>``, get it as ``race_state``). One message per lap halves the
    sends of a fan-out to hundreds of displays (``bench/leaderboard.py``)."""
    with _reading() as s:
        messages = _lap_recorded(s, race_id, lap_id)
    shown = display_race(race) if race is not None else None
    sent = set()
    for event_id, track, msg in messages:
        msg["race"] = shown
        _emit("lb_update", msg, event_id, track)
        sent.add(room(event_id, track))
    if race is not None:
        _emit_race_state(race, shown, skip=sent)


def _emit_race_state(state: dict, shown: dict, skip: set[str] | frozenset = frozenset()) -> None:
    """``race_state``: ``shown`` (:func:`display_race`) to the race's track room and the
    combined room unless in ``skip``, the whole ``state`` to the commentator room."""
    event_id, track_id = int(state["event_id"]), int(state["track_id"])
    for target in (room(event_id, track_id), room(event_id, COMBINED)):
        if target not in skip:
            socketio.emit("race_state", shown, namespace=NAMESPACE, to=target)
    socketio.emit("race_state", state, namespace=NAMESPACE, to=commentator_room(event_id))


def _lap_recorded(s: Session, race_id: int, lap_id: int) -> list[tuple[int, TrackKey, dict]]:
    row = s.execute(
        sa.select(Race.event_id, Race.track_id, Race.racer_id, Race.status, Race.raced_by_proxy,
                  Race.started_at, Race.created_at, Lap.lap_number, Lap.time_ms, Lap.resets, Lap.invalidated,
                  Lap.dnf, Lap.recorded_at, User.username, User.country_code, Event.ranking_method,
                  Event.resets_allowed_per_lap, Event.averaging_window, Event.lap_target)
        .join(Lap, Lap.race_id == Race.id).join(User, User.id == Race.racer_id)
        .join(Event, Event.id == Race.event_id)
        .where(Race.id == race_id, Lap.id == lap_id)).first()
    if row is None or row.status not in COUNTED_STATUSES:
        return []
    event = EventConfig(row.event_id, row.ranking_method, row.resets_allowed_per_lap, row.averaging_window,
                        row.lap_target)
    lap_input = LapInput(lap_id=lap_id, race_id=race_id, racer_id=row.racer_id, lap_number=row.lap_number,
                         time_ms=row.time_ms, resets=row.resets, invalidated=bool(row.invalidated or row.dnf),
                         recorded_at=_ts(row.recorded_at))
    lap_info = {"race_id": race_id, "racer_id": row.racer_id, "track_id": row.track_id,
                "lap_number": row.lap_number, "time_ms": row.time_ms, "resets": row.resets,
                "invalidated": row.invalidated, "dnf": row.dnf,
                "valid": is_lap_valid(lap_input, row.resets_allowed_per_lap)}
    race_input = RaceInput(race_id=race_id, racer_id=row.racer_id, track_id=row.track_id,
                           started_at=_ts(row.started_at or row.created_at), raced_by_proxy=row.raced_by_proxy)
    info = RacerInfo(row.racer_id, row.username, row.country_code)

    def change(board: _Board) -> list[LeaderboardEntry]:
        renamed = board.state.set_racer(info)  # a racer new to this board needs a name
        if race_id not in board.races:  # a race the state has never seen: add it with this lap
            race_input.laps = [lap_input]
            board.races.add(race_id)
            return _merged(renamed, board.state.add_race(race_input))
        return _merged(renamed, board.state.add_lap(lap_input))

    messages = []
    with _lock:
        _race_index[race_id] = (event.id, row.track_id)
        fp_now = _fingerprints(s, event)
        lap_terms = _lap_terms(lap_id, row.time_ms, row.resets, bool(row.invalidated or row.dnf),
                               row.lap_number)
        fp_before = fp_now.minus({row.track_id: lap_terms})
        for track in (row.track_id, COMBINED):
            msg = _apply(s, event, track, fp_now, fp_before, change, {"exclude_lap": lap_id},
                         lap_info, row.racer_id)
            if msg is not None:
                messages.append((event.id, track, msg))
    return messages


def _race_counted(s: Session, race: Race) -> list[tuple[int, TrackKey, dict]]:
    """A counted race without laps that the leaderboards may not know yet: it just started.

    Once a race has laps, :func:`on_lap_recorded` brings it onto the boards (a lap of a
    race a board has never seen adds the race), so only lap-less races are handled here.
    """
    if race.laps:
        return []
    event = race.event
    laps = [_lap_input(lap, race) for lap in race.laps]
    race_input = RaceInput(race_id=race.id, racer_id=race.racer_id, track_id=race.track_id,
                           started_at=_ts(race.started_at or race.created_at),
                           raced_by_proxy=race.raced_by_proxy, laps=laps)

    info = _racer_info(race)

    def change(board: _Board) -> list[LeaderboardEntry]:
        renamed = board.state.set_racer(info)
        board.races.add(race.id)
        return _merged(renamed, board.state.add_race(race_input))

    messages = []
    with _lock:
        _race_index[race.id] = (event.id, race.track_id)
        fp_now = _fingerprints(s, event)
        fp_before = None
        for track in (race.track_id, COMBINED):
            board = _boards.get((event.id, track))
            if board is not None and (board.fp_key == fp_now.key(track) or race.id in board.races):
                continue  # known here (the common case while a race runs): nothing to do
            if fp_before is None:
                fp_before = fp_now.minus(_fp_rows(s, event.id, race_id=race.id))
            msg = _apply(s, event, track, fp_now, fp_before, change, {"exclude_race": race.id},
                         None, race.racer_id)
            if msg is not None:
                messages.append((event.id, track, msg))
    return messages


def on_race_changed(race_id: int, event_id: int | None = None, track_id: int | None = None) -> None:
    """A race was edited (laps changed or deleted), deleted, submitted or discarded: rank
    its track and the combined leaderboard again from the database and push the full state
    (``lb_full``) to both rooms. Call after the commit; works in any process.

    For a race that no longer exists pass ``event_id`` and ``track_id`` (else the
    leaderboard recalls them from its own records, which a fresh process may not have).
    """
    with _reading() as s:
        race = s.get(Race, race_id)
        if race is not None:
            event_id, track_id = race.event_id, race.track_id
        elif event_id is None or track_id is None:
            with _lock:
                known = _race_index.get(race_id)
            if known is None:
                log.warning("on_race_changed(%s): unknown deleted race; pass event_id and track_id",
                            race_id)
                return
            event_id, track_id = known
        event = s.get(Event, event_id)
        if event is None:
            return
        tracks = [t for t in (track_id, COMBINED) if t == COMBINED or any(x.id == t for x in event.tracks)]
        with _lock:
            fp = _fingerprints(s, event)
            for track in tracks:
                _store(event.id, track, _build(s, event.id, track, ranking_config(event), fp.key(track)))
        states = [(track, leaderboard_state(event, track, s)) for track in tracks]
    for track, state in states:
        _emit("lb_full", state, event_id, track)


def push_race_state(state: dict) -> None:
    """Send the live race (the timekeeper contract's race-state dict, times in ms, clock at
    ``server_time`` UNIX s) as ``race_state`` to ``lb:<event>:<track>`` and
    ``lb:<event>:combined`` (as :func:`display_race`) and to ``commentator:<event>``
    (whole). When the race has just become counted (started), the leaderboards learn it
    here and push an ``lb_update``, so its racer appears at once. Call after the commit;
    works in any process."""
    messages: list[tuple[int, TrackKey, dict]] = []
    if state.get("status") in COUNTED_STATUSES and not state.get("laps"):  # a race with laps is known
        with _reading() as s:
            race = s.get(Race, int(state["race_id"]))
            if race is not None and race.status in COUNTED_STATUSES:
                messages = _race_counted(s, race)
    _emit_race_state(state, display_race(state))
    for ev, track, msg in messages:
        _emit("lb_update", msg, ev, track)
