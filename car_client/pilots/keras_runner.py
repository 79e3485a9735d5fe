"""Run Keras (``.h5``, ``.keras``) and SavedModel (zipped or a folder) Donkey models.

Each loader returns ``(run, sizes)``: ``run(x)`` maps a float32 ``[1, H, 160, 3]``
batch to ``{output name: numpy array}`` through a compiled ``tf.function`` (about a
millisecond, unlike ``model.predict``); ``sizes`` maps output names to value counts.
``H`` is 120, or fewer rows for a model trained on a cropped frame (Donkey's
``ROI_CROP_TOP`` / ``ROI_CROP_BOTTOM``); ``run.input_rows`` says which.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

INPUT_SHAPE = (120, 160, 3)
Runner = Callable[[np.ndarray], dict]


def _check_input(shape, what: str) -> int:
    """The input's rows (1..120; a free height counts as 120). ValueError for any
    shape other than ``[?, rows, 160, 3]``."""
    dims = tuple(None if d is None else int(d) for d in shape)
    if len(dims) != 4 or dims[2:] != INPUT_SHAPE[1:] or not (dims[1] is None or 1 <= dims[1] <= INPUT_SHAPE[0]):
        raise ValueError(f"{what} expects input {list(dims)}; the car gives "
                         f"[1, 120, 160, 3] (160x120 RGB), cropped to fewer rows at most")
    return INPUT_SHAPE[0] if dims[1] is None else dims[1]


def load_keras(path: str | Path) -> tuple[Runner, dict[str, int]]:
    """Load a Keras ``.h5`` / ``.keras`` model (not compiled).

    Raises ``ValueError`` if it cannot be loaded, has more than one input (IMU,
    behaviour or memory models) or an input other than ``[?, H <= 120, 160, 3]``."""
    import keras
    import tensorflow as tf

    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ValueError(f"cannot load Keras model {Path(path).name}: {exc}") from exc
    if len(model.inputs) != 1:
        raise ValueError(f"the model has {len(model.inputs)} inputs; the car gives only "
                         "one camera image")
    rows = _check_input(model.inputs[0].shape, "the model")
    try:
        names = list(model.output_names)
    except AttributeError:
        names = []
    if len(names) != len(model.outputs):
        names = [f"output_{i}" for i in range(len(model.outputs))]
    sizes = {n: int(np.prod(o.shape[1:])) for n, o in zip(names, model.outputs, strict=True)}

    @tf.function(input_signature=[tf.TensorSpec([1, rows, *INPUT_SHAPE[1:]], tf.float32)])
    def call(x):
        out = model(x, training=False)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def run(x: np.ndarray) -> dict:
        return {n: t.numpy() for n, t in zip(names, call(tf.constant(x)), strict=True)}

    run.input_rows = rows
    return run, sizes


def _find_saved_model(root: Path) -> Path | None:
    hits = sorted(root.rglob("saved_model.pb"), key=lambda p: len(p.parts))
    return hits[0].parent if hits else None


def load_saved_model(path: str | Path) -> tuple[Runner, dict[str, int]]:
    """Load a SavedModel from a folder or a ``.zip`` holding one (``serving_default``
    signature; outputs read by signature name). A zip holding a single ``.h5`` /
    ``.keras`` file is loaded with :func:`load_keras`.

    Raises ``ValueError`` for an unsafe or unreadable zip, a missing
    ``saved_model.pb``/signature, or a wrong input."""
    import tensorflow as tf

    path = Path(path)
    tmp = None
    if path.is_dir():
        folder = _find_saved_model(path)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="drem-savedmodel-")
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    target = (Path(tmp.name) / info.filename).resolve()
                    if not target.is_relative_to(Path(tmp.name).resolve()):
                        raise ValueError(f"unsafe path in zip: {info.filename!r}")
                zf.extractall(tmp.name)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path.name} is not a zip file: {exc}") from exc
        folder = _find_saved_model(Path(tmp.name))
        if folder is None:
            kerases = [p for p in Path(tmp.name).rglob("*") if p.suffix in (".h5", ".keras")]
            if len(kerases) == 1:
                return load_keras(kerases[0])
    if folder is None:
        raise ValueError(f"no saved_model.pb in {path.name}")
    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as exc:  # TF raises many types for a bad SavedModel
        raise ValueError(f"cannot load SavedModel {path.name}: {exc}") from exc
    if "serving_default" not in loaded.signatures:
        raise ValueError("the SavedModel has no serving_default signature")
    sig = loaded.signatures["serving_default"]
    inputs = sig.structured_input_signature[1]
    if len(inputs) != 1:
        raise ValueError(f"the model has {len(inputs)} inputs; the car gives only one "
                         "camera image")
    in_name, spec = next(iter(inputs.items()))
    rows = _check_input(spec.shape, "the model")
    sizes = {n: int(np.prod(s.shape[1:])) for n, s in sig.structured_outputs.items()}
    fn = tf.function(sig)

    def run(x: np.ndarray) -> dict:
        out = fn(**{in_name: tf.constant(x, dtype=spec.dtype)})
        return {n: t.numpy() for n, t in out.items()}

    run.input_rows = rows
    run._keep = (loaded, tmp)  # keep the model and its files alive with the runner
    return run, sizes
