"""Per-run and per-racer aggregates behind the ranking (pure functions, no Flask, no database).

:func:`aggregate_run` walks one run's laps once and keeps everything the ranking and
the summary need (best lap, the two lowest lap times, best averaging window, longest
valid streak, the lap-target total). :func:`merge_runs` combines a racer's run
aggregates in O(runs) into a :class:`RacerResult`: the :class:`RacerSummary`, the
ranking value and the sort key. The rules themselves are written down in
:mod:`drem.leaderboard.ranking` and ``docs/ranking.md``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from operator import attrgetter

from drem.events.models import lap_is_valid
from drem.leaderboard.ranking_records import LapInput, RaceInput, RacerSummary, RankingConfig

#: "No time" sentinel, larger than any lap time in ms; compares with int ms.
NO_TIME = 1 << 62

_lap_number = attrgetter("lap_number")


class UnorderedLaps(Exception):
    """Raised by :func:`aggregate_run` when laps are not in increasing lap_number order."""


def sort_laps(laps: Iterable[LapInput]) -> list[LapInput]:
    """The laps ordered by ``lap_number``; ``ValueError`` if a lap number occurs twice."""
    ordered = sorted(laps, key=_lap_number)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.lap_number == b.lap_number:
            raise ValueError(
                f"race {a.race_id!r} has lap number {a.lap_number} twice "
                f"(laps {a.lap_id!r} and {b.lap_id!r})"
            )
    return ordered


class RunAgg:
    """Aggregate of one run (all times integer ms; ``NO_TIME`` = none).

    ``laps`` is set by the holder (:class:`RankingState` keeps one RunAgg per run as
    its record of the run: the RaceInput and its laps ordered by lap number).
    """

    __slots__ = (
        "race", "laps", "race_id", "started_at", "proxy", "total", "valid",
        "best", "best_at", "best_no", "second",
        "win_sum", "win_at", "win_first", "win_last",
        "streak", "tgt_count", "tgt_total", "tgt_at", "pen", "best_pen", "dq",
    )  # fmt: skip


def aggregate_run(race: RaceInput, laps: Sequence[LapInput], config: RankingConfig) -> RunAgg:
    """Aggregate one run (``race``, whose laps are ``laps``) in one pass, O(laps).

    ``laps`` must be in strictly increasing ``lap_number`` order, else
    :class:`UnorderedLaps` is raised (the caller sorts with :func:`sort_laps` and
    calls again). Rules applied (DESIGN.md "Ranking"):

    - a lap is valid by :func:`drem.events.models.lap_is_valid` (``invalidated`` of a
      ranking input includes a DNF);
    - averaging window: N laps in a row in this run, all valid; an invalid lap
      breaks the window; equal sums keep the window whose last lap was recorded first;
    - lap target: the first ``lap_target`` valid laps of the run, their total time (ms)
      and the ``recorded_at`` of the last of them (the lap that completed the target);
    - penalties (``docs/ranking.md`` "Penalties and disqualification"): a lap's
      ``penalty_ms`` adds to its time; the run's ``penalty_ms`` adds to every lap's time
      for best lap and best average, and once to the lap-target total (any method); a
      disqualified run has no valid lap (:func:`_disqualified_run`).
    """
    if race.disqualified:
        return _disqualified_run(race, laps)
    extra = race.penalty_ms if config.method != "total_time" else 0  # the run's penalty on each lap
    allowed = config.resets_allowed_per_lap
    window = config.averaging_window
    target = config.lap_target or 0

    best = second = win_sum = NO_TIME
    best_at = win_at = tgt_at = None
    best_no = win_first = win_last = None
    valid = smax = tsum = wsum = k = best_pen = 0  # k: length of the current streak of valid laps
    prev = -NO_TIME
    for i, lap in enumerate(laps):
        n = lap.lap_number
        if n <= prev:
            raise UnorderedLaps(race.race_id)
        prev = n
        if not lap_is_valid(lap.invalidated, False, lap.resets, allowed):
            if k:
                if k > smax:
                    smax = k
                wsum = k = 0
            continue
        t = lap.time_ms + lap.penalty_ms + extra
        valid += 1
        if t <= second:  # rarely true after a few laps: one comparison in the common case
            if t < best:
                second = best
                best, best_at, best_no, best_pen = t, lap.recorded_at, n, lap.penalty_ms + extra
            elif t == best:
                second = t
                if lap.recorded_at < best_at:
                    best_at, best_no, best_pen = lap.recorded_at, n, lap.penalty_ms + extra
            else:
                second = t
        wsum += t
        k += 1
        if k >= window:
            # the streak's laps are contiguous in `laps`: the window is laps[i-window+1 .. i]
            if k > window:
                gone = laps[i - window]
                wsum -= gone.time_ms + gone.penalty_ms + extra
            if wsum <= win_sum and (wsum < win_sum or lap.recorded_at < win_at):
                win_sum, win_at, win_first, win_last = (
                    wsum,
                    lap.recorded_at,
                    laps[i - window + 1].lap_number,
                    n,
                )
        if valid <= target:
            tsum += t - extra  # the run's penalty is added to the total once, below
            tgt_at = lap.recorded_at
    if k > smax:
        smax = k

    agg = RunAgg()
    agg.race = race
    agg.race_id = race.race_id
    agg.started_at = race.started_at
    agg.proxy = race.raced_by_proxy
    agg.total = len(laps)
    agg.valid = valid
    agg.best, agg.best_at, agg.best_no, agg.second = best, best_at, best_no, second
    agg.win_sum, agg.win_at, agg.win_first, agg.win_last = win_sum, win_at, win_first, win_last
    agg.streak = smax
    agg.tgt_count = valid if valid < target else target
    agg.tgt_total = tsum + race.penalty_ms if valid and target else tsum
    agg.tgt_at = tgt_at
    agg.pen = race.penalty_ms + sum(lap.penalty_ms for lap in laps)
    agg.best_pen = best_pen
    agg.dq = 0
    return agg


def _disqualified_run(race: RaceInput, laps: Sequence[LapInput]) -> RunAgg:
    """The aggregate of a disqualified run: a run used with no result. Its laps count in
    ``total`` (all invalid); it has no best lap, window or lap-target laps and no
    penalty (the disqualification replaces it). :class:`UnorderedLaps` as
    :func:`aggregate_run`."""
    prev = -NO_TIME
    for lap in laps:
        if lap.lap_number <= prev:
            raise UnorderedLaps(race.race_id)
        prev = lap.lap_number
    agg = RunAgg()
    agg.race, agg.race_id, agg.started_at, agg.proxy = race, race.race_id, race.started_at, race.raced_by_proxy
    agg.total, agg.valid, agg.streak = len(laps), 0, 0
    agg.best = agg.second = agg.win_sum = NO_TIME
    agg.best_at = agg.best_no = agg.win_at = agg.win_first = agg.win_last = agg.tgt_at = None
    agg.tgt_count = agg.tgt_total = agg.pen = agg.best_pen = 0
    agg.dq = 1
    return agg


class RacerResult:
    """A racer's merged result: summary, ranking ``score`` and sort ``head``.

    ``score`` is the exact integer behind the ranking value (best lap ms, sum of the
    best window's lap times in ms, total ms of the lap target) or None.
    ``head`` is the method-specific start of the sort key; the full key appends the
    case-folded username and the racer id (:func:`sort_key`).
    """

    __slots__ = ("summary", "score", "head", "key")

    def __init__(self, summary: RacerSummary, score: int | None, head: tuple) -> None:
        self.summary = summary
        self.score = score
        self.head = head
        self.key: tuple = ()


#: Sort key head of a racer with no valid lap (ranks after everyone with a time).
_NO_RESULT_HEAD = (2, 0, 0, 0.0, 0)


def merge_runs(runs: Iterable[RunAgg], config: RankingConfig) -> RacerResult:
    """Merge a racer's run aggregates into summary, score and sort key head, O(runs).

    Sort key heads (smaller ranks higher), by method:

    - best_lap: ``(0, best, 0, best_at, next_best)``;
    - best_average: ``(0, window_sum, 0, window_at, best)``, racers without a window
      ``(1, best, 0, best_at, next_best)``;
    - total_time: ``(0 if target reached else 1, -laps, total, at, best)`` where laps/total
      come from the racer's best run (most counted valid laps, then lowest total, then
      completed first);
    - no valid lap at all: ``(2, 0, 0, 0.0, 0)``.
    """
    best = m1 = m2 = win = NO_TIME
    best_at = best_race = best_no = best_start = None
    win_at = win_race = win_first = win_last = win_start = None
    valid = total = nruns = smax = pen = best_pen = dq = 0
    proxy = False
    target = config.lap_target
    tgt: tuple | None = None  # (-counted laps, their total ms, recorded_at of the last)
    for r in runs:
        nruns += 1
        valid += r.valid
        total += r.total
        pen += r.pen
        dq += r.dq
        if r.proxy:
            proxy = True
        if r.streak > smax:
            smax = r.streak
        rb = r.best
        if rb != NO_TIME:
            if rb < best or (
                rb == best
                and (r.best_at, r.started_at, r.race_id) < (best_at, best_start, best_race)
            ):
                best, best_at, best_race, best_no = rb, r.best_at, r.race_id, r.best_no
                best_start, best_pen = r.started_at, r.best_pen
            # two lowest lap times over the racer's multiset of valid laps
            if rb < m1:
                m2, m1 = m1, rb
            elif rb < m2:
                m2 = rb
            if r.second < m2:
                m2 = r.second
            ws = r.win_sum
            if ws != NO_TIME and (
                ws < win
                or (
                    ws == win
                    and (r.win_at, r.started_at, r.race_id) < (win_at, win_start, win_race)
                )
            ):
                win, win_at, win_race, win_start = ws, r.win_at, r.race_id, r.started_at
                win_first, win_last = r.win_first, r.win_last
            if target is not None:
                cand = (-r.tgt_count, r.tgt_total, r.tgt_at)
                if tgt is None or cand < tgt:
                    tgt = cand

    window = config.averaging_window
    summary = RacerSummary(
        best_lap_ms=best if best != NO_TIME else None,
        best_lap_at=best_at,
        best_lap_race_id=best_race,
        best_lap_number=best_no,
        best_average_ms=win / window if win != NO_TIME else None,
        best_average_race_id=win_race,
        best_average_first_lap=win_first,
        best_average_last_lap=win_last,
        best_average_at=win_at,
        valid_laps=valid,
        total_laps=total,
        completion_ratio=valid / total if total else None,
        runs=nruns,
        most_consecutive_valid_laps=smax,
        raced_by_proxy=proxy,
        penalty_ms=pen,
        best_lap_penalty_ms=best_pen,
        disqualified_runs=dq,
    )
    if target is not None:
        if tgt is None:
            summary.laps_completed = 0
            summary.reached_target = False
        else:
            summary.laps_completed = -tgt[0]
            summary.total_time_ms = tgt[1]
            summary.reached_target = -tgt[0] == target

    if best == NO_TIME:
        return RacerResult(summary, None, _NO_RESULT_HEAD)
    method = config.method
    if method == "best_lap":
        return RacerResult(summary, best, (0, best, 0, best_at, m2))
    if method == "best_average":
        if win != NO_TIME:
            return RacerResult(summary, win, (0, win, 0, win_at, best))
        return RacerResult(summary, None, (1, best, 0, best_at, m2))
    # total_time: a valid lap exists, so tgt is set and counts at least one lap
    assert tgt is not None
    reached = -tgt[0] == target
    return RacerResult(summary, tgt[1] if reached else None, (0 if reached else 1, *tgt, best))


def sort_key(result: RacerResult, username: str, racer_id: Hashable) -> tuple:
    """Full sort key: method head, then case-folded username, then racer id (deterministic)."""
    return (*result.head, username.casefold(), racer_id)
