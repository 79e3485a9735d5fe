"""AWS DeepRacer models: a ``.tar.gz`` with ``model_metadata.json`` and a frozen graph.

Archive: ``model_metadata.json`` and ``agent/model.pb`` (or ``model.pb``), found by name
anywhere in the archive; nothing is extracted to disk. Input: one grey camera frame,
float ``[1, 120, 160, 1]`` with values 0..255. Outputs, by training algorithm:

* PPO (``clipped_ppo``, the default): ``main_level/agent/main/online/network_1/ppo_head_0/policy``;
* SAC (``sac``): ``main_level/agent/policy/online/network_0/sac_policy_head_0/policy``
  (input under ``main_level/agent/policy/online/network_0/``).

Action spaces (``action_space_type``): ``discrete`` - the output is a softmax over the
``action_space`` list of ``{"steering_angle": deg, "speed": m/s}`` and the car takes the
most likely action; ``continuous`` - the first two outputs (steering, speed), clipped to
[-1, 1], are scaled linearly onto ``action_space.steering_angle.low..high`` and
``action_space.speed.low..high``, as the DeepRacer car's navigation node does.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from car_client.pilots.base import GREY, Action, Pilot, Pose, check_image

CAMERA_SENSOR = "FRONT_FACING_CAMERA"
_INPUT_PREFIX = {"clipped_ppo": "main_level/agent/main/online/network_0",
                 "sac": "main_level/agent/policy/online/network_0"}
OUTPUT_TENSORS = {"clipped_ppo": "main_level/agent/main/online/network_1/ppo_head_0/policy",
                  "sac": "main_level/agent/policy/online/network_0/sac_policy_head_0/policy"}
_SENSOR_PROBLEMS = {
    "LIDAR": "a LiDAR",
    "SECTOR_LIDAR": "a LiDAR",
    "DISCRETIZED_SECTOR_LIDAR": "a LiDAR",
    "STEREO_CAMERAS": "stereo cameras",
}


def input_tensor_name(algorithm: str = "clipped_ppo") -> str:
    """Name (without ``:0``) of the camera input tensor for a training algorithm."""
    return f"{_INPUT_PREFIX[algorithm]}/{CAMERA_SENSOR}/{CAMERA_SENSOR}"


@dataclass(frozen=True)
class DeepRacerMetadata:
    """What ``model_metadata.json`` says, checked.

    sensors: list of sensor names; algorithm: ``clipped_ppo`` | ``sac``;
    action_space_type: ``discrete`` | ``continuous``;
    actions: discrete ``[(steering_deg, speed_mps), ...]`` (empty when continuous);
    steering_range / speed_range: continuous ``(low, high)`` in degrees / m/s.
    """

    sensors: tuple[str, ...]
    algorithm: str
    action_space_type: str
    actions: tuple[tuple[float, float], ...] = ()
    steering_range: tuple[float, float] = (0.0, 0.0)
    speed_range: tuple[float, float] = (0.0, 0.0)


def parse_metadata(meta: dict) -> DeepRacerMetadata:
    """Check a ``model_metadata.json`` document for what this car can run.

    Raises ``ValueError`` naming the problem: LiDAR or stereo sensors, an unknown
    algorithm or action space type, or a malformed action space."""
    if not isinstance(meta, dict):
        raise ValueError("model_metadata.json must hold a JSON object")
    sensors = meta.get("sensor") or [CAMERA_SENSOR]
    if isinstance(sensors, str):
        sensors = [sensors]
    sensors = tuple(str(s).upper() for s in sensors)
    needs = sorted({_SENSOR_PROBLEMS[s] for s in sensors if s in _SENSOR_PROBLEMS})
    if needs:
        raise ValueError(f"this model needs {' and '.join(needs)} (sensors {list(sensors)}); "
                         "the car has only one front-facing camera")
    unknown = [s for s in sensors if s != CAMERA_SENSOR]
    if unknown:
        raise ValueError(f"unknown sensor(s) {unknown}; the car has only {CAMERA_SENSOR}")
    algorithm = str(meta.get("training_algorithm") or "clipped_ppo").lower()
    if algorithm not in OUTPUT_TENSORS:
        raise ValueError(f"unsupported training_algorithm {algorithm!r} "
                         f"(supported: {', '.join(OUTPUT_TENSORS)})")
    kind = str(meta.get("action_space_type") or "discrete").lower()
    space = meta.get("action_space")
    try:
        if kind == "discrete":
            if not isinstance(space, list) or not space:
                raise ValueError("a discrete action_space must be a non-empty list")
            actions = tuple((float(a["steering_angle"]), float(a["speed"])) for a in space)
            return DeepRacerMetadata(sensors, algorithm, kind, actions=actions)
        if kind == "continuous":
            if not isinstance(space, dict):
                raise ValueError("a continuous action_space must be an object")
            steer = (float(space["steering_angle"]["low"]), float(space["steering_angle"]["high"]))
            speed = (float(space["speed"]["low"]), float(space["speed"]["high"]))
            if steer[0] > steer[1] or speed[0] > speed[1]:
                raise ValueError("continuous action_space has low > high")
            return DeepRacerMetadata(sensors, algorithm, kind, steering_range=steer,
                                     speed_range=speed)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {kind} action_space: missing or bad {exc}") from exc
    raise ValueError(f"unknown action_space_type {kind!r} (expected discrete or continuous)")


def read_archive(path: str | Path) -> tuple[dict, bytes]:
    """Read ``(metadata dict, frozen graph bytes)`` from a DeepRacer ``.tar.gz``.

    The graph is ``agent/model.pb`` if present, else the shallowest ``model.pb``, else
    the only ``.pb``. Raises ``ValueError`` for an unreadable archive or missing files."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            by_name = {m.name.lstrip("./"): m for m in members}
            metas = sorted((n for n in by_name if Path(n).name == "model_metadata.json"),
                           key=lambda n: n.count("/"))
            if not metas:
                raise ValueError("model_metadata.json is missing from the archive")
            pbs = [n for n in by_name if n.endswith(".pb")]
            named = sorted((n for n in pbs if Path(n).name == "model.pb"),
                           key=lambda n: (not n.endswith("agent/model.pb"), n.count("/")))
            if named:
                graph_name = named[0]
            elif len(pbs) == 1:
                graph_name = pbs[0]
            else:
                raise ValueError("agent/model.pb is missing from the archive")
            meta_bytes = tar.extractfile(by_name[metas[0]]).read()
            graph = tar.extractfile(by_name[graph_name]).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"cannot read DeepRacer archive {path}: {exc}") from exc
    try:
        meta = json.load(io.BytesIO(meta_bytes))
    except json.JSONDecodeError as exc:
        raise ValueError(f"model_metadata.json is not valid JSON: {exc}") from exc
    return meta, graph


