"""The ranking engine: pure functions, no Flask, no database (issue 8).

Inputs are the plain dataclasses of :mod:`drem.leaderboard.ranking_records`; the output is a
list of :class:`~drem.leaderboard.ranking_records.LeaderboardEntry` in rank order. All times
are integer milliseconds, points in time UNIX seconds. ``docs/ranking.md`` repeats
these rules for organizers.

Rules (DESIGN.md "Ranking", plus the decisions taken here)
-----------------------------------------------------------

Valid lap
    A lap is valid when its resets do not exceed the race config's resets allowed
    per lap (``None`` = unlimited) and the operator did not invalidate it. Only
    valid laps count for anything below; invalid laps count in ``total_laps``.

best_lap
    Ranking value: the lowest valid lap time over all of the racer's runs on the track.

best_average
    Ranking value: the lowest mean of N consecutive valid laps inside ONE run
    (N = the averaging window, 3-7). "Consecutive" is DREM's definition: N laps in a
    row in the run (by lap number), all valid; an invalid lap breaks the window, it
    is never skipped over, and a window never spans two runs. Racers with no such
    window rank after all racers who have one, ordered among themselves by best lap
    (with the best_lap tie-breaks); their ranking value is None.

total_time (lap-count race)
    Each run counts its first ``lap_target`` valid laps (invalid laps do not count
    towards the target and their time is not added). Racers whose best run reached
    the target rank first, by the total time of those laps (ranking value). Racers
    who did not reach it rank after, by most valid laps in one run, then lower total
    time of those laps; their ranking value is None (the summary still has
    ``laps_completed`` and ``total_time_ms``). A racer's deciding run is the one with
    the most counted laps, then the lowest total, then completed first.

Penalties and disqualification
    A lap's ``penalty_ms`` adds to its time wherever it counts. A run's ``penalty_ms``
    adds to every lap of the run for best_lap and best_average, and once to the
    lap-target total. A disqualified run is a run used with no result: no valid lap.
    (:func:`drem.leaderboard.aggregates.aggregate_run`, ``docs/ranking.md``.)

Ties
    1. the racer who set the time first ranks higher: ``recorded_at`` of the lap that
       completed the deciding value (the best lap itself; the last lap of the best
       window; the lap that completed the target, or the last counted lap);
    2. then the next-best lap: for best_lap (and best_average racers without a
       window) the racer's second-lowest valid lap time; for best_average and
       total_time the racer's best valid lap; a racer lacking that lap ranks after;
    3. then the username (case-folded), then the racer id: a deterministic last key,
       so ranks are always 1..n without sharing.
    Inside one racer, of two equal best laps (or windows) the one recorded first is
    the racer's, then the one from the run that started first, then the lower lap number.

No time
    Racers with runs but no valid lap (only invalid laps, or runs without laps) still
    appear, after every racer with a time, ordered by username; they never crash the
    summary (a DREM fault). Racers without any run are not on the leaderboard.

Gaps
    ``gap_to_leader_ms`` = value - the leader's value; ``gap_to_ahead_ms`` = value -
    the value of the racer one rank above (None for the leader). None whenever either
    value is None. For best_average, gaps are computed from exact window sums / N.

Combined leaderboard (several tracks of one event)
    DREM's rule, which organizers know: each racer's best over all tracks. Every
    ranking value is a minimum over runs (best lap, best window inside one run, best
    run for the lap target), so the combined leaderboard ranks the union of all runs
    of all tracks with the event's race config: best lap over all tracks, best window
    from any single run on any track, best lap-target run on any track. Summary counts
    (runs, laps) add up over the tracks. It is meant for tracks of the same layout.

Incremental updates
    :class:`RankingState` keeps per-run and per-racer aggregates. ``add_lap`` re-walks
    only the lap's run (O(laps of the run)), merges the racer's runs (O(runs)), moves
    the racer in the sorted order with bisect and rebuilds only the entries whose
    rank or gaps can have changed. ``rebuild`` recomputes from scratch. Both give the
    same entries as :func:`rank` (tested on random data).
"""

