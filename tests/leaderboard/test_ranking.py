"""Ranking engine: hand-computed expectations for each rule (drem.leaderboard.ranking).

Every race below is built with :func:`race`: laps are numbered 1, 2, ... and lap n of
a race started at ``start`` is recorded at ``start + 10 * n`` seconds unless ``at`` is
given. The expected numbers are derived by hand in the comment above each assertion.
"""

from __future__ import annotations

import json

import pytest

from drem.leaderboard.ranking import RankingState, is_lap_valid, rank, rank_combined
from drem.leaderboard.ranking_records import LapInput, RaceInput, RacerInfo, RankingConfig


def L(ms: int, resets: int = 0, invalid: bool = False, at: float | None = None) -> dict:
    """A lap spec: time in ms, resets, operator-invalidated, recorded_at override."""
    return {"ms": ms, "resets": resets, "invalid": invalid, "at": at}


def race(race_id, racer_id, *laps: dict, track="T1", start=0.0, proxy=False) -> RaceInput:
    out = []
    for n, spec in enumerate(laps, start=1):
        at = spec["at"] if spec["at"] is not None else start + 10 * n
        out.append(
            LapInput(
                f"{race_id}-{n}",
                race_id,
                racer_id,
                n,
                spec["ms"],
                spec["resets"],
                spec["invalid"],
                at,
            )
        )
    return RaceInput(race_id, racer_id, track, start, out, proxy)


RACERS = [
    RacerInfo("alice", "alice", "DE"),
    RacerInfo("bob", "bob", "GB"),
    RacerInfo("carol", "carol", "SE"),
    RacerInfo("dave", "dave", None),
    RacerInfo("erin", "erin", "FR"),
    RacerInfo("frank", "frank", "US"),
]


def table(entries):
    """(rank, racer, value, gap to leader, gap to ahead) per entry."""
    return [
        (e.rank, e.racer_id, e.ranking_value_ms, e.gap_to_leader_ms, e.gap_to_ahead_ms)
        for e in entries
    ]


# --------------------------------------------------------------------------- validity


def test_lap_validity_rule():
    lap = LapInput(1, 1, "a", 1, 9000, 2, False, 0.0)
    assert is_lap_valid(lap, 2)  # 2 resets, 2 allowed: not exceeded
    assert not is_lap_valid(lap, 1)  # 2 > 1
    assert is_lap_valid(lap, None)  # unlimited
    lap.invalidated = True
    assert not is_lap_valid(lap, None)  # operator's word wins


def best_lap_event():
    return [
        # alice valid laps: 10000, 9800 (run 1; 9500 has 3 resets), 9700 (run 2; 9900 struck out)
        race(1, "alice", L(10000), L(9500, resets=3), L(9800), start=1000),
        race(2, "alice", L(9700), L(9900, invalid=True), start=2000),
        # bob: 9600 with 2 resets (valid when 2 are allowed), 12000 clean
        race(3, "bob", L(9600, resets=2), L(12000), start=3000),
        # carol: only invalid laps (5 resets; struck out)
        race(4, "carol", L(9000, resets=5), L(8000, invalid=True), start=4000),
        # dave: a run without any lap
        race(5, "dave", start=5000),
    ]


def test_best_lap_ranking_with_resets_limit():
    entries = rank(best_lap_event(), RankingConfig("best_lap", resets_allowed_per_lap=2), RACERS)
    # bob 9600 < alice 9700 (her 9500 had 3 resets > 2); carol and dave have no valid lap,
    # ranked after, by username; gaps: alice 9700-9600 = 100 to both leader and ahead.
    assert table(entries) == [
        (1, "bob", 9600, 0, None),
        (2, "alice", 9700, 100, 100),
        (3, "carol", None, None, None),
        (4, "dave", None, None, None),
    ]
    assert [e.country for e in entries] == ["GB", "DE", "SE", None]


def test_best_lap_unlimited_resets():
    entries = rank(best_lap_event(), RankingConfig("best_lap", resets_allowed_per_lap=None), RACERS)
    # unlimited: carol's 9000 (5 resets) counts, her 8000 stays struck out; alice's 9500
    # (3 resets) counts. carol 9000, alice 9500 (+500, +500), bob 9600 (+600, +100).
    assert table(entries) == [
        (1, "carol", 9000, 0, None),
        (2, "alice", 9500, 500, 500),
        (3, "bob", 9600, 600, 100),
        (4, "dave", None, None, None),
    ]


