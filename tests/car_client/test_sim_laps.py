"""Lap timing, off-track resets and the reference pilot on every loop track."""

from __future__ import annotations

import math

import numpy as np
import pytest

from car_client.pilots.base import Action
from car_client.sim.loop import DriveLoop
from car_client.sim.reference import ReferencePilot
from car_client.sim.timing import LapResult, LapTimer
from car_client.sim.tracks import Track, load_track, tracks_dir
from car_client.sim.world import ResetEvent, Simulation

LOOPS = ["reInvent2019_track", "reInvent2019_wide", "reinvent_base",
         "2022_reinvent_champ_cw", "2022_summit_speedway"]
INF = math.inf


@pytest.fixture(scope="module")
def base() -> Track:
    return load_track("reinvent_base")


@pytest.mark.parametrize("name", LOOPS)
def test_reference_pilot_laps_every_loop_track_without_resets(name):
    track = load_track(name)
    sim = Simulation(track)
    reported = []
    summary = DriveLoop(sim, ReferencePilot(track), speedup=INF,
                        on_lap=reported.append).run(laps=2, max_sim_s=120)
    assert summary.ended_by == "laps"
    assert summary.resets == 0
    assert [lap.lap_number for lap in reported] == [1, 2]
    assert all(lap.resets == 0 for lap in reported)
    for lap in reported:
        assert isinstance(lap.lap_time_ms, int)
        # faster than 1 m/s, slower than the top speed of 4 m/s
        assert track.length / 4.0 * 1000 < lap.lap_time_ms < track.length / 1.0 * 1000
    # a flying lap is faster than the standing-start first lap
    assert reported[1].lap_time_ms < reported[0].lap_time_ms


def walk(timer: LapTimer, track: Track, s_values, t0=0.0, dt=0.05):
    """Move the timer's car along the centre line through ``s_values`` (m, unwrapped)."""
    laps, t = [], t0
    for s in s_values:
        x, y, _ = track.point_at(s)
        lap = timer.update(x, y, t, t + dt)
        t += dt
        if lap is not None:
            laps.append(lap)
    return laps, t


def test_a_lap_is_counted_exactly_once_per_crossing(base):
    timer = LapTimer(base)
    L = base.length
    # forward to just short of the line, then over it, dithering back and forth across it
    path = list(np.arange(0.1, L - 0.05, 0.1)) + [L + 0.05, L - 0.03, L + 0.04, L - 0.02,
                                                   L + 0.1, L + 0.2]
    laps, _ = walk(timer, base, path)
    assert len(laps) == 1
    assert laps[0].lap_number == 1
    # the crossing is interpolated inside the step: it happened between two samples
    i = path.index(L + 0.05)
    assert i * 0.05 < laps[0].lap_time_ms / 1000 <= (i + 1) * 0.05
    # a second full lap counts lap 2, once
    laps2, _ = walk(timer, base, np.arange(L + 0.3, 2 * L + 0.5, 0.1), t0=10.0)
    assert [lap.lap_number for lap in laps2] == [2]


def test_driving_backwards_over_the_line_never_counts(base):
    timer = LapTimer(base)
    L = base.length
    # reverse over the start line and around the whole track backwards, twice
    laps, _ = walk(timer, base, np.arange(-0.1, -2.2 * L, -0.1))
    assert laps == []
    assert timer.u < -2 * L
    # then forward again: crossing the line forwards to undo the reversing still is no lap
    laps, _ = walk(timer, base, np.arange(-2.2 * L, -0.5, 0.1))
    assert laps == []


def test_the_car_driving_the_wrong_way_round_counts_no_lap(base):
    """A pilot following the track reversed drives the real track backwards."""
    w = np.load(tracks_dir() / "reinvent_base.npy")[::-1]
    reverse = Track.from_array("reverse", np.hstack([w[:, 0:2], w[:, 4:6], w[:, 2:4]]))
    sim = Simulation(base)
    x, y, h = base.point_at(0.0)
    sim.car.place(x, y, h + math.pi)  # on the start line, facing the wrong way
    summary = DriveLoop(sim, ReferencePilot(reverse), speedup=INF).run(max_sim_s=25)
    assert sim.timer.u < -base.length  # it did go more than a lap the wrong way
    assert summary.laps == []


def test_driving_straight_into_a_bend_leaves_the_track_and_resets(base):
    sim = Simulation(base, reset_penalty_s=2.0)
    events = []
    for _ in range(200):
        events += sim.step(0.0, 2.0, 1 / 15)
        if events:
            break
    assert len(events) == 1 and isinstance(events[0], ResetEvent)
    reset = events[0]
    # all four wheels were off the track when it was called
    assert not base.on_track(np.array([[reset.x, reset.y]])).any()
    # the car is back on the centre line, at rest, facing along the track, 2 s later
    st = sim.car.state
    p = base.project(st.x, st.y)
    assert p.distance < 1e-6
    assert st.speed == 0.0
    assert st.heading == pytest.approx(base.point_at(p.s)[2], abs=1e-6)
    assert sim.t == pytest.approx(reset.t_s + 2.0)
    assert sim.resets == 1
    # no progress was gained by leaving the track
    assert sim.timer.u <= math.hypot(reset.x - base.centre[0, 0], reset.y - base.centre[0, 1]) + 0.5


class FlatOut(ReferencePilot):
    """The reference steering at full speed: too fast for the bends."""

    def act(self, image, pose=None):
        return Action(super().act(image, pose).steering_deg, 4.0)


def test_too_fast_into_bends_slides_off_and_resets_count_in_the_lap(base):
    sim = Simulation(base)
    laps = []
    summary = DriveLoop(sim, FlatOut(base), speedup=INF, on_lap=laps.append).run(
        laps=1, max_sim_s=60)
    assert summary.resets >= 1
    assert len(laps) == 1
    assert laps[0].resets == summary.resets
    # the marshal penalty makes the lap slower than the reference lap
    ref = DriveLoop(Simulation(base), ReferencePilot(base), speedup=INF).run(laps=1)
    assert laps[0].lap_time_ms > ref.laps[0].lap_time_ms + 2000 * (summary.resets - 1)


def test_max_speed_cap_slows_the_lap(base):
    sim = Simulation(base)
    capped = DriveLoop(sim, ReferencePilot(base), speedup=INF, max_speed_mps=1.0).run(laps=1)
    lap = capped.laps[0]
    assert lap.lap_time_ms >= base.length / 1.0 * 1000 * 0.99
    assert lap.resets == 0


def test_open_track_counts_runs_end_to_end():
    track = load_track("Straight_track")
    sim = Simulation(track)
    out = DriveLoop(sim, ReferencePilot(track), speedup=INF).run(laps=2, max_sim_s=30)
    assert [lap.lap_number for lap in out.laps] == [1, 2]
    assert all(isinstance(lap, LapResult) and lap.resets == 0 for lap in out.laps)


def test_real_time_pacing():
    track = load_track("reinvent_base")
    out = DriveLoop(Simulation(track), ReferencePilot(track), speedup=10.0).run(max_sim_s=1.0)
    # 1 simulated second at 10x takes about 0.1 s of wall time
    assert 0.09 <= out.wall_time_s < 0.5
    assert out.frames == 15
