"""Donkey-style CNN autopilots (Keras 3): linear and categorical.

Input ``img_in``: ``float32 (batch, 120, 160, 3)`` RGB scaled to 0..1 (Donkey's input).
The top :data:`HORIZON_ROW` rows (sky, above the simulator camera's horizon) are cropped
inside the model, so callers always pass the full frame.

Outputs, read by name:

* linear: ``angle`` ``(batch, 1)`` in -1..1 and ``throttle`` ``(batch, 1)`` in 0..1;
* categorical: ``angle`` ``(batch, 15)`` softmax over :data:`ANGLE_BINS` and
  ``throttle`` ``(batch, 20)`` softmax over :data:`THROTTLE_BINS`; the arg-max bin is
  the value (Donkey's rule: angle bin ``b`` is ``b * 2/14 - 1``, throttle bin ``b`` is
  ``b * 0.5 / 20``, so categorical models top out at throttle 0.475).

The model returns a list ``[angle, throttle]`` (as Donkey's models do); the layer
names carry the meaning. Donkey's conventions hold (see :mod:`car_client.pilots.donkey`):
angle is a fraction of the maximum steering angle, positive to the RIGHT; throttle is
a fraction of full speed (``DONKEY_FULL_THROTTLE_MPS``).

Keras is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import numpy as np

from car_client.pilots.donkey import ANGLE_BINS as N_ANGLE_BINS
from car_client.pilots.donkey import DEFAULT_THROTTLE_RANGE
from car_client.pilots.donkey import THROTTLE_BINS as N_THROTTLE_BINS

#: Rows 0..47 of a 120-row frame are sky for the simulator camera (horizon at row 48).
HORIZON_ROW = 48
INPUT_SHAPE = (120, 160, 3)
MODEL_TYPES = ("linear", "categorical")
OUTPUT_NAMES = ("angle", "throttle")
#: Values of the categorical bins: 15 angles over -1..1, 20 throttles 0..0.475 (Donkey's).
ANGLE_BINS = np.linspace(-1.0, 1.0, N_ANGLE_BINS).astype(np.float32)
THROTTLE_BINS = (np.arange(N_THROTTLE_BINS) * DEFAULT_THROTTLE_RANGE
                 / N_THROTTLE_BINS).astype(np.float32)


def build_model(model_type: str = "linear", input_shape: tuple = INPUT_SHAPE,
                crop_top: int = HORIZON_ROW, dropout: float = 0.1, seed: int = 0):
    """Build an uncompiled Donkey-style CNN (5 conv layers, dense 100 and 50).

    ``model_type``: ``"linear"`` or ``"categorical"``; ``input_shape``: (H, W, C) in
    pixels; ``crop_top``: sky rows removed (pixels). Raises ``ValueError`` for an
    unknown type or a crop that leaves no image.
    """
    import keras
    from keras import layers

    if model_type not in MODEL_TYPES:
        raise ValueError(f"model type must be one of {MODEL_TYPES}, not {model_type!r}")
    if not 0 <= crop_top < input_shape[0] - 20:
        raise ValueError(f"crop_top {crop_top} leaves too little of a {input_shape[0]}-row image")
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=input_shape, name="img_in")
    x = layers.Cropping2D(((crop_top, 0), (0, 0)), name="crop_sky")(inp)
    for i, (filters, kernel, stride) in enumerate(
            [(24, 5, 2), (32, 5, 2), (64, 5, 2), (64, 3, 1), (64, 3, 1)]):
        x = layers.Conv2D(filters, kernel, strides=stride, activation="relu",
                          name=f"conv2d_{i + 1}")(x)
    x = layers.Flatten(name="flattened")(x)
    x = layers.Dense(100, activation="relu", name="dense_1")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(50, activation="relu", name="dense_2")(x)
    x = layers.Dropout(dropout)(x)
    if model_type == "linear":
        angle = layers.Dense(1, activation="linear", name="angle")(x)
        throttle = layers.Dense(1, activation="linear", name="throttle")(x)
    else:
        angle = layers.Dense(len(ANGLE_BINS), activation="softmax", name="angle")(x)
        throttle = layers.Dense(len(THROTTLE_BINS), activation="softmax", name="throttle")(x)
    return keras.Model(inputs=inp, outputs=[angle, throttle], name=f"donkey_{model_type}")


def compile_model(model, model_type: str, learning_rate: float = 1e-3) -> None:
    """Compile ``model`` with Adam and Donkey's losses (MSE for linear, categorical
    cross-entropy for categorical; steering weighted above throttle)."""
    import keras

    if model_type == "linear":
        loss, weights = ["mse", "mse"], [1.0, 0.5]
    else:
        loss = ["categorical_crossentropy", "categorical_crossentropy"]
        weights = [0.5, 0.5]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss,
                  loss_weights=weights)


def model_type_of(model) -> str:
    """Return ``"linear"`` or ``"categorical"`` from the width of the ``angle`` output."""
    width = int(model.get_layer("angle").output.shape[-1])
    return "linear" if width == 1 else "categorical"


def encode_targets(angles: np.ndarray, throttles: np.ndarray, model_type: str) -> list:
    """Turn labels (``(N,)`` angle -1..1, throttle 0..1) into model targets.

    Linear: ``[angle (N, 1), throttle (N, 1)]`` float32. Categorical: one-hot
    ``(N, 15)`` and ``(N, 20)`` of the nearest bin (throttle above 0.475 saturates).
    """
    angles = np.clip(np.asarray(angles, np.float32), -1.0, 1.0)
    throttles = np.clip(np.asarray(throttles, np.float32), 0.0, 1.0)
    if model_type == "linear":
        return [angles[:, None], throttles[:, None]]
    a_idx = np.abs(angles[:, None] - ANGLE_BINS[None, :]).argmin(axis=1)
    t_idx = np.abs(throttles[:, None] - THROTTLE_BINS[None, :]).argmin(axis=1)
    return [np.eye(len(ANGLE_BINS), dtype=np.float32)[a_idx],
            np.eye(len(THROTTLE_BINS), dtype=np.float32)[t_idx]]

