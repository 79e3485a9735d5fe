"""Run ``.tflite`` Donkey models through ``ai_edge_litert`` (LiteRT).

Outputs are read by name from the model's signature (never by position: converters
reorder output tensors). A model without signatures falls back to tensor names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from car_client.pilots.keras_runner import INPUT_SHAPE, Runner


def load_tflite(path: str | Path, num_threads: int = 1) -> tuple[Runner, dict[str, int]]:
    """Load a ``.tflite`` model; returns ``(run, sizes)`` like the Keras loaders.

    Raises ``ValueError`` for an unreadable file, several signatures or inputs, an input
    other than float32 ``[1, H <= 120, 160, 3]`` (``run.input_rows`` = H)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(path), num_threads=num_threads)
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError for bad files
        raise ValueError(f"cannot load tflite model {Path(path).name}: {exc}") from exc
    signatures = interp.get_signature_list()
    if len(signatures) > 1:
        raise ValueError(f"the tflite model has {len(signatures)} signatures; expected one")
    if signatures:
        key, sig = next(iter(signatures.items()))
        if len(sig["inputs"]) != 1:
            raise ValueError(f"the model has {len(sig['inputs'])} inputs; the car gives only "
                             "one camera image")
        runner = interp.get_signature_runner(key)
        in_name = sig["inputs"][0]
        in_detail = runner.get_input_details()[in_name]
        out_details = runner.get_output_details()
        rows = _check(in_detail)
        sizes = {n: int(np.prod(d["shape"][1:])) for n, d in out_details.items()}

        def run(x: np.ndarray) -> dict:
            return runner(**{in_name: x.astype(np.float32)})
    else:
        interp.allocate_tensors()
        ins = interp.get_input_details()
        if len(ins) != 1:
            raise ValueError(f"the model has {len(ins)} inputs; the car gives only one image")
        rows = _check(ins[0])
        outs = interp.get_output_details()
        sizes = {d["name"]: int(np.prod(d["shape"][1:])) for d in outs}
        in_index = ins[0]["index"]

        def run(x: np.ndarray) -> dict:
            interp.set_tensor(in_index, x.astype(np.float32))
            interp.invoke()
            return {d["name"]: interp.get_tensor(d["index"]).copy() for d in outs}

    run.input_rows = rows
    run._keep = interp  # the interpreter must outlive the runner
    return run, sizes


def _check(detail: dict) -> int:
    shape = tuple(int(d) for d in detail["shape"])
    if len(shape) != 4 or shape[2:] != INPUT_SHAPE[1:] or not 1 <= shape[1] <= INPUT_SHAPE[0]:
        raise ValueError(f"the model expects input {list(shape)}; the car gives "
                         "[1, 120, 160, 3] (160x120 RGB), cropped to fewer rows at most")
    if detail["dtype"] != np.float32:
        raise ValueError(f"the model expects {np.dtype(detail['dtype']).name} input; "
                         "only float32 (0..1) inputs are supported")
    return shape[1]
