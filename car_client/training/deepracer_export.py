"""Package a trained Donkey-style model as an AWS DeepRacer model archive (``.tar.gz``).

The archive holds ``model_metadata.json`` (discrete action space, PPO) and
``agent/model.pb``, a frozen TensorFlow graph:

* input placeholder :data:`INPUT_NAME`, ``float32 [1, 120, 160, 1]``, grey 0..255;
* output :data:`OUTPUT_NAME`, ``float32 [1, n_actions]``, a softmax over the action space.

The graph wraps the Keras model: grey is copied to three channels and scaled to 0..1,
the model runs, and its (angle, throttle) — fractions of ``max_steering_deg`` (Donkey's
angle is positive to the right, DeepRacer's steering to the left) and ``max_speed_mps``
— become logits ``-(d_steer / s_steer)^2 - (d_speed / s_speed)^2``
over the distance to each action (``s`` = half the spacing of the action grid), so the
arg-max action is the nearest steering angle and the nearest speed, and the policy is
sharp. Models are trained with grey augmentation, so grey input drives as colour does.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from car_client.pilots.donkey import DONKEY_FULL_THROTTLE_MPS, DONKEY_MAX_STEER_DEG
from car_client.training.model import ANGLE_BINS, THROTTLE_BINS, model_type_of

INPUT_NAME = "main_level/agent/main/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA"
OUTPUT_NAME = "main_level/agent/main/online/network_1/ppo_head_0/policy"
DEFAULT_STEERING_STEPS = 15
DEFAULT_SPEED_STEPS = 5


def make_action_space(max_steering_deg: float, speeds_mps: Sequence[float],
                      steering_steps: int = DEFAULT_STEERING_STEPS) -> list[dict]:
    """The discrete action grid: ``steering_steps`` angles evenly over
    ``±max_steering_deg`` (degrees, +left) times each speed (m/s).

    Returns ``[{"steering_angle": deg, "speed": m/s, "index": i}, ...]``. Raises
    ``ValueError`` for no speeds, a non-positive speed or fewer than 2 steering steps.
    """
    speeds = sorted({round(float(s), 4) for s in speeds_mps})
    if not speeds or min(speeds) <= 0:
        raise ValueError("give at least one speed, all above 0 m/s")
    if steering_steps < 2 or max_steering_deg <= 0:
        raise ValueError("need at least 2 steering steps and a positive max steering angle")
    angles = np.linspace(-max_steering_deg, max_steering_deg, steering_steps)
    actions = []
    for angle in angles:
        for speed in speeds:
            actions.append({"steering_angle": round(float(angle), 4), "speed": speed,
                            "index": len(actions)})
    return actions


def model_metadata(action_space: list[dict]) -> dict:
    """``model_metadata.json`` content for a front-camera PPO model with ``action_space``."""
    return {"action_space": action_space, "sensor": ["FRONT_FACING_CAMERA"],
            "neural_network": "DEEP_CONVOLUTIONAL_NETWORK",
            "training_algorithm": "clipped_ppo", "action_space_type": "discrete",
            "version": "5"}


def _spacing(values: np.ndarray) -> float:
    uniq = np.unique(values)
    return float(np.min(np.diff(uniq))) if len(uniq) > 1 else 1.0


def build_policy_graph(model, action_space: list[dict], max_steering_deg: float,
                       max_speed_mps: float) -> bytes:
    """Freeze ``model`` wrapped as a DeepRacer policy; returns the serialized GraphDef.

    Units: ``max_steering_deg`` degrees and ``max_speed_mps`` m/s are the scales of the
    model's angle (-1..1) and throttle (0..1) outputs. Categorical outputs are decoded
    by arg-max bin first (Donkey's rule). Raises ``ValueError`` if the model lacks
    ``angle``/``throttle`` outputs.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    order = list(getattr(model, "output_names", []))
    if not {"angle", "throttle"} <= set(order):
        raise ValueError(f"model outputs must include angle and throttle, found {order}")
    i_angle, i_throttle = order.index("angle"), order.index("throttle")
    act_steer = np.array([a["steering_angle"] for a in action_space], np.float32)
    act_speed = np.array([a["speed"] for a in action_space], np.float32)
    s_steer = 0.5 * _spacing(act_steer)
    s_speed = 0.5 * _spacing(act_speed)
    angle_bins = tf.constant(ANGLE_BINS)
    throttle_bins = tf.constant(THROTTLE_BINS)

    def decode(x, bins):
        if x.shape[-1] == 1:
            return x[:, 0]
        return tf.gather(bins, tf.argmax(x, axis=-1))

    @tf.function(input_signature=[tf.TensorSpec([1, 120, 160, 1], tf.float32)])
    def policy(observation):
        rgb = tf.image.grayscale_to_rgb(observation) / 255.0
        outputs = model(rgb, training=False)
        if isinstance(outputs, dict):
            outputs = [outputs[n] for n in order]
        angle = tf.clip_by_value(decode(outputs[i_angle], angle_bins), -1.0, 1.0)
        throttle = tf.clip_by_value(decode(outputs[i_throttle], throttle_bins), 0.0, 1.0)
        steer_deg = -angle * max_steering_deg  # Donkey angle is +right, DeepRacer +left
        speed = throttle * max_speed_mps
        d_steer = (steer_deg[:, None] - act_steer[None, :]) / s_steer
        d_speed = (speed[:, None] - act_speed[None, :]) / s_speed
        return tf.nn.softmax(-(d_steer ** 2) - (d_speed ** 2), axis=-1)

    frozen = convert_variables_to_constants_v2(policy.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise RuntimeError(f"expected one placeholder, found {len(placeholders)}")
    old_input = placeholders[0].name
    output_tensor = frozen.outputs[0].name  # "node:0"
    for node in graph_def.node:
        if node.name == old_input:
            node.name = INPUT_NAME
        for i, inp in enumerate(node.input):
            base = inp.lstrip("^").split(":")[0]
            if base == old_input:
                node.input[i] = inp.replace(old_input, INPUT_NAME, 1)
    out_node = graph_def.node.add()
    out_node.name = OUTPUT_NAME
    out_node.op = "Identity"
    out_node.input.append(output_tensor.replace(":0", "") if output_tensor.endswith(":0")
                          else output_tensor)
    out_node.attr["T"].type = tf.float32.as_datatype_enum
    # Drop the function library (everything is inlined) and check the graph imports.
    graph_def.library.Clear()
    with tf.Graph().as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return graph_def.SerializeToString()


def read_model_scales(model_path: str | os.PathLike) -> dict:
    """Read ``max_steering_deg`` and ``max_speed_mps`` from the ``NAME.json`` written by
    training beside ``NAME.keras``; returns ``{}`` when there is none."""
    meta = Path(model_path).with_suffix(".json")
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text())
    return {k: float(data[k]) for k in ("max_steering_deg", "max_speed_mps")
            if data.get(k) is not None}


def export_deepracer(model_path: str | os.PathLike, out_path: str | os.PathLike,
                     speeds_mps: Sequence[float] | None = None,
                     max_steering_deg: float | None = None, max_speed_mps: float | None = None,
                     steering_steps: int = DEFAULT_STEERING_STEPS) -> dict:
    """Write a DeepRacer ``.tar.gz`` for the Keras model at ``model_path``.

    Scales default to the model's ``NAME.json`` (else Donkey's 30 degrees and 4 m/s);
    ``speeds_mps`` defaults to :data:`DEFAULT_SPEED_STEPS` speeds evenly from 20 % to
    100 % of the model's top speed (``max_speed_mps``; for categorical models the top
    throttle bin, 0.475 of it).
    Returns the metadata written. Raises ``FileNotFoundError`` for a missing model and
    ``ValueError`` for a bad action space or model.
    """
    import keras

    model_path = Path(model_path)
    if not model_path.exists():
        raise FileNotFoundError(f"no model at {model_path}")
    scales = read_model_scales(model_path)
    max_steering_deg = float(max_steering_deg or scales.get("max_steering_deg",
                                                            DONKEY_MAX_STEER_DEG))
    max_speed_mps = float(max_speed_mps or scales.get("max_speed_mps",
                                                      DONKEY_FULL_THROTTLE_MPS))
    model = keras.models.load_model(model_path, compile=False)
    if not speeds_mps:
        top = max_speed_mps
        if model_type_of(model) == "categorical":
            top *= float(THROTTLE_BINS[-1])
        speeds_mps = [round(top * f, 3) for f in np.linspace(0.2, 1.0, DEFAULT_SPEED_STEPS)]
    actions = make_action_space(max_steering_deg, speeds_mps, steering_steps)
    graph = build_policy_graph(model, actions, max_steering_deg, max_speed_mps)
    metadata = model_metadata(actions)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    with tarfile.open(tmp, "w:gz") as tar:
        for name, data in (("model_metadata.json", json.dumps(metadata, indent=2).encode()),
                           ("agent/model.pb", graph)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out_path)
    return metadata


def load_policy(archive_path: str | os.PathLike):
    """Load a DeepRacer archive for checking: returns ``(metadata, run)`` where
    ``run(grey)`` takes ``uint8/float (120, 160)`` grey 0..255 and returns the policy
    ``(n_actions,)``. Raises ``KeyError`` if a member is missing."""
    import tensorflow as tf

    with tarfile.open(archive_path, "r:gz") as tar:
        metadata = json.load(tar.extractfile("model_metadata.json"))
        graph_bytes = tar.extractfile("agent/model.pb").read()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    x = graph.get_tensor_by_name(INPUT_NAME + ":0")
    y = graph.get_tensor_by_name(OUTPUT_NAME + ":0")

    def run(grey: np.ndarray) -> np.ndarray:
        obs = np.asarray(grey, np.float32).reshape(1, 120, 160, 1)
        return session.run(y, {x: obs})[0]

    return metadata, run