def test_best_lap_zero_resets_allowed():
    entries = rank(best_lap_event(), RankingConfig("best_lap", resets_allowed_per_lap=0), RACERS)
    # limit 0: bob's 9600 (2 resets) is invalid, his best is 12000: alice 9700, bob +2300.
    assert table(entries)[:2] == [(1, "alice", 9700, 0, None), (2, "bob", 12000, 2300, 2300)]


def test_resets_over_limit_counted_in_summary():
    entries = rank(best_lap_event(), RankingConfig("best_lap", resets_allowed_per_lap=2), RACERS)
    alice = entries[1].summary
    # alice: 5 laps, valid 10000, 9800, 9700 -> 3/5; best 9700 = race 2 lap 1 at 2000+10
    assert (alice.valid_laps, alice.total_laps, alice.completion_ratio) == (3, 5, 0.6)
    assert (alice.best_lap_ms, alice.best_lap_race_id, alice.best_lap_number, alice.best_lap_at) == (
        9700, 2, 1, 2010.0,
    )  # fmt: skip
    assert alice.runs == 2
    # run 1: valid, invalid, valid -> longest streak 1; run 2: valid, invalid -> 1
    assert alice.most_consecutive_valid_laps == 1


# --------------------------------------------------------------------------- no time


def test_racers_with_only_invalid_laps_or_no_laps_do_not_crash():
    races = [
        race(1, "carol", L(9000, resets=9), L(9100, invalid=True)),
        race(2, "dave"),
        race(3, "bob", L(9500, invalid=True)),
    ]
    for method in ("best_lap", "best_average", "total_time"):
        config = RankingConfig(method, resets_allowed_per_lap=1, lap_target=3)
        entries = rank(races, config, RACERS)
        # nobody has a time: all three appear, ordered by username
        assert table(entries) == [
            (1, "bob", None, None, None),
            (2, "carol", None, None, None),
            (3, "dave", None, None, None),
        ]
        carol, dave = entries[1].summary, entries[2].summary
        # carol 0/2 valid -> ratio 0.0; dave has no lap -> ratio None
        assert (carol.valid_laps, carol.total_laps, carol.completion_ratio) == (0, 2, 0.0)
        assert (dave.valid_laps, dave.total_laps, dave.completion_ratio, dave.runs) == (
            0,
            0,
            None,
            1,
        )
        assert carol.best_lap_ms is None and carol.best_average_ms is None
        assert (carol.laps_completed, carol.total_time_ms, carol.reached_target) == (0, None, False)
        json.dumps([e.to_dict() for e in entries])  # serialisable


def test_empty_event():
    assert rank([], RankingConfig()) == []
    assert RankingState(RankingConfig()).rebuild([]) == []


# --------------------------------------------------------------------------- best average


def best_average_event():
    return [
        # alice: 10000 10200 9800 | 11000 (2 resets, invalid) | 9000 9100 9200
        # windows of 3 all valid: laps 1-3 = 30000; laps 5-7 = 27300 -> best 27300/3 = 9100
        race(
            1, "alice", L(10000), L(10200), L(9800), L(11000, resets=2), L(9000), L(9100), L(9200)
        ),
        # bob: 9000 9000 [struck out] 9000 -> an invalid lap breaks the window: no window in
        # run 1; run 2 has only 2 laps and windows never span runs -> no window; best lap 9000
        race(2, "bob", L(9000), L(9000), L(9000, invalid=True), L(9000), start=100),
        race(3, "bob", L(9100), L(9100), start=200),
        # carol: 9500 9500 9501 = 28501 -> 9500.333...
        race(4, "carol", L(9500), L(9500), L(9501), start=300),
        # erin: no window, best lap 8800 (better than bob's 9000)
        race(5, "erin", L(8800), L(9900), start=400),
        # dave: only invalid laps
        race(6, "dave", L(8000, resets=4), start=500),
    ]


