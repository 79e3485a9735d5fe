"""Donkey Car models: what their outputs mean, and the pilot that drives with them.

Input: one RGB frame, float ``[1, 120, 160, 3]`` scaled to 0..1. Outputs, recognised by
their sizes and names:

* linear: two outputs of size 1 - ``angle`` in [-1, 1] and ``throttle`` - (or one output
  of size 2 holding both); the angle is the output whose name contains ``angle`` or
  ``steer``, else the first in natural name order (``n_outputs0``, ``output_0``);
* categorical: a 15-bin angle output and a 20-bin throttle output; the car takes the
  most likely bin. As in Donkey Car, angle bin ``b`` means ``b * 2/14 - 1`` and throttle
  bin ``b`` means ``b * throttle_range / 20`` (``throttle_range`` 0.5 by default).

Donkey's angle is positive to the RIGHT; the car client's steering is positive to the
left, so ``steering_deg = -angle * DONKEY_MAX_STEER_DEG``. Throttle maps linearly to
speed: ``speed_mps = throttle * DONKEY_FULL_THROTTLE_MPS``.

The model runners live in :mod:`car_client.pilots.keras_runner` and
:mod:`car_client.pilots.tflite`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np

from car_client.pilots.base import RGB, Action, Pilot, Pose, check_image

DONKEY_MAX_STEER_DEG = 30.0
DONKEY_FULL_THROTTLE_MPS = 4.0
ANGLE_BINS = 15
THROTTLE_BINS = 20
DEFAULT_THROTTLE_RANGE = 0.5


def angle_to_degrees(angle: float) -> float:
    """Donkey angle in [-1, 1] (+right) -> steering degrees (+left)."""
    return -float(np.clip(angle, -1.0, 1.0)) * DONKEY_MAX_STEER_DEG


def degrees_to_angle(steering_deg: float) -> float:
    """Steering degrees (+left) -> Donkey angle in [-1, 1] (+right)."""
    return float(np.clip(-steering_deg / DONKEY_MAX_STEER_DEG, -1.0, 1.0))


def throttle_to_speed(throttle: float) -> float:
    """Donkey throttle (-1..1) -> speed in m/s."""
    return float(np.clip(throttle, -1.0, 1.0)) * DONKEY_FULL_THROTTLE_MPS


def speed_to_throttle(speed_mps: float) -> float:
    """Speed in m/s -> Donkey throttle in -1..1."""
    return float(np.clip(speed_mps / DONKEY_FULL_THROTTLE_MPS, -1.0, 1.0))


def _natural_key(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def output_layout(sizes: Mapping[str, int]) -> tuple[str, str, str | None]:
    """Decide what each model output means from ``{output name: number of values}``.

    Returns ``(kind, angle_name, throttle_name)`` with kind ``linear`` or
    ``categorical``; for a single 2-value output throttle_name is None (values are
    ``[angle, throttle]``). Raises ``ValueError`` for any other layout."""
    names = sorted(sizes, key=_natural_key)
    by_size = {}
    for n in names:
        by_size.setdefault(sizes[n], []).append(n)
    if len(names) == 2 and by_size.get(ANGLE_BINS) and by_size.get(THROTTLE_BINS):
        return "categorical", by_size[ANGLE_BINS][0], by_size[THROTTLE_BINS][0]
    if len(names) == 1 and sizes[names[0]] == 2:
        return "linear", names[0], None
    if len(names) == 2 and all(sizes[n] == 1 for n in names):
        angle = next((n for n in names if "angle" in n.lower() or "steer" in n.lower()), None)
        throttle = next((n for n in names if "throttle" in n.lower()), None)
        if angle is None or throttle is None or angle == throttle:
            angle, throttle = names
        return "linear", angle, throttle
    raise ValueError(f"unrecognised Donkey model outputs {dict(sizes)}: expected a linear "
                     "model (angle and throttle) or a categorical one (15 and 20 bins)")


class DonkeyPilot(Pilot):
    """Drives with a Donkey Car model on RGB frames (``camera_mode = "rgb"``).

    run: ``x float32 [1, 120, 160, 3] -> {output name: array}``; sizes: output sizes
    (see :func:`output_layout`, which raises ``ValueError`` for an unknown layout)."""

    camera_mode = RGB

    def __init__(self, run: Callable[[np.ndarray], Mapping[str, np.ndarray]],
                 sizes: Mapping[str, int], name: str = "",
                 throttle_range: float = DEFAULT_THROTTLE_RANGE) -> None:
        self._run = run
        self.name = name
        self.kind, self._angle, self._throttle = output_layout(sizes)
        self.throttle_range = throttle_range

    def predict(self, image: np.ndarray) -> tuple[float, float]:
        """Raw Donkey ``(angle, throttle)`` for an RGB uint8 ``(120, 160, 3)`` frame."""
        x = (check_image(image, RGB).astype(np.float32) / 255.0)[None]
        return self.interpret(self._run(x))

    def interpret(self, outputs: Mapping[str, np.ndarray]) -> tuple[float, float]:
        """``(angle, throttle)`` from the model's named outputs."""
        a = np.asarray(outputs[self._angle], dtype=np.float64).reshape(-1)
        if self._throttle is None:
            return float(a[0]), float(a[1])
        t = np.asarray(outputs[self._throttle], dtype=np.float64).reshape(-1)
        if self.kind == "linear":
            return float(a[0]), float(t[0])
        angle = int(np.argmax(a)) * 2.0 / (ANGLE_BINS - 1) - 1.0
        throttle = int(np.argmax(t)) * self.throttle_range / THROTTLE_BINS
        return angle, throttle

    def act(self, image: np.ndarray | None, pose: Pose | None = None) -> Action:
        """Steering degrees (+left) and speed (m/s) for one RGB frame."""
        angle, throttle = self.predict(image)
        return Action(angle_to_degrees(angle), throttle_to_speed(throttle))