def _placeholder_shape(node) -> list[int] | None:
    if "shape" not in node.attr or node.attr["shape"].shape.unknown_rank:
        return None
    return [d.size for d in node.attr["shape"].shape.dim]


class DeepRacerPilot(Pilot):
    """Runs a DeepRacer frozen graph on grey frames (``camera_mode = "grey"``).

    Raises ``ValueError`` at construction for anything the car cannot run: bad archive
    or metadata, LiDAR/stereo sensors, missing tensors, an input that is not
    ``[?, 120, 160, 1]``, or an output that does not match the action space.
    """

    camera_mode = GREY

    def __init__(self, path: str | Path) -> None:
        import tensorflow as tf

        self.name = Path(path).name
        meta, graph_bytes = read_archive(path)
        self.metadata = parse_metadata(meta)
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(graph_bytes)
        except Exception as exc:  # protobuf raises DecodeError
            raise ValueError(f"model.pb is not a frozen TensorFlow graph: {exc}") from exc
        nodes = {n.name: n for n in graph_def.node}
        algo = self.metadata.algorithm
        in_name, out_name = input_tensor_name(algo), OUTPUT_TENSORS[algo]
        if in_name not in nodes:
            inputs = [n for n, node in nodes.items() if node.op == "Placeholder"]
            raise ValueError(f"the graph has no camera input {in_name!r}; its inputs are {inputs}")
        if out_name not in nodes:
            raise ValueError(f"the graph has no output {out_name!r} for {algo}")
        shape = _placeholder_shape(nodes[in_name])
        if shape is not None and (len(shape) != 4 or shape[1:] != [120, 160, 1]):
            raise ValueError(f"the model's camera input has shape {shape}; "
                             "the car gives [1, 120, 160, 1] (160x120 grey)")

        def _import():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(_import, [])
        g = wrapped.graph
        self._fn = wrapped.prune(feeds=g.get_tensor_by_name(in_name + ":0"),
                                 fetches=g.get_tensor_by_name(out_name + ":0"))
        self._tf = tf
        try:
            out = self._run(np.zeros((120, 160), np.uint8))
        except Exception as exc:  # TF raises many error types on a bad graph
            raise ValueError(f"the model cannot run on a 160x120 grey frame: {exc}") from exc
        self._check_output(out)

    def _run(self, grey: np.ndarray) -> np.ndarray:
        x = self._tf.constant(grey.reshape(1, 120, 160, 1).astype(np.float32))
        return np.asarray(self._fn(x)).reshape(-1)

    def _check_output(self, out: np.ndarray) -> None:
        md = self.metadata
        if md.action_space_type == "discrete" and out.size != len(md.actions):
            raise ValueError(f"the model outputs {out.size} values but the action space "
                             f"has {len(md.actions)} actions")
        if md.action_space_type == "continuous" and out.size < 2:
            raise ValueError(f"a continuous model must output steering and speed; got {out.size}")

    def decide(self, out: np.ndarray) -> Action:
        """Turn the raw policy output (1-D array) into an :class:`Action`."""
        md = self.metadata
        if md.action_space_type == "discrete":
            steer, speed = md.actions[int(np.argmax(out))]
            return Action(steer, speed)
        a = np.clip(out[:2].astype(np.float64), -1.0, 1.0)
        lo, hi = md.steering_range
        steer = lo + (a[0] + 1.0) * 0.5 * (hi - lo)
        lo, hi = md.speed_range
        speed = lo + (a[1] + 1.0) * 0.5 * (hi - lo)
        return Action(float(steer), float(speed))

    def act(self, image: np.ndarray | None, pose: Pose | None = None) -> Action:
        """Run the graph on a grey uint8 ``(120, 160)`` frame (ValueError otherwise)."""
        return self.decide(self._run(check_image(image, GREY)))
