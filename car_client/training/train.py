"""Train a Donkey-style autopilot from tubs and export it as ``.keras`` and ``.tflite``.

Outputs beside ``out`` (``out`` is the ``.keras`` path; other files share its stem):

* ``NAME.keras`` — the Keras 3 model (input ``img_in`` ``(1, 120, 160, 3)`` RGB 0..1);
* ``NAME.tflite`` — the same model, signature ``serving_default`` with input ``img_in``
  and outputs ``angle`` and ``throttle`` (read them by name);
* ``NAME.json`` — training facts: model type, ``max_steering_deg`` and ``max_speed_mps``
  (the scales of the angle and throttle outputs, from the tubs' metadata), frames,
  epochs, losses, seconds;
* ``NAME.loss.png`` — training and validation loss per epoch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from car_client.training.model import build_model, compile_model, encode_targets
from car_client.training.tub import Tub, load_driving_data


@dataclass
class TrainResult:
    """What :func:`train_model` produced: file paths, data sizes, losses, time (s)."""

    keras_path: str
    tflite_path: str
    meta_path: str
    plot_path: str
    model_type: str
    n_train: int
    n_val: int
    epochs_run: int
    best_val_loss: float
    seconds: float
    history: dict = field(default_factory=dict)


def augment_batch(images: np.ndarray, angles: np.ndarray, rng: np.random.Generator,
                  brightness: float = 0.3, blur_prob: float = 0.3, grey_prob: float = 0.2,
                  flip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Augment a batch as Donkey Car offers (brightness, blur) plus grey and mirror.

    ``images``: ``uint8 (N, H, W, 3)``; ``angles``: ``(N,)`` -1..1. Each image gets a
    brightness factor in ``1 ± brightness``, a 3x3 or 5x5 box blur with probability
    ``blur_prob``, grey copied to 3 channels with probability ``grey_prob`` (so the
    model also drives on a DeepRacer's grey camera), and (``flip``) a left-right mirror with probability 0.5 that negates
    its angle. Returns ``(float32 (N, H, W, 3) 0..1, float32 (N,))``.
    """
    import cv2

    out = images.astype(np.float32) * (1.0 / 255.0)
    angles = np.array(angles, dtype=np.float32, copy=True)
    n = len(out)
    for i in np.nonzero(rng.random(n) < grey_prob)[0]:
        out[i] = cv2.cvtColor(cv2.cvtColor(out[i], cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if brightness > 0:
        out *= rng.uniform(1.0 - brightness, 1.0 + brightness, size=(n, 1, 1, 1)).astype(
            np.float32)
    for i in np.nonzero(rng.random(n) < blur_prob)[0]:
        k = int(rng.choice((3, 5)))
        out[i] = cv2.blur(out[i], (k, k))
    if flip:
        mirrored = rng.random(n) < 0.5
        out[mirrored] = out[mirrored, :, ::-1, :]
        angles[mirrored] = -angles[mirrored]
    np.clip(out, 0.0, 1.0, out=out)
    return out, angles


def split_blocks(n: int, val_fraction: float, rng: np.random.Generator,
                 block: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into train and validation indexes by blocks of ``block``
    consecutive frames (neighbouring frames look alike, so a frame-wise split would
    leak). Returns ``(train_idx, val_idx)``; at least one block goes to each side when
    ``n`` allows. Raises ``ValueError`` if ``val_fraction`` is outside 0..0.9."""
    if not 0.0 <= val_fraction <= 0.9:
        raise ValueError("val_fraction must be within 0..0.9")
    blocks = np.arange(n) // block
    n_blocks = int(blocks.max()) + 1 if n else 0
    n_val = int(round(n_blocks * val_fraction))
    if val_fraction > 0 and n_blocks >= 2:
        n_val = min(max(n_val, 1), n_blocks - 1)
    val_blocks = set(rng.permutation(n_blocks)[:n_val].tolist())
    is_val = np.array([b in val_blocks for b in blocks], dtype=bool)
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


def _make_sequence(images, angles, throttles, idx, batch_size, model_type, augment, seed):
    import keras

    class _Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = np.array(idx)

        def __len__(self):
            return max(1, math.ceil(len(self.order) / batch_size))

        def __getitem__(self, i):
            sel = np.sort(self.order[i * batch_size:(i + 1) * batch_size])
            if augment:
                x, a = augment_batch(images[sel], angles[sel], self.rng)
            else:
                x, a = images[sel].astype(np.float32) / 255.0, angles[sel]
            return x, tuple(encode_targets(a, throttles[sel], model_type))

        def on_epoch_end(self):
            if augment:
                self.rng.shuffle(self.order)

    return _Batches()


def tub_scales(tub_paths: Sequence[str | os.PathLike]) -> dict:
    """Read ``max_steering_deg`` and ``max_speed_mps`` from the tubs' user metadata.

    Returns ``{"max_steering_deg": float | None, "max_speed_mps": float | None,
    "tracks": [...]}``. Raises ``ValueError`` if two tubs disagree on a scale (their
    labels would mean different things).
    """
    scales: dict = {"max_steering_deg": None, "max_speed_mps": None, "tracks": []}
    for path in tub_paths:
        meta = Tub(path).metadata or {}
        for key in ("max_steering_deg", "max_speed_mps"):
            if key in meta:
                value = float(meta[key])
                if scales[key] is not None and abs(scales[key] - value) > 1e-6:
                    raise ValueError(f"tubs disagree on {key}: {scales[key]} vs {value}")
                scales[key] = value
        if "track" in meta and meta["track"] not in scales["tracks"]:
            scales["tracks"].append(meta["track"])
    return scales


def save_loss_plot(history: dict, path: str | os.PathLike, title: str = "") -> None:
    """Save a PNG of ``loss`` and ``val_loss`` per epoch (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key in ("loss", "val_loss"):
        if history.get(key):
            ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title or "training loss")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def train_model(tub_paths: Sequence[str | os.PathLike], out: str | os.PathLike,
                model_type: str = "linear", epochs: int = 20, batch_size: int = 64,
                val_fraction: float = 0.15, patience: int = 3, learning_rate: float = 1e-3,
                augment: bool = True, seed: int = 0, verbose: int | None = None,
                export_tflite_file: bool = True) -> TrainResult:
    """Train a model on the tubs and write ``.keras``, ``.tflite``, ``.json``, ``.loss.png``.

    ``out``: path of the ``.keras`` file (the suffix is added if missing); ``epochs``:
    maximum epochs (early stopping on validation loss with ``patience`` restores the
    best weights); ``verbose``: Keras verbosity (default: progress bar on a terminal,
    one line per epoch otherwise). Raises :class:`~car_client.training.tub.TubError`
    for unreadable tubs and ``ValueError`` for bad arguments.
    """
    import keras

    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch size must be at least 1")
    started = time.monotonic()
    out = Path(out)
    if out.suffix != ".keras":
        out = out.with_name(out.name + ".keras")
    out.parent.mkdir(parents=True, exist_ok=True)
    scales = tub_scales(tub_paths)
    images, angles, throttles = load_driving_data(tub_paths)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = split_blocks(len(images), val_fraction, rng)
    model = build_model(model_type, seed=seed)
    compile_model(model, model_type, learning_rate)
    train_seq = _make_sequence(images, angles, throttles, rng.permutation(train_idx),
                               batch_size, model_type, augment, seed)
    val_seq = (_make_sequence(images, angles, throttles, val_idx, batch_size, model_type,
                              False, seed) if len(val_idx) else None)
    monitor = "val_loss" if val_seq is not None else "loss"
    callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                               restore_best_weights=True, min_delta=1e-5)]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    fit = model.fit(train_seq, validation_data=val_seq, epochs=epochs,
                    callbacks=callbacks, verbose=verbose)
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    save_inference_model(model, out)
    tflite_path = out.with_suffix(".tflite")
    if export_tflite_file:
        export_tflite(model, tflite_path)
    plot_path = out.with_suffix(".loss.png")
    save_loss_plot(history, plot_path, title=f"{out.stem} ({model_type})")
    best = min(history.get(monitor) or [float("nan")])
    result = TrainResult(
        keras_path=str(out), tflite_path=str(tflite_path) if export_tflite_file else "",
        meta_path=str(out.with_suffix(".json")), plot_path=str(plot_path),
        model_type=model_type, n_train=len(train_idx), n_val=len(val_idx),
        epochs_run=len(history.get("loss", [])), best_val_loss=float(best),
        seconds=time.monotonic() - started, history=history)
    meta = {"model_type": model_type, "input": "img_in (1,120,160,3) RGB 0..1",
            "outputs": ["angle", "throttle"],
            "max_steering_deg": scales["max_steering_deg"],
            "max_speed_mps": scales["max_speed_mps"], "tracks": scales["tracks"],
            "tubs": [str(p) for p in tub_paths], **asdict(result)}
    Path(result.meta_path).write_text(json.dumps(meta, indent=2))
    return result


def save_inference_model(model, path: str | os.PathLike) -> None:
    """Save ``model`` as ``.keras`` without optimizer state (about a third of the size):
    an uncompiled copy with the trained weights."""
    import keras

    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    clone.save(path)


def export_tflite(model, path: str | os.PathLike) -> None:
    """Convert a Keras model to ``.tflite`` with one signature ``serving_default``:
    input ``img_in`` ``float32 (1, H, W, C)``, outputs named after the model's outputs
    (``angle``, ``throttle``). Raises ``RuntimeError`` if the converter fails."""
    import tempfile

    import keras
    import tensorflow as tf

    shape = (1, *model.inputs[0].shape[1:])

    names = list(model.output_names)

    def serve(img_in):
        outputs = model(img_in, training=False)
        if isinstance(outputs, dict):
            outputs = [outputs[n] for n in names]
        return {name: tf.identity(t, name=name) for name, t in zip(names, outputs,
                                                                   strict=True)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=[
        tf.TensorSpec(shape, tf.float32, name="img_in")])
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=["serving_default"])
        try:
            data = converter.convert()
        except Exception as exc:  # the converter raises several private types
            raise RuntimeError(f"tflite conversion failed: {exc}") from exc
    Path(path).write_bytes(data)