def test_best_average_ranking():
    config = RankingConfig("best_average", resets_allowed_per_lap=1, averaging_window=3)
    entries = rank(best_average_event(), config, RACERS)
    # alice 27300/3 = 9100.0; carol 28501/3, gap (28501-27300)/3 = 1201/3;
    # then racers without a window by best lap: erin 8800, bob 9000; then dave (no valid lap)
    assert table(entries) == [
        (1, "alice", 9100.0, 0.0, None),
        (2, "carol", 28501 / 3, 1201 / 3, 1201 / 3),
        (3, "erin", None, None, None),
        (4, "bob", None, None, None),
        (5, "dave", None, None, None),
    ]
    alice = entries[0].summary
    assert (alice.best_average_ms, alice.best_average_race_id) == (9100.0, 1)
    assert (alice.best_average_first_lap, alice.best_average_last_lap, alice.best_average_at) == (
        5,
        7,
        70.0,
    )
    # alice streaks: 3 (laps 1-3) and 3 (laps 5-7)
    assert alice.most_consecutive_valid_laps == 3
    bob = entries[3].summary
    assert (bob.best_average_ms, bob.best_lap_ms, bob.most_consecutive_valid_laps) == (
        None,
        9000,
        2,
    )


def test_best_average_window_size():
    config = RankingConfig("best_average", resets_allowed_per_lap=1, averaging_window=4)
    entries = rank(best_average_event(), config, RACERS)
    # window 4: alice has no 4 valid laps in a row (3 + invalid + 3), nor anyone else;
    # everyone with valid laps is ranked by best lap: erin 8800, alice 9000, bob 9000
    # (alice's 9000 recorded at 50 s, bob's at 110 s -> alice first), carol 9500, dave.
    assert [e.racer_id for e in entries] == ["erin", "alice", "bob", "carol", "dave"]
    assert all(e.ranking_value_ms is None for e in entries)


def test_best_average_tie_completed_first_then_best_lap():
    config = RankingConfig("best_average", averaging_window=3)
    races = [
        # both 30000 -> 10000.0; alice's window completes at 1030 s, bob's at 1015 s
        race(1, "alice", L(10000), L(10000), L(10000), start=1000),
        race(2, "bob", L(9000, at=1005.0), L(11000, at=1010.0), L(10000, at=1015.0), start=1000),
    ]
    assert [e.racer_id for e in rank(races, config, RACERS)] == ["bob", "alice"]
    # same completion time 1030 s: next level is the best lap, alice 10000 vs carol 9500
    races = [
        race(1, "alice", L(10000), L(10000), L(10000), start=1000),
        race(3, "carol", L(9500), L(10500), L(10000), start=1000),
    ]
    entries = rank(races, config, RACERS)
    assert [e.racer_id for e in entries] == ["carol", "alice"]
    assert (entries[1].gap_to_leader_ms, entries[1].gap_to_ahead_ms) == (0.0, 0.0)


# --------------------------------------------------------------------------- total time


def total_time_event():
    return [
        # alice: 3 x 10000 -> target 3 reached, 30000
        race(1, "alice", L(10000), L(10000), L(10000), start=100),
        # bob run 1: 9000, 9000 (2 resets > 1: invalid, not counted), 9000, 9000 -> 27000
        race(2, "bob", L(9000), L(9000, resets=2), L(9000), L(9000), start=200),
        race(3, "bob", L(8000), L(8000), start=300),
        # carol: best run 2 valid laps 16000 (other run 1 lap)
        race(4, "carol", L(8000), L(8000), start=400),
        race(5, "carol", L(7000), start=500),
        # dave: 2 valid laps, 18500
        race(6, "dave", L(9000), L(9500), start=600),
        # erin: nothing valid
        race(7, "erin", L(5000, invalid=True), start=700),
        # frank: first 3 of 4 valid laps count: 60000
        race(8, "frank", L(20000), L(20000), L(20000), L(20000), start=800),
    ]


