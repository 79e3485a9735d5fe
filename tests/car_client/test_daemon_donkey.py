"""The Donkey Car backend with the PCA9685 replaced at the I2C bus and a camera that
returns simulator frames: the real adafruit_pca9685 library and the real pilots run."""

import json
import threading
import time

import numpy as np
import pytest

from car_client.pilots import load_pilot
from car_client.sim.camera import Camera
from car_client.sim.tracks import load_track
from car_client.vehicle.base import ModelSpec
from car_client.vehicle.donkey import (
    DonkeyConfig,
    DonkeyConfigError,
    DonkeyVehicle,
    PwmOutputs,
    load_donkey_config,
    save_donkey_config,
    steering_pulse,
    throttle_pulse,
)
from tests.car_client.peers import wait_until
from tests.standins.pca9685 import RecordingPca9685Bus

#: a car calibrated away from Donkey's defaults (other channels, other pulses)
CALIBRATED = DonkeyConfig(STEERING_CHANNEL=3, STEERING_LEFT_PWM=480, STEERING_RIGHT_PWM=300,
                          THROTTLE_CHANNEL=2, THROTTLE_FORWARD_PWM=520, THROTTLE_STOPPED_PWM=380,
                          THROTTLE_REVERSE_PWM=230, DRIVE_LOOP_HZ=50)


class SimulatorCamera:
    """A camera that returns simulator frames along the centre line; keeps what it served."""

    def __init__(self, track_name="reinvent_base", count=8):
        track = load_track(track_name)
        camera = Camera(track, "pinhole")
        idx = np.linspace(0, track.n_segments - 1, count).astype(int)
        self.frames = [camera.render(*track.seg_start[i], track.seg_heading[i], colour=True) for i in idx]
        self.served = []
        self.closed = False

    def read(self):
        frame = self.frames[len(self.served) % len(self.frames)]
        self.served.append(frame)
        return frame

    def close(self):
        self.closed = True


@pytest.fixture
def donkey(donkey_models):
    bus = RecordingPca9685Bus()
    camera = SimulatorCamera()
    vehicle = DonkeyVehicle(CALIBRATED, PwmOutputs(CALIBRATED, bus), camera)
    yield vehicle, bus, camera
    vehicle.close()


def expected_pulses(model_path, fmt, frames, cap_mps):
    # the model carries no settings: the car's throttle range is the fallback
    pilot = load_pilot(model_path, fmt,
                       settings={"categorical_throttle_range": CALIBRATED.MODEL_CATEGORICAL_MAX_THROTTLE_RANGE})
    out = []
    for frame in frames:
        action = pilot.act(frame)
        out.append((steering_pulse(CALIBRATED, -action.steering_deg / 30.0),
                    throttle_pulse(CALIBRATED, min(action.speed_mps / 4.0, cap_mps / 4.0))))
    return out


def test_calibration_is_applied_and_the_car_starts_stopped():
    bus = RecordingPca9685Bus()
    DonkeyVehicle(CALIBRATED, PwmOutputs(CALIBRATED, bus), SimulatorCamera(count=1))
    assert bus.prescale == round(25_000_000 / (4096 * 60)) - 1  # 60 Hz
    assert bus.pulse(2) == 380 and bus.pulse(3) == 390  # stopped; straight = (480 + 300) / 2
    assert (steering_pulse(CALIBRATED, -1), steering_pulse(CALIBRATED, 1)) == (480, 300)
    assert (throttle_pulse(CALIBRATED, 1), throttle_pulse(CALIBRATED, -1), throttle_pulse(CALIBRATED, 0.5)) \
        == (520, 230, 450)


@pytest.mark.parametrize("name,fmt", [("linear.tflite", "tflite"), ("categorical.keras", "keras")])
def test_the_model_steers_and_max_speed_caps_the_throttle(donkey, donkey_models, name, fmt):
    vehicle, bus, camera = donkey
    vehicle.set_max_speed(0.6)
    vehicle.start_driving(ModelSpec("5", str(donkey_models[name]), fmt), lambda lap: None)
    wait_until(lambda: len(bus.pulses_of(3)) >= 7, 30, what="six frames driven")
    vehicle.stop_driving()
    steer, throttle = bus.pulses_of(3)[1:7], bus.pulses_of(2)[1:7]  # [0]: the stop at start-up
    want = expected_pulses(donkey_models[name], fmt, camera.served[:6], 0.6)
    assert list(zip(steer, throttle, strict=True)) == want
    assert max(throttle) <= throttle_pulse(CALIBRATED, 0.6 / 4.0)
    assert bus.pulse(2) == 380  # stopped after stop_driving
    assert vehicle.status()["driving"] is False


