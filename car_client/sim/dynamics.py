"""Vehicle model of a 1/18 car: kinematic bicycle with speed, steering and grip limits.

State: centre position ``x, y`` (m), ``heading`` (rad, counter-clockwise from +x),
``speed`` (m/s, negative when reversing), front wheel angle ``steer_deg`` (degrees,
positive turns left, as in DeepRacer action spaces).

* speed follows the commanded speed within the acceleration and braking limits;
* the steering servo turns at a limited rate, optionally after a pure delay;
* the yaw rate is ``v * tan(steer) / wheelbase`` until the lateral acceleration
  ``v * yaw_rate`` reaches the grip limit; beyond it the car turns only as much as the
  tyres allow (it slides wide, scrubbing speed), which is how a car entering a bend too
  fast leaves the track.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class CarParams:
    """Physical limits of the simulated car (a 1/18 DeepRacer-sized car by default).

    Lengths in m, speeds in m/s, accelerations in m/s^2, angles in degrees, times in s.
    """

    wheelbase_m: float = 0.165
    wheel_track_m: float = 0.155
    max_steer_deg: float = 30.0
    max_speed_mps: float = 4.0
    max_reverse_mps: float = 1.0
    max_accel_mps2: float = 3.0
    max_brake_mps2: float = 6.0
    grip_mps2: float = 6.0
    steer_rate_dps: float = 450.0
    steering_delay_s: float = 0.0
    slide_scrub: float = 0.5  # braking while sliding, as a fraction of grip

    def with_(self, **changes) -> CarParams:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class CarState:
    """Pose and motion of the car: m, rad, m/s, degrees; ``sliding`` is True while the
    grip limit is cutting the yaw rate."""

    x: float
    y: float
    heading: float
    speed: float = 0.0
    steer_deg: float = 0.0
    sliding: bool = False


class CarModel:
    """Integrates :class:`CarState` under commands; not thread-safe (one driving thread)."""

    def __init__(self, params: CarParams | None = None, state: CarState | None = None) -> None:
        self.params = params or CarParams()
        self.state = state or CarState(0.0, 0.0, 0.0)
        self._target_speed = 0.0
        self._target_steer = 0.0
        self._pending: deque[tuple[float, float]] = deque()

    def place(self, x: float, y: float, heading: float) -> None:
        """Put the car at rest at ``(x, y)`` m facing ``heading`` rad; clears commands."""
        self.state = CarState(x, y, heading)
        self._target_speed = 0.0
        self._target_steer = 0.0
        self._pending.clear()

    def command(self, steering_deg: float, speed_mps: float, now_s: float) -> None:
        """Ask for a wheel angle (degrees, +left) and a speed (m/s) at sim time ``now_s``.

        Values are clipped to the car's limits; with ``steering_delay_s`` the steering
        takes effect that much later (the speed at once)."""
        p = self.params
        steer = float(np.clip(steering_deg, -p.max_steer_deg, p.max_steer_deg))
        self._target_speed = float(np.clip(speed_mps, -p.max_reverse_mps, p.max_speed_mps))
        if p.steering_delay_s <= 0:
            self._target_steer = steer
        else:
            self._pending.append((now_s + p.steering_delay_s, steer))

    def stop(self) -> None:
        """Command zero speed and straight wheels (the car brakes at its limit)."""
        self._target_speed = 0.0

    def halt(self) -> None:
        """Stop dead at once (emergency stop / marshal picks the car up)."""
        self._target_speed = 0.0
        self.state.speed = 0.0

    def step(self, dt: float, now_s: float) -> None:
        """Advance ``dt`` seconds; ``now_s`` is the sim time at the end of the step."""
        p = self.params
        st = self.state
        while self._pending and self._pending[0][0] <= now_s + 1e-9:
            self._target_steer = self._pending.popleft()[1]
        # steering servo
        max_turn = p.steer_rate_dps * dt
        st.steer_deg += float(np.clip(self._target_steer - st.steer_deg, -max_turn, max_turn))
        # longitudinal
        dv = self._target_speed - st.speed
        braking = st.speed * dv < 0 or self._target_speed == 0.0
        limit = (p.max_brake_mps2 if braking else p.max_accel_mps2) * dt
        st.speed += float(np.clip(dv, -limit, limit))
        # lateral: kinematic yaw rate, capped by grip
        v = st.speed
        yaw_rate = v * math.tan(math.radians(st.steer_deg)) / p.wheelbase_m
        lat = abs(v * yaw_rate)
        st.sliding = lat > p.grip_mps2
        if st.sliding:
            yaw_rate = math.copysign(p.grip_mps2 / max(abs(v), 1e-6), yaw_rate)
            scrub = p.slide_scrub * p.grip_mps2 * dt  # tyres scrubbing sideways
            st.speed = math.copysign(max(abs(v) - scrub, 0.0), v)
        mid_heading = st.heading + 0.5 * yaw_rate * dt
        st.x += v * math.cos(mid_heading) * dt
        st.y += v * math.sin(mid_heading) * dt
        st.heading = (st.heading + yaw_rate * dt + math.pi) % (2 * math.pi) - math.pi

    def wheel_positions(self) -> np.ndarray:
        """Contact points of the four wheels, shape ``(4, 2)`` (m): FL, FR, RL, RR."""
        p = self.params
        st = self.state
        c, s = math.cos(st.heading), math.sin(st.heading)
        hx, hy = 0.5 * p.wheelbase_m, 0.5 * p.wheel_track_m
        local = np.array([[hx, hy], [hx, -hy], [-hx, hy], [-hx, -hy]])
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.array([st.x, st.y])
