"""Leaderboards from the database, kept up to date lap by lap, and pushed to the displays.

The ranking rules are the pure functions of :mod:`drem.leaderboard.ranking`; this
module feeds them from the ``races`` and ``laps`` tables and sends the results to the
Socket.IO rooms of the ``/leaderboard`` namespace (:mod:`drem.leaderboard.sockets`).
It acts on the timekeeper's and race admin's signals (:mod:`drem.leaderboard.subscribers`).

Which races count
    Races whose status is in ``drem.events.models.COUNTED`` (running, paused, ended,
    submitted); ready and discarded races are not on the leaderboard. A DNF lap counts as
    invalid (``drem.events.models.lap_is_valid``).

Rooms and messages (namespace ``/leaderboard``)
    ``lb:<event_id>:<track_id>`` and ``lb:<event_id>:combined`` get:

    - ``lb_full``: the whole state (:func:`leaderboard_state`), sent on a race edit;
    - ``lb_update``: a small change, ``{"event_id", "track", "from", "to", "entries",
      "count", "highlight", "lap", "race"}``: the entries whose rank, value or summary
      changed (displays recompute the gaps themselves), the number of entries after the
      change, the racer to highlight (new or improved), the lap that caused it (with
      ``valid``) and the race state after it. ``from`` / ``to`` are the leaderboard
      versions (whole numbers, ``to == from + 1``): a display whose version is not
      ``from`` asks for the full state again (``to`` not above its version: it has the
      change already);
    - ``race_state``: the live race (:func:`push_race_state`) when it changes without a
      change of the standings.

Several processes
    Every process keeps its own :class:`~drem.leaderboard.ranking.RankingState` per
    leaderboard with the version it was built at. The versions live in the database
    (``Track.leaderboard_version``, ``Event.leaderboard_version`` for the combined board)
    and grow by one, in the same transaction, with every change of what a board ranks
    (:mod:`drem.events.versions`). A board whose version is not the database's is ranked
    again; a lap whose transaction moved a board from ``v - 1`` to ``v`` is applied
    incrementally to a board at ``v - 1`` (a board at another version is first ranked
    "without that lap"). Messages go through ``drem.platform.extensions.socketio``, i.e.
    through the Redis message queue when ``REDIS_URL`` is set.

Units: times in integer milliseconds (``*_ms``), points in time UNIX seconds (float).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from drem.auth.models import User
from drem.events.models import COUNTED, LIVE, Event, Lap, Race, lap_is_valid
from drem.leaderboard.loading import (
    COMBINED,
    NAMESPACE,
    EventConfig,
    TrackKey,
    _lap_input,
    _ts,
    load_races,
    parse_track,
    ranking_config,
    read_version,
    room,
)
from drem.leaderboard.ranking import RankingState
from drem.leaderboard.ranking_records import (
    LapInput,
    LeaderboardEntry,
    RaceInput,
    RacerInfo,
    RankingConfig,
)
from drem.platform.extensions import db, socketio
from drem.timekeeper.service import race_state

__all__ = ["COMBINED", "NAMESPACE", "TrackKey", "clear_cache", "display_race", "entries", "entry_dict",
           "event_dict", "leaderboard_state", "live_races", "on_lap_recorded", "on_race_changed",
           "parse_track", "push_race_state", "ranking_config", "room"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------- cache


@dataclass
class _Board:
    """One process's ranked leaderboard: the state, the version it is at, the races it
    holds and its serialised entries."""

    state: RankingState
    version: int
    races: set = field(default_factory=set)
    _dicts: list[dict] | None = None

    def entry_dicts(self) -> list[dict]:
        if self._dicts is None:
            self._dicts = [entry_dict(e) for e in self.state.entries()]
        return self._dicts


_boards: dict[tuple[int, TrackKey], _Board] = {}
_race_index: dict[int, tuple[int, int]] = {}  # race id -> (event id, track id), for deleted races
_lock = threading.RLock()
_MAX_BOARDS = 256
_READS = 5  # tries to read a board whose version does not move meanwhile


def _build(s: Session, event_id: int, track: TrackKey, config: RankingConfig, **exclude) -> _Board:
    """Rank the board from the database, labelled with the version it was read at.

    Between two equal reads of the version nothing of this board was committed (every
    change bumps the version in its own transaction), so the races and laps read in
    between are the board at that version (minus what ``exclude`` leaves out)."""
    for _ in range(_READS):
        version = read_version(s, event_id, track)
        races, infos = load_races(s, event_id, None if track == COMBINED else int(track), **exclude)
        if read_version(s, event_id, track) == version:
            break
    state = RankingState(config, infos, combined=track == COMBINED)
    state.rebuild(races)
    for r in races:
        _race_index[r.race_id] = (event_id, r.track_id)
    return _Board(state, version if version is not None else -1, {r.race_id for r in races})


def _store(event_id: int, track: TrackKey, board: _Board) -> None:
    if len(_boards) >= _MAX_BOARDS and (event_id, track) not in _boards:
        _boards.pop(next(iter(_boards)))
    _boards[(event_id, track)] = board


def _current_board(s: Session, event: Event, track: TrackKey) -> _Board:
    """This process's board for the leaderboard, ranked again from the database when its
    version is not the database's."""
    board = _boards.get((event.id, track))
    if board is None or board.version != read_version(s, event.id, track):
        board = _build(s, event.id, track, ranking_config(event))
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

    ``{"event", "track" (id or "combined"), "tracks", "title", "footer", "version" (int),
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


#: The race-state fields the public displays get (everything else, e.g. the operator's
#: name and id or the car and model ids, stays with the staff consoles).
DISPLAY_RACE_FIELDS = frozenset({
    "race_id", "version", "event_id", "track_id", "status", "live", "racer", "raced_by_proxy",
    "time_limit_ms", "elapsed_ms", "time_left_ms", "time_up", "server_time", "current_lap_ms",
    "current_resets", "lap_target", "best_lap_ms", "last_lap_ms", "resets_allowed_per_lap",
})
#: The racer fields of a displayed race.
DISPLAY_RACER_FIELDS = ("id", "username", "country_code")


def display_race(state: dict) -> dict:
    """The race state as the public displays get it: only :data:`DISPLAY_RACE_FIELDS` of the
    timekeeper's race-state dict (the racer as :data:`DISPLAY_RACER_FIELDS`), its ``laps``
    list (one more entry every few seconds; 30 laps are about 3 KB) replaced by
    ``lap_count`` and ``last_lap`` (the last lap's dict, or None). A display shows only
    those, and every byte is sent once per display per lap."""
    laps = state.get("laps") or []
    out = {k: v for k, v in state.items() if k in DISPLAY_RACE_FIELDS}
    if isinstance(out.get("racer"), dict):
        out["racer"] = {k: out["racer"].get(k) for k in DISPLAY_RACER_FIELDS}
    out["lap_count"], out["last_lap"] = len(laps), (laps[-1] if laps else None)
    return out


def live_races(s: Session, event: Event, track: TrackKey) -> dict[int, dict]:
    """Race states of the live races (ready, running, paused, ended) of one track or of all
    tracks (COMBINED), keyed by track id; the most recent race per track."""
    q = sa.select(Race).where(Race.event_id == event.id, Race.status.in_(LIVE)) \
        .order_by(Race.created_at, Race.id)
    if track != COMBINED:
        q = q.where(Race.track_id == track)
    out: dict[int, dict] = {}
    for race in s.scalars(q):
        out[race.track_id] = display_race(race_state(race))
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


def _apply(s: Session, event: Event | EventConfig, track: TrackKey, after: int | None, change,
           exclude: dict, lap: dict | None, racer_id: int) -> dict | str | None:
    """Bring this process's board of ``track`` to version ``after`` (the version the one
    change produced) with ``change(board)`` and return the ``lb_update`` message.

    Returns None when the board is at ``after`` or later already (a repeated call, or it
    was ranked after the change), and ``"full"`` when the change cannot be applied on its
    own (``after`` unknown, or the database moved past it meanwhile): the board is then
    ranked again and the caller sends the full state."""
    board = _boards.get((event.id, track))
    if after is not None and board is not None and board.version >= after:
        return None
    if after is None or board is None or board.version != after - 1:
        board = _build(s, event.id, track, ranking_config(event), **exclude)
        if after is None or board.version != after:  # more than this change happened: rank it all
            _store(event.id, track, _build(s, event.id, track, ranking_config(event)))
            return "full"
        board.version = after - 1  # the board as it was just before the change
    before = {e.racer_id: e for e in board.state.entries()}
    changed = change(board)
    board.version, board._dicts = after, None
    _store(event.id, track, board)
    new = board.state.entry(racer_id)
    return {"event_id": event.id, "track": track, "from": after - 1, "to": after,
            "entries": _diff(before, changed), "count": len(board.state.entries()),
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


def _bump_version(bump: dict | None, track: TrackKey) -> int | None:
    if bump is None:
        return None
    return bump["event_version"] if track == COMBINED else bump["track_version"]


def _send(messages: list[tuple[int, TrackKey, dict | str]], s: Session, race: dict | None) -> set[str]:
    """Emit ``lb_update`` (with ``race`` as :func:`display_race`) or ``lb_full`` per room;
    returns the rooms sent to."""
    shown = display_race(race) if race is not None else None
    sent = set()
    for event_id, track, msg in messages:
        if msg == "full":
            event = s.get(Event, event_id)
            if event is None:
                continue
            _emit("lb_full", leaderboard_state(event, track, s), event_id, track)
        else:
            msg["race"] = shown
            _emit("lb_update", msg, event_id, track)
        sent.add(room(event_id, track))
    return sent


def on_lap_recorded(race_id: int, lap_id: int, race: dict | None = None, bump: dict | None = None,
                    lap: dict | None = None) -> None:
    """A new lap was committed: update the race's track leaderboard and the combined one
    and push one ``lb_update`` to each of the rooms ``lb:<event>:<track>`` and
    ``lb:<event>:combined`` (``lb_full`` when the lap cannot be applied on its own). Call
    after the commit; works in any process (web worker, job runner, CLI) inside an app
    context. Laps of ready or discarded races do not count and push nothing. Lap times in ms.

    ``race`` is the race state after this lap (the timekeeper's race-state dict): it rides
    in the ``lb_update`` as ``race``, so each display gets one message per lap (a room
    that gets no change gets it as ``race_state``). ``bump`` is
    ``drem.events.versions.bump_of(("lap", lap_id))``: the versions this lap produced.
    ``lap`` (``drem.timekeeper.service.lap_facts``) spares reading the lap, its race and
    event from the database; a board at the version just before the lap then costs no
    statement at all."""
    with _reading() as s:
        sent = _send(_lap_recorded(s, race_id, lap_id, bump, lap), s, race)
    if race is not None:
        _emit_race_state(display_race(race), skip=sent)


def _emit_race_state(shown: dict, skip: set[str] | frozenset = frozenset()) -> None:
    """``race_state`` (``shown``: :func:`display_race`) to the race's track room and the
    combined room unless in ``skip``."""
    event_id, track_id = int(shown["event_id"]), int(shown["track_id"])
    for target in (room(event_id, track_id), room(event_id, COMBINED)):
        if target not in skip:
            socketio.emit("race_state", shown, namespace=NAMESPACE, to=target)


def _lap_row(s: Session, race_id: int, lap_id: int):
    """The lap, its race, racer and event config as ranking needs them (one query; the
    same fields as ``drem.timekeeper.service.lap_facts``), or None."""
    return s.execute(
        sa.select(Race.event_id, Race.track_id, Race.racer_id, Race.status, Race.raced_by_proxy,
                  Race.started_at, Race.created_at, Lap.lap_number, Lap.time_ms, Lap.resets, Lap.invalidated,
                  Lap.dnf, Lap.recorded_at, User.username, User.country_code, Event.ranking_method,
                  Event.resets_allowed_per_lap, Event.averaging_window, Event.lap_target)
        .join(Lap, Lap.race_id == Race.id).join(User, User.id == Race.racer_id)
        .join(Event, Event.id == Race.event_id)
        .where(Race.id == race_id, Lap.id == lap_id)).first()


def _lap_recorded(s: Session, race_id: int, lap_id: int, bump: dict | None,
                  facts: dict | None = None) -> list[tuple[int, TrackKey, dict | str]]:
    row = SimpleNamespace(**facts) if facts is not None else _lap_row(s, race_id, lap_id)
    if row is None or row.status not in COUNTED:
        return []
    event = EventConfig(row.event_id, row.ranking_method, row.resets_allowed_per_lap, row.averaging_window,
                        row.lap_target)
    lap_input = LapInput(lap_id=lap_id, race_id=race_id, racer_id=row.racer_id, lap_number=row.lap_number,
                         time_ms=row.time_ms, resets=row.resets, invalidated=bool(row.invalidated or row.dnf),
                         recorded_at=_ts(row.recorded_at))
    lap_info = {"race_id": race_id, "racer_id": row.racer_id, "track_id": row.track_id,
                "lap_number": row.lap_number, "time_ms": row.time_ms, "resets": row.resets,
                "invalidated": row.invalidated, "dnf": row.dnf,
                "valid": lap_is_valid(row.invalidated, row.dnf, row.resets, row.resets_allowed_per_lap)}
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
        for track in (row.track_id, COMBINED):
            msg = _apply(s, event, track, _bump_version(bump, track), change, {"exclude_lap": lap_id},
                         lap_info, row.racer_id)
            if msg is not None:
                messages.append((event.id, track, msg))
    return messages


def _race_counted(s: Session, race: Race, bump: dict | None) -> list[tuple[int, TrackKey, dict | str]]:
    """A race that just became counted (started): it enters both boards without laps."""
    event = race.event
    race_input = RaceInput(race_id=race.id, racer_id=race.racer_id, track_id=race.track_id,
                           started_at=_ts(race.started_at or race.created_at),
                           raced_by_proxy=race.raced_by_proxy, laps=[_lap_input(lap, race) for lap in race.laps],
                           penalty_ms=race.penalty_ms, disqualified=race.disqualified)
    info = _racer_info(race)

    def change(board: _Board) -> list[LeaderboardEntry]:
        renamed = board.state.set_racer(info)
        if race.id in board.races:
            return renamed
        board.races.add(race.id)
        return _merged(renamed, board.state.add_race(race_input))

    messages = []
    with _lock:
        _race_index[race.id] = (event.id, race.track_id)
        for track in (race.track_id, COMBINED):
            msg = _apply(s, event, track, _bump_version(bump, track), change, {"exclude_race": race.id},
                         None, race.racer_id)
            if msg is not None:
                messages.append((event.id, track, msg))
    return messages


def on_race_changed(race_id: int, event_id: int | None = None, track_id: int | None = None) -> None:
    """A race was edited (laps changed or deleted), deleted, submitted or discarded: rank
    its track and the combined leaderboard again from the database and push the full state
    (``lb_full``, which carries the live races too) to both rooms. Call after the commit;
    works in any process.

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
            for track in tracks:
                _store(event.id, track, _build(s, event.id, track, ranking_config(event)))
        states = [(track, leaderboard_state(event, track, s)) for track in tracks]
    for track, state in states:
        _emit("lb_full", state, event_id, track)


def push_race_state(state: dict, bump: dict | None = None) -> None:
    """Send the live race (the timekeeper's race-state dict, times in ms, clock at
    ``server_time`` UNIX s) as ``race_state`` to ``lb:<event>:<track>`` and
    ``lb:<event>:combined`` (as :func:`display_race`). With ``bump`` (the race just became
    counted: ``bump_of(("race", race_id))``) the leaderboards also take the race in and
    push an ``lb_update``, so its racer appears at once. Call after the commit; works in
    any process."""
    _emit_race_state(display_race(state))
    if bump is not None and state.get("status") in COUNTED:
        with _reading() as s:
            race = s.get(Race, int(state["race_id"]))
            if race is not None and race.status in COUNTED:
                _send(_race_counted(s, race, bump), s, None)