def test_emergency_stop_puts_the_throttle_at_stopped_within_one_frame(donkey, donkey_models):
    vehicle, bus, _ = donkey
    vehicle.start_driving(ModelSpec("5", str(donkey_models["linear.tflite"]), "tflite"), lambda lap: None)
    wait_until(lambda: len(bus.pulses_of(2)) >= 4, 30, what="driving")
    time.sleep(0.3)
    status = vehicle.status()
    assert status["driving"] is True and 5 <= status["fps"] <= 60
    called = time.monotonic()
    vehicle.emergency_stop()
    throttle_after = [(t, at) for c, t, at in bus.pulses if c == 2 and at >= called]
    assert throttle_after and throttle_after[0][0] == 380
    assert throttle_after[0][1] - called < 1 / CALIBRATED.DRIVE_LOOP_HZ
    time.sleep(0.1)
    assert {t for c, t, at in bus.pulses if c == 2 and at >= called} == {380}


def test_a_deepracer_model_is_refused():
    vehicle = DonkeyVehicle(CALIBRATED, PwmOutputs(CALIBRATED, RecordingPca9685Bus()), SimulatorCamera(count=1))
    assert vehicle.model_formats == ("keras", "tflite", "savedmodel")
    with pytest.raises(ValueError, match="a Donkey car runs keras, tflite, savedmodel models, not deepracer"):
        vehicle.start_driving(ModelSpec("1", "/nonexistent.tar.gz", "deepracer"), lambda lap: None)


def test_calibration_file_round_trip_and_refusals(tmp_path):
    path = tmp_path / "donkey.json"
    assert load_donkey_config(path) == DonkeyConfig()  # no file yet: Donkey's defaults
    save_donkey_config(path, CALIBRATED)
    assert load_donkey_config(path) == CALIBRATED
    for bad, message in ((dict(STEERING_LEFT_PWM=5000), "STEERING_LEFT_PWM must be a 12-bit pulse"),
                         (dict(THROTTLE_CHANNEL=1), "must differ"),
                         (dict(STEERING_PWM=400), "unknown settings STEERING_PWM"),
                         (dict(MODEL_CATEGORICAL_MAX_THROTTLE_RANGE=0), "THROTTLE_RANGE must be in")):
        path.write_text(json.dumps(bad))
        with pytest.raises(DonkeyConfigError, match=message):
            load_donkey_config(path)


def test_a_missing_chip_is_a_clear_error():
    with pytest.raises(ValueError, match="No I2C device at address: 0x41"):
        PwmOutputs(DonkeyConfig(PCA9685_I2C_ADDR=0x41), RecordingPca9685Bus(0x40))


def test_stop_from_another_thread_while_the_loop_runs(donkey, donkey_models):
    vehicle, bus, _ = donkey
    vehicle.start_driving(ModelSpec("5", str(donkey_models["linear.tflite"]), "tflite"), lambda lap: None)
    wait_until(lambda: len(bus.pulses_of(2)) >= 3, 30, what="driving")
    t = threading.Thread(target=vehicle.stop_driving)
    t.start()
    t.join(3)
    assert not t.is_alive() and bus.pulse(2) == 380


def test_calibrate_sends_typed_pulses_refuses_bad_ones_and_saves(tmp_path):
    from car_client.vehicle.calibrate import calibrate_channel, save_term

    bus = RecordingPca9685Bus()
    outputs = PwmOutputs(DonkeyConfig(), bus)
    lines = iter(["400", "abc", "5000", "455", "q"])
    said = []
    last = calibrate_channel(outputs, 1, lambda: next(lines), said.append)
    assert last == 455 and bus.pulses_of(1)[-2:] == [400, 455]
    assert said[1] == "not a whole number: 'abc' (type a pulse such as 370, or q)"
    assert said[2] == "5000 is outside 0..4095" and 5000 not in bus.pulses_of(1)
    path = tmp_path / "donkey.json"
    save_term(str(path), "STEERING_LEFT_PWM", last)
    assert load_donkey_config(path).STEERING_LEFT_PWM == 455
    with pytest.raises(DonkeyConfigError, match="--save takes one of"):
        save_term(str(path), "STEERING_CHANNEL", 3)
