"""The AWS DeepRacer backend (``car-client run --vehicle deepracer``): a bridge.

One ``car-client run`` per car, on the venue laptop or any machine on the cars'
network; nothing is installed on the car. The daemon's commands become calls to the
car's own device console (:mod:`car_client.vehicle.deepracer_console`):

================  =================================================================
drem command      console calls
================  =================================================================
load_model        upload ``drem-<model id>.tar.gz``, poll ``is_model_installed``, load
                  ``drem-<model id>/model``, poll ``isModelLoading`` until ``loaded``;
                  progress 0.5 uploaded, 0.75 installed; the console's own ``reason``
                  becomes the failure text
start_driving     load the model if another one is loaded, ``drive_mode auto``,
                  ``max_nav_throttle``, ``start_stop start``
stop_driving      ``start_stop stop``
emergency_stop    cancels any wait (even mid-load), then ``start_stop stop`` at once
set_max_speed     ``max_nav_throttle`` percent = round(100 * m/s / 4.0), 1..100
                  (:data:`FULL_THROTTLE_MPS`: the console's 100 % is the model's own
                  top speed, at most 4 m/s on a DeepRacer)
set_tail_light    ``set_led_color`` with :data:`LED_RGB`
delete_models     ``deleteModels`` with the ``drem-<id>`` folders
heartbeat         ``get_battery_level`` (0..10 -> 0..100 %), at most every
                  :data:`BATTERY_EVERY_S` seconds
================  =================================================================

A real car reports no laps of its own: laps come from the lap timer or the operator.
"""

from __future__ import annotations

import logging
import threading
import time

from car_client.protocol import TAIL_LIGHTS
from car_client.vehicle.base import LapCallback, ModelSpec, ProgressCallback, Vehicle, VehicleError
from car_client.vehicle.deepracer_console import ConsoleClient, ConsoleError, ConsoleUnreachable

log = logging.getLogger(__name__)

#: the console's ``max_nav_throttle`` 100 % in m/s (DeepRacer action spaces top out at 4 m/s)
FULL_THROTTLE_MPS = 4.0
#: drem's tail-light colours as the console's 0..255 RGB (led_api.py ``set_led_color``)
LED_RGB: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255), "red": (255, 0, 0), "orange": (255, 96, 0), "yellow": (255, 200, 0),
    "green": (0, 255, 0), "blue": (0, 0, 255), "purple": (128, 0, 255), "pink": (255, 0, 128),
}
if set(LED_RGB) != set(TAIL_LIGHTS):
    raise ImportError("LED_RGB must cover car_client.protocol.TAIL_LIGHTS")
BATTERY_EVERY_S = 10.0
INSTALL_TIMEOUT_S = 180.0
LOAD_TIMEOUT_S = 120.0
#: how long a command waits for a car that does not answer (it may be rebooting)
UNREACHABLE_WAIT_S = 60.0


def throttle_percent(max_speed_mps: float) -> int:
    """The console's ``max_nav_throttle`` percent for a speed cap in m/s (1..100)."""
    return max(1, min(100, round(100.0 * max_speed_mps / FULL_THROTTLE_MPS)))


def folder_for(model: ModelSpec) -> str:
    """The folder a drem model gets on the car: ``drem-<model id>``."""
    return f"drem-{model.model_id}"


