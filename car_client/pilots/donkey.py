"""Donkey Car models: what their outputs mean, and the pilot that drives with them.

Input: one RGB frame, float ``[1, H, 160, 3]`` scaled to 0..1: the 120x160 camera frame
less the rows the model was trained to cut off (Donkey's ``ROI_CROP_TOP`` /
``ROI_CROP_BOTTOM``), so ``H = 120 - crop_top - crop_bottom``. Outputs, recognised by
their sizes and names:

* linear: two outputs of size 1 - ``angle`` in [-1, 1] and ``throttle`` - (or one output
  of size 2 holding both); the angle is the output whose name contains ``angle`` or
  ``steer``, else the first in natural name order (``n_outputs0``, ``output_0``);
* categorical: a 15-bin angle output and a 20-bin throttle output; the car takes the
  most likely bin. As in Donkey Car, angle bin ``b`` means ``b * 2/14 - 1`` and throttle
  bin ``b`` means ``b * throttle_range / 20`` (``throttle_range`` 0.5 by default, Donkey's
  ``MODEL_CATEGORICAL_MAX_THROTTLE_RANGE``).

Per-model settings (:class:`ModelSettings`) travel with the model from the server: the
throttle range and the crop. The car keeps them in :data:`MODEL_SETTINGS_FILE` beside
the model file (:func:`read_model_settings`).

Donkey's angle is positive to the RIGHT; the car client's steering is positive to the
left, so ``steering_deg = -angle * DONKEY_MAX_STEER_DEG``. Throttle maps linearly to
speed: ``speed_mps = throttle * DONKEY_FULL_THROTTLE_MPS``.

The model runners live in :mod:`car_client.pilots.keras_runner` and
:mod:`car_client.pilots.tflite`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from car_client.pilots.base import RGB, Action, Pilot, Pose, check_image

DONKEY_MAX_STEER_DEG = 30.0
DONKEY_FULL_THROTTLE_MPS = 4.0
ANGLE_BINS = 15
THROTTLE_BINS = 20
DEFAULT_THROTTLE_RANGE = 0.5
#: Rows of the camera frame (its height).
FRAME_ROWS = 120
#: The file beside a model on the car that holds its settings (JSON, :class:`ModelSettings`).
MODEL_SETTINGS_FILE = "model_settings.json"


@dataclass(frozen=True)
class ModelSettings:
    """Donkey settings a model was trained with; None = not given (the car's fallback).

    categorical_throttle_range: Donkey's ``MODEL_CATEGORICAL_MAX_THROTTLE_RANGE``,
    0 < x <= 1; crop_top, crop_bottom: rows cut from the top / bottom of the 120-row
    frame before the model (``ROI_CROP_TOP`` / ``ROI_CROP_BOTTOM``), 0..119 each,
    together < 120."""

    categorical_throttle_range: float | None = None
    crop_top: int | None = None
    crop_bottom: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping | None) -> ModelSettings:
        """Check and build from ``{"categorical_throttle_range", "crop_top", "crop_bottom"}``
        (missing or null keys stay None). Raises ``ValueError`` naming the bad value;
        unknown keys are refused."""
        data = dict(data or {})
        unknown = sorted(set(data) - {"categorical_throttle_range", "crop_top", "crop_bottom"})
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(unknown)}")
        rng = data.get("categorical_throttle_range")
        if rng is not None:
            if isinstance(rng, bool) or not isinstance(rng, (int, float)) or not 0 < float(rng) <= 1:
                raise ValueError(f"categorical_throttle_range must be a number in (0, 1], got {rng!r}")
            rng = float(rng)
        crops = {}
        for key in ("crop_top", "crop_bottom"):
            v = data.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < FRAME_ROWS):
                raise ValueError(f"{key} must be a whole number of rows 0..{FRAME_ROWS - 1}, got {v!r}")
            crops[key] = v
        if (crops["crop_top"] or 0) + (crops["crop_bottom"] or 0) >= FRAME_ROWS:
            raise ValueError(f"crop_top + crop_bottom must leave rows of the {FRAME_ROWS}-row frame")
        return cls(rng, crops["crop_top"], crops["crop_bottom"])

    def to_dict(self) -> dict:
        """The settings given (None values left out), JSON-ready."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def crop_for_height(settings: ModelSettings, input_rows: int) -> tuple[int, int]:
    """``(crop_top, crop_bottom)`` for a model whose input has ``input_rows`` rows.

    Given crops must add up to ``120 - input_rows``; a missing one is what is left
    (neither given: all from the top, Donkey's usual sky crop). Raises ``ValueError``
    naming both numbers on a mismatch."""
    cut = FRAME_ROWS - int(input_rows)
    top, bottom = settings.crop_top, settings.crop_bottom
    if top is None and bottom is None:
        top, bottom = cut, 0
    elif top is None:
        top = cut - bottom
    elif bottom is None:
        bottom = cut - top
    if top < 0 or bottom < 0 or top + bottom != cut:
        raise ValueError(f"the crop (top {settings.crop_top}, bottom {settings.crop_bottom}) does not match "
                         f"the model's input of {input_rows} rows: the crops must add up to {cut} rows")
    return top, bottom


def read_model_settings(model_path: str | Path) -> ModelSettings:
    """The settings stored beside ``model_path`` on the car (none stored: all None).
    Raises ``ValueError`` for an unreadable or bad file."""
    path = Path(model_path).parent / MODEL_SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ModelSettings()
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} must hold a JSON object")
    return ModelSettings.from_dict(data)


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

    run: ``x float32 [1, H, 160, 3] -> {output name: array}``, with ``run.input_rows``
    = H when the model takes fewer than 120 rows (absent: 120); sizes: output sizes
    (see :func:`output_layout`, which raises ``ValueError`` for an unknown layout);
    throttle_range: for categorical models; crop_top / crop_bottom: rows cut from the
    camera frame (None: inferred from H, see :func:`crop_for_height`, which raises
    ``ValueError`` for a crop that does not match H)."""

    camera_mode = RGB

    def __init__(self, run: Callable[[np.ndarray], Mapping[str, np.ndarray]],
                 sizes: Mapping[str, int], name: str = "",
                 throttle_range: float = DEFAULT_THROTTLE_RANGE,
                 crop_top: int | None = None, crop_bottom: int | None = None) -> None:
        self._run = run
        self.name = name
        self.kind, self._angle, self._throttle = output_layout(sizes)
        self.throttle_range = throttle_range
        self.input_rows = int(getattr(run, "input_rows", FRAME_ROWS))
        self.crop_top, self.crop_bottom = crop_for_height(
            ModelSettings(crop_top=crop_top, crop_bottom=crop_bottom), self.input_rows)

    def predict(self, image: np.ndarray) -> tuple[float, float]:
        """Raw Donkey ``(angle, throttle)`` for an RGB uint8 ``(120, 160, 3)`` camera frame
        (cropped here to the model's rows)."""
        img = check_image(image, RGB)[self.crop_top:FRAME_ROWS - self.crop_bottom]
        x = (img.astype(np.float32) / 255.0)[None]
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
