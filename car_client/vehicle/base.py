"""The vehicle interface shared by the daemon, the simulator and the stand-in vehicle.

The daemon (``car_client.daemon``) only ever talks to a :class:`Vehicle`; the
simulated car (``car_client.sim``) and the stand-in vehicle implement it.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from car_client.protocol import MODEL_FORMATS


@dataclass(frozen=True)
class ModelSpec:
    """A driving model stored on the car.

    path: local file (``.tar.gz``, ``.h5``, ``.keras``, ``.tflite``, ``.zip``);
    model_format: ``deepracer`` | ``keras`` | ``tflite`` | ``savedmodel``;
    model_id: the server's id of the model (string), used in lap reports.
    """

    model_id: str
    path: str
    model_format: str
    name: str = ""


@dataclass
class LapReport:
    """One completed lap, as measured on the car.

    lap_id: unique id made on the car (uuid4 hex) so a lap sent twice is stored once;
    lap_time_ms: integer milliseconds from start line to start line;
    resets: number of times the car left the track during the lap;
    lap_number: 1-based count within the current drive;
    finished_at: car wall clock (UNIX seconds, float) when the lap ended;
    model_id: the model that drove it.
    """

    lap_id: str
    lap_time_ms: int
    resets: int
    lap_number: int
    finished_at: float
    model_id: str
    extra: dict = field(default_factory=dict)


LapCallback = Callable[[LapReport], None]
#: progress callback of :meth:`Vehicle.prepare_model`: a fraction 0..1
ProgressCallback = Callable[[float], None]


class VehicleError(Exception):
    """A real car refused or failed an operation; ``str(exc)`` is the car's own text,
    sent to the server as the command's failure reason."""


class Vehicle(abc.ABC):
    """What the daemon needs from a car, real or simulated.

    All methods are thread-safe; ``start_driving`` returns at once and drives in
    the background until ``stop_driving`` or ``emergency_stop``.

    ``model_formats``: the model formats this car can run (words of
    :data:`car_client.protocol.MODEL_FORMATS`), reported in the heartbeat so the
    server refuses a model the car cannot run.
    """

    model_formats: tuple[str, ...] = MODEL_FORMATS

    def prepare_model(self, model: ModelSpec, progress: ProgressCallback,  # noqa: B027 - optional hook
                      cancel: threading.Event) -> None:
        """Put a downloaded model onto the car's own hardware (default: nothing to do).

        Called on the download thread after the file is in the model store; a real
        car uploads and installs it here. ``progress(fraction)`` reports 0..1;
        return early when ``cancel`` is set. Raises :class:`VehicleError` (the car's
        text) or ``ValueError`` (a model this car cannot run)."""

    def delete_models(self, models: list[ModelSpec]) -> None:  # noqa: B027 - optional hook
        """Remove these models from the car's own hardware (default: nothing to do).
        Raises :class:`VehicleError` with the car's text when it refuses."""

    @abc.abstractmethod
    def status(self) -> dict:
        """Return ``{"battery_pct": int 0..100, "driving": bool, "speed_mps": float}``."""

    @abc.abstractmethod
    def set_tail_light(self, colour: str) -> None:
        """Set the tail light to one of :data:`car_client.protocol.TAIL_LIGHTS` (ValueError otherwise)."""

    @abc.abstractmethod
    def set_max_speed(self, max_speed_mps: float) -> None:
        """Cap the speed in m/s (applied on top of what the model asks for)."""

    @abc.abstractmethod
    def start_driving(self, model: ModelSpec, on_lap: LapCallback) -> None:
        """Load ``model`` (raises ``ValueError`` with a clear message if the car cannot run it)
        and drive autonomously; ``on_lap`` is called from the driving thread for each lap."""

    @abc.abstractmethod
    def stop_driving(self) -> None:
        """Stop driving gently and hold the car still. No-op when not driving."""

    def emergency_stop(self) -> None:
        """Cut the throttle at once (default: same as :meth:`stop_driving`)."""
        self.stop_driving()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (threads, model sessions)."""
