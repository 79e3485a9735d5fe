"""Drive a pilot for a number of laps in the simulator and measure it.

Used by the demo model builder and ``bench/train.py``: the same harness drives the
trained model and the reference pilot, on the same track, with the same camera
randomisation (colours, lighting, texture, sensor noise) and the same speed limit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from car_client.pilots.base import Pilot
from car_client.sim.camera import Camera
from car_client.sim.dynamics import CarParams
from car_client.sim.loop import DriveLoop
from car_client.sim.reference import ReferencePilot
from car_client.sim.tracks import load_track
from car_client.sim.world import Simulation


@dataclass
class LapStats:
    """Result of one drive: ``laps`` completed of ``laps_wanted``, ``resets`` in total,
    lap times in ms, ``sim_s`` simulated seconds, ``frames``."""

    track: str
    pilot: str
    laps_wanted: int
    laps: int
    resets: int
    lap_times_ms: list
    sim_s: float
    frames: int
    max_speed_mps: float | None

    @property
    def resets_per_lap(self) -> float:
        """Resets divided by laps completed (all resets when no lap was completed)."""
        return self.resets / self.laps if self.laps else float(self.resets)

    @property
    def mean_lap_ms(self) -> float:
        """Mean lap time in ms (NaN without a completed lap)."""
        return sum(self.lap_times_ms) / len(self.lap_times_ms) if self.lap_times_ms else math.nan

    def as_dict(self) -> dict:
        """Plain dict with the derived figures added."""
        d = asdict(self)
        d.update(resets_per_lap=self.resets_per_lap, mean_lap_ms=self.mean_lap_ms)
        return d


def drive_laps(pilot: Pilot, track_name: str, laps: int = 10,
               max_speed_mps: float | None = None, randomize: bool = True, seed: int = 0,
               params: CarParams | None = None, max_sim_s: float | None = None) -> LapStats:
    """Drive ``pilot`` on ``track_name`` until ``laps`` laps or ``max_sim_s`` sim seconds
    (default: time for the laps at 0.4 m/s). ``max_speed_mps`` caps the pilot's speed.
    Raises ``FileNotFoundError`` for an unknown track."""
    track = load_track(track_name)
    params = params or CarParams()
    sim = Simulation(track, params)
    camera = None
    if pilot.camera_mode is not None:
        camera = Camera(track, randomize=randomize, seed=seed)
    loop = DriveLoop(sim, pilot, camera, max_speed_mps=max_speed_mps, speedup=math.inf)
    budget = max_sim_s if max_sim_s is not None else laps * track.length / 0.4
    summary = loop.run(laps=laps, max_sim_s=budget)
    return LapStats(track=track.name, pilot=pilot.name or type(pilot).__name__,
                    laps_wanted=laps, laps=len(summary.laps), resets=summary.resets,
                    lap_times_ms=[lap.lap_time_ms for lap in summary.laps],
                    sim_s=summary.sim_time_s, frames=summary.frames,
                    max_speed_mps=max_speed_mps)


def drive_reference(track_name: str, laps: int = 10, max_speed_mps: float | None = None,
                    params: CarParams | None = None) -> LapStats:
    """The reference pilot's drive on ``track_name`` at the same speed limit (m/s)."""
    params = params or CarParams()
    track = load_track(track_name)
    pilot = ReferencePilot(track, params)
    return drive_laps(pilot, track_name, laps, max_speed_mps, randomize=False, params=params)
