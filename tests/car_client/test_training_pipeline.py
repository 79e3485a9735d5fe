"""Record in the simulator, train for one epoch, export .tflite and DeepRacer: all agree."""

from __future__ import annotations

import json
import tarfile

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from car_client.cli import main
from car_client.pilots import load_pilot
from car_client.pilots.donkey import DONKEY_FULL_THROTTLE_MPS, DONKEY_MAX_STEER_DEG
from car_client.training.tub import Tub, load_driving_data

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tub(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "tub"
    result = CliRunner().invoke(main, ["record", "--track", "reinvent_base", "--out", str(path),
                                       "--frames", "160", "--noise", "8", "--seed", "3",
                                       "--randomize"])
    assert result.exit_code == 0, result.output
    assert "recorded 160 frames" in result.output
    return path


@pytest.fixture(scope="module")
def frames(tub):
    images, _, _ = load_driving_data([tub])
    return images[::20]


def test_recording_labels_clean_expert_driving(tub):
    t = Tub(tub)
    assert len(t) == 160
    meta = t.metadata
    assert meta["track"] == "reinvent_base" and meta["noise_deg"] == 8.0
    assert meta["max_steering_deg"] == DONKEY_MAX_STEER_DEG
    assert meta["max_speed_mps"] == DONKEY_FULL_THROTTLE_MPS
    angles = np.array([r["user/angle"] for r in t])
    throttles = np.array([r["user/throttle"] for r in t])
    assert np.all(np.abs(angles) <= 1.0) and np.all((throttles > 0) & (throttles <= 1.0))
    # reinvent_base runs counter-clockwise: mostly left turns, Donkey's angle is +right.
    assert angles.mean() < 0
    # Noise in the executed steering makes the expert correct both ways.
    assert angles.min() < -0.3 and angles.max() > 0.0
    # Time stamps follow the 15 Hz camera; the first frame is the car's camera view.
    stamps = np.array([r["_timestamp_ms"] for r in t])
    assert np.all(np.diff(stamps) > 0)
    img = t.image(t.records[0])
    assert img.shape == (120, 160, 3)
    assert img[:40].std() < img[60:].std()  # flat sky above the horizon, track below


@pytest.fixture(scope="module")
def linear_model(tub, tmp_path_factory):
    from car_client.training.train import train_model

    out = tmp_path_factory.mktemp("lin") / "pilot.keras"
    return train_model([tub], out, model_type="linear", epochs=1, batch_size=32, verbose=0)


def test_one_epoch_writes_every_artefact(linear_model):
    from PIL import Image

    r = linear_model
    assert r.epochs_run == 1 and r.n_train > 0 and r.n_val > 0
    assert r.n_train + r.n_val == 160
    assert set(r.history) >= {"loss", "val_loss"} and np.isfinite(r.best_val_loss)
    meta = json.loads(open(r.meta_path).read())
    assert meta["model_type"] == "linear" and meta["tracks"] == ["reinvent_base"]
    assert meta["max_speed_mps"] == DONKEY_FULL_THROTTLE_MPS
    with Image.open(r.plot_path) as png:
        assert png.format == "PNG" and png.size[0] > 100


def test_tflite_gives_the_keras_outputs(linear_model, frames):
    keras_pilot = load_pilot(linear_model.keras_path)
    tflite_pilot = load_pilot(linear_model.tflite_path)
    for img in frames:
        np.testing.assert_allclose(tflite_pilot.predict(img), keras_pilot.predict(img),
                                   atol=1e-4)
    from ai_edge_litert.interpreter import Interpreter

    sig = Interpreter(model_path=linear_model.tflite_path).get_signature_list()
    assert sig == {"serving_default": {"inputs": ["img_in"], "outputs": ["angle", "throttle"]}}


@pytest.fixture(scope="module")
def categorical_model(tub, tmp_path_factory):
    from car_client.training.train import train_model

    out = tmp_path_factory.mktemp("cat") / "pilot.keras"
    return train_model([tub], out, model_type="categorical", epochs=1, batch_size=32,
                       verbose=0, export_tflite_file=False)


@pytest.mark.parametrize("which", ["linear", "categorical"])
def test_deepracer_archive_takes_the_keras_models_action(which, linear_model,
                                                         categorical_model, frames,
                                                         tmp_path):
    model = linear_model if which == "linear" else categorical_model
    out = tmp_path / "model.tar.gz"
    result = CliRunner().invoke(main, ["export-deepracer", "--model", model.keras_path,
                                       "--out", str(out), "--speeds", "0.5,1,1.5,2"])
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["agent/model.pb", "model_metadata.json"]
        meta = json.load(tar.extractfile("model_metadata.json"))
    assert meta["sensor"] == ["FRONT_FACING_CAMERA"]
    assert meta["action_space_type"] == "discrete"
    assert meta["training_algorithm"] == "clipped_ppo"
    actions = meta["action_space"]
    assert len(actions) == 15 * 4
    assert sorted({a["speed"] for a in actions}) == [0.5, 1.0, 1.5, 2.0]
    steers = sorted({a["steering_angle"] for a in actions})
    assert steers[0] == -DONKEY_MAX_STEER_DEG and steers[-1] == DONKEY_MAX_STEER_DEG

    deepracer = load_pilot(out)  # the car's own DeepRacer loader
    keras_pilot = load_pilot(model.keras_path)
    for img in frames:
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        want = keras_pilot.act(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
        got = deepracer.act(grey)
        nearest_steer = min(steers, key=lambda s: abs(s - want.steering_deg))
        nearest_speed = min((0.5, 1.0, 1.5, 2.0), key=lambda s: abs(s - want.speed_mps))
        assert got.steering_deg == pytest.approx(nearest_steer, abs=1e-3)
        assert got.speed_mps == pytest.approx(nearest_speed, abs=1e-3)


def test_deepracer_graph_has_the_real_tensor_names(linear_model, tmp_path):
    import tensorflow as tf

    from car_client.training.deepracer_export import (
        INPUT_NAME,
        OUTPUT_NAME,
        export_deepracer,
        load_policy,
    )

    out = tmp_path / "m.tar.gz"
    export_deepracer(linear_model.keras_path, out)
    with tarfile.open(out) as tar:
        graph_def = tf.compat.v1.GraphDef.FromString(tar.extractfile("agent/model.pb").read())
    nodes = {n.name: n for n in graph_def.node}
    placeholder = nodes[INPUT_NAME]
    assert placeholder.op == "Placeholder"
    assert [d.size for d in placeholder.attr["shape"].shape.dim] == [1, 120, 160, 1]
    assert OUTPUT_NAME in nodes
    assert not any(n.op in ("VarHandleOp", "ReadVariableOp", "PartitionedCall",
                            "StatefulPartitionedCall") for n in graph_def.node)  # frozen
    meta, run = load_policy(out)
    policy = run(np.full((120, 160), 90, np.uint8))
    assert policy.shape == (len(meta["action_space"]),)
    assert policy.sum() == pytest.approx(1.0, abs=1e-5)
    # sharp: the (at most four) actions around the model's output hold nearly all of it
    assert np.sort(policy)[-4:].sum() > 0.98


def test_train_command_rejects_a_folder_that_is_not_a_tub(tmp_path):
    result = CliRunner().invoke(main, ["train", "--tub", str(tmp_path), "--out",
                                       str(tmp_path / "m.keras"), "--epochs", "1"])
    assert result.exit_code != 0 and "no manifest.json" in result.output
