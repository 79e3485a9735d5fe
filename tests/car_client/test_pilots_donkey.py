"""Donkey Car models: Keras (.keras, .h5), SavedModel zip and tflite; linear and categorical."""

from __future__ import annotations

import numpy as np
import pytest

from car_client.pilots import guess_format, load_pilot
from car_client.pilots.donkey import (
    DonkeyPilot,
    angle_to_degrees,
    degrees_to_angle,
    output_layout,
    speed_to_throttle,
    throttle_to_speed,
)
from car_client.pilots.keras_runner import load_keras
from car_client.pilots.tflite import load_tflite
from tests.car_client import model_factories as mf

RNG = np.random.default_rng(1)
FRAMES = [RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(5)]


@pytest.mark.parametrize("name", ["linear.keras", "linear.h5", "linear.zip", "linear.tflite"])
def test_linear_models_give_angle_and_throttle(donkey_models, name):
    pilot = load_pilot(donkey_models[name], sandbox=False)
    assert isinstance(pilot, DonkeyPilot)
    assert pilot.camera_mode == "rgb" and pilot.kind == "linear"
    for frame in FRAMES:
        angle, throttle = pilot.predict(frame)
        assert -1.0 <= angle <= 1.0 and 0.0 <= throttle <= 1.0  # tanh and sigmoid heads
        a = pilot.act(frame)
        assert a.steering_deg == pytest.approx(-angle * 30.0, abs=1e-5)
        assert a.speed_mps == pytest.approx(throttle * 4.0, abs=1e-5)


@pytest.mark.parametrize("name", ["categorical.keras", "categorical.tflite"])
def test_categorical_models_unbin_like_donkey(donkey_models, name):
    pilot = load_pilot(donkey_models[name], sandbox=False)
    assert pilot.kind == "categorical"
    angle_bins = {round(b * 2 / 14 - 1, 6) for b in range(15)}
    throttle_bins = {round(b * 0.5 / 20, 6) for b in range(20)}
    for frame in FRAMES:
        angle, throttle = pilot.predict(frame)
        assert round(angle, 6) in angle_bins and round(throttle, 6) in throttle_bins
    one_hot_a, one_hot_t = np.eye(15)[14], np.eye(20)[10]
    assert pilot.interpret({pilot._angle: one_hot_a, pilot._throttle: one_hot_t}) == (1.0, 0.25)


@pytest.mark.parametrize("kind", ["linear", "categorical"])
def test_tflite_equals_keras(donkey_models, kind):
    k_run, k_sizes = load_keras(donkey_models[f"{kind}.keras"])
    t_run, t_sizes = load_tflite(donkey_models[f"{kind}.tflite"])
    k_pilot = DonkeyPilot(k_run, k_sizes)
    t_pilot = DonkeyPilot(t_run, t_sizes)
    for frame in FRAMES:
        x = (frame.astype(np.float32) / 255.0)[None]
        k_out, t_out = k_run(x), t_run(x)
        k_vals = [k_out[k_pilot._angle], k_out[k_pilot._throttle]]
        t_vals = [t_out[t_pilot._angle], t_out[t_pilot._throttle]]
        for kv, tv in zip(k_vals, t_vals, strict=True):
            assert kv.shape == tv.shape
            np.testing.assert_allclose(kv, tv, atol=1e-4)
        assert k_pilot.predict(frame) == pytest.approx(t_pilot.predict(frame), abs=1e-4)


def test_wrong_input_shape_is_refused(tmp_path):
    model = mf.donkey_linear(input_shape=(66, 200, 3))
    model.save(tmp_path / "nvidia.keras")
    with pytest.raises(ValueError, match=r"expects input \[None, 66, 200, 3\].*120, 160, 3"):
        load_pilot(tmp_path / "nvidia.keras", sandbox=False)
    (tmp_path / "nvidia.tflite").write_bytes(mf.tflite_bytes(model))
    with pytest.raises(ValueError, match=r"expects input \[1, 66, 200, 3\]"):
        load_pilot(tmp_path / "nvidia.tflite", sandbox=False)


def test_wrong_frame_is_refused(donkey_models):
    pilot = load_pilot(donkey_models["linear.tflite"], sandbox=False)
    with pytest.raises(ValueError, match="shape"):
        pilot.act(np.zeros((120, 160), np.uint8))


def test_unreadable_files_are_refused(tmp_path):
    for name in ("bad.keras", "bad.tflite", "bad.zip", "bad.h5"):
        (tmp_path / name).write_bytes(b"not a model")
        with pytest.raises(ValueError):
            load_pilot(tmp_path / name, sandbox=False)
    with pytest.raises(FileNotFoundError):
        load_pilot(tmp_path / "missing.keras", sandbox=False)


def test_output_layouts():
    assert output_layout({"n_outputs0": 1, "n_outputs1": 1}) == ("linear", "n_outputs0", "n_outputs1")
    assert output_layout({"output_1": 1, "output_0": 1}) == ("linear", "output_0", "output_1")
    assert output_layout({"throttle": 1, "zz_angle": 1}) == ("linear", "zz_angle", "throttle")
    assert output_layout({"output_10": 1, "output_2": 1})[1] == "output_2"  # natural order
    assert output_layout({"out": 2}) == ("linear", "out", None)
    assert output_layout({"b": 20, "a": 15}) == ("categorical", "a", "b")
    with pytest.raises(ValueError, match="unrecognised Donkey model outputs"):
        output_layout({"a": 3})
    with pytest.raises(ValueError, match="unrecognised"):
        output_layout({"a": 1, "b": 1, "c": 1})


def test_conversions_and_formats():
    assert angle_to_degrees(1.0) == -30.0  # Donkey +angle is right; ours +deg is left
    assert degrees_to_angle(15.0) == -0.5
    assert throttle_to_speed(0.5) == 2.0 and speed_to_throttle(2.0) == 0.5
    assert guess_format("m.tar.gz") == "deepracer"
    assert guess_format("m.H5") == "keras" and guess_format("m.keras") == "keras"
    assert guess_format("m.tflite") == "tflite" and guess_format("m.zip") == "savedmodel"
    with pytest.raises(ValueError, match="cannot tell the model format"):
        guess_format("m.onnx")
    with pytest.raises(ValueError, match="unknown model format"):
        load_pilot(__file__, "onnx", sandbox=False)