def test_total_time_lap_count_race():
    config = RankingConfig("total_time", resets_allowed_per_lap=1, lap_target=3)
    entries = rank(total_time_event(), config, RACERS)
    # reached: bob 27000, alice 30000 (+3000, +3000), frank 60000 (+33000, +30000);
    # not reached, most valid laps then lower total: carol 2 laps/16000, dave 2 laps/18500;
    # then erin (no valid lap)
    assert table(entries) == [
        (1, "bob", 27000, 0, None),
        (2, "alice", 30000, 3000, 3000),
        (3, "frank", 60000, 33000, 30000),
        (4, "carol", None, None, None),
        (5, "dave", None, None, None),
        (6, "erin", None, None, None),
    ]
    s = {e.racer_id: e.summary for e in entries}
    assert (s["bob"].total_time_ms, s["bob"].laps_completed, s["bob"].reached_target) == (
        27000,
        3,
        True,
    )
    assert (s["frank"].total_time_ms, s["frank"].laps_completed) == (60000, 3)
    assert (s["carol"].total_time_ms, s["carol"].laps_completed, s["carol"].reached_target) == (
        16000,
        2,
        False,
    )
    assert (s["dave"].total_time_ms, s["dave"].laps_completed) == (18500, 2)
    assert (s["erin"].total_time_ms, s["erin"].laps_completed, s["erin"].reached_target) == (
        None,
        0,
        False,
    )
    # bob's streaks: run 1 -> 1 then 2 (lap 2 invalid), run 2 -> 2
    assert s["bob"].most_consecutive_valid_laps == 2


def test_total_time_tie_completed_first():
    config = RankingConfig("total_time", lap_target=2)
    races = [
        # both 20000; alice's 2nd lap recorded at 1020 s, bob's at 1015 s
        race(1, "alice", L(10000), L(10000), start=1000),
        race(2, "bob", L(9000, at=1005.0), L(11000, at=1015.0), start=1000),
    ]
    assert [e.racer_id for e in rank(races, config, RACERS)] == ["bob", "alice"]


def test_lap_target_summary_in_best_lap_race():
    # a best-lap race with a lap target still fills the summary's total fields
    config = RankingConfig("best_lap", lap_target=2)
    entries = rank([race(1, "alice", L(10000), L(9000), L(8000))], config, RACERS)
    s = entries[0].summary
    assert (entries[0].ranking_value_ms, s.total_time_ms, s.laps_completed, s.reached_target) == (
        8000, 19000, 2, True,
    )  # fmt: skip
    # without a target they stay None
    s = rank([race(1, "alice", L(10000))], RankingConfig("best_lap"), RACERS)[0].summary
    assert (s.total_time_ms, s.laps_completed, s.reached_target) == (None, None, None)


# --------------------------------------------------------------------------- ties (best lap)


def test_tie_first_level_set_first():
    races = [
        # both 9000; alice's at 100 s, bob's at 50 s -> bob first, alice gaps 0 and 0
        race(1, "alice", L(9000, at=100.0), L(9100, at=110.0)),
        race(2, "bob", L(9000, at=50.0), L(9900, at=60.0)),
    ]
    entries = rank(races, RankingConfig("best_lap"), RACERS)
    assert table(entries) == [(1, "bob", 9000, 0, None), (2, "alice", 9000, 0, 0)]


def test_tie_second_level_next_best_lap():
    races = [
        # all 9000 at 10 s; next-best: dave 9400 < carol 9500; erin has no second lap -> last
        race(1, "carol", L(9000, at=10.0), L(9500, at=20.0)),
        race(2, "dave", L(9000, at=10.0), L(9400, at=20.0)),
        race(3, "erin", L(9000, at=10.0)),
    ]
    entries = rank(races, RankingConfig("best_lap"), RACERS)
    assert [e.racer_id for e in entries] == ["dave", "carol", "erin"]
    # the next-best lap may come from another run, and an equal time counts: frank's
    # two 9000 laps (second-best 9000) beat dave's 9400
    races.append(race(4, "frank", L(9000, at=10.0), start=0))
    races.append(race(5, "frank", L(9000, at=30.0), start=20))
    assert [e.racer_id for e in rank(races, RankingConfig("best_lap"), RACERS)][:2] == [
        "frank",
        "dave",
    ]


def test_tie_last_level_username():
    racers = [RacerInfo(1, "Zed"), RacerInfo(2, "amy"), RacerInfo(3, "Bea")]
    races = [race(n, n, L(9000, at=10.0), L(9500, at=20.0)) for n in (1, 2, 3)]
    # fully tied: case-folded username: amy, Bea, Zed; ranks still 1, 2, 3
    entries = rank(races, RankingConfig("best_lap"), racers)
    assert [(e.rank, e.username) for e in entries] == [(1, "amy"), (2, "Bea"), (3, "Zed")]


