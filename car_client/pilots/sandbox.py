"""Run a driving model in a separate, confined process.

:class:`SandboxedPilot` is the :class:`~car_client.pilots.base.Pilot` the car drives
with: it copies the model into a fresh scratch folder, starts
``python -m car_client.pilots.model_process`` there, and talks to it over two pipes. The
model process confines itself first (:func:`car_client.confine.confine`: as
root it becomes ``nobody`` or ``$CAR_MODEL_USER``; Landlock keeps it from writing
outside the scratch folder, reading the car's files and opening TCP connections),
then checks the graph again (:func:`car_client.pilots.guard.refuse_unsafe_model`) and
loads it. A model that gets past every check still cannot touch the car.

Wire format (nothing is unpickled on either side; the parent trusts no byte it gets):

* parent -> model process: a command byte, a little-endian ``uint32`` payload length,
  the payload. ``A`` act and ``P`` predict carry a frame: ``uint16`` height, ``uint16``
  width, ``uint8`` channels, then the uint8 pixels; ``Q`` quits.
* model process -> parent: a ``uint32`` length and a UTF-8 JSON object: first the
  hello (``{"ok": true, "camera_mode", "name", "kind", "metadata", "confinement"}``
  or ``{"ok": false, "error"}``), then one reply per command
  (``{"steering_deg", "speed_mps"}``, ``{"angle", "throttle"}`` or ``{"error"}``).
"""

from __future__ import annotations

import json
import math
import os
import pwd
import shutil
import struct
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from car_client.confine import DEFAULT_USER, USER_ENV, read_exact
from car_client.pilots.base import GREY, RGB, Action, Pilot, Pose, check_image

__all__ = ["LOAD_TIMEOUT_S", "FRAME_TIMEOUT_S", "SandboxedPilot"]

#: Longest wait for the model process to confine itself, import TensorFlow and load.
LOAD_TIMEOUT_S = 300.0
#: Longest wait for one frame's answer.
FRAME_TIMEOUT_S = 10.0
_MAX_REPLY = 1024 * 1024
_WHO = "the model process"
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", USER_ENV)
_ENV_PREFIXES = ("TF_", "OMP_", "KMP_", "MKL_", "OPENBLAS_")


