""":class:`SimulatedVehicle`: the :class:`~car_client.vehicle.base.Vehicle` interface on a
simulated car driving a real DeepRacer track.

Each :meth:`SimulatedVehicle.start_driving` puts the car on the start line and drives
in a background thread (camera -> model -> car at 15 Hz) until stopped. Every completed
lap is reported at once through the callback, as a :class:`LapReport` with an id made
here. ``model_format="reference"`` (or the path ``"reference"``) drives with the
reference pilot instead of a model.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid

from car_client.pilots import load_pilot
from car_client.pilots.base import Pilot
from car_client.pilots.donkey import read_model_settings
from car_client.protocol import TAIL_LIGHTS
from car_client.sim.camera import CAMERA_KINDS, Camera
from car_client.sim.dynamics import CarParams
from car_client.sim.loop import DEFAULT_RATE_HZ, DriveLoop
from car_client.sim.reference import ReferencePilot
from car_client.sim.timing import LapResult
from car_client.sim.tracks import load_track
from car_client.sim.world import DEFAULT_RESET_PENALTY_S, Simulation
from car_client.vehicle.base import LapCallback, LapReport, ModelSpec, Vehicle

log = logging.getLogger(__name__)

REFERENCE = "reference"
#: Battery drain while driving: percent per simulated second (empty after an hour).
BATTERY_DRAIN_PCT_PER_S = 100.0 / 3600.0


def is_reference(model: ModelSpec) -> bool:
    """True when ``model`` asks for the reference pilot rather than a model file."""
    return model.model_format == REFERENCE or model.path == REFERENCE


class SimulatedVehicle(Vehicle):
    """A simulated car on ``track`` (a name from the tracks folder).

    speedup: 1 = real time, k = k times faster, ``float('inf')`` = as fast as possible;
    seed: repeatable randomisation; randomize: random colours, texture, lighting and
    sensor noise in the camera; camera: ``pinhole`` or ``fisheye``.
    Raises ``FileNotFoundError`` for an unknown track and ``ValueError`` for a bad
    camera or speedup.
    """

    def __init__(self, track: str = "reinvent_base", speedup: float = 1.0,
                 seed: int | None = None, randomize: bool = False, camera: str = "pinhole",
                 params: CarParams | None = None,
                 reset_penalty_s: float = DEFAULT_RESET_PENALTY_S,
                 rate_hz: float = DEFAULT_RATE_HZ) -> None:
        if camera not in CAMERA_KINDS:
            raise ValueError(f"unknown camera {camera!r} (choose from {', '.join(CAMERA_KINDS)})")
        if not speedup > 0:
            raise ValueError("speedup must be > 0 (float('inf') for as fast as possible)")
        self.track = load_track(track)
        self.speedup = float(speedup)
        self.seed = seed
        self.randomize = randomize
        self.camera_kind = camera
        self.params = params or CarParams()
        self.reset_penalty_s = reset_penalty_s
        self.rate_hz = rate_hz
        self.max_speed_mps = self.params.max_speed_mps
        self.tail_light = "white"
        self.last_error: str | None = None
        self.sim = Simulation(self.track, self.params, reset_penalty_s)
        self._camera: Camera | None = None
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._emergency = False
        self._loop: DriveLoop | None = None
        self._pilot: Pilot | None = None
        self._driven_s = 0.0

    # ------------------------------------------------------------------ status

    def status(self) -> dict:
        """``{"battery_pct": int 0..100, "driving": bool, "speed_mps": float}``."""
        battery = max(0, min(100, int(math.ceil(100 - self._driven_s * BATTERY_DRAIN_PCT_PER_S))))
        return {"battery_pct": battery, "driving": self.driving,
                "speed_mps": round(float(self.sim.car.state.speed), 3)}

    @property
    def driving(self) -> bool:
        """True while the driving thread runs."""
        t = self._thread
        return t is not None and t.is_alive()

    def set_tail_light(self, colour: str) -> None:
        """Set the tail light; ``ValueError`` unless ``colour`` is in TAIL_LIGHTS."""
        if colour not in TAIL_LIGHTS:
            raise ValueError(f"unknown tail light colour {colour!r} "
                             f"(choose from {', '.join(TAIL_LIGHTS)})")
        self.tail_light = colour

    def set_max_speed(self, max_speed_mps: float) -> None:
        """Cap the speed (m/s), also while driving; ``ValueError`` unless > 0."""
        if not max_speed_mps > 0:
            raise ValueError("max speed must be > 0 m/s")
        self.max_speed_mps = float(max_speed_mps)
        loop = self._loop
        if loop is not None:
            loop.max_speed_mps = self.max_speed_mps

    # ------------------------------------------------------------------ driving

    def load(self, model: ModelSpec) -> Pilot:
        """Load ``model`` as a pilot (``ValueError`` if the car cannot run it)."""
        if is_reference(model):
            return ReferencePilot(self.track, self.params)
        return load_pilot(model.path, model.model_format or None,
                          settings=read_model_settings(model.path).to_dict())

    def camera(self) -> Camera:
        """The camera renderer (built once, on first use)."""
        if self._camera is None:
            self._camera = Camera(self.track, kind=self.camera_kind, randomize=self.randomize,
                                  seed=self.seed)
        return self._camera

    def start_driving(self, model: ModelSpec, on_lap: LapCallback) -> None:
        """Load ``model`` (``ValueError``/``FileNotFoundError`` if it cannot run), put the
        car on the start line and drive in the background, calling ``on_lap`` with a
        :class:`LapReport` for each lap. A drive already running is stopped first."""
        with self._lock:
            self.stop_driving()
            pilot = self.load(model)
            camera = self.camera() if pilot.camera_mode is not None else None
            self.sim.restart()
            self.last_error = None
            self._stop = threading.Event()
            self._emergency = False
            self._pilot = pilot

            def report(lap: LapResult) -> None:
                self._report(lap, model, on_lap)

            self._loop = DriveLoop(self.sim, pilot, camera, rate_hz=self.rate_hz,
                                   max_speed_mps=self.max_speed_mps, speedup=self.speedup,
                                   on_lap=report)
            self._thread = threading.Thread(target=self._drive, args=(self._loop, self._stop),
                                            name="sim-drive", daemon=True)
            self._thread.start()

    def _report(self, lap: LapResult, model: ModelSpec, on_lap: LapCallback) -> None:
        report = LapReport(lap_id=uuid.uuid4().hex, lap_time_ms=lap.lap_time_ms,
                           resets=lap.resets, lap_number=lap.lap_number,
                           finished_at=time.time(), model_id=model.model_id,
                           extra={"track": self.track.name, "sim_time_s": round(lap.finished_at_s, 3)})
        try:
            on_lap(report)
        except Exception:  # a failing callback must not crash the car
            log.exception("lap callback failed for lap %s", lap.lap_number)

    def _drive(self, loop: DriveLoop, stop: threading.Event) -> None:
        t0 = self.sim.t
        try:
            loop.run(stop=stop)
            if self._emergency:
                self.sim.car.halt()
            else:
                self._brake(loop)
        except Exception as exc:  # report, never kill the daemon
            log.exception("simulated drive failed")
            self.last_error = str(exc)
            self.sim.car.halt()
        finally:
            self._driven_s += self.sim.t - t0

    def _brake(self, loop: DriveLoop) -> None:
        """Come to rest gently (at the braking limit), at most two simulated seconds."""
        for _ in range(int(2.0 * self.rate_hz)):
            if self._emergency or abs(self.sim.car.state.speed) < 0.01:
                break
            self.sim.step(0.0, 0.0, loop.dt)
            if math.isfinite(self.speedup) and not self._emergency:
                time.sleep(loop.dt / self.speedup)
        self.sim.car.halt()

    def stop_driving(self) -> None:
        """Stop gently and hold still; no-op when not driving."""
        self._end(emergency=False)

    def emergency_stop(self) -> None:
        """Cut the throttle at once: the car stops dead."""
        self._end(emergency=True)

    def _end(self, emergency: bool) -> None:
        if emergency:
            self._emergency = True
        self._stop.set()
        if threading.current_thread() is self._thread:
            return  # called from a lap callback: the loop ends after this frame
        with self._lock:
            thread = self._thread
            if thread is not None:
                thread.join(timeout=10.0)
            self._thread = None
            self._loop = None

    def close(self) -> None:
        """Stop driving and release the model."""
        self.emergency_stop()
        if self._pilot is not None:
            self._pilot.close()
            self._pilot = None
