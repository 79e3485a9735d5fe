"""Small driving models built in code, with the real tensor names and metadata.

Real DeepRacer models are over 4 MB and cannot be shipped, so tests (and the benchmark,
and the training code's tests) build look-alikes here:

* :func:`write_deepracer_model` - a DeepRacer ``.tar.gz`` (``model_metadata.json`` +
  ``agent/model.pb`` frozen graph) for PPO or SAC, discrete or continuous;
* :func:`donkey_linear` / :func:`donkey_categorical` - Keras Donkey Car models;
* :func:`tflite_bytes` - their ``.tflite`` conversion.

``network="tiny"`` keeps tests fast; ``"shallow"`` is the size of DeepRacer's
3-layer shallow CNN and ``"donkey"`` the size of Donkey Car's default linear model.
TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from car_client.pilots.deepracer import OUTPUT_TENSORS, input_tensor_name

DISCRETE_ACTIONS = [
    {"steering_angle": -30.0, "speed": 0.8, "index": 0},
    {"steering_angle": -15.0, "speed": 1.2, "index": 1},
    {"steering_angle": 0.0, "speed": 1.5, "index": 2},
    {"steering_angle": 15.0, "speed": 1.2, "index": 3},
    {"steering_angle": 30.0, "speed": 0.8, "index": 4},
]
CONTINUOUS_SPACE = {"steering_angle": {"high": 30.0, "low": -30.0},
                    "speed": {"high": 2.0, "low": 0.5}}

# (filters, kernel, stride) per conv layer, then dense widths
_NETWORKS = {
    "tiny": ([(8, 8, 4), (16, 4, 2)], [32]),
    "shallow": ([(32, 8, 4), (64, 4, 2), (64, 3, 1)], [512]),
}


def deepracer_graph_bytes(n_outputs: int, head: str = "softmax", algorithm: str = "clipped_ppo",
                          input_shape=(None, 120, 160, 1), network: str = "tiny",
                          seed: int = 0, write_file_to: str | None = None) -> bytes:
    """A serialized frozen ``GraphDef``: the real camera input name for ``algorithm``,
    a CNN with constant weights, and the real policy output name.

    head: ``softmax`` (discrete policy) or ``tanh`` (continuous means in [-1, 1]).
    write_file_to: build a HOSTILE graph whose policy output depends on a ``WriteFile``
    op writing ``pwned`` to that path (what ``tf.io.write_file`` adds to a graph)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    convs, dense = _NETWORKS[network]
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, list(input_shape),
                                     name=input_tensor_name(algorithm))
        h = x / 255.0
        channels = int(input_shape[-1])
        for filters, k, stride in convs:
            w = rng.normal(0, np.sqrt(2.0 / (k * k * channels)), (k, k, channels, filters))
            h = tf.nn.relu(tf.nn.conv2d(h, tf.constant(w, tf.float32), stride, "VALID")
                           + tf.constant(rng.normal(0, 0.01, filters), tf.float32))
            channels = filters
        width = int(np.prod(h.shape[1:]))
        h = tf.reshape(h, [-1, width])
        for units in [*dense, n_outputs]:
            w = rng.normal(0, np.sqrt(1.0 / width), (width, units))
            h = tf.matmul(h, tf.constant(w, tf.float32)) + tf.constant(
                rng.normal(0, 0.1, units), tf.float32)
            if units != n_outputs:
                h = tf.nn.relu(h)
            width = units
        out = tf.nn.softmax(h) if head == "softmax" else tf.tanh(h)
        if write_file_to is not None:
            with tf.control_dependencies([tf.io.write_file(write_file_to, "pwned")]):
                out = tf.identity(out)
        tf.identity(out, name=OUTPUT_TENSORS[algorithm])
    return g.as_graph_def().SerializeToString()


