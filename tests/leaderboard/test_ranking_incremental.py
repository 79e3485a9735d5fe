"""Ranking engine on seeded random data: rank() against a naive reference written
straight from the rules, and RankingState's incremental updates against rank().

The data is drawn from small value sets on purpose (few lap times, coarse recorded_at)
so that ties at every level happen often.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest

from drem.leaderboard.ranking import RankingState, rank, rank_combined
from drem.leaderboard.ranking_records import (
    LapInput,
    LeaderboardEntry,
    RaceInput,
    RacerInfo,
    RankingConfig,
)

CONFIGS = [
    RankingConfig("best_lap", resets_allowed_per_lap=1),
    RankingConfig("best_lap", resets_allowed_per_lap=None, lap_target=3),
    RankingConfig("best_average", resets_allowed_per_lap=1, averaging_window=3),
    RankingConfig("best_average", resets_allowed_per_lap=0, averaging_window=5, lap_target=4),
    RankingConfig("total_time", resets_allowed_per_lap=1, lap_target=3),
    RankingConfig("total_time", resets_allowed_per_lap=2, averaging_window=7, lap_target=6),
]
CONFIG_IDS = [
    f"{c.method}-r{c.resets_allowed_per_lap}-w{c.averaging_window}-t{c.lap_target}" for c in CONFIGS
]


def random_event(rng: random.Random, racers: int, max_runs: int, max_laps: int, tracks=("T1",),
                 penalties: bool = True):
    """Random runs; with ``penalties`` some laps and runs carry a time penalty and some runs
    are disqualified (docs/ranking.md "Penalties and disqualification")."""
    infos = [
        RacerInfo(r, rng.choice(["ann", "Ann", "bo", "cy", f"r{r}"]), rng.choice(["DE", None]))
        for r in range(racers)
    ]
    races = []
    lap_id = 0
    for r in range(racers):
        for _ in range(rng.randint(0, max_runs)):
            race_id = len(races)
            start = float(rng.randint(0, 50))
            laps = []
            for n in range(1, rng.randint(0, max_laps) + 1):
                lap_id += 1
                laps.append(
                    LapInput(
                        lap_id, race_id, r, n,
                        rng.choice((9000, 9000, 9100, 9200, 9500, 10000)),
                        rng.choice((0, 0, 0, 1, 2)),
                        rng.random() < 0.1,
                        start + rng.randint(n, n + 3),  # coarse: collisions happen
                        rng.choice((0,) * 8 + (200, 1000)) if penalties else 0,  # equal times happen
                    )
                )  # fmt: skip
            races.append(RaceInput(race_id, r, rng.choice(tracks), start, laps, rng.random() < 0.2,
                                   penalty_ms=rng.choice((0,) * 6 + (100, 2000)) if penalties else 0,
                                   disqualified=penalties and rng.random() < 0.08))
    return races, infos


# ----------------------------------------------------------------- naive reference


def naive_rank(races, config, racers):
    """The rules of docs/ranking.md, computed the slow obvious way."""
    info = {r.racer_id: r for r in racers}
    runs_of = defaultdict(list)
    for race in races:
        runs_of[race.racer_id].append(race)
    allowed, n_win, target = (
        config.resets_allowed_per_lap,
        config.averaging_window,
        config.lap_target,
    )

    def valid(lap, run):  # a disqualified run has no valid lap
        return not run.disqualified and not lap.invalidated and (allowed is None or lap.resets <= allowed)

    def t(lap, run):  # the lap's time for ranking: its penalty, and the run's but in lap-count races
        return lap.time_ms + lap.penalty_ms + (run.penalty_ms if config.method != "total_time" else 0)

    rows = []
    for rid, runs in runs_of.items():
        ordered = {r.race_id: sorted(r.laps, key=lambda lap: lap.lap_number) for r in runs}
        vlaps = [(lap, r) for r in runs for lap in ordered[r.race_id] if valid(lap, r)]
        times = sorted(t(lap, r) for lap, r in vlaps)
        best = min(
            vlaps, key=lambda x: (t(*x), x[0].recorded_at, x[1].started_at, x[1].race_id, x[0].lap_number),
            default=None,
        )  # fmt: skip
        windows = []
        streak = 0
        for r in runs:
            laps = ordered[r.race_id]
            run_streak = 0
            for lap in laps:
                run_streak = run_streak + 1 if valid(lap, r) else 0
                streak = max(streak, run_streak)
            for i in range(len(laps) - n_win + 1):
                w = laps[i : i + n_win]
                if all(valid(lap, r) for lap in w):
                    windows.append(
                        (
                            sum(t(lap, r) for lap in w),
                            w[-1].recorded_at,
                            r.started_at,
                            r.race_id,
                            w[0].lap_number,
                            w[-1].lap_number,
                        )
                    )
        win = min(windows, default=None)
        tgt = None
        if target is not None:
            for r in runs:
                counted = [lap for lap in ordered[r.race_id] if valid(lap, r)][:target]
                if counted:  # lap penalties on the counted laps, the run's penalty once
                    cand = (
                        -len(counted),
                        sum(lap.time_ms + lap.penalty_ms for lap in counted) + r.penalty_ms,
                        counted[-1].recorded_at,
                    )
                    tgt = cand if tgt is None else min(tgt, cand)
        best_ms = t(*best) if best else None
        next_best = times[1] if len(times) > 1 else math.inf
        name = info[rid].username if rid in info else str(rid)
        score = None
        if best is None:
            head = (2,)
        elif config.method == "best_lap":
            head, score = (0, best_ms, best[0].recorded_at, next_best), best_ms
        elif config.method == "best_average":
            if win:
                head, score = (0, win[0], win[1], best_ms), win[0]
            else:
                head = (1, best_ms, best[0].recorded_at, next_best)
        else:
            reached = -tgt[0] == target
            head, score = (0 if reached else 1, *tgt, best_ms), (tgt[1] if reached else None)
        total = sum(len(r.laps) for r in runs)
        summary = {
            "best_lap_ms": best_ms,
            "best_lap_at": best[0].recorded_at if best else None,
            "best_lap_race_id": best[1].race_id if best else None,
            "best_lap_number": best[0].lap_number if best else None,
            "best_average_ms": win[0] / n_win if win else None,
            "best_average_race_id": win[3] if win else None,
            "best_average_first_lap": win[4] if win else None,
            "best_average_last_lap": win[5] if win else None,
            "best_average_at": win[1] if win else None,
            "valid_laps": len(vlaps),
            "total_laps": total,
            "completion_ratio": len(vlaps) / total if total else None,
            "runs": len(runs),
            "most_consecutive_valid_laps": streak,
            "total_time_ms": (tgt[1] if tgt else None) if target is not None else None,
            "laps_completed": (-tgt[0] if tgt else 0) if target is not None else None,
            "reached_target": (bool(tgt) and -tgt[0] == target) if target is not None else None,
            "raced_by_proxy": any(r.raced_by_proxy for r in runs),
            "penalty_ms": sum(r.penalty_ms + sum(lap.penalty_ms for lap in r.laps) for r in runs if not r.disqualified),
            "best_lap_penalty_ms": best_ms - best[0].time_ms if best else 0,
            "disqualified_runs": sum(1 for r in runs if r.disqualified),
        }
        rows.append(
            (
                (head, name.casefold(), rid),
                rid,
                name,
                info[rid].country_code if rid in info else None,
                score,
                summary,
            )
        )
    rows.sort(key=lambda row: row[0])
    div = n_win if config.method == "best_average" else 1
    out = []
    for i, (_, rid, name, country, score, summary) in enumerate(rows):
        lead = rows[0][4]
        ahead = rows[i - 1][4] if i else None
        out.append(
            {
                "rank": i + 1,
                "racer_id": rid,
                "username": name,
                "country": country,
                "ranking_value_ms": None if score is None else (score if div == 1 else score / div),
                "gap_to_leader_ms": None
                if score is None
                else ((score - lead) if div == 1 else (score - lead) / div),
                "gap_to_ahead_ms": None
                if score is None or ahead is None
                else ((score - ahead) if div == 1 else (score - ahead) / div),
                "summary": summary,
            }
        )
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_rank_matches_naive_reference(config):
    rng = random.Random(f"naive-{config}")
    for _ in range(30):
        races, infos = random_event(rng, racers=rng.randint(1, 12), max_runs=3, max_laps=9)
        assert [e.to_dict() for e in rank(races, config, infos)] == naive_rank(races, config, infos)


def test_rank_combined_matches_naive_reference_over_all_tracks():
    rng = random.Random(5)
    for config in CONFIGS:
        races, infos = random_event(
            rng, racers=10, max_runs=4, max_laps=9, tracks=("T1", "T2", "T3")
        )
        assert [e.to_dict() for e in rank_combined(races, config, infos)] == naive_rank(
            races, config, infos
        )


# ----------------------------------------------------------------- incremental == full


def check_changed(before: dict, after: list[LeaderboardEntry], changed: list[LeaderboardEntry]):
    """The entries returned by an update are exactly those that differ, in rank order."""
    differ = {e.racer_id for e in after if before.get(e.racer_id) != e}
    assert {e.racer_id for e in changed} == differ
    assert [e.rank for e in changed] == sorted(e.rank for e in changed)
    now = {e.racer_id: e for e in after}
    assert all(now[e.racer_id] == e for e in changed)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_incremental_equals_full_lap_by_lap(config):
    rng = random.Random(f"incremental-{config}")
    for _ in range(4):
        races, infos = random_event(rng, racers=rng.randint(2, 10), max_runs=3, max_laps=10)
        state = RankingState(config, infos)
        state.rebuild([])
        # feed runs (empty) and laps interleaved across runs, each run's laps mostly in order
        pending = {r.race_id: list(r.laps) for r in races}
        for r in races:
            if rng.random() < 0.3:  # out-of-order arrival inside a run
                rng.shuffle(pending[r.race_id])
        added: dict = {}
        started = []
        steps = [("race", r) for r in races] + [("lap", lap) for r in races for lap in r.laps]
        while steps:
            kind, item = (
                steps.pop(rng.randrange(len(steps))) if rng.random() < 0.5 else steps.pop(0)
            )
            if kind == "race":
                changed = state.add_race(
                    RaceInput(
                        item.race_id,
                        item.racer_id,
                        item.track_id,
                        item.started_at,
                        [],
                        item.raced_by_proxy,
                    )
                )
                added[item.race_id] = RaceInput(
                    item.race_id,
                    item.racer_id,
                    item.track_id,
                    item.started_at,
                    [],
                    item.raced_by_proxy,
                )
                started.append(item.race_id)
                before = None
            else:
                if item.race_id not in added:
                    steps.append((kind, item))  # its run has not started yet
                    continue
                before = {e.racer_id: e for e in state.entries()}
                changed = state.add_lap(item)
                added[item.race_id].laps.append(item)
            full = rank(list(added.values()), config, infos)
            assert state.entries() == full
            if before is not None:
                check_changed(before, full, changed)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_incremental_edits_equal_rebuild(config):
    """Lap replacement (operator invalidation), run replacement and deletion, renames."""
    rng = random.Random(f"edits-{config}")
    races, infos = random_event(rng, racers=12, max_runs=4, max_laps=10)
    current = {
        r.race_id: RaceInput(
            r.race_id, r.racer_id, r.track_id, r.started_at, list(r.laps), r.raced_by_proxy
        )
        for r in races
    }
    state = RankingState(config, infos)
    state.rebuild(list(current.values()))
    info = {i.racer_id: i for i in infos}
    for _ in range(150):
        before = {e.racer_id: e for e in state.entries()}
        op = rng.random()
        with_laps = [r for r in current.values() if r.laps]
        if op < 0.5 and with_laps:  # the operator toggles a lap's invalidation / resets
            run = rng.choice(with_laps)
            i = rng.randrange(len(run.laps))
            old = run.laps[i]
            new = LapInput(
                old.lap_id,
                old.race_id,
                old.racer_id,
                old.lap_number,
                old.time_ms,
                rng.choice((0, 3)),
                not old.invalidated,
                old.recorded_at,
            )
            run.laps[i] = new
            changed = state.add_lap(new)
        elif op < 0.65 and current:  # a run is deleted
            race_id = rng.choice(list(current))
            del current[race_id]
            changed = state.remove_race(race_id)
        elif op < 0.85 and current:  # a run is edited (laps dropped, times changed)
            race_id = rng.choice(list(current))
            old = current[race_id]
            laps = [
                LapInput(
                    lap.lap_id,
                    lap.race_id,
                    lap.racer_id,
                    lap.lap_number,
                    lap.time_ms + rng.choice((0, -300, 200)),
                    lap.resets,
                    lap.invalidated,
                    lap.recorded_at,
                )
                for lap in old.laps
                if rng.random() < 0.8
            ]
            current[race_id] = RaceInput(
                race_id, old.racer_id, old.track_id, old.started_at, laps, old.raced_by_proxy
            )
            changed = state.add_race(current[race_id])
        else:  # a racer is renamed
            rid = rng.choice(list(info))
            info[rid] = RacerInfo(rid, rng.choice(["zz", "Aa", "mm"]), "SE")
            changed = state.set_racer(info[rid])
        full = rank(list(current.values()), config, list(info.values()))
        assert state.entries() == full
        check_changed(before, full, changed)
        assert RankingState(config, list(info.values())).rebuild(list(current.values())) == full


def test_add_lap_twice_is_stored_once_and_errors():
    config = RankingConfig("best_lap")
    state = RankingState(config)
    state.add_race(RaceInput(1, "a", "T1", 0.0))
    lap = LapInput(10, 1, "a", 1, 9000, 0, False, 5.0)
    assert [e.ranking_value_ms for e in state.add_lap(lap)] == [9000]
    assert state.add_lap(LapInput(10, 1, "a", 1, 9000, 0, False, 5.0)) == []  # sent twice
    assert state.entry("a").summary.total_laps == 1
    with pytest.raises(KeyError):
        state.add_lap(LapInput(11, 2, "a", 1, 9000, 0, False, 5.0))
    with pytest.raises(ValueError, match="belongs to"):
        state.add_lap(LapInput(11, 1, "b", 2, 9000, 0, False, 5.0))
    with pytest.raises(ValueError, match="already has lap number 1"):
        state.add_lap(LapInput(12, 1, "a", 1, 9000, 0, False, 5.0))
    with pytest.raises(ValueError, match="track"):
        state.add_race(RaceInput(2, "b", "T2", 0.0))
    assert [e.racer_id for e in state.remove_race(1)] == []
    assert state.entries() == []


def test_caller_lists_are_not_modified():
    laps = [LapInput(1, 1, "a", 1, 9000, 0, False, 1.0)]
    race = RaceInput(1, "a", "T1", 0.0, laps)
    state = RankingState(RankingConfig())
    state.rebuild([race])
    state.add_lap(LapInput(2, 1, "a", 2, 8000, 0, False, 2.0))
    assert len(laps) == 1 and len(race.laps) == 1
    assert state.entry("a").ranking_value_ms == 8000


def test_failed_updates_leave_no_half_state():
    config = RankingConfig("best_lap")
    good = RaceInput(1, "a", "T1", 0.0, [LapInput(1, 1, "a", 1, 9000, 0, False, 1.0)])
    state = RankingState(config)
    state.rebuild([good])
    bad = RaceInput(
        1,
        "a",
        "T1",
        0.0,
        [LapInput(2, 1, "a", 1, 8000, 0, False, 1.0), LapInput(3, 1, "a", 1, 7000, 0, False, 2.0)],
    )
    with pytest.raises(ValueError, match="twice"):
        state.add_race(bad)  # replacing run 1 with a broken one: run 1 stays as it was
    assert state.entries() == rank([good], config)
    with pytest.raises(ValueError, match="twice"):
        state.rebuild([good, bad])  # race id 1 twice: the state is emptied, not half-built
    assert state.entries() == []
    # an empty state accepts a run on any track
    assert [e.racer_id for e in state.add_race(RaceInput(5, "b", "T9", 0.0))] == ["b"]


def test_run_moved_to_another_racer():
    config = RankingConfig("best_lap")
    r1 = RaceInput(1, "a", "T1", 0.0, [LapInput(1, 1, "a", 1, 9000, 0, False, 1.0)])
    r2 = RaceInput(2, "b", "T1", 0.0, [LapInput(2, 2, "b", 1, 9500, 0, False, 1.0)])
    state = RankingState(config)
    state.rebuild([r1, r2])
    # the operator fixes a mix-up: run 1 was raced by b
    moved = RaceInput(1, "b", "T1", 0.0, [LapInput(1, 1, "b", 1, 9000, 0, False, 1.0)])
    changed = state.add_race(moved)
    assert state.entries() == rank([moved, r2], config)
    assert [e.racer_id for e in changed] == ["b"]
    assert state.entry("a") is None
