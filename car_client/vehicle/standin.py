"""A stand-in vehicle: a car with no motors or camera, for fleet and daemon tests.

It reports state and a slowly draining battery, accepts every command and keeps
the settings it was given. By default it drives no laps; with ``lap_interval_s``
it reports a synthetic lap every that many seconds while "driving" (the lap time
is the real time since the previous lap), which lets tests and fleet drills
exercise the lap path without TensorFlow or a simulator.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

from car_client.protocol import TAIL_LIGHTS
from car_client.vehicle.base import LapCallback, LapReport, ModelSpec, Vehicle

#: the stand-in cruises at this speed (m/s) unless capped lower
CRUISE_MPS = 1.0


class StandInVehicle(Vehicle):
    """A :class:`Vehicle` that only pretends to drive.

    ``battery_pct``: starting charge (0..100); ``drain_pct_per_min``: charge lost
    per minute of driving; ``lap_interval_s``: seconds per synthetic lap (None: no
    laps); ``seed``: makes the occasional synthetic reset repeatable.
    """

    def __init__(
        self,
        battery_pct: float = 100.0,
        drain_pct_per_min: float = 1.0,
        lap_interval_s: float | None = None,
        seed: int | None = None,
    ) -> None:
        if lap_interval_s is not None and lap_interval_s <= 0:
            raise ValueError("lap_interval_s must be positive")
        self._lock = threading.Lock()
        self._battery = float(battery_pct)
        self._drain_per_s = drain_pct_per_min / 60.0
        self._lap_interval_s = lap_interval_s
        self._rng = random.Random(seed)
        self._driving_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.model: ModelSpec | None = None
        self.tail_light = "white"
        self.max_speed_mps = 4.0
        self.emergency_stops = 0

    def _battery_now(self) -> float:
        if self._driving_since is None:
            return self._battery
        return self._battery - self._drain_per_s * (time.monotonic() - self._driving_since)

    def status(self) -> dict:
        """``{"battery_pct": int 0..100, "driving": bool, "speed_mps": float}``."""
        with self._lock:
            driving = self._driving_since is not None
            return {
                "battery_pct": int(max(0.0, min(100.0, self._battery_now()))),
                "driving": driving,
                "speed_mps": min(CRUISE_MPS, self.max_speed_mps) if driving else 0.0,
            }

    def set_tail_light(self, colour: str) -> None:
        """Remember ``colour``; ValueError unless it is in the palette."""
        if colour not in TAIL_LIGHTS:
            raise ValueError(f"unknown tail-light colour {colour!r}")
        self.tail_light = colour

    def set_max_speed(self, max_speed_mps: float) -> None:
        """Remember the speed cap (m/s, must be positive)."""
        if not max_speed_mps > 0:
            raise ValueError("max_speed_mps must be positive")
        self.max_speed_mps = float(max_speed_mps)

    def start_driving(self, model: ModelSpec, on_lap: LapCallback) -> None:
        """"Drive" ``model`` (its file must exist, else ValueError) until stopped."""
        if not os.path.isfile(model.path):
            raise ValueError(f"model file {model.path} is missing")
        self.stop_driving()
        with self._lock:
            self.model = model
            self._driving_since = time.monotonic()
            self._stop = threading.Event()
            if self._lap_interval_s:
                self._thread = threading.Thread(
                    target=self._drive_laps, args=(model, on_lap, self._stop),
                    name="standin-laps", daemon=True)
                self._thread.start()

    def _drive_laps(self, model: ModelSpec, on_lap: LapCallback, stop: threading.Event) -> None:
        lap_number = 0
        last = time.monotonic()
        while not stop.wait(self._lap_interval_s):
            now = time.monotonic()
            lap_number += 1
            on_lap(LapReport(
                lap_id=uuid.uuid4().hex,
                lap_time_ms=int(round((now - last) * 1000)),
                resets=1 if self._rng.random() < 0.1 else 0,
                lap_number=lap_number,
                finished_at=time.time(),
                model_id=model.model_id,
                extra={"vehicle": "standin"},
            ))
            last = now

    def stop_driving(self) -> None:
        """Stop (no-op when not driving); the battery keeps the charge it has left."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
            if self._driving_since is not None:
                self._battery = self._battery_now()
                self._driving_since = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    def emergency_stop(self) -> None:
        """Stop at once and count it (tests look at :attr:`emergency_stops`)."""
        self.emergency_stops += 1
        self.stop_driving()

    def close(self) -> None:
        """Stop the lap thread."""
        self.stop_driving()