from __future__ import annotations

import gc
from bisect import bisect_left, insort
from collections.abc import Hashable, Iterable
from operator import attrgetter

from drem.events.models import lap_is_valid
from drem.leaderboard.aggregates import (
    RacerResult,
    RunAgg,
    UnorderedLaps,
    aggregate_run,
    merge_runs,
    sort_key,
    sort_laps,
)
from drem.leaderboard.ranking_records import (
    LapInput,
    LeaderboardEntry,
    RaceInput,
    RacerInfo,
    RankingConfig,
)

__all__ = [
    "RankingState",
    "is_lap_valid",
    "rank",
    "rank_combined",
]

_lap_number = attrgetter("lap_number")


def is_lap_valid(lap: LapInput, resets_allowed_per_lap: int | None) -> bool:
    """True when the lap counts: :func:`drem.events.models.lap_is_valid` for a ranking
    input (whose ``invalidated`` already includes a DNF)."""
    return lap_is_valid(lap.invalidated, False, lap.resets, resets_allowed_per_lap)


def rank(
    races: Iterable[RaceInput],
    config: RankingConfig,
    racers: Iterable[RacerInfo] = (),
) -> list[LeaderboardEntry]:
    """Rank the runs of ONE track from scratch; entries in rank order (values in ms).

    ``racers`` supplies usernames and country codes (a racer missing from it is shown
    as ``str(racer_id)``). Every racer with at least one run appears. Raises
    ``ValueError`` if the runs belong to several tracks (use :func:`rank_combined`),
    if a race id occurs twice, or if a run has the same lap number twice. Lap ids are
    assumed unique (database key). Rules: module docstring / ``docs/ranking.md``.
    """
    state = RankingState(config, racers)
    state._share_laps = True  # the state is thrown away: no need to copy the lap lists
    return state.rebuild(races)


def rank_combined(
    races: Iterable[RaceInput],
    config: RankingConfig,
    racers: Iterable[RacerInfo] = (),
) -> list[LeaderboardEntry]:
    """Combined leaderboard over several tracks: each racer's best over all tracks (ms).

    DREM's combined rule: the runs of all tracks are ranked together with the event's
    race config, so best lap = best over all tracks, best average = best window of any
    single run on any track, lap target = best run on any track.
    """
    state = RankingState(config, racers, combined=True)
    state._share_laps = True
    return state.rebuild(races)


