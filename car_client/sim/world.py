"""One car on one track: physics sub-steps, off-track resets and lap timing.

The car is off the track when all four wheels are outside the drivable surface (the
region between the border polygons, see :mod:`car_client.sim.tracks`). Then a marshal
puts it back at rest on the centre line at the nearest point - never further along
than where it last had a wheel on the track - facing the direction of travel; the
reset is counted in the current lap and the clock runs on for ``reset_penalty_s``
(default 2 s) while the car is carried back.
"""

from __future__ import annotations

from dataclasses import dataclass

from car_client.pilots.base import Pose
from car_client.sim.dynamics import CarModel, CarParams
from car_client.sim.timing import LapResult, LapTimer
from car_client.sim.tracks import Track

DEFAULT_RESET_PENALTY_S = 2.0


@dataclass(frozen=True)
class ResetEvent:
    """The car left the track at ``(x, y)`` m at sim time ``t_s`` during lap
    ``lap_number`` (1-based, the lap in progress) and was put back."""

    t_s: float
    x: float
    y: float
    lap_number: int


class Simulation:
    """A car on ``track`` driven by :meth:`step`; the clock ``t`` is in seconds.

    substep_s: physics step (s); record_path: keep the driven ``(x, y)`` points in
    :attr:`path` and reset points in :attr:`reset_points` (for plotting).
    """

    def __init__(self, track: Track, params: CarParams | None = None,
                 reset_penalty_s: float = DEFAULT_RESET_PENALTY_S, substep_s: float = 1 / 60,
                 record_path: bool = False) -> None:
        self.track = track
        self.car = CarModel(params)
        self.reset_penalty_s = float(reset_penalty_s)
        self.substep_s = float(substep_s)
        self.record_path = record_path
        self.path: list[tuple[float, float]] = []
        self.reset_points: list[tuple[float, float]] = []
        self.t = 0.0
        self.timer = LapTimer(track, 0.0)
        self.restart()

    def restart(self) -> None:
        """Put the car at rest on the start line, facing forward, and restart lap timing
        at the current sim time."""
        x, y, heading = self.track.point_at(0.0)
        self.car.place(x, y, heading)
        self.timer.restart(self.t)
        self._last_on_track_u = 0.0
        if self.record_path:
            self.path.append((float("nan"), float("nan")))
            self.path.append((x, y))

    def pose(self) -> Pose:
        """Ground truth pose of the car now."""
        st = self.car.state
        return Pose(st.x, st.y, st.heading, st.speed, self.timer.segment)

    @property
    def laps(self) -> list[LapResult]:
        """Laps completed since the last :meth:`restart`."""
        return self.timer.laps

    @property
    def resets(self) -> int:
        """Resets since the last :meth:`restart`."""
        return self.timer.resets_total

    def step(self, steering_deg: float, speed_mps: float, dt: float) -> list:
        """Command the car and advance ``dt`` seconds of sim time.

        steering_deg: wheel angle (degrees, +left); speed_mps: wanted speed (m/s).
        Returns the :class:`LapResult` and :class:`ResetEvent` objects that happened,
        in order.
        """
        events: list = []
        self.car.command(steering_deg, speed_mps, self.t)
        n = max(1, int(round(dt / self.substep_s)))
        h = dt / n
        for _ in range(n):
            t_prev = self.t
            self.t = t_prev + h
            self.car.step(h, self.t)
            st = self.car.state
            lap = self.timer.update(st.x, st.y, t_prev, self.t)
            if lap is not None:
                events.append(lap)
                if not self.track.is_loop:  # end of an open track: carry back to the start
                    x, y, heading = self.track.point_at(0.0)
                    self.car.place(x, y, heading)
                    self._last_on_track_u = 0.0
            wheels_on = self.track.on_track(self.car.wheel_positions(), near=self.timer.segment)
            if wheels_on.any():
                self._last_on_track_u = self.timer.u
            else:
                events.append(self._reset())
                break  # the marshal's time replaces the rest of this step
            if self.record_path:
                self.path.append((st.x, st.y))
        return events

    def _reset(self) -> ResetEvent:
        st = self.car.state
        event = ResetEvent(self.t, st.x, st.y, self.timer.laps_done + 1)
        u_new = min(self.timer.u, self._last_on_track_u)
        self.timer.count_reset(u_new)
        x, y, heading = self.track.point_at(u_new)
        self.car.place(x, y, heading)
        self.t += self.reset_penalty_s
        if self.record_path:
            self.reset_points.append((event.x, event.y))
            self.path.append((float("nan"), float("nan")))
            self.path.append((x, y))
        return event