class DeepRacerVehicle(Vehicle):
    """Drives one AWS DeepRacer through its device console (see the module docstring).

    ``console``: a :class:`ConsoleClient` for the car; ``poll_s``: seconds between
    install/load polls; ``unreachable_wait_s``: how long to wait for a car that does
    not answer (rebooting) before a command fails."""

    model_formats = ("deepracer",)

    def __init__(self, console: ConsoleClient, poll_s: float = 0.5,
                 unreachable_wait_s: float = UNREACHABLE_WAIT_S) -> None:
        self.console = console
        self.poll_s = poll_s
        self.unreachable_wait_s = unreachable_wait_s
        self._lock = threading.Lock()
        self._abort = threading.Event()  # set by emergency_stop: every wait ends at once
        self._driving = False
        self._loaded_folder: str | None = None
        self._max_speed = FULL_THROTTLE_MPS
        self._battery: tuple[float, int | None] = (0.0, None)

    # -- helpers -------------------------------------------------------------
    def _patiently(self, what: str, fn, cancel: threading.Event | None = None):
        """Run ``fn()``; while the car is unreachable (rebooting) retry until
        ``unreachable_wait_s`` passes. Console refusals raise :class:`VehicleError`."""
        deadline = time.monotonic() + self.unreachable_wait_s
        while True:
            try:
                return fn()
            except ConsoleUnreachable as exc:
                if time.monotonic() >= deadline:
                    raise VehicleError(f"{what}: {exc}") from None
                log.warning("%s: car unreachable, retrying: %s", what, exc)
            except ConsoleError as exc:
                raise VehicleError(f"{what}: {exc}") from None
            if self._abort.wait(min(2.0, self.poll_s * 4)) or (cancel is not None and cancel.is_set()):
                raise VehicleError(f"{what}: cancelled by emergency stop")

    def _wait_for(self, what: str, check, timeout_s: float, cancel: threading.Event | None) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._patiently(what, check, cancel):
            if time.monotonic() >= deadline:
                raise VehicleError(f"{what}: the car did not finish within {int(timeout_s)} s")
            if self._abort.wait(self.poll_s) or (cancel is not None and cancel.is_set()):
                raise VehicleError(f"{what}: cancelled by emergency stop")

    def _load(self, folder: str, cancel: threading.Event | None) -> None:
        self._patiently("loading the model", lambda: self.console.load_model(folder, "model"), cancel)

        def loaded() -> bool:
            status = self.console.model_loading_status()
            if status == "error":
                raise ConsoleError("the car could not load the model (isModelLoading: error)")
            return status == "loaded"

        self._wait_for("loading the model", loaded, LOAD_TIMEOUT_S, cancel)
        self._loaded_folder = folder

    # -- Vehicle ---------------------------------------------------------------
    def prepare_model(self, model: ModelSpec, progress: ProgressCallback,
                      cancel: threading.Event) -> None:
        """Upload, install and load ``model`` on the car (see the module docstring)."""
        if model.model_format != "deepracer":
            raise ValueError(f"a DeepRacer runs DeepRacer archives (.tar.gz), not {model.model_format}")
        self._abort.clear()
        folder = folder_for(model)
        self._patiently("uploading the model", lambda: self.console.upload_model(model.path, folder), cancel)
        progress(0.5)
        self._wait_for("installing the model", lambda: self.console.is_model_installed(folder),
                       INSTALL_TIMEOUT_S, cancel)
        progress(0.75)
        self._load(folder, cancel)

    def delete_models(self, models: list[ModelSpec]) -> None:
        """Delete the ``drem-<id>`` folders of ``models`` from the car."""
        folders = [folder_for(m) for m in models]
        if folders:
            self._patiently("deleting models", lambda: self.console.delete_models(folders))
            if self._loaded_folder in folders:
                self._loaded_folder = None

    def status(self) -> dict:
        """Battery from the console (cached ``BATTERY_EVERY_S``), driving flag, speed cap."""
        at, pct = self._battery
        if time.monotonic() - at >= BATTERY_EVERY_S:
            try:
                level = self.console.battery_level()
                pct = None if level < 0 else max(0, min(100, level * 10))
            except ConsoleError as exc:
                log.info("battery level unavailable: %s", exc)
            self._battery = (time.monotonic(), pct)
        with self._lock:
            driving = self._driving
        return {"battery_pct": pct, "driving": driving,
                "speed_mps": self._max_speed if driving else 0.0}

    def set_tail_light(self, colour: str) -> None:
        """``set_led_color`` with the colour's RGB; ValueError outside the palette."""
        if colour not in LED_RGB:
            raise ValueError(f"unknown tail-light colour {colour!r}")
        self._patiently("setting the tail light", lambda: self.console.set_led(*LED_RGB[colour]))

    def set_max_speed(self, max_speed_mps: float) -> None:
        """``max_nav_throttle`` = :func:`throttle_percent` of the cap."""
        if not max_speed_mps > 0:
            raise ValueError("max_speed_mps must be positive")
        self._max_speed = float(max_speed_mps)
        self._patiently("setting max speed",
                        lambda: self.console.set_max_throttle(throttle_percent(max_speed_mps)))

    def start_driving(self, model: ModelSpec, on_lap: LapCallback) -> None:
        """Load ``model`` if needed, then auto mode, throttle cap and start."""
        if model.model_format != "deepracer":
            raise ValueError(f"a DeepRacer runs DeepRacer archives (.tar.gz), not {model.model_format}")
        self._abort.clear()
        folder = folder_for(model)
        if self._loaded_folder != folder:
            self._load(folder, None)
        self._patiently("switching to autonomous mode", lambda: self.console.set_drive_mode("auto"))
        self._patiently("setting max speed",
                        lambda: self.console.set_max_throttle(throttle_percent(self._max_speed)))
        self._patiently("starting", lambda: self.console.start_stop(True))
        with self._lock:
            self._driving = True

    def stop_driving(self) -> None:
        """``start_stop stop`` (no-op when not driving)."""
        with self._lock:
            if not self._driving:
                return
        self._patiently("stopping", lambda: self.console.start_stop(False))
        with self._lock:
            self._driving = False

    def emergency_stop(self) -> None:
        """End every wait at once (even mid-load) and send ``start_stop stop``."""
        self._abort.set()
        try:
            self.console.start_stop(False)
        except ConsoleError as exc:
            log.error("emergency stop could not reach the car: %s", exc)
            raise VehicleError(f"emergency stop could not reach the car: {exc}") from None
        finally:
            with self._lock:
                self._driving = False
