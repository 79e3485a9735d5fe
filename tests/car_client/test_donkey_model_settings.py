"""Donkey per-model settings on the car (issue 14): the throttle range and the crop travel
in ``load_model``, are kept beside the model in the model store, and the Donkey backend
drives with them. The PCA9685 is the recording stand-in on the I2C bus (the real
``adafruit_pca9685`` library writes to it), the camera returns simulator frames; the
model store downloads over real HTTP and the pilots run in the real sandbox."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from car_client.daemon.commands import validate_command
from car_client.daemon.model_store import DownloadError, ModelStore
from car_client.pilots import load_pilot
from car_client.pilots.donkey import MODEL_SETTINGS_FILE, ModelSettings, read_model_settings
from car_client.vehicle.donkey import (
    DonkeyConfig,
    DonkeyVehicle,
    PwmOutputs,
    steering_pulse,
    throttle_pulse,
)
from tests.car_client import model_factories as mf
from tests.car_client.peers import ModelFileServer, wait_until
from tests.car_client.test_daemon_donkey import SimulatorCamera
from tests.standins.pca9685 import RecordingPca9685Bus

#: the car's own config says 0.5; the models below were trained with other settings
CAR = DonkeyConfig(MODEL_CATEGORICAL_MAX_THROTTLE_RANGE=0.5, DRIVE_LOOP_HZ=50,
                   THROTTLE_STOPPED_PWM=380, THROTTLE_FORWARD_PWM=520, THROTTLE_REVERSE_PWM=230)


@pytest.fixture(scope="module")
def settings_models(tmp_path_factory) -> dict[str, Path]:
    """``top_bin.keras``: a categorical model whose throttle is always bin 19 (of 20);
    ``crop80.keras`` / ``crop80.tflite``: a linear model taking the lower 80 rows."""
    d = tmp_path_factory.mktemp("settings")
    categorical = mf.donkey_categorical(seed=3)
    head = categorical.get_layer("throttle_out")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.eye(20, dtype=np.float32)[19] * 10])
    categorical.save(d / "top_bin.keras")
    cropped = mf.donkey_linear(seed=4, input_shape=(80, 160, 3))
    cropped.save(d / "crop80.keras")
    (d / "crop80.tflite").write_bytes(mf.tflite_bytes(cropped))
    return {p.name: p for p in d.iterdir()}


def _store_model(tmp_path: Path, path: Path, model_id: str, settings: dict | None):
    blob = path.read_bytes()
    server = ModelFileServer({f"/m/{model_id}": blob}).start()
    try:
        store = ModelStore(tmp_path / "models")
        spec = store.load(model_id, f"{server.url}/m/{model_id}", hashlib.sha256(blob).hexdigest(),
                          name=path.name, model_format="keras", size=len(blob), settings=settings)
    finally:
        server.stop()
    return store, spec


def _drive(spec, frames_wanted: int = 6):
    bus = RecordingPca9685Bus()
    camera = SimulatorCamera()
    vehicle = DonkeyVehicle(CAR, PwmOutputs(CAR, bus), camera)
    try:
        vehicle.start_driving(spec, lambda lap: None)
        wait_until(lambda: len(bus.pulses_of(CAR.THROTTLE_CHANNEL)) > frames_wanted, 60, what="frames driven")
        vehicle.stop_driving()
    finally:
        vehicle.close()
    steer = bus.pulses_of(CAR.STEERING_CHANNEL)[1:frames_wanted + 1]  # [0]: the stop at start-up
    throttle = bus.pulses_of(CAR.THROTTLE_CHANNEL)[1:frames_wanted + 1]
    return steer, throttle, camera.served[:frames_wanted]


def test_a_model_trained_with_range_0_8_drives_with_0_8_although_the_car_says_0_5(tmp_path, settings_models):
    store, spec = _store_model(tmp_path, settings_models["top_bin.keras"], "21",
                               {"categorical_throttle_range": 0.8})
    beside = Path(spec.path).parent / MODEL_SETTINGS_FILE
    assert json.loads(beside.read_text()) == {"categorical_throttle_range": 0.8}
    assert store.settings("21") == {"categorical_throttle_range": 0.8}
    _, throttle, _ = _drive(spec)
    # bin 19 of 20: throttle 19 * 0.8 / 20 = 0.76 -> 380 + 0.76 * (520 - 380) = 486.4
    assert throttle == [throttle_pulse(CAR, 0.76)] * 6 == [486] * 6


def test_without_settings_the_car_config_range_is_the_fallback(tmp_path, settings_models):
    store, spec = _store_model(tmp_path, settings_models["top_bin.keras"], "22", None)
    assert not (Path(spec.path).parent / MODEL_SETTINGS_FILE).exists() and store.settings("22") == {}
    _, throttle, _ = _drive(spec)
    assert throttle == [throttle_pulse(CAR, 19 * 0.5 / 20)] * 6 == [446] * 6


def test_settings_are_replaced_when_the_same_model_is_loaded_again(tmp_path, settings_models):
    store, spec = _store_model(tmp_path, settings_models["top_bin.keras"], "23",
                               {"categorical_throttle_range": 0.8})
    _, again = _store_model(tmp_path, settings_models["top_bin.keras"], "23", {"categorical_throttle_range": 0.6})
    assert read_model_settings(again.path) == ModelSettings(categorical_throttle_range=0.6)
    assert ModelStore(tmp_path / "models").settings("23") == {"categorical_throttle_range": 0.6}


def test_a_model_with_crop_40_0_takes_the_lower_80_rows_and_steers(tmp_path, settings_models):
    import keras

    keras_model = keras.saving.load_model(settings_models["crop80.keras"], compile=False)
    _, spec = _store_model(tmp_path, settings_models["crop80.keras"], "24", {"crop_top": 40, "crop_bottom": 0})
    steer, throttle, frames = _drive(spec)
    want_steer, want_throttle = [], []
    for frame in frames:
        angle, thr = (float(np.asarray(o).reshape(-1)[0])
                      for o in keras_model((frame[40:].astype(np.float32) / 255.0)[None], training=False))
        want_steer.append(steering_pulse(CAR, angle))
        want_throttle.append(throttle_pulse(CAR, min(thr, 1.0)))
    assert steer == want_steer and throttle == want_throttle
    assert len(set(steer)) > 1  # it steers: the frames along the track give different angles


@pytest.mark.parametrize("name", ["crop80.keras", "crop80.tflite"])
def test_the_crop_is_inferred_from_the_input_height_and_a_mismatch_is_refused(settings_models, name):
    pilot = load_pilot(settings_models[name], sandbox=False)
    assert (pilot.crop_top, pilot.crop_bottom, pilot.input_rows) == (40, 0, 80)
    bottom = load_pilot(settings_models[name], sandbox=False, settings={"crop_bottom": 40})
    assert (bottom.crop_top, bottom.crop_bottom) == (0, 40)
    top = load_pilot(settings_models[name], sandbox=False, settings={"crop_top": 30})
    assert (top.crop_top, top.crop_bottom) == (30, 10)  # the one not given is what is left
    with pytest.raises(ValueError, match=r"crop \(top 30, bottom 0\) does not match the model's input of 80 "
                                         r"rows: the crops must add up to 40 rows"):
        load_pilot(settings_models[name], sandbox=False, settings={"crop_top": 30, "crop_bottom": 0})
    with pytest.raises(ValueError, match=r"crop \(top 50, bottom None\) does not match"):
        load_pilot(settings_models[name], sandbox=False, settings={"crop_top": 50})


def test_the_sandboxed_pilot_gets_the_settings_and_refuses_a_crop_mismatch(settings_models):
    frame = SimulatorCamera(count=1).frames[0]
    local = load_pilot(settings_models["crop80.tflite"], sandbox=False, settings={"crop_top": 20, "crop_bottom": 20})
    sandboxed = load_pilot(settings_models["crop80.tflite"], "tflite", settings={"crop_top": 20, "crop_bottom": 20})
    try:
        assert sandboxed.predict(frame) == pytest.approx(local.predict(frame), abs=1e-6)
        assert sandboxed.predict(frame) != pytest.approx(load_pilot(settings_models["crop80.tflite"],
                                                                    sandbox=False).predict(frame), abs=1e-6)
    finally:
        sandboxed.close()
    with pytest.raises(ValueError, match="does not match the model's input of 80 rows"):
        load_pilot(settings_models["crop80.tflite"], "tflite", settings={"crop_top": 0, "crop_bottom": 0})


@pytest.mark.parametrize("settings,message", [
    ({"categorical_throttle_range": 0}, r"categorical_throttle_range must be a number in \(0, 1\], got 0"),
    ({"categorical_throttle_range": 1.5}, r"in \(0, 1\], got 1.5"),
    ({"categorical_throttle_range": "0.8"}, r"got '0.8'"),
    ({"crop_top": -1}, r"crop_top must be a whole number of rows 0..119, got -1"),
    ({"crop_bottom": 2.5}, r"crop_bottom must be a whole number of rows 0..119, got 2.5"),
    ({"crop_top": 60, "crop_bottom": 60}, r"crop_top \+ crop_bottom must leave rows"),
    ({"ROI_CROP_TOP": 40}, r"unknown model settings: ROI_CROP_TOP"),
])
def test_bad_settings_are_refused_by_the_car(tmp_path, settings, message):
    params = {"model_id": "9", "url": "http://server/m/9", "sha256": "a" * 64, "model_settings": settings}
    assert validate_command("load_model", params).startswith("load_model model_settings: ")
    with pytest.raises(ValueError, match=message):
        ModelSettings.from_dict(settings)
    store = ModelStore(tmp_path / "models")
    with pytest.raises(DownloadError, match="bad model settings"):
        store.load("9", "http://127.0.0.1:9/m/9", "a" * 64, settings=settings)
    assert store.ids() == []
    assert validate_command("load_model", params | {"model_settings": [0.8]}) == \
        "load_model model_settings must be a JSON object"
    assert validate_command("load_model", params | {"model_settings": {"crop_top": 40}}) is None