def write_deepracer_model(path: str | Path, action_space_type: str = "discrete",
                          algorithm: str = "clipped_ppo", sensors=("FRONT_FACING_CAMERA",),
                          actions=None, input_shape=(None, 120, 160, 1),
                          layout: str = "agent", network: str = "tiny", seed: int = 0,
                          n_outputs: int | None = None, write_file_to: str | None = None) -> Path:
    """Write a DeepRacer-format ``.tar.gz`` and return its path.

    layout: ``agent`` puts the graph at ``agent/model.pb``, ``flat`` at ``model.pb``.
    n_outputs overrides the policy width (to build a model that does not match its
    action space). write_file_to: a hostile graph (see :func:`deepracer_graph_bytes`)."""
    path = Path(path)
    if action_space_type == "discrete":
        space = list(actions or DISCRETE_ACTIONS)
        width, head = n_outputs or len(space), "softmax"
    else:
        space = dict(actions or CONTINUOUS_SPACE)
        width, head = n_outputs or 2, "tanh"
    meta = {"action_space": space, "sensor": list(sensors),
            "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
            "training_algorithm": algorithm, "action_space_type": action_space_type,
            "version": "5"}
    graph = deepracer_graph_bytes(width, head, algorithm, input_shape, network, seed,
                                  write_file_to)
    files = {"model_metadata.json": json.dumps(meta, indent=1).encode(),
             ("agent/model.pb" if layout == "agent" else "model.pb"): graph}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _donkey_trunk(network: str, seed: int):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((120, 160, 3), name="img_in")
    if network == "donkey":
        x = inp
        for filters, k, s in [(24, 5, 2), (32, 5, 2), (64, 5, 2), (64, 3, 1), (64, 3, 1)]:
            x = layers.Conv2D(filters, k, strides=s, activation="relu")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(100, activation="relu")(x)
        x = layers.Dense(50, activation="relu")(x)
    else:
        x = layers.Conv2D(8, 5, strides=4, activation="relu")(inp)
        x = layers.Conv2D(16, 3, strides=2, activation="relu")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(32, activation="relu")(x)
    return inp, x


def donkey_linear(seed: int = 0, network: str = "tiny", input_shape=(120, 160, 3)):
    """A Keras Donkey linear model: outputs ``n_outputs0`` (angle), ``n_outputs1``
    (throttle). ``input_shape`` other than 120x160x3 builds a model the car must refuse."""
    import keras
    from keras import layers

    if tuple(input_shape) != (120, 160, 3):
        keras.utils.set_random_seed(seed)
        inp = keras.Input(input_shape, name="img_in")
        x = layers.Flatten()(layers.Conv2D(4, 5, strides=4)(inp))
    else:
        inp, x = _donkey_trunk(network, seed)
    angle = layers.Dense(1, activation="tanh", name="n_outputs0")(x)
    throttle = layers.Dense(1, activation="sigmoid", name="n_outputs1")(x)
    return keras.Model(inp, [angle, throttle], name="donkey_linear")


def donkey_categorical(seed: int = 0, network: str = "tiny"):
    """A Keras Donkey categorical model: ``angle_out`` (15 bins), ``throttle_out`` (20)."""
    import keras
    from keras import layers

    inp, x = _donkey_trunk(network, seed)
    angle = layers.Dense(15, activation="softmax", name="angle_out")(x)
    throttle = layers.Dense(20, activation="softmax", name="throttle_out")(x)
    return keras.Model(inp, [angle, throttle], name="donkey_categorical")


def tflite_bytes(model) -> bytes:
    """Convert a Keras model with ``tf.lite.TFLiteConverter`` (float32, no quantisation)."""
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def hostile_savedmodel_zip(path: str | Path, write_file_to: str) -> Path:
    """A HOSTILE Donkey SavedModel, zipped: a well-formed linear model (``img_in`` ->
    ``angle``, ``throttle``) whose serving function calls ``tf.io.write_file`` to write
    ``pwned`` to ``write_file_to`` each time it runs (loading runs it once)."""
    import shutil
    import tempfile

    import tensorflow as tf

    class Pilot(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.zeros([120 * 160 * 3, 2]), name="w")

        @tf.function(input_signature=[tf.TensorSpec([None, 120, 160, 3], tf.float32, "img_in")])
        def serve(self, img_in):
            tf.io.write_file(write_file_to, "pwned")
            y = tf.matmul(tf.reshape(img_in, [-1, 120 * 160 * 3]), self.w)
            return {"angle": tf.tanh(y[:, :1]), "throttle": tf.sigmoid(y[:, 1:])}

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        pilot = Pilot()
        tf.saved_model.save(pilot, tmp + "/saved", signatures={"serving_default": pilot.serve})
        archive = shutil.make_archive(tmp + "/model", "zip", tmp + "/saved")
        shutil.copyfile(archive, path)
    return path


def donkey_lambda(seed: int = 0):
    """A Keras Donkey linear model with a ``Lambda`` layer (Python code in the model):
    the car must refuse it whatever the code does."""
    import keras
    from keras import layers

    inp, x = _donkey_trunk("tiny", seed)
    x = layers.Lambda(lambda t: t * 1.0, name="python_code")(x)
    angle = layers.Dense(1, activation="tanh", name="n_outputs0")(x)
    throttle = layers.Dense(1, activation="sigmoid", name="n_outputs1")(x)
    return keras.Model(inp, [angle, throttle], name="donkey_lambda")


def savedmodel_zip(model, path: str | Path) -> Path:
    """Export a Keras model as a SavedModel (``model.export``) and zip the folder."""
    import shutil
    import tempfile

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp + "/saved", verbose=False)
        shutil.copyfile(shutil.make_archive(tmp + "/model", "zip", tmp + "/saved"), path)
    return path