def test_best_lap_within_racer_keeps_first_set():
    # alice rides 9000 twice: the best lap is the one recorded first (run 2, at 15 s)
    races = [
        race(1, "alice", L(9000, at=40.0), start=30),
        race(2, "alice", L(9000, at=15.0), start=5),
    ]
    s = rank(races, RankingConfig("best_lap"), RACERS)[0].summary
    assert (s.best_lap_ms, s.best_lap_race_id, s.best_lap_at) == (9000, 2, 15.0)


# --------------------------------------------------------------------------- gaps & summary


def test_gaps():
    races = [
        race(1, "alice", L(9000)),
        race(2, "bob", L(9250)),
        race(3, "carol", L(9700)),
        race(4, "dave", L(8000, invalid=True)),
    ]
    # leader 9000; bob +250/+250; carol +700 to the leader, +450 to bob; dave None
    assert table(rank(races, RankingConfig("best_lap"), RACERS)) == [
        (1, "alice", 9000, 0, None),
        (2, "bob", 9250, 250, 250),
        (3, "carol", 9700, 700, 450),
        (4, "dave", None, None, None),
    ]


def test_summary_fields():
    config = RankingConfig(
        "best_average", resets_allowed_per_lap=2, averaging_window=3, lap_target=3
    )
    races = [
        # race 1 (start 1000): 10000 | 9500 (3 resets: invalid) | 9800 9700 9900 | 9600 struck out
        race(
            1,
            "alice",
            L(10000),
            L(9500, resets=3),
            L(9800),
            L(9700),
            L(9900),
            L(9600, invalid=True),
            start=1000,
        ),
        # race 2 (start 2000, by proxy): 9400 9900 9900 10500
        race(2, "alice", L(9400), L(9900), L(9900), L(10500), start=2000, proxy=True),
    ]
    (entry,) = rank(races, config, RACERS)
    s = entry.summary
    # best lap 9400 = race 2 lap 1, recorded 2000 + 10
    assert (s.best_lap_ms, s.best_lap_race_id, s.best_lap_number, s.best_lap_at) == (
        9400,
        2,
        1,
        2010.0,
    )
    # windows: race 1 laps 3-5 = 29400; race 2 laps 1-3 = 29200, laps 2-4 = 30300 -> 29200/3
    assert entry.ranking_value_ms == s.best_average_ms == 29200 / 3
    assert (s.best_average_race_id, s.best_average_first_lap, s.best_average_last_lap) == (2, 1, 3)
    assert s.best_average_at == 2030.0
    # valid: race 1 laps 1,3,4,5 (4 of 6); race 2 all 4 -> 8 of 10
    assert (s.valid_laps, s.total_laps, s.completion_ratio, s.runs) == (8, 10, 0.8, 2)
    # streaks: race 1 -> 3 (laps 3-5); race 2 -> 4
    assert s.most_consecutive_valid_laps == 4
    # target 3: race 1 10000+9800+9700 = 29500; race 2 9400+9900+9900 = 29200 -> 29200
    assert (s.total_time_ms, s.laps_completed, s.reached_target) == (29200, 3, True)
    assert s.raced_by_proxy is True
    d = entry.to_dict()
    assert d["rank"] == 1 and d["username"] == "alice" and d["country"] == "DE"
    assert d["summary"]["valid_laps"] == 8 and d["summary"]["best_lap_at"] == 2010.0
    assert set(d["summary"]) >= {
        "best_lap_ms", "best_lap_at", "best_average_ms", "best_average_race_id",
        "best_average_first_lap", "best_average_last_lap", "valid_laps", "total_laps",
        "completion_ratio", "runs", "most_consecutive_valid_laps", "total_time_ms",
        "laps_completed", "raced_by_proxy",
    }  # fmt: skip
    json.dumps(d)


def test_unknown_racer_shown_by_id():
    (entry,) = rank([race(1, 42, L(9000))], RankingConfig("best_lap"))
    assert (entry.username, entry.country) == ("42", None)


