"""Pilots: driving models behind one interface (image in; steering degrees, speed m/s out).

Formats (the names used everywhere, see ``ModelSpec``): ``deepracer`` (``.tar.gz``),
``keras`` (``.h5``, ``.keras``), ``tflite``, ``savedmodel`` (``.zip`` or folder). The
reference pilot (pure pursuit on the centre line, simulator only) is in
:mod:`car_client.sim.reference`. :func:`load_pilot` checks a model's graph first and
runs it in a confined model process (:mod:`car_client.pilots.sandbox`, see
``docs/model-safety.md``); TensorFlow is imported only there, when a model loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from car_client.pilots.base import GREY, RGB, Action, Pilot, Pose
from car_client.pilots.local import load_local
from car_client.pilots.sandbox import SandboxedPilot
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


def load_pilot(path: str | Path, model_format: str | None = None,
               sandbox: bool = True, settings: Mapping | None = None) -> Pilot:
    """Load a driving model as a :class:`Pilot`.

    model_format: one of :data:`MODEL_FORMATS`, or None to guess from the file name.
    The car checks the model's graph first (:mod:`car_client.pilots.guard`: only the ops
    real DeepRacer and Donkey Car models use) and, with ``sandbox`` (the default),
    loads and runs it in a confined process (:class:`~car_client.pilots.sandbox.SandboxedPilot`:
    not root, no writes outside its scratch folder). ``sandbox=False`` loads it in this
    process (training tools on a racer's computer, unit tests of the pilots).
    ``settings``: the model's Donkey settings (``categorical_throttle_range``,
    ``crop_top``, ``crop_bottom``; see :class:`car_client.pilots.donkey.ModelSettings`),
    passed into the model process.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` with a clear
    message for a model the car cannot or will not run (unknown format, an op outside
    the allow-list, LiDAR or stereo sensors, wrong input shape, unrecognised outputs,
    bad settings or a crop that does not match the input shape);
    ``RuntimeError`` when the model process cannot be confined."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    fmt = model_format or guess_format(p)
    if fmt not in MODEL_FORMATS:
        raise ValueError(f"unknown model format {fmt!r} (expected one of: {', '.join(MODEL_FORMATS)})")
    if sandbox:
        return SandboxedPilot(p, fmt, settings=settings)
    return load_local(p, fmt, settings)
