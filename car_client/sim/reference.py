"""The reference pilot: pure pursuit on the centre line with a grip-aware speed plan.

It drives from the ground-truth pose (no camera), so it serves as the simulator's
test driver and gives each track a baseline lap time. The speed plan keeps the lateral
acceleration at ``grip_margin`` of the car's grip limit in every bend and brakes early
enough (at ``brake_margin`` of the braking limit) to get there.
"""

from __future__ import annotations

import math

import numpy as np

from car_client.pilots.base import Action, Pilot, Pose
from car_client.sim.dynamics import CarParams
from car_client.sim.tracks import Track


def curvature_profile(track: Track, step_m: float = 0.05, span_m: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Curvature of the centre line sampled every ``step_m`` metres.

    Returns ``(s, kappa)``: distances along the line (m) and unsigned curvature (1/m)
    from the circle through the points ``span_m`` behind and ahead of each sample."""
    s = np.arange(0.0, track.length, step_m)
    pts = np.array([track.point_at(v)[:2] for v in s])
    k = max(1, int(round(span_m / step_m)))
    if track.is_loop:
        a, c = np.roll(pts, k, axis=0), np.roll(pts, -k, axis=0)
    else:
        idx = np.arange(len(pts))
        a, c = pts[np.clip(idx - k, 0, len(pts) - 1)], pts[np.clip(idx + k, 0, len(pts) - 1)]
    b = pts
    ab = np.hypot(*(b - a).T)
    bc = np.hypot(*(c - b).T)
    ca = np.hypot(*(a - c).T)
    cross = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(ab * bc * ca > 1e-12, 2.0 * cross / (ab * bc * ca), 0.0)
    return s, kappa


def speed_plan(track: Track, params: CarParams, grip_margin: float = 0.8,
               brake_margin: float = 0.6, step_m: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Target speed along the centre line: ``(s, v)`` in m and m/s.

    ``v <= sqrt(grip_margin * grip / curvature)`` and ``v <= max_speed``, then lowered
    wherever the car could not brake down in time for what follows."""
    s, kappa = curvature_profile(track, step_m)
    grip = grip_margin * params.grip_mps2
    v = np.minimum(params.max_speed_mps, np.sqrt(grip / np.maximum(kappa, 1e-6)))
    decel = brake_margin * params.max_brake_mps2
    n = len(v)
    passes = 2 if track.is_loop else 1
    for _ in range(passes):
        for i in range(n - 1, -1, -1):
            j = i + 1
            if j == n:
                if not track.is_loop:
                    continue
                j = 0
            v[i] = min(v[i], math.sqrt(v[j] ** 2 + 2 * decel * step_m))
    return s, v


class ReferencePilot(Pilot):
    """Pure pursuit on ``track`` for a car with ``params`` (needs :class:`Pose`).

    lookahead: ``lookahead_m + lookahead_s * speed`` metres along the centre line;
    steering in degrees (+left), speed in m/s from :func:`speed_plan`."""

    camera_mode = None
    name = "reference"

    def __init__(self, track: Track, params: CarParams | None = None, grip_margin: float = 0.8,
                 lookahead_m: float = 0.25, lookahead_s: float = 0.12) -> None:
        self.track = track
        self.params = params or CarParams()
        self.lookahead_m = lookahead_m
        self.lookahead_s = lookahead_s
        self._plan_s, self._plan_v = speed_plan(track, self.params, grip_margin)
        self._step = float(self._plan_s[1] - self._plan_s[0])
        self._segment: int | None = None  # search hint from the previous frame
        self._last_xy: tuple[float, float] | None = None  # a jump (reset) drops the hint

    def target_speed(self, s: float, horizon_m: float) -> float:
        """Lowest planned speed (m/s) between ``s`` and ``s + horizon_m`` metres."""
        i0 = int(s / self._step)
        n = max(1, int(horizon_m / self._step) + 1)
        idx = np.arange(i0, i0 + n)
        if self.track.is_loop:
            idx %= len(self._plan_v)
        else:
            idx = np.clip(idx, 0, len(self._plan_v) - 1)
        return float(self._plan_v[idx].min())

    def act(self, image: np.ndarray | None, pose: Pose | None = None) -> Action:
        """Steer towards the centre-line point one lookahead ahead; ``image`` is ignored.

        Raises ``ValueError`` without a pose."""
        if pose is None:
            raise ValueError("the reference pilot needs the car's ground-truth pose")
        last, self._last_xy = self._last_xy, (pose.x, pose.y)
        jumped = last is None or math.hypot(pose.x - last[0], pose.y - last[1]) > 0.5
        proj = self.track.project(pose.x, pose.y, hint=None if jumped else self._segment)
        if proj.distance > self.track.width:
            proj = self.track.project(pose.x, pose.y)  # lost: search everywhere
        self._segment = proj.segment
        speed = abs(pose.speed)
        look = self.lookahead_m + self.lookahead_s * speed
        tx, ty, _ = self.track.point_at(proj.s + look)
        alpha = math.atan2(ty - pose.y, tx - pose.x) - pose.heading
        alpha = (alpha + math.pi) % (2 * math.pi) - math.pi
        dist = max(math.hypot(tx - pose.x, ty - pose.y), 1e-3)
        steer = math.degrees(math.atan2(2.0 * self.params.wheelbase_m * math.sin(alpha), dist))
        steer = float(np.clip(steer, -self.params.max_steer_deg, self.params.max_steer_deg))
        v = self.target_speed(proj.s, 0.15 + 0.25 * speed)
        return Action(steering_deg=steer, speed_mps=v)
