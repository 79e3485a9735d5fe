"""Load a model in this process, after the car's own check of its graph.

:func:`load_local` is what the model process (:mod:`car_client.pilots.sandbox`) runs;
:func:`car_client.pilots.load_pilot` calls it directly only when asked for no sandbox
(training tools on a racer's own computer, unit tests of the pilots).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from car_client.pilots.base import Pilot
from car_client.pilots.guard import refuse_unsafe_model
from car_client.protocol import MODEL_FORMATS

__all__ = ["load_local"]


def load_local(path: str | Path, model_format: str, settings: Mapping | None = None) -> Pilot:
    """Check ``path``'s graph (:func:`refuse_unsafe_model`) and load it as a Pilot.

    settings: Donkey per-model settings (``{"categorical_throttle_range", "crop_top",
    "crop_bottom"}``, see :class:`car_client.pilots.donkey.ModelSettings`); ignored
    for DeepRacer models. Raises ``ValueError`` for a refused or unloadable model, an
    unknown format, bad settings or a crop that does not match the model's input.
    TensorFlow / LiteRT are imported here, on first use."""
    p = Path(path)
    if model_format not in MODEL_FORMATS:
        raise ValueError(f"unknown model format {model_format!r} "
                         f"(expected one of: {', '.join(MODEL_FORMATS)})")
    refuse_unsafe_model(p, model_format)
    if model_format == "deepracer":
        from car_client.pilots.deepracer import DeepRacerPilot  # imports TensorFlow

        return DeepRacerPilot(p)
    from car_client.pilots.donkey import DEFAULT_THROTTLE_RANGE, DonkeyPilot, ModelSettings

    chosen = ModelSettings.from_dict(settings)
    if model_format == "keras":
        from car_client.pilots.keras_runner import load_keras as loader  # TensorFlow
    elif model_format == "savedmodel":
        from car_client.pilots.keras_runner import load_saved_model as loader  # TensorFlow
    else:
        from car_client.pilots.tflite import load_tflite as loader  # LiteRT
    run, sizes = loader(p)
    pilot = DonkeyPilot(run, sizes, name=p.name,
                        throttle_range=chosen.categorical_throttle_range or DEFAULT_THROTTLE_RANGE,
                        crop_top=chosen.crop_top, crop_bottom=chosen.crop_bottom)
    pilot.predict(np.zeros((120, 160, 3), np.uint8))  # fail now, not on the track
    return pilot