class RankingState:
    """A leaderboard that can be updated lap by lap.

    ``RankingState(config, racers, combined=False)``; then :meth:`rebuild` with all
    runs (from scratch, e.g. after a race edit or deletion), and :meth:`add_race` /
    :meth:`add_lap` / :meth:`remove_race` / :meth:`set_racer` as things happen. Each
    update returns the entries that changed (rank, value, gaps or summary), in rank
    order; :meth:`entries` returns the whole leaderboard. Entries are shared with the
    state: do not mutate them. The state copies each run's lap list but keeps the
    RaceInput and LapInput objects: do not mutate those after handing them over, send
    the change (``add_lap`` with the same lap id, ``add_race`` with the same race id,
    ``remove_race``) or ``rebuild``. Not thread-safe: one owner (e.g. the leaderboard
    service) holds it under its own lock.
    """

    def __init__(
        self,
        config: RankingConfig,
        racers: Iterable[RacerInfo] = (),
        *,
        combined: bool = False,
    ) -> None:
        self.config = config
        self.combined = combined
        self._info: dict[Hashable, RacerInfo] = {r.racer_id: r for r in racers}
        self._divisor = config.averaging_window if config.method == "best_average" else 1
        # True only inside rank()/rank_combined(): keep the caller's lap lists uncopied
        self._share_laps = False
        self._clear()

    def _clear(self) -> None:
        self.track_id: Hashable | None = None
        self._runs: dict[Hashable, RunAgg] = {}  # one record per run (race, laps, aggregate)
        self._racer_runs: dict[Hashable, dict[Hashable, RunAgg]] = {}
        self._results: dict[Hashable, RacerResult] = {}
        self._keys: list[tuple] = []  # sorted sort keys, one per ranked racer
        self._order: list[Hashable] = []  # racer ids in rank order
        self._entries: list[LeaderboardEntry | None] = []  # entries in rank order
        self._by_racer: dict[Hashable, LeaderboardEntry] = {}

    # -- reading ---------------------------------------------------------------

    def entries(self) -> list[LeaderboardEntry]:
        """The whole leaderboard in rank order (a new list of the shared entries)."""
        return list(self._entries)  # type: ignore[arg-type]

    def entry(self, racer_id: Hashable) -> LeaderboardEntry | None:
        """The racer's current entry, or None if the racer has no run."""
        return self._by_racer.get(racer_id)

    # -- from scratch ----------------------------------------------------------

    def rebuild(
        self,
        races: Iterable[RaceInput],
        racers: Iterable[RacerInfo] | None = None,
    ) -> list[LeaderboardEntry]:
        """Forget everything and rank ``races`` from scratch; returns all entries (ms).

        ``racers``, if given, replaces the racer info. Same errors as :func:`rank`.
        """
        if racers is not None:
            self._info = {r.racer_id: r for r in racers}
        # The rebuild allocates ~1 object per run and makes no reference cycles; pausing
        # the cyclic GC keeps it from repeatedly scanning the caller's 10^5 lap objects.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._rebuild(races)
        except BaseException:
            self._clear()  # never leave a half-built leaderboard behind
            raise
        finally:
            if gc_was_enabled:
                gc.enable()

    def _rebuild(self, races: Iterable[RaceInput]) -> list[LeaderboardEntry]:
        self._clear()
        config = self.config
        runs = self._runs
        racer_runs = self._racer_runs
        for race in races:
            self._check_track(race)
            self.track_id = None if self.combined else race.track_id
            if race.race_id in runs:
                raise ValueError(f"race {race.race_id!r} given twice")
            run = self._make_run(race)
            runs[race.race_id] = run
            per_racer = racer_runs.get(race.racer_id)
            if per_racer is None:
                racer_runs[race.racer_id] = {race.race_id: run}
            else:
                per_racer[race.race_id] = run

        results = self._results
        keyed = []
        for rid, per_racer in racer_runs.items():
            res = merge_runs(per_racer.values(), config)
            res.key = sort_key(res, self._username(rid), rid)
            results[rid] = res
            keyed.append(res.key)
        keyed.sort()
        self._keys = keyed
        self._order = [k[-1] for k in keyed]
        n = len(keyed)
        self._entries = [None] * n
        for i in range(n):
            e = self._make_entry(i)
            self._entries[i] = e
            self._by_racer[e.racer_id] = e
        return list(self._entries)  # type: ignore[arg-type]

    # -- incremental -----------------------------------------------------------

    def add_lap(self, lap: LapInput) -> list[LeaderboardEntry]:
        """Add (or replace, same ``lap_id``) one lap of a known run; returns changed entries.

        Cost: O(laps of the run) + O(racer's runs) + bisect, plus one entry per rank
        that moves (every entry when the leader's value changes, as all gaps do).
        Replacing a lap is how an operator's invalidation can be applied live.
        Raises ``KeyError`` for an unknown race (call :meth:`add_race` first) and
        ``ValueError`` if the lap's racer is not the run's racer or its lap number is
        already taken by another lap of the run.
        """
        run = self._runs.get(lap.race_id)
        if run is None:
            raise KeyError(f"unknown race {lap.race_id!r}: add_race() it first")
        if lap.racer_id != run.race.racer_id:
            raise ValueError(
                f"lap {lap.lap_id!r} is for racer {lap.racer_id!r}, "
                f"race {lap.race_id!r} belongs to {run.race.racer_id!r}"
            )
        laps = run.laps  # the state's own list (copied in _make_run)
        for i, old in enumerate(laps):
            if old.lap_id == lap.lap_id:
                if old == lap:
                    return []
                del laps[i]
                break
        if not laps or laps[-1].lap_number < lap.lap_number:
            laps.append(lap)
        else:
            i = bisect_left(laps, lap.lap_number, key=_lap_number)
            if i < len(laps) and laps[i].lap_number == lap.lap_number:
                raise ValueError(
                    f"race {lap.race_id!r} already has lap number {lap.lap_number} "
                    f"(lap {laps[i].lap_id!r})"
                )
            insort(laps, lap, key=_lap_number)
        return self._refresh(self._replace_run(run.race, laps).race.racer_id)

    def add_race(self, race: RaceInput) -> list[LeaderboardEntry]:
        """Add a run (with any laps it already has), or replace a run with the same id.

        Returns the changed entries (a new racer appears). Replacing a run is an
        incremental race edit; :meth:`rebuild` gives the same result.
        """
        old = self._runs.get(race.race_id)
        self._check_track(race, replacing=old is not None)
        run = self._make_run(race)  # may raise: nothing has changed yet
        self.track_id = None if self.combined else race.track_id
        touched = []
        if old is not None:
            self._detach(old)
            if old.race.racer_id != race.racer_id:
                touched.append(old.race.racer_id)
        self._runs[race.race_id] = run
        self._racer_runs.setdefault(race.racer_id, {})[race.race_id] = run
        touched.append(race.racer_id)
        return self._refresh_many(touched)

    def remove_race(self, race_id: Hashable) -> list[LeaderboardEntry]:
        """Delete a run; returns the changed entries (a racer left without runs disappears)."""
        run = self._runs.get(race_id)
        if run is None:
            raise KeyError(f"unknown race {race_id!r}")
        self._detach(run)
        changed = self._refresh(run.race.racer_id)
        if not self._runs:
            self.track_id = None
        return changed

    def set_racer(self, info: RacerInfo) -> list[LeaderboardEntry]:
        """Add or change a racer's username / country; returns the changed entries."""
        self._info[info.racer_id] = info
        if info.racer_id not in self._results:
            return []
        return self._refresh(info.racer_id)

    # -- internals -------------------------------------------------------------

    def _check_track(self, race: RaceInput, replacing: bool = False) -> None:
        """ValueError if ``race`` is on another track than the runs already held."""
        if self.combined or not self._runs or (replacing and len(self._runs) == 1):
            return
        if race.track_id != self.track_id:
            raise ValueError(
                f"race {race.race_id!r} is on track {race.track_id!r}, this leaderboard "
                f"ranks track {self.track_id!r} (use the combined leaderboard)"
            )

    def _make_run(self, race: RaceInput) -> RunAgg:
        """Aggregate a run and keep its laps ordered by lap number in a list of our own.

        The caller's list is never changed; it is only kept uncopied inside rank().
        """
        laps = race.laps
        try:
            agg = aggregate_run(race, laps, self.config)
            if not self._share_laps:
                laps = list(laps)
        except UnorderedLaps:
            laps = sort_laps(laps)
            agg = aggregate_run(race, laps, self.config)
        agg.laps = laps
        return agg

    def _replace_run(self, race: RaceInput, laps: list[LapInput]) -> RunAgg:
        """Re-aggregate a stored run after its (ordered) laps changed: O(laps of the run)."""
        agg = aggregate_run(race, laps, self.config)
        agg.laps = laps
        self._runs[race.race_id] = agg
        self._racer_runs[race.racer_id][race.race_id] = agg
        return agg

    def _detach(self, run: RunAgg) -> None:
        race = run.race
        del self._runs[race.race_id]
        per_racer = self._racer_runs[race.racer_id]
        del per_racer[race.race_id]
        if not per_racer:
            del self._racer_runs[race.racer_id]

    def _username(self, racer_id: Hashable) -> str:
        info = self._info.get(racer_id)
        return info.username if info is not None else str(racer_id)

    def _make_entry(self, i: int) -> LeaderboardEntry:
        order = self._order
        results = self._results
        rid = order[i]
        res = results[rid]
        info = self._info.get(rid)
        score = res.score
        if score is None:
            value = gap_leader = gap_ahead = None
        else:
            div = self._divisor
            lead = results[order[0]].score
            ahead = results[order[i - 1]].score if i else None
            if div == 1:
                value = score
                gap_leader = score - lead  # type: ignore[operator]
                gap_ahead = score - ahead if ahead is not None else None
            else:
                value = score / div
                gap_leader = (score - lead) / div  # type: ignore[operator]
                gap_ahead = (score - ahead) / div if ahead is not None else None
        return LeaderboardEntry(
            rank=i + 1,
            racer_id=rid,
            username=info.username if info is not None else str(rid),
            country=info.country_code if info is not None else None,
            ranking_value_ms=value,
            gap_to_leader_ms=gap_leader,
            gap_to_ahead_ms=gap_ahead,
            summary=res.summary,
        )

    def _refresh_many(self, racer_ids: list[Hashable]) -> list[LeaderboardEntry]:
        changed: dict[Hashable, LeaderboardEntry] = {}
        for rid in racer_ids:
            for e in self._refresh(rid):
                changed[e.racer_id] = e
        # an entry changed by the first refresh may have been rebuilt again by the second
        out = [self._by_racer[rid] for rid in changed if rid in self._by_racer]
        out.sort(key=attrgetter("rank"))
        return out

    def _refresh(self, rid: Hashable) -> list[LeaderboardEntry]:
        """Re-merge one racer, move it in the order, rebuild the entries that may differ."""
        keys, order, entries, results = self._keys, self._order, self._entries, self._results
        old_leader = order[0] if order else None
        old_lead_score = results[old_leader].score if old_leader is not None else None

        old_pos = new_pos = None
        old = results.pop(rid, None)
        if old is not None:
            old_pos = bisect_left(keys, old.key)
            del keys[old_pos], order[old_pos], entries[old_pos]
        per_racer = self._racer_runs.get(rid)
        if per_racer:
            res = merge_runs(per_racer.values(), self.config)
            res.key = sort_key(res, self._username(rid), rid)
            results[rid] = res
            new_pos = bisect_left(keys, res.key)
            keys.insert(new_pos, res.key)
            order.insert(new_pos, rid)
            entries.insert(new_pos, None)
        else:
            self._by_racer.pop(rid, None)

        n = len(order)
        if n == 0:
            return []
        # positions [lo, hi) may have a new rank, value or racer ahead: rebuilt and compared
        if old_pos is None or new_pos is None:
            lo, hi = (new_pos if old_pos is None else old_pos), n  # ranks below shift
        else:
            lo, hi = min(old_pos, new_pos), min(max(old_pos, new_pos) + 2, n)
        changed = []
        by_racer = self._by_racer
        for i in range(lo, hi):
            e = self._make_entry(i)
            prev = by_racer.get(e.racer_id)
            if prev is not None and prev == e:
                entries[i] = prev
            else:
                entries[i] = e
                by_racer[e.racer_id] = e
                changed.append(e)
        # a new leader or leader's value changes every gap to the leader below hi; in that
        # case position 0 lies inside [lo, hi), so only the tail needs it
        lead = results[order[0]].score
        if hi < n and (order[0] != old_leader or lead != old_lead_score) and lead is not None:
            div = self._divisor
            for i in range(hi, n):
                score = results[order[i]].score
                if score is None:
                    break  # racers without a value sort last and have no gaps
                gap = score - lead if div == 1 else (score - lead) / div
                prev = entries[i]
                if gap != prev.gap_to_leader_ms:  # type: ignore[union-attr]
                    e = LeaderboardEntry(
                        prev.rank, prev.racer_id, prev.username, prev.country,  # type: ignore[union-attr]
                        prev.ranking_value_ms, gap, prev.gap_to_ahead_ms, prev.summary,  # type: ignore[union-attr]
                    )  # fmt: skip
                    entries[i] = e
                    by_racer[e.racer_id] = e
                    changed.append(e)
        return changed
