"""The Donkey Car backend (``car-client run --vehicle donkey``), run on the car's Raspberry Pi.

camera (picamera2, or OpenCV for a USB camera) -> the racer's Keras/tflite model
(:func:`car_client.pilots.load_pilot`) -> steering and throttle pulses on a PCA9685
through Adafruit's CircuitPython ``adafruit_pca9685`` library.

Calibration uses Donkey Car's own terms (``myconfig.py``), kept in a JSON file
(``--donkey-config``; ``car-client calibrate`` finds the values by hand)::

    {"PCA9685_I2C_ADDR": 64, "PWM_FREQUENCY": 60,
     "STEERING_CHANNEL": 1, "STEERING_LEFT_PWM": 460, "STEERING_RIGHT_PWM": 290,
     "THROTTLE_CHANNEL": 0, "THROTTLE_FORWARD_PWM": 500, "THROTTLE_STOPPED_PWM": 370,
     "THROTTLE_REVERSE_PWM": 220, "CAMERA_TYPE": "PICAM", "CAMERA_INDEX": 0,
     "DRIVE_LOOP_HZ": 20, "MODEL_CATEGORICAL_MAX_THROTTLE_RANGE": 0.8,
     "FULL_THROTTLE_MPS": 4.0, "MAX_STEER_DEG": 30.0}

Pulses are 12-bit PCA9685 ticks at ``PWM_FREQUENCY`` (as in Donkey's ``PCA9685.set_pulse``);
the library takes a 16-bit duty cycle, ``ticks << 4``. As in Donkey's ``PWMSteering``
and ``PWMThrottle``: angle -1 (left) .. 1 (right) maps linearly from
``STEERING_LEFT_PWM`` to ``STEERING_RIGHT_PWM``; throttle 0..1 from stopped to
forward, -1..0 from reverse to stopped.

Conventions between pilot and car: the pilot says steering degrees (+left) and speed
m/s; the car turns them back into Donkey's angle (``-deg / MAX_STEER_DEG``) and
throttle (``speed / FULL_THROTTLE_MPS``), so these two values must be the ones the
pilot maps with (30 degrees and 4 m/s for :mod:`car_client.pilots.donkey`). The max
speed cap limits the throttle to ``max_speed / FULL_THROTTLE_MPS``. E-stop writes the
stopped pulse at once and the drive loop writes nothing after it (within one frame).
``MODEL_CATEGORICAL_MAX_THROTTLE_RANGE`` is only the fallback throttle range for a
categorical model that carries none: the racer's per-model settings (throttle range and
crop, set at upload or read from the shipped ``myconfig.py``) travel with the model in
``load_model`` and are kept beside it (:func:`car_client.pilots.donkey.read_model_settings`);
:meth:`DonkeyVehicle.start_driving` applies them when it starts the model.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from car_client.pilots import load_pilot
from car_client.pilots.donkey import read_model_settings
from car_client.protocol import TAIL_LIGHTS
from car_client.vehicle.base import LapCallback, ModelSpec, Vehicle

log = logging.getLogger(__name__)


class DonkeyConfigError(Exception):
    """The calibration file is unreadable or has a bad value (the message names it)."""


@dataclass
class DonkeyConfig:
    """A Donkey Car's calibration and camera (see the module docstring; Donkey's names)."""

    PCA9685_I2C_ADDR: int = 0x40
    PWM_FREQUENCY: int = 60
    STEERING_CHANNEL: int = 1
    STEERING_LEFT_PWM: int = 460
    STEERING_RIGHT_PWM: int = 290
    THROTTLE_CHANNEL: int = 0
    THROTTLE_FORWARD_PWM: int = 500
    THROTTLE_STOPPED_PWM: int = 370
    THROTTLE_REVERSE_PWM: int = 220
    CAMERA_TYPE: str = "PICAM"  # PICAM (picamera2) or CVCAM (OpenCV, USB camera)
    CAMERA_INDEX: int = 0
    DRIVE_LOOP_HZ: int = 20
    MODEL_CATEGORICAL_MAX_THROTTLE_RANGE: float = 0.8
    FULL_THROTTLE_MPS: float = 4.0
    MAX_STEER_DEG: float = 30.0

    def check(self) -> DonkeyConfig:
        """Raise :class:`DonkeyConfigError` for a value no car can have."""
        for name in ("STEERING_LEFT_PWM", "STEERING_RIGHT_PWM", "THROTTLE_FORWARD_PWM",
                     "THROTTLE_STOPPED_PWM", "THROTTLE_REVERSE_PWM"):
            if not 0 <= int(getattr(self, name)) <= 4095:
                raise DonkeyConfigError(f"{name} must be a 12-bit pulse 0..4095, got {getattr(self, name)}")
        for name in ("STEERING_CHANNEL", "THROTTLE_CHANNEL"):
            if not 0 <= int(getattr(self, name)) <= 15:
                raise DonkeyConfigError(f"{name} must be a PCA9685 channel 0..15, got {getattr(self, name)}")
        if self.STEERING_CHANNEL == self.THROTTLE_CHANNEL:
            raise DonkeyConfigError("STEERING_CHANNEL and THROTTLE_CHANNEL must differ")
        if self.CAMERA_TYPE not in ("PICAM", "CVCAM"):
            raise DonkeyConfigError("CAMERA_TYPE must be PICAM or CVCAM")
        if not 1 <= int(self.DRIVE_LOOP_HZ) <= 100 or not 24 <= int(self.PWM_FREQUENCY) <= 1526:
            raise DonkeyConfigError("DRIVE_LOOP_HZ must be 1..100 and PWM_FREQUENCY 24..1526")
        if not 0 < float(self.MODEL_CATEGORICAL_MAX_THROTTLE_RANGE) <= 1:
            raise DonkeyConfigError("MODEL_CATEGORICAL_MAX_THROTTLE_RANGE must be in (0, 1]")
        return self


def load_donkey_config(path: str | os.PathLike | None) -> DonkeyConfig:
    """Read a calibration file (None or missing file: Donkey's defaults). Unknown keys
    are refused, so a typo never silently keeps a default."""
    if path is None or not Path(path).exists():
        return DonkeyConfig().check()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DonkeyConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise DonkeyConfigError(f"{path} must hold a JSON object")
    known = {f.name: f.type for f in fields(DonkeyConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise DonkeyConfigError(f"{path}: unknown settings {', '.join(unknown)}")
    return DonkeyConfig(**data).check()


def save_donkey_config(path: str | os.PathLike, config: DonkeyConfig) -> None:
    """Write ``config`` as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(config.check()), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def steering_pulse(config: DonkeyConfig, angle: float) -> int:
    """Donkey angle -1 (left) .. 1 (right) -> 12-bit pulse (PWMSteering)."""
    a = float(np.clip(angle, -1.0, 1.0))
    left, right = config.STEERING_LEFT_PWM, config.STEERING_RIGHT_PWM
    return int(round(left + (a + 1.0) / 2.0 * (right - left)))


def throttle_pulse(config: DonkeyConfig, throttle: float) -> int:
    """Donkey throttle -1..1 -> 12-bit pulse (PWMThrottle: reverse..stopped..forward)."""
    t = float(np.clip(throttle, -1.0, 1.0))
    stopped = config.THROTTLE_STOPPED_PWM
    if t >= 0:
        return int(round(stopped + t * (config.THROTTLE_FORWARD_PWM - stopped)))
    return int(round(stopped + t * (stopped - config.THROTTLE_REVERSE_PWM)))


class PwmOutputs:
    """Steering and throttle channels of a PCA9685, through ``adafruit_pca9685``.

    ``i2c``: an I2C bus object (``busio.I2C`` on the car); the library talks to the chip."""

    def __init__(self, config: DonkeyConfig, i2c) -> None:
        from adafruit_pca9685 import PCA9685  # the car's hardware library, only on a Donkey car

        self.config = config
        self._lock = threading.Lock()
        self.pca = PCA9685(i2c, address=config.PCA9685_I2C_ADDR)
        self.pca.frequency = config.PWM_FREQUENCY

    def set_pulse(self, channel: int, ticks: int) -> None:
        """Set ``channel`` to a 12-bit pulse (``ticks`` 0..4095)."""
        with self._lock:
            self.pca.channels[channel].duty_cycle = max(0, min(4095, int(ticks))) << 4

    def steer(self, angle: float) -> None:
        """Steering servo to Donkey ``angle``."""
        self.set_pulse(self.config.STEERING_CHANNEL, steering_pulse(self.config, angle))

    def throttle(self, throttle: float) -> None:
        """ESC to Donkey ``throttle``."""
        self.set_pulse(self.config.THROTTLE_CHANNEL, throttle_pulse(self.config, throttle))

    def stop(self) -> None:
        """Throttle at the stopped pulse, wheels straight."""
        self.set_pulse(self.config.THROTTLE_CHANNEL, self.config.THROTTLE_STOPPED_PWM)
        self.steer(0.0)


class OpenCvCamera:
    """A USB camera through OpenCV: RGB ``(120, 160, 3)`` frames."""

    def __init__(self, index: int = 0) -> None:
        import cv2  # optional: only with CAMERA_TYPE CVCAM

        self._cv2 = cv2
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            raise OSError(f"cannot open USB camera {index}")

    def read(self) -> np.ndarray:
        """One RGB frame, resized to 160x120."""
        ok, frame = self.cap.read()
        if not ok:
            raise OSError("the USB camera returned no frame")
        frame = self._cv2.resize(frame, (160, 120))
        return self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release the camera."""
        self.cap.release()


class PiCamera:
    """The Raspberry Pi camera through picamera2: RGB ``(120, 160, 3)`` frames."""

    def __init__(self) -> None:
        from picamera2 import Picamera2  # optional: only on a Raspberry Pi

        self.cam = Picamera2()
        self.cam.configure(self.cam.create_video_configuration(main={"size": (160, 120), "format": "RGB888"}))
        self.cam.start()

    def read(self) -> np.ndarray:
        """One RGB frame (picamera2's RGB888 is BGR in memory: reversed here)."""
        return np.ascontiguousarray(self.cam.capture_array()[:, :, :3][:, :, ::-1])

    def close(self) -> None:
        """Stop the camera."""
        self.cam.stop()


class DonkeyVehicle(Vehicle):
    """Drives a Donkey Car: camera -> pilot -> PCA9685 (see the module docstring).

    ``outputs``: :class:`PwmOutputs`; ``camera``: an object with ``read() -> RGB
    (120, 160, 3) uint8`` and ``close()``. Reports no battery (Donkey cars have no
    gauge) and no laps (laps come from the lap timer or the operator)."""

    model_formats = ("keras", "tflite", "savedmodel")

    def __init__(self, config: DonkeyConfig, outputs: PwmOutputs, camera) -> None:
        self.config = config
        self.outputs = outputs
        self.camera = camera
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._max_speed = config.FULL_THROTTLE_MPS
        self._fps = 0.0
        self.tail_light = "white"
        self.frames = 0
        self.outputs.stop()

    def status(self) -> dict:
        """No battery gauge; driving flag; the drive loop's measured frame rate."""
        with self._lock:
            driving = self._thread is not None
        return {"battery_pct": None, "driving": driving, "speed_mps": self._max_speed if driving else 0.0,
                "fps": round(self._fps, 1) if driving else None}

    def set_tail_light(self, colour: str) -> None:
        """Donkey cars have no tail light by default: remembered for the heartbeat."""
        if colour not in TAIL_LIGHTS:
            raise ValueError(f"unknown tail-light colour {colour!r}")
        self.tail_light = colour

    def set_max_speed(self, max_speed_mps: float) -> None:
        """Cap the throttle at ``max_speed / FULL_THROTTLE_MPS`` from the next frame on."""
        if not max_speed_mps > 0:
            raise ValueError("max_speed_mps must be positive")
        self._max_speed = float(max_speed_mps)

    def model_settings(self, model: ModelSpec) -> dict:
        """The settings ``model`` is driven with: those stored beside it, the car's
        ``MODEL_CATEGORICAL_MAX_THROTTLE_RANGE`` when it carries no throttle range.
        Raises ``ValueError`` for a bad settings file."""
        settings = read_model_settings(model.path).to_dict()
        settings.setdefault("categorical_throttle_range", float(self.config.MODEL_CATEGORICAL_MAX_THROTTLE_RANGE))
        return settings

    def start_driving(self, model: ModelSpec, on_lap: LapCallback) -> None:
        """Load the model with its settings (:meth:`model_settings`: throttle range,
        crop) and drive. ValueError if this car cannot run it or its crop does not
        match its input."""
        if model.model_format not in self.model_formats:
            raise ValueError(f"a Donkey car runs {', '.join(self.model_formats)} models, not {model.model_format}")
        pilot = load_pilot(model.path, model.model_format, settings=self.model_settings(model))
        if self._thread is not None:
            self.stop_driving()
        stop = threading.Event()
        self._fps = 0.0
        with self._lock:
            self._stop = stop
            self._thread = threading.Thread(target=self._drive, args=(pilot, stop), daemon=True,
                                            name="donkey-drive")
            self._thread.start()

    def _drive(self, pilot, stop: threading.Event) -> None:
        period = 1.0 / self.config.DRIVE_LOOP_HZ
        last: float | None = None
        try:
            while not stop.is_set():
                tick = time.monotonic()
                if last is not None:  # frame rate: moving average over about ten frames
                    rate = 1.0 / max(1e-6, tick - last)
                    self._fps = rate if self._fps == 0 else 0.9 * self._fps + 0.1 * rate
                last = tick
                action = pilot.act(self.camera.read())
                angle = -action.steering_deg / self.config.MAX_STEER_DEG
                cap = self._max_speed / self.config.FULL_THROTTLE_MPS
                throttle = min(action.speed_mps / self.config.FULL_THROTTLE_MPS, cap)
                with self._lock:  # e-stop holds the lock: nothing is written after it
                    if stop.is_set():
                        break
                    self.outputs.steer(angle)
                    self.outputs.throttle(throttle)
                self.frames += 1
                stop.wait(max(0.0, period - (time.monotonic() - tick)))
        except Exception:  # noqa: BLE001 - a camera or model failure stops the car
            log.exception("the drive loop failed; stopping the car")
        finally:
            with self._lock:
                self.outputs.stop()
                if self._stop is stop:
                    self._thread = None
            close = getattr(pilot, "close", None)
            if close is not None:
                close()

    def stop_driving(self) -> None:
        """Throttle to stopped and end the drive loop (no-op when not driving)."""
        with self._lock:
            self._stop.set()
            thread = self._thread
            self.outputs.stop()
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    def emergency_stop(self) -> None:
        """Stopped pulse at once, under the lock the loop writes under: no frame after it."""
        self.stop_driving()

    def close(self) -> None:
        """Stop and release the camera."""
        self.stop_driving()
        self.camera.close()


def make_donkey_vehicle(config: DonkeyConfig) -> DonkeyVehicle:
    """The vehicle on a real Donkey Car: I2C bus from Blinka, camera per ``CAMERA_TYPE``."""
    import board  # Adafruit Blinka: only on the car
    import busio

    i2c = busio.I2C(board.SCL, board.SDA)
    camera = PiCamera() if config.CAMERA_TYPE == "PICAM" else OpenCvCamera(config.CAMERA_INDEX)
    return DonkeyVehicle(config, PwmOutputs(config, i2c), camera)
