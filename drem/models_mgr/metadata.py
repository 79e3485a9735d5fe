"""Parse and check model metadata JSON.

:func:`parse_deepracer_metadata` checks a DeepRacer ``model_metadata.json``: sensors
the cars can run (one front camera; no stereo cameras, no LiDAR), the action space
(discrete list or continuous ranges, finite numbers), training algorithm, network
and version. :func:`load_json` decodes metadata bytes (also Keras ``config.json`` /
``metadata.json``). Every problem is a
:class:`~drem.models_mgr.inspect_types.ModelRejected` with a message for the racer.
No Flask imports.
"""

from __future__ import annotations

import json
import math
from typing import Any

from drem.models_mgr.inspect_types import ModelRejected

__all__ = ["SUPPORTED_SENSORS", "load_json", "parse_deepracer_metadata"]

#: DeepRacer sensor configurations the car client can run: one front camera.
SUPPORTED_SENSORS = ("FRONT_FACING_CAMERA",)
_CAMERA_SENSORS = {"FRONT_FACING_CAMERA", "STEREO_CAMERAS"}
_LIDAR_SENSORS = {"LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR"}
_TRAINING_ALGORITHMS = ("clipped_ppo", "sac")


def load_json(raw: bytes, what: str) -> Any:
    """Decode UTF-8 (BOM allowed) JSON bytes; ``what`` names the file in the rejection."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelRejected(
            f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})."
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelRejected(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from exc
    except RecursionError as exc:
        raise ModelRejected(f"{what} is nested too deeply to be valid metadata.") from exc


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ModelRejected(
                    f"model_metadata.json: {what} must be a number, got {value!r}."
                ) from None
        else:
            raise ModelRejected(f"model_metadata.json: {what} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise ModelRejected(f"model_metadata.json: {what} must be a finite number.")
    return float(value)


def parse_deepracer_metadata(raw: bytes) -> dict[str, Any]:
    """Parse and check a DeepRacer ``model_metadata.json``.

    Missing fields get the DeepRacer console's defaults: sensor
    ``["FRONT_FACING_CAMERA"]``, training algorithm ``clipped_ppo``, action space
    type from the action space's shape (list = discrete, object = continuous).

    Args:
        raw: the file's bytes.

    Returns:
        ``{"metadata": parsed_json, "sensors": [...], "action_space_type": str,
        "action_space": list|dict, "neural_network": str|None,
        "training_algorithm": str, "version": str|None}``.

    Raises:
        ModelRejected: not UTF-8/JSON, not an object, no or malformed action space,
            unknown training algorithm, or sensors the cars cannot run.
    """
    meta = load_json(raw, "model_metadata.json")
    if not isinstance(meta, dict):
        raise ModelRejected("model_metadata.json must be a JSON object.")

    sensors_raw = meta.get("sensor", ["FRONT_FACING_CAMERA"])
    if isinstance(sensors_raw, str):
        sensors_raw = [sensors_raw]
    if not isinstance(sensors_raw, list) or not all(isinstance(s, str) for s in sensors_raw):
        raise ModelRejected("model_metadata.json: 'sensor' must be a list of sensor names.")
    sensors = [s.strip().upper() for s in sensors_raw]
    if not sensors:
        raise ModelRejected("model_metadata.json: 'sensor' is empty; the model needs a camera.")
    unsupported = [s for s in sensors if s not in SUPPORTED_SENSORS]
    if unsupported:
        if not any(s in _CAMERA_SENSORS for s in sensors):
            raise ModelRejected(
                f"This model uses only {', '.join(sensors)} and no camera; the cars drive with "
                "one front-facing camera. Train the model with FRONT_FACING_CAMERA only."
            )
        kinds = []
        if "STEREO_CAMERAS" in unsupported:
            kinds.append("stereo cameras")
        if any(s in _LIDAR_SENSORS for s in unsupported):
            kinds.append("LiDAR")
        other = [s for s in unsupported if s != "STEREO_CAMERAS" and s not in _LIDAR_SENSORS]
        if other:
            kinds.append("unknown sensors " + ", ".join(other))
        raise ModelRejected(
            f"This model needs {' and '.join(kinds)} ({', '.join(sensors)}); the cars drive with "
            "one front-facing camera. Train the model with FRONT_FACING_CAMERA only."
        )

    if "action_space" not in meta:
        raise ModelRejected("model_metadata.json has no 'action_space'.")
    space = meta["action_space"]
    declared = meta.get("action_space_type")
    if declared is not None:
        if not isinstance(declared, str) or declared.lower() not in ("discrete", "continuous"):
            raise ModelRejected(
                f"model_metadata.json: action_space_type must be 'discrete' or 'continuous', got {declared!r}."
            )
        declared = declared.lower()
    shape = (
        "discrete" if isinstance(space, list) else "continuous" if isinstance(space, dict) else None
    )
    if shape is None:
        raise ModelRejected(
            "model_metadata.json: 'action_space' must be a list (discrete) or an object (continuous)."
        )
    if declared is not None and declared != shape:
        raise ModelRejected(
            f"model_metadata.json says action_space_type is {declared!r} but the action space is {shape}."
        )

    if shape == "discrete":
        if not space:
            raise ModelRejected("model_metadata.json: the discrete action space is empty.")
        if len(space) > 1000:
            raise ModelRejected("model_metadata.json: more than 1000 discrete actions.")
        actions = []
        for i, action in enumerate(space):
            if not isinstance(action, dict):
                raise ModelRejected(f"model_metadata.json: action {i} is not an object.")
            for name in ("steering_angle", "speed"):
                if name not in action:
                    raise ModelRejected(f"model_metadata.json: action {i} has no '{name}'.")
            clean = dict(action)
            clean["steering_angle"] = _number(
                action["steering_angle"], f"action {i} steering_angle"
            )
            clean["speed"] = _number(action["speed"], f"action {i} speed")
            actions.append(clean)
        action_space: list[dict[str, Any]] | dict[str, Any] = actions
    else:
        ranges: dict[str, Any] = {}
        for name in ("steering_angle", "speed"):
            rng = space.get(name)
            if not isinstance(rng, dict) or "low" not in rng or "high" not in rng:
                raise ModelRejected(
                    f"model_metadata.json: the continuous action space needs '{name}' with 'low' and 'high'."
                )
            low = _number(rng["low"], f"{name} low")
            high = _number(rng["high"], f"{name} high")
            if low > high:
                raise ModelRejected(
                    f"model_metadata.json: {name} low ({low}) is above high ({high})."
                )
            ranges[name] = {"low": low, "high": high}
        action_space = ranges

    algorithm = meta.get("training_algorithm", "clipped_ppo")
    if not isinstance(algorithm, str) or algorithm.lower() not in _TRAINING_ALGORITHMS:
        raise ModelRejected(
            f"model_metadata.json: training algorithm {algorithm!r} is not supported "
            f"(supported: {', '.join(_TRAINING_ALGORITHMS)})."
        )
    algorithm = algorithm.lower()
    if algorithm == "sac" and shape != "continuous":
        raise ModelRejected("model_metadata.json: SAC models need a continuous action space.")

    network = meta.get("neural_network")
    if network is not None and not isinstance(network, str):
        raise ModelRejected("model_metadata.json: 'neural_network' must be a string.")
    version = meta.get("version")
    if version is not None and (isinstance(version, (dict, list, bool))):
        raise ModelRejected("model_metadata.json: 'version' must be a string or a number.")

    return {
        "metadata": meta,
        "sensors": sensors,
        "action_space_type": shape,
        "action_space": action_space,
        "neural_network": network,
        "training_algorithm": algorithm,
        "version": None if version is None else str(version),
    }
