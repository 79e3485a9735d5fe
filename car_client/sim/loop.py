"""The driving loop: camera -> pilot -> car, once per camera frame.

At each frame (15 Hz by default) the camera renders what the car sees (skipped for a
pilot that needs only the pose), the pilot decides, the max-speed cap is applied and the
simulation advances one frame. Completed laps go to ``on_lap`` the moment they happen.

Pacing: ``speedup=1`` runs in real time, ``speedup=k`` k times faster, and
``speedup=float('inf')`` as fast as the machine allows.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from car_client.pilots.base import Pilot
from car_client.sim.camera import Camera
from car_client.sim.timing import LapResult
from car_client.sim.world import ResetEvent, Simulation

DEFAULT_RATE_HZ = 15.0


@dataclass
class DriveSummary:
    """How a drive went: laps, resets, sim and wall seconds, frames, why it ended
    (``"laps"``, ``"time"`` or ``"stopped"``)."""

    laps: list[LapResult] = field(default_factory=list)
    resets: int = 0
    sim_time_s: float = 0.0
    wall_time_s: float = 0.0
    frames: int = 0
    ended_by: str = ""

    @property
    def realtime_factor(self) -> float:
        """Simulated seconds per wall second."""
        return self.sim_time_s / self.wall_time_s if self.wall_time_s > 0 else math.inf


class DriveLoop:
    """Drives ``pilot`` in ``sim`` at ``rate_hz``.

    camera: needed when ``pilot.camera_mode`` is not None (else ``ValueError``);
    max_speed_mps: cap on the pilot's speed (m/s), may be changed while driving;
    on_lap(LapResult), on_reset(ResetEvent), on_frame(image, Action) callbacks run in the
    driving thread.
    """

    def __init__(self, sim: Simulation, pilot: Pilot, camera: Camera | None = None,
                 rate_hz: float = DEFAULT_RATE_HZ, max_speed_mps: float | None = None,
                 speedup: float = 1.0,
                 on_lap: Callable[[LapResult], None] | None = None,
                 on_reset: Callable[[ResetEvent], None] | None = None,
                 on_frame: Callable | None = None) -> None:
        if pilot.camera_mode is not None and camera is None:
            raise ValueError(f"pilot {pilot.name!r} needs a camera")
        if speedup <= 0:
            raise ValueError("speedup must be > 0 (use float('inf') for as fast as possible)")
        self.sim = sim
        self.pilot = pilot
        self.camera = camera
        self.dt = 1.0 / rate_hz
        self.max_speed_mps = max_speed_mps
        self.speedup = speedup
        self.on_lap = on_lap
        self.on_reset = on_reset
        self.on_frame = on_frame

    def frame(self) -> list:
        """Run one camera frame; returns the sim events (laps, resets) it produced."""
        pose = self.sim.pose()
        image = None
        if self.pilot.camera_mode is not None:
            image = self.camera.render(pose.x, pose.y, pose.heading,
                                       colour=self.pilot.camera_mode == "rgb")
        action = self.pilot.act(image, pose)
        speed = action.speed_mps
        cap = self.max_speed_mps
        if cap is not None:
            speed = max(-cap, min(speed, cap))
        if self.on_frame is not None:
            self.on_frame(image, action)
        events = self.sim.step(action.steering_deg, speed, self.dt)
        for ev in events:
            if isinstance(ev, LapResult) and self.on_lap is not None:
                self.on_lap(ev)
            elif isinstance(ev, ResetEvent) and self.on_reset is not None:
                self.on_reset(ev)
        return events

    def run(self, laps: int | None = None, max_sim_s: float | None = None,
            stop: threading.Event | None = None) -> DriveSummary:
        """Drive until ``laps`` laps are done, ``max_sim_s`` simulated seconds have passed
        or ``stop`` is set (at least one limit, or ``stop``, is required: ValueError)."""
        if laps is None and max_sim_s is None and stop is None:
            raise ValueError("give laps, max_sim_s or a stop event")
        summary = DriveSummary()
        stop = stop or threading.Event()
        sim_start = self.sim.t
        wall_start = time.perf_counter()
        paced = math.isfinite(self.speedup)
        while True:
            if stop.is_set():
                summary.ended_by = "stopped"
                break
            if laps is not None and len(summary.laps) >= laps:
                summary.ended_by = "laps"
                break
            if max_sim_s is not None and self.sim.t - sim_start >= max_sim_s:
                summary.ended_by = "time"
                break
            for ev in self.frame():
                if isinstance(ev, LapResult):
                    summary.laps.append(ev)
                else:
                    summary.resets += 1
            summary.frames += 1
            if paced:
                ahead = wall_start + (self.sim.t - sim_start) / self.speedup - time.perf_counter()
                if ahead > 0:
                    stop.wait(ahead)
        summary.sim_time_s = self.sim.t - sim_start
        summary.wall_time_s = time.perf_counter() - wall_start
        return summary
