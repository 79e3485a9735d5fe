"""DeepRacer models: archive reading, metadata checks, PPO/SAC, discrete/continuous."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from car_client.pilots import load_pilot
from car_client.pilots.deepracer import DeepRacerPilot, parse_metadata, read_archive
from tests.car_client import model_factories as mf

RNG = np.random.default_rng(0)
FRAMES = [RNG.integers(0, 256, (120, 160), dtype=np.uint8) for _ in range(6)]
ACTIONS = {(a["steering_angle"], a["speed"]) for a in mf.DISCRETE_ACTIONS}


def test_discrete_ppo_picks_actions_from_the_action_space(deepracer_models):
    pilot = load_pilot(deepracer_models["discrete"], sandbox=False)
    assert isinstance(pilot, DeepRacerPilot)
    assert pilot.camera_mode == "grey"
    assert pilot.metadata.algorithm == "clipped_ppo"
    for frame in FRAMES:
        a = pilot.act(frame)
        assert (a.steering_deg, a.speed_mps) in ACTIONS
    # the raw policy is a softmax over the five actions
    out = pilot._run(FRAMES[0])
    assert out.shape == (5,) and out.sum() == pytest.approx(1.0, abs=1e-5)
    # argmax picks the action
    assert pilot.decide(np.array([0.1, 0.1, 0.1, 0.6, 0.1])).steering_deg == 15.0


def test_flat_archive_layout_loads(deepracer_models):
    a = load_pilot(deepracer_models["flat"], sandbox=False).act(FRAMES[1])
    assert (a.steering_deg, a.speed_mps) in ACTIONS


@pytest.mark.parametrize("kind", ["continuous", "sac"])
def test_continuous_ppo_and_sac_scale_into_the_ranges(deepracer_models, kind):
    pilot = load_pilot(deepracer_models[kind], sandbox=False)
    assert pilot.metadata.action_space_type == "continuous"
    assert pilot.metadata.algorithm == ("sac" if kind == "sac" else "clipped_ppo")
    outs = [pilot.act(f) for f in FRAMES]
    for a in outs:
        assert -30.0 <= a.steering_deg <= 30.0
        assert 0.5 <= a.speed_mps <= 2.0
    assert len({round(a.steering_deg, 4) for a in outs}) > 1  # it responds to the image
    # [-1, 1] maps onto [low, high]; values outside are clipped
    assert pilot.decide(np.array([-1.0, -1.0])).steering_deg == pytest.approx(-30.0)
    assert pilot.decide(np.array([1.0, 1.0])).speed_mps == pytest.approx(2.0)
    assert pilot.decide(np.array([0.0, 0.0])).speed_mps == pytest.approx(1.25)
    assert pilot.decide(np.array([5.0, -7.0])).steering_deg == pytest.approx(30.0)


def test_wrong_frame_is_refused(deepracer_models):
    pilot = load_pilot(deepracer_models["discrete"], sandbox=False)
    with pytest.raises(ValueError, match="shape"):
        pilot.act(np.zeros((120, 160, 3), np.uint8))


@pytest.mark.parametrize("sensors, needs", [
    (["LIDAR"], "a LiDAR"),
    (["SECTOR_LIDAR"], "a LiDAR"),
    (["FRONT_FACING_CAMERA", "LIDAR"], "a LiDAR"),
    (["STEREO_CAMERAS"], "stereo cameras"),
    (["STEREO_CAMERAS", "LIDAR"], "a LiDAR and stereo cameras"),
])
def test_lidar_and_stereo_models_are_refused(tmp_path, sensors, needs):
    meta = {"action_space": mf.DISCRETE_ACTIONS, "sensor": sensors,
            "training_algorithm": "clipped_ppo", "action_space_type": "discrete"}
    path = _tar(tmp_path / "m.tar.gz", {"model_metadata.json": json.dumps(meta).encode(),
                                        "agent/model.pb": b"not even read"})
    with pytest.raises(ValueError, match=f"needs {needs}.*only one front-facing camera"):
        load_pilot(path, sandbox=False)


def test_wrong_input_shape_is_refused(tmp_path):
    path = mf.write_deepracer_model(tmp_path / "rgb.tar.gz", input_shape=(None, 120, 160, 3))
    with pytest.raises(ValueError, match=r"input has shape \[-1, 120, 160, 3\]"):
        load_pilot(path, sandbox=False)


def test_output_not_matching_the_action_space_is_refused(tmp_path):
    path = mf.write_deepracer_model(tmp_path / "m.tar.gz", n_outputs=7)
    with pytest.raises(ValueError, match="outputs 7 values but the action space has 5"):
        load_pilot(path, sandbox=False)


def test_metadata_checks():
    assert parse_metadata({"action_space": mf.DISCRETE_ACTIONS}).sensors == ("FRONT_FACING_CAMERA",)
    with pytest.raises(ValueError, match="training_algorithm"):
        parse_metadata({"action_space": mf.DISCRETE_ACTIONS, "training_algorithm": "dqn"})
    with pytest.raises(ValueError, match="action_space_type"):
        parse_metadata({"action_space": [], "action_space_type": "hybrid"})
    with pytest.raises(ValueError, match="non-empty list"):
        parse_metadata({"action_space": []})
    with pytest.raises(ValueError, match="malformed continuous"):
        parse_metadata({"action_space": {"speed": {"low": 1}}, "action_space_type": "continuous"})
    with pytest.raises(ValueError, match="unknown sensor"):
        parse_metadata({"action_space": mf.DISCRETE_ACTIONS, "sensor": ["THERMAL"]})


def _tar(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_broken_archives_are_refused(tmp_path):
    meta = json.dumps({"action_space": mf.DISCRETE_ACTIONS}).encode()
    with pytest.raises(ValueError, match="model_metadata.json is missing"):
        read_archive(_tar(tmp_path / "a.tar.gz", {"agent/model.pb": b"x"}))
    with pytest.raises(ValueError, match="agent/model.pb is missing"):
        read_archive(_tar(tmp_path / "b.tar.gz", {"model_metadata.json": meta}))
    with pytest.raises(ValueError, match="not valid JSON"):
        read_archive(_tar(tmp_path / "c.tar.gz", {"model_metadata.json": b"{",
                                                  "agent/model.pb": b"x"}))
    with pytest.raises(ValueError, match="not a frozen TensorFlow graph"):
        DeepRacerPilot(_tar(tmp_path / "d.tar.gz", {"model_metadata.json": meta,
                                                    "agent/model.pb": b"\xff\x00garbage"}))
    (tmp_path / "e.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="cannot read DeepRacer archive"):
        read_archive(tmp_path / "e.tar.gz")
