"""Pilots: driving models behind one interface (image in; steering degrees, speed m/s out).

Formats (the names used everywhere, see ``ModelSpec``): ``deepracer`` (``.tar.gz``),
``keras`` (``.h5``, ``.keras``), ``tflite``, ``savedmodel`` (``.zip`` or folder). The
reference pilot (pure pursuit on the centre line, simulator only) is in
:mod:`car_client.sim.reference`. TensorFlow is imported only when a model loads.
"""

from __future__ import annotations

from pathlib import Path

from car_client.pilots.base import GREY, RGB, Action, Pilot, Pose
from car_client.protocol import MODEL_FORMATS

__all__ = ["GREY", "MODEL_FORMATS", "RGB", "Action", "Pilot", "Pose", "guess_format",
           "load_pilot"]


def guess_format(path: str | Path) -> str:
    """Model format from a file name: ``.tar.gz``/``.tgz`` deepracer, ``.h5``/``.keras``
    keras, ``.tflite``, ``.zip`` or a folder savedmodel. Raises ``ValueError`` otherwise."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".tar.gz", ".tgz")):
        return "deepracer"
    if name.endswith((".h5", ".keras")):
        return "keras"
    if name.endswith(".tflite"):
        return "tflite"
    if name.endswith(".zip") or p.is_dir():
        return "savedmodel"
    raise ValueError(f"cannot tell the model format of {p.name!r} "
                     f"(expected one of: {', '.join(MODEL_FORMATS)})")


def load_pilot(path: str | Path, model_format: str | None = None) -> Pilot:
    """Load a driving model as a :class:`Pilot`.

    model_format: one of :data:`MODEL_FORMATS`, or None to guess from the file name.
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` with a clear
    message for a model the car cannot run (unknown format, LiDAR or stereo sensors,
    wrong input shape, unrecognised outputs)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    fmt = model_format or guess_format(p)
    if fmt == "deepracer":
        from car_client.pilots.deepracer import DeepRacerPilot

        return DeepRacerPilot(p)
    if fmt in ("keras", "savedmodel", "tflite"):
        from car_client.pilots.donkey import DonkeyPilot

        if fmt == "keras":
            from car_client.pilots.keras_runner import load_keras as loader
        elif fmt == "savedmodel":
            from car_client.pilots.keras_runner import load_saved_model as loader
        else:
            from car_client.pilots.tflite import load_tflite as loader
        run, sizes = loader(p)
        pilot = DonkeyPilot(run, sizes, name=p.name)
        pilot.predict(_blank_rgb())  # fail now, not on the track
        return pilot
    raise ValueError(f"unknown model format {fmt!r} (expected one of: {', '.join(MODEL_FORMATS)})")


def _blank_rgb():
    import numpy as np

    return np.zeros((120, 160, 3), np.uint8)