# --------------------------------------------------------------------------- combined


def combined_event():
    return [
        race(1, "alice", L(9500), L(9600), L(9700), track="T1"),
        race(2, "alice", L(9200), L(9800), track="T2", start=100),
        race(3, "bob", L(9300), L(9300), L(9300), track="T1", start=200),
    ]


def test_combined_best_over_all_tracks():
    config = RankingConfig("best_lap")
    t1 = [r for r in combined_event() if r.track_id == "T1"]
    # track T1 alone: bob 9300, alice 9500
    assert table(rank(t1, config, RACERS)) == [
        (1, "bob", 9300, 0, None),
        (2, "alice", 9500, 200, 200),
    ]
    # combined: alice's best over T1 and T2 is 9200 -> alice 9200, bob 9300 (+100)
    entries = rank_combined(combined_event(), config, RACERS)
    assert table(entries) == [(1, "alice", 9200, 0, None), (2, "bob", 9300, 100, 100)]
    # counts add up over the tracks: alice 2 runs, 5 laps
    assert (entries[0].summary.runs, entries[0].summary.total_laps) == (2, 5)


def test_combined_best_average_window_from_one_run():
    config = RankingConfig("best_average", averaging_window=3)
    entries = rank_combined(combined_event(), config, RACERS)
    # alice: T1 run 9500+9600+9700 = 28800 (T2 run has 2 laps, no window, never joined
    # with T1); bob 27900 -> bob 9300.0, alice 9600.0 (+300.0)
    assert table(entries) == [(1, "bob", 9300.0, 0.0, None), (2, "alice", 9600.0, 300.0, 300.0)]


def test_single_track_rank_refuses_several_tracks():
    with pytest.raises(ValueError, match="track"):
        rank(combined_event(), RankingConfig(), RACERS)


# --------------------------------------------------------------------------- edits & inputs


def test_edit_and_delete_then_rebuild():
    config = RankingConfig("best_lap", resets_allowed_per_lap=2)
    races = best_lap_event()
    state = RankingState(config, RACERS)
    assert [e.racer_id for e in state.rebuild(races)] == ["bob", "alice", "carol", "dave"]
    # the operator strikes out bob's 9600: bob's best is now 12000 -> alice 9700, bob +2300
    races[2].laps[0].invalidated = True
    entries = state.rebuild(races)
    assert table(entries)[:2] == [(1, "alice", 9700, 0, None), (2, "bob", 12000, 2300, 2300)]
    # alice's run 2 is deleted: her best is 9800 (run 1) -> alice 9800, bob +2200
    del races[1]
    entries = state.rebuild(races)
    assert table(entries)[:2] == [(1, "alice", 9800, 0, None), (2, "bob", 12000, 2200, 2200)]
    assert entries[0].summary.runs == 1
    # dave's only run is deleted: dave leaves the leaderboard
    del races[-1]
    assert [e.racer_id for e in state.rebuild(races)] == ["alice", "bob", "carol"]
    assert state.entries() == rank(races, config, RACERS)


def test_laps_in_any_order():
    config = RankingConfig("best_average", averaging_window=3)
    r = race(1, "alice", L(9000), L(9100), L(9200), L(12000, invalid=True), L(8000))
    shuffled = RaceInput(1, "alice", "T1", 0.0, [r.laps[i] for i in (4, 2, 0, 3, 1)])
    assert rank([shuffled], config, RACERS) == rank([r], config, RACERS)
    assert [lap.lap_number for lap in shuffled.laps] == [5, 3, 1, 4, 2]  # input not changed


def test_bad_input_rejected():
    r = race(1, "alice", L(9000), L(9100))
    r.laps[1].lap_number = 1
    with pytest.raises(ValueError, match="lap number 1 twice"):
        rank([r], RankingConfig(), RACERS)
    with pytest.raises(ValueError, match="twice"):
        rank([race(1, "alice", L(9000)), race(1, "bob", L(9000))], RankingConfig(), RACERS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "fastest"},
        {"averaging_window": 2},
        {"averaging_window": 8},
        {"resets_allowed_per_lap": -1},
        {"lap_target": 0},
        {"method": "total_time"},  # needs a lap target
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        RankingConfig(**kwargs)
