"""SimulatedVehicle (the Vehicle interface), models driving the simulator, and the CLI."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from car_client.cli import main
from car_client.pilots import load_pilot
from car_client.sim.camera import Camera
from car_client.sim.loop import DriveLoop
from car_client.sim.tracks import load_track
from car_client.sim.vehicle import SimulatedVehicle
from car_client.sim.world import Simulation
from car_client.vehicle.base import LapReport, ModelSpec, Vehicle

REFERENCE = ModelSpec(model_id="ref-1", path="reference", model_format="reference")


def test_reference_drive_reports_laps_and_stops():
    car = SimulatedVehicle("reInvent2019_wide", speedup=math.inf, seed=1)
    assert isinstance(car, Vehicle)
    laps: list[LapReport] = []
    two = threading.Event()

    def on_lap(report: LapReport):
        laps.append(report)
        if len(laps) >= 2:
            two.set()

    try:
        car.start_driving(REFERENCE, on_lap)
        assert two.wait(30)
        assert car.status()["driving"] is True
    finally:
        car.stop_driving()
    status = car.status()
    assert status["driving"] is False and status["speed_mps"] == 0.0
    assert 0 <= status["battery_pct"] <= 100
    first, second = laps[0], laps[1]
    assert (first.lap_number, second.lap_number) == (1, 2)
    assert first.model_id == "ref-1" and first.resets == 0
    assert isinstance(first.lap_time_ms, int) and 4000 < second.lap_time_ms < 16000
    assert len(first.lap_id) == 32 and first.lap_id != second.lap_id
    assert first.extra["track"] == "reInvent2019_wide"
    car.stop_driving()  # no-op when not driving
    car.close()


def test_controls():
    car = SimulatedVehicle(speedup=math.inf)
    car.set_tail_light("blue")
    assert car.tail_light == "blue"
    with pytest.raises(ValueError, match="tail light"):
        car.set_tail_light("tartan")
    with pytest.raises(ValueError, match="max speed"):
        car.set_max_speed(0)
    car.set_max_speed(1.0)
    with pytest.raises(FileNotFoundError):
        SimulatedVehicle(track="no_such_track")
    with pytest.raises(ValueError, match="camera"):
        SimulatedVehicle(camera="thermal")
    with pytest.raises(ValueError, match="speedup"):
        SimulatedVehicle(speedup=0)


def test_max_speed_and_emergency_stop_while_driving():
    car = SimulatedVehicle("reinvent_base", speedup=20.0)
    car.set_max_speed(0.5)
    car.start_driving(REFERENCE, lambda lap: None)
    try:
        threading.Event().wait(0.3)
        assert 0.0 < car.status()["speed_mps"] <= 0.5 + 1e-9
    finally:
        car.emergency_stop()
    assert car.status() == {**car.status(), "driving": False, "speed_mps": 0.0}


def test_model_the_car_cannot_run_is_refused_at_start(tmp_path):
    from tests.car_client.model_factories import write_deepracer_model

    path = write_deepracer_model(tmp_path / "lidar.tar.gz", sensors=["LIDAR"])
    car = SimulatedVehicle(speedup=math.inf)
    with pytest.raises(ValueError, match="LiDAR"):
        car.start_driving(ModelSpec("9", str(path), "deepracer"), lambda lap: None)
    assert car.status()["driving"] is False


@pytest.mark.parametrize("fixture, key", [("deepracer_models", "discrete"),
                                          ("deepracer_models", "continuous"),
                                          ("donkey_models", "linear.tflite"),
                                          ("donkey_models", "categorical.keras")])
def test_models_drive_the_simulator(request, fixture, key):
    """Untrained models need not stay on the track, but they drive it: the camera feeds
    them, the car moves, and leaving the track is handled by resets."""
    path = request.getfixturevalue(fixture)[key]
    track = load_track("reinvent_base")
    pilot = load_pilot(path)
    sim = Simulation(track, record_path=True)
    seen = []
    loop = DriveLoop(sim, pilot, Camera(track, randomize=True, seed=3), speedup=math.inf,
                     on_frame=lambda image, action: seen.append((image.shape, action)))
    summary = loop.run(max_sim_s=10.0)
    assert summary.frames >= 30  # (each reset takes 2 s of the 10 without frames)
    # sim time = frames (a frame with a reset is cut short) + 2 s per reset
    expected = summary.frames * loop.dt + 2.0 * summary.resets
    assert expected - summary.resets * loop.dt - 1e-6 <= summary.sim_time_s <= expected + 1e-6
    shape = (120, 160) if pilot.camera_mode == "grey" else (120, 160, 3)
    assert all(s == shape for s, _ in seen)
    moved = np.nansum(np.hypot(*np.diff(np.array(sim.path), axis=0).T))
    assert moved > 0.5  # metres driven
    assert all(-30 <= a.steering_deg <= 30 for _, a in seen)


def test_simulated_vehicle_drives_a_donkey_model(donkey_models):
    car = SimulatedVehicle("reinvent_base", speedup=math.inf, camera="fisheye")
    spec = ModelSpec("d1", str(donkey_models["linear.keras"]), "keras")
    car.start_driving(spec, lambda lap: None)
    try:
        threading.Event().wait(0.5)
        assert car.status()["driving"]
        assert car.sim.t > 0.5 and car.last_error is None
    finally:
        car.stop_driving()


def test_cli_drive_reference_with_png(tmp_path):
    out = tmp_path / "line.png"
    result = CliRunner().invoke(main, ["drive", "--track", "reInvent2019_wide", "--model",
                                       "reference", "--laps", "2", "--png", str(out)])
    assert result.exit_code == 0, result.output
    assert "lap 1:" in result.output and "lap 2:" in result.output
    assert "summary: 2/2 laps, resets 0" in result.output
    assert out.stat().st_size > 1000
    from PIL import Image

    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    assert (np.abs(pixels - [220, 30, 30]).sum(axis=1) < 40).sum() > 500  # the red line


def test_cli_reports_bad_input():
    result = CliRunner().invoke(main, ["drive", "--track", "nowhere", "--model", "reference"])
    assert result.exit_code != 0 and "no track 'nowhere'" in result.output
