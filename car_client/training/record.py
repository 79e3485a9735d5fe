"""Record driving data in the simulator: a noisy expert drives, clean labels are stored.

Behaviour cloning learns to recover only from states it has seen, so the car is driven
with the reference pilot's steering plus smooth random noise (an Ornstein-Uhlenbeck
process, ``noise_deg`` standard deviation, ``noise_tau_s`` correlation time), while each
frame is labelled with what the expert would do there, without noise. Every episode
(``episode_s`` of sim time) the car is put down at a random place on the track, off the
centre line and turned a little, so the data also covers the whole track and poses the
expert itself never reaches. With ``randomize`` each episode also gets new colours,
lighting, texture and sensor noise.

Labels follow Donkey Car's conventions, as :mod:`car_client.pilots.donkey` reads them:
``user/angle`` = -expert steering / 30 degrees (-1..1, positive to the RIGHT) and
``user/throttle`` = expert speed / 4 m/s (0..1). Images are the
RGB camera frames ``(120, 160, 3)`` the car's camera renders at ``rate_hz``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from car_client.pilots.base import Pose
from car_client.pilots.donkey import (
    DONKEY_FULL_THROTTLE_MPS,
    DONKEY_MAX_STEER_DEG,
    degrees_to_angle,
    speed_to_throttle,
)
from car_client.sim.camera import Camera
from car_client.sim.dynamics import CarModel, CarParams
from car_client.sim.loop import DEFAULT_RATE_HZ
from car_client.sim.reference import ReferencePilot
from car_client.sim.tracks import load_track
from car_client.training.tub import TubWriter

SUBSTEP_S = 1 / 60


@dataclass
class RecordSettings:
    """How to record. Lengths m, speeds m/s, angles degrees, times s.

    laps / frames: stop after this much centre-line progress (laps) or this many frames
    (the first reached; at least one is needed, else ``ValueError``);
    speed_limit_mps: cap on the expert's speed (``None``: the car's max);
    grip_margin: the expert's cornering speed as a fraction of the grip limit;
    start_offset_frac: random lateral start offset as a fraction of the half-width;
    start_heading_deg: random heading error at each start.
    """

    track: str
    laps: float | None = None
    frames: int | None = None
    noise_deg: float = 8.0
    noise_tau_s: float = 0.4
    seed: int = 0
    randomize: bool = False
    rate_hz: float = DEFAULT_RATE_HZ
    speed_limit_mps: float | None = None
    grip_margin: float = 0.8
    episode_s: float = 12.0
    start_offset_frac: float = 0.5
    start_heading_deg: float = 20.0
    car: CarParams = field(default_factory=CarParams)
    camera_kind: str = "pinhole"


@dataclass
class RecordSummary:
    """What a recording produced: frames, laps of progress, off-track resets, episodes,
    sim seconds, wall seconds."""

    frames: int
    laps: float
    resets: int
    episodes: int
    sim_s: float
    wall_s: float
    path: str


class _Noise:
    """Ornstein-Uhlenbeck steering noise in degrees."""

    def __init__(self, sigma: float, tau: float, dt: float, rng: np.random.Generator):
        self.sigma, self.rng = sigma, rng
        self.decay = math.exp(-dt / tau) if tau > 0 else 0.0
        self.kick = sigma * math.sqrt(1.0 - self.decay ** 2)
        self.value = 0.0

    def reset(self) -> None:
        self.value = float(self.rng.normal(0.0, self.sigma)) if self.sigma > 0 else 0.0

    def __call__(self) -> float:
        self.value = self.value * self.decay + self.kick * float(self.rng.normal())
        return self.value


def record(settings: RecordSettings, out: str | os.PathLike,
           progress=None) -> RecordSummary:
    """Drive the noisy expert on ``settings.track`` and write a tub v2 at ``out``.

    ``progress(frames_done)`` is called every 100 frames when given. Raises
    ``FileNotFoundError`` for an unknown track and ``ValueError`` for settings that
    would record nothing.
    """
    if not settings.laps and not settings.frames:
        raise ValueError("give laps or frames")
    if settings.rate_hz <= 0 or settings.episode_s <= 0:
        raise ValueError("rate and episode length must be positive")
    started = time.monotonic()
    track = load_track(settings.track)
    params = settings.car
    expert_params = params
    if settings.speed_limit_mps:
        expert_params = params.with_(max_speed_mps=min(params.max_speed_mps,
                                                       settings.speed_limit_mps))
    expert = ReferencePilot(track, expert_params, grip_margin=settings.grip_margin)
    rng = np.random.default_rng(settings.seed)
    dt = 1.0 / settings.rate_hz
    substeps = max(1, int(round(dt / SUBSTEP_S)))
    h = dt / substeps
    noise = _Noise(settings.noise_deg, settings.noise_tau_s, dt, rng)
    car = CarModel(params)
    frames_per_episode = max(1, int(round(settings.episode_s * settings.rate_hz)))
    metadata = {
        "track": track.name, "max_steering_deg": DONKEY_MAX_STEER_DEG,
        "max_speed_mps": DONKEY_FULL_THROTTLE_MPS, "angle_positive": "right",
        "speed_limit_mps": expert_params.max_speed_mps, "noise_deg": settings.noise_deg,
        "grip_margin": settings.grip_margin,
        "rate_hz": settings.rate_hz, "randomize": settings.randomize, "seed": settings.seed,
        "camera": settings.camera_kind, "recorded_by": "car-client record"}
    wall_ms0 = int(time.time() * 1000)
    frames = resets = episodes = 0
    progress_m = 0.0
    sim_t = 0.0
    max_frames = settings.frames or math.inf
    max_progress = (settings.laps or math.inf) * track.length
    camera = None
    with TubWriter(out, metadata=metadata) as tub:
        while frames < max_frames and progress_m < max_progress:
            # a new episode: random pose (and look), fresh noise
            episodes += 1
            if camera is None or settings.randomize:
                camera = Camera(track, kind=settings.camera_kind, randomize=settings.randomize,
                                seed=int(rng.integers(2 ** 31)))
            s0 = float(rng.uniform(0.0, track.length if track.is_loop else track.length * 0.7))
            _place(car, track, s0, rng, settings, expert)
            noise.reset()
            segment = track.project(car.state.x, car.state.y).segment
            last_s = track.project(car.state.x, car.state.y, hint=segment).s
            for _ in range(frames_per_episode):
                if frames >= max_frames or progress_m >= max_progress:
                    break
                st = car.state
                pose = Pose(st.x, st.y, st.heading, st.speed, segment)
                clean = expert.act(None, pose)
                image = camera.render(st.x, st.y, st.heading, colour=True)
                tub.write_record({
                    "cam/image_array": image,
                    "user/angle": degrees_to_angle(clean.steering_deg),
                    "user/throttle": max(0.0, speed_to_throttle(clean.speed_mps)),
                    "user/mode": "user"}, timestamp_ms=wall_ms0 + int(sim_t * 1000))
                frames += 1
                if progress is not None and frames % 100 == 0:
                    progress(frames)
                car.command(clean.steering_deg + noise(), clean.speed_mps, sim_t)
                off = False
                for _ in range(substeps):
                    sim_t += h
                    car.step(h, sim_t)
                    if not track.on_track(car.wheel_positions()).any():
                        off = True
                        break
                proj = track.project(car.state.x, car.state.y, hint=segment)
                segment = proj.segment
                ds = proj.s - last_s
                if track.is_loop:
                    ds = (ds + track.length / 2) % track.length - track.length / 2
                progress_m += max(ds, 0.0)
                last_s = proj.s
                if off or (not track.is_loop and proj.s >= track.length - 0.3):
                    resets += int(off)
                    break  # a new episode puts the car back somewhere else
    return RecordSummary(frames=frames, laps=progress_m / track.length, resets=resets,
                         episodes=episodes, sim_s=sim_t, wall_s=time.monotonic() - started,
                         path=str(out))


def _place(car: CarModel, track, s: float, rng: np.random.Generator,
           settings: RecordSettings, expert: ReferencePilot) -> None:
    """Put the car at ``s`` m along the centre line, shifted sideways and turned at
    random, moving at the expert's planned speed there."""
    x, y, heading = track.point_at(s)
    half = 0.5 * track.width
    offset = float(rng.uniform(-1.0, 1.0)) * settings.start_offset_frac * max(half - 0.1, 0.0)
    x -= offset * math.sin(heading)
    y += offset * math.cos(heading)
    heading += math.radians(float(rng.uniform(-1.0, 1.0)) * settings.start_heading_deg)
    car.place(x, y, heading)
    car.state.speed = float(rng.uniform(0.3, 1.0)) * expert.target_speed(s, 0.5)
