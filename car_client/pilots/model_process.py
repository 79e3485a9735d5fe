"""The model process: confine, check, load, then answer frames.

Started by :class:`car_client.pilots.sandbox.SandboxedPilot` as
``python -m car_client.pilots.model_process SCRATCH MODEL FORMAT [SETTINGS_JSON]``; the wire format is
described there. :func:`main` confines the process before anything of the model is
read (:func:`car_client.confine.confine`), then loads it with
:func:`car_client.pilots.local.load_local` (which checks the graph first).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np

from car_client.confine import ConfinementError, confine
from car_client.pilots.base import Pilot
from car_client.pilots.local import load_local


def _send(out: BinaryIO, value: dict) -> None:
    body = json.dumps(value).encode("utf-8")
    out.write(struct.pack("<I", len(body)) + body)
    out.flush()


def _recv(inp: BinaryIO) -> tuple[bytes, bytes]:
    header = inp.read(5)
    if len(header) < 5:
        return b"Q", b""
    (length,) = struct.unpack("<I", header[1:])
    return header[:1], inp.read(length)


def _frame(payload: bytes) -> np.ndarray:
    h, w, channels = struct.unpack_from("<HHB", payload)
    img = np.frombuffer(payload, np.uint8, offset=5)
    return img.reshape((h, w) if channels == 1 else (h, w, channels))


def _hello(pilot: Pilot, confinement: dict) -> dict:
    metadata = getattr(pilot, "metadata", None)
    return {"ok": True, "camera_mode": pilot.camera_mode, "name": pilot.name,
            "kind": getattr(pilot, "kind", None), "confinement": confinement,
            "metadata": asdict(metadata) if metadata is not None else None}


def _preload(model_format: str) -> None:
    """Import the runtime for ``model_format`` before the process gives up root: the
    Python installation may be readable by root only. Nothing of the model is read."""
    import importlib

    names = {"deepracer": ["tensorflow", "gzip", "tarfile", "car_client.pilots.deepracer"],
             "keras": ["tensorflow", "keras", "h5py", "car_client.pilots.keras_runner"],
             "savedmodel": ["tensorflow", "keras", "h5py", "car_client.pilots.keras_runner"],
             "tflite": ["ai_edge_litert.interpreter", "car_client.pilots.tflite"]}
    for name in ["zipfile", "json", "encodings.cp437", "encodings.idna", *names.get(model_format, [])]:
        importlib.import_module(name)


def main(argv: list[str]) -> int:
    """Run the model process; ``argv`` is ``[SCRATCH, MODEL, FORMAT]`` and optionally the
    model's Donkey settings as a JSON object. Returns the exit code."""
    out = os.fdopen(os.dup(1), "wb")
    inp = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)  # what the model prints goes to stderr, never into the replies
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    scratch, model, model_format = argv[:3]
    settings_json = argv[3] if len(argv) > 3 else "{}"
    _preload(model_format)
    try:
        confinement = confine(scratch)
    except (ConfinementError, OSError) as exc:
        _send(out, {"ok": False, "error": f"cannot confine the model process: {exc}",
                    "confinement_failed": True})
        return 2
    try:
        settings = json.loads(settings_json)
        if not isinstance(settings, dict):
            raise ValueError("the model settings must be a JSON object")
        pilot = load_local(model, model_format, settings)
    except ValueError as exc:
        _send(out, {"ok": False, "error": str(exc)})
        return 1
    except Exception as exc:  # noqa: BLE001 - any load failure is a refusal for the parent
        _send(out, {"ok": False, "error": f"cannot load {Path(model).name}: "
                                          f"{type(exc).__name__}: {exc}"})
        return 1
    _send(out, _hello(pilot, confinement))
    while True:
        command, payload = _recv(inp)
        if command == b"Q":
            return 0
        try:
            img = _frame(payload)
            if command == b"A":
                a = pilot.act(img)
                _send(out, {"steering_deg": a.steering_deg, "speed_mps": a.speed_mps})
            elif command == b"P":
                angle, throttle = pilot.predict(img)  # type: ignore[attr-defined]
                _send(out, {"angle": angle, "throttle": throttle})
            else:
                _send(out, {"error": f"unknown command {command!r}"})
        except Exception as exc:  # noqa: BLE001 - reported to the parent, frame by frame
            _send(out, {"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