class SandboxedPilot(Pilot):
    """A model loaded and run in a confined child process (see the module docstring).

    path: the model file (or SavedModel folder); model_format: one of
    ``MODEL_FORMATS``; user: whom the child becomes when the car is root (default
    ``$CAR_MODEL_USER`` or ``nobody``); scratch_root: where the scratch folder is made
    (default the system temporary folder); settings: the model's Donkey settings
    (a JSON object, passed to the model process as its fourth argument).

    Raises ``ValueError`` when the car refuses or cannot load the model (the child's
    message), ``RuntimeError`` when the child cannot be confined or dies.
    Attributes after loading: ``camera_mode``, ``name``, ``kind`` (Donkey:
    ``linear``/``categorical``), ``metadata`` (DeepRacer: ``DeepRacerMetadata``),
    ``confinement`` (``{"uid", "landlock_abi"}`` of the child)."""

    def __init__(self, path: str | Path, model_format: str, user: str | None = None,
                 scratch_root: str | Path | None = None, settings: Mapping | None = None) -> None:
        src = Path(path)
        self.name = src.name
        self.kind: str | None = None
        self.metadata: Any = None
        user = user or os.environ.get(USER_ENV) or DEFAULT_USER
        self._scratch = Path(tempfile.mkdtemp(prefix="car-model-", dir=scratch_root))
        model = self._scratch / src.name
        try:
            if src.is_dir():
                shutil.copytree(src, model)
            else:
                shutil.copyfile(src, model)
            if os.geteuid() == 0:
                _give_to(self._scratch, user)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "car_client.pilots.model_process", str(self._scratch),
                 str(model), model_format, json.dumps(dict(settings or {}))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=self._scratch,
                env=_child_env(self._scratch, user), close_fds=True)
        except BaseException:
            shutil.rmtree(self._scratch, ignore_errors=True)
            raise
        self._finalizer = weakref.finalize(self, _stop, self._proc, self._scratch)
        try:
            hello = self._reply(LOAD_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        if not hello.get("ok"):
            self.close()
            error = str(hello.get("error", "the model process failed"))
            if hello.get("confinement_failed"):
                raise RuntimeError(error)
            raise ValueError(error)
        self.camera_mode = GREY if hello.get("camera_mode") == GREY else RGB
        self.kind = hello.get("kind")
        self.confinement = hello.get("confinement") or {}
        if hello.get("metadata") is not None:
            from car_client.pilots.deepracer import DeepRacerMetadata  # numpy only, no TF

            md = hello["metadata"]
            self.metadata = DeepRacerMetadata(
                sensors=tuple(md["sensors"]), algorithm=md["algorithm"],
                action_space_type=md["action_space_type"],
                actions=tuple(tuple(a) for a in md["actions"]),
                steering_range=tuple(md["steering_range"]), speed_range=tuple(md["speed_range"]))

    # ------------------------------------------------------------------ frames

    def act(self, image: np.ndarray | None, pose: Pose | None = None) -> Action:
        """Send one frame to the model process; its steering (deg, +left) and speed (m/s).

        Raises ``ValueError`` for a frame of the wrong shape, ``RuntimeError`` when the
        model process fails, dies or takes longer than :data:`FRAME_TIMEOUT_S`."""
        out = self._ask(b"A", check_image(image, self.camera_mode))
        return Action(_finite(out, "steering_deg"), _finite(out, "speed_mps"))

    def predict(self, image: np.ndarray) -> tuple[float, float]:
        """Donkey models: raw ``(angle, throttle)`` for an RGB uint8 ``(120, 160, 3)`` frame."""
        if self.kind is None:
            raise AttributeError("predict is for Donkey Car models")
        out = self._ask(b"P", check_image(image, RGB))
        return _finite(out, "angle"), _finite(out, "throttle")

    def _ask(self, command: bytes, img: np.ndarray) -> dict:
        if self._proc.poll() is not None:
            raise RuntimeError(f"the model process has ended (exit code {self._proc.returncode})")
        img = np.ascontiguousarray(img, dtype=np.uint8)
        h, w = img.shape[:2]
        channels = img.shape[2] if img.ndim == 3 else 1
        payload = struct.pack("<HHB", h, w, channels) + img.tobytes()
        try:
            self._proc.stdin.write(command + struct.pack("<I", len(payload)) + payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise RuntimeError(f"the model process has ended: {exc}") from exc
        out = self._reply(FRAME_TIMEOUT_S)
        if "error" in out:
            raise RuntimeError(f"the model failed on a frame: {out['error']}")
        return out

    def _reply(self, timeout_s: float) -> dict:
        header = read_exact(self._proc.stdout.fileno(), 4, timeout_s, _WHO)
        (length,) = struct.unpack("<I", header)
        if length > _MAX_REPLY:
            raise RuntimeError("the model process sent an oversized reply")
        body = read_exact(self._proc.stdout.fileno(), length, timeout_s, _WHO)
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RuntimeError("the model process sent a reply that is not JSON") from exc
        if not isinstance(value, dict):
            raise RuntimeError("the model process sent a reply that is not an object")
        return value

    def close(self) -> None:
        """Stop the model process and delete its scratch folder (idempotent)."""
        self._finalizer()


def _give_to(folder: Path, user: str) -> None:
    try:
        pw = pwd.getpwnam(user)
    except KeyError as exc:
        raise RuntimeError(f"no user {user!r} to run the model as (set {USER_ENV})") from exc
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
    os.chown(folder, pw.pw_uid, pw.pw_gid)
    os.chmod(folder, 0o700)


def _child_env(scratch: Path, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith(_ENV_PREFIXES)}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(HOME=str(scratch), TMPDIR=str(scratch), PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
    env[USER_ENV] = user
    return env


def _finite(out: dict, key: str) -> float:
    value = out.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RuntimeError(f"the model process sent a bad {key!r}: {value!r}")
    return float(value)


def _stop(proc: subprocess.Popen, scratch: Path) -> None:
    try:
        if proc.poll() is None:
            try:
                proc.stdin.write(b"Q" + struct.pack("<I", 0))
                proc.stdin.flush()
            except OSError:
                pass
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
