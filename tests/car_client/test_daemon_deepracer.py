"""The DeepRacer backend against the device-console stand-in (HTTPS, login, CSRF, real routes)."""

import hashlib
import io
import json
import tarfile
import threading
import time
import types

import pytest

from car_client.vehicle.base import ModelSpec, VehicleError
from car_client.vehicle.deepracer import DeepRacerVehicle, throttle_percent
from car_client.vehicle.deepracer_console import ConsoleClient, LoginRefused, PinMismatch
from tests.car_client.peers import (
    CarServerPeer,
    DaemonThread,
    ModelFileServer,
    wait_until,
    write_car_config,
)
from tests.standins.deepracer_console import DeepRacerConsole

LOGIN = ["GET /", "POST /login"]


def archive_bytes() -> bytes:
    """A DeepRacer archive's layout (the console stand-in installs, it does not run it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("model_metadata.json", json.dumps({"action_space": [], "sensor": ["FRONT_FACING_CAMERA"]}).encode()),
                           ("agent/model.pb", b"\x08\x01graph")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def console(tmp_path):
    c = DeepRacerConsole(tmp_path / "car").start()
    yield c
    c.stop()


@pytest.fixture
def car(console, tmp_path):
    client = ConsoleClient(console.url, "racer-pass", tmp_path / "pins.json", timeout_s=3)
    vehicle = DeepRacerVehicle(client, poll_s=0.05, unreachable_wait_s=5)
    path = tmp_path / "m.tar.gz"
    path.write_bytes(archive_bytes())
    return types.SimpleNamespace(console=console, client=client, vehicle=vehicle,
                                 spec=ModelSpec("12", str(path), "deepracer", "fast.tar.gz"))


def test_load_uploads_installs_and_loads_through_the_real_routes(car):
    progress = []
    car.vehicle.prepare_model(car.spec, progress.append, threading.Event())
    paths = car.console.api_paths()
    assert paths[:3] == LOGIN + ["PUT /api/uploadModels"]
    assert "GET /api/is_model_installed?filename=drem-12" in paths
    assert paths[-2:] == ["GET /api/isModelLoading"] * 2 or paths[-1] == "GET /api/isModelLoading"
    assert "PUT /api/models/drem-12/model" in paths
    assert car.console.loaded == "drem-12/model" and car.console.uploads == ["drem-12"]
    assert progress == [0.5, 0.75]
    assert [m["model_folder_name"] for m in car.client.list_models()] == ["drem-12"]


def test_drive_speed_light_battery_and_delete(car):
    car.vehicle.prepare_model(car.spec, lambda f: None, threading.Event())
    car.vehicle.set_max_speed(2.0)
    car.vehicle.set_tail_light("purple")
    car.console.requests.clear()
    car.vehicle.start_driving(car.spec, lambda lap: None)
    assert car.console.api_paths() == ["PUT /api/drive_mode", "PUT /api/max_nav_throttle", "PUT /api/start_stop"]
    assert (car.console.drive_mode, car.console.throttle, car.console.running) == ("auto", 50, True)
    assert car.console.led == (128, 0, 255)
    assert car.vehicle.status() == {"battery_pct": 80, "driving": True, "speed_mps": 2.0}
    car.vehicle.stop_driving()
    assert car.console.running is False and car.vehicle.status()["driving"] is False
    car.vehicle.delete_models([car.spec])
    assert car.console.api_paths()[-1] == "POST /api/deleteModels"
    assert car.client.list_models() == []
    assert (throttle_percent(0.1), throttle_percent(4.0), throttle_percent(9.0)) == (2, 100, 100)


def test_session_expiry_logs_in_again_and_repeats_the_call(car):
    car.vehicle.set_tail_light("red")
    car.console.expire_session()
    car.console.requests.clear()
    car.vehicle.set_tail_light("green")
    assert car.console.api_paths() == ["POST /api/set_led_color", *LOGIN, "POST /api/set_led_color"]
    assert car.console.led == (0, 255, 0) and car.client.logins == 2


def test_wrong_password_is_a_clear_error(console, tmp_path):
    client = ConsoleClient(console.url, "wrong", tmp_path / "pins.json", timeout_s=3)
    with pytest.raises(LoginRefused, match="refused the password"):
        client.login()
    assert console.token is None


def test_certificate_is_pinned_on_first_use(tmp_path):
    first = DeepRacerConsole(tmp_path / "a").start()
    pins = tmp_path / "pins.json"
    ConsoleClient(first.url, "racer-pass", pins, timeout_s=3).login()
    pinned = json.loads(pins.read_text())
    assert pinned == {f"127.0.0.1:{first.url.rsplit(':', 1)[1]}":
                      hashlib.sha256(_der(first.cert)).hexdigest()}
    port = int(first.url.rsplit(":", 1)[1])
    first.stop()
    impostor = DeepRacerConsole(tmp_path / "b", port=port).start()  # another certificate, same address
    try:
        with pytest.raises(PinMismatch, match="different certificate"):
            ConsoleClient(impostor.url, "racer-pass", pins, timeout_s=3).login()
        assert impostor.token is None
    finally:
        impostor.stop()


def _der(pem_path) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(pem_path.read_text())


def test_a_car_that_reboots_mid_upload_is_waited_for(car):
    car.vehicle.set_tail_light("white")  # logged in
    car.console.stop()
    done = []
    worker = threading.Thread(target=lambda: done.append(
        car.vehicle.prepare_model(car.spec, lambda f: None, threading.Event()) or "ok"))
    worker.start()
    time.sleep(0.8)
    car.console.reboot()  # back on the network, logins lost
    worker.join(15)
    assert done == ["ok"] and car.console.loaded == "drem-12/model"
    assert car.client.logins == 2


def test_emergency_stop_mid_load_ends_the_wait_and_stops_the_car(car):
    car.console.load_delay_s = 30
    errors = []

    def load():
        try:
            car.vehicle.prepare_model(car.spec, lambda f: None, threading.Event())
        except VehicleError as exc:
            errors.append(str(exc))

    worker = threading.Thread(target=load)
    worker.start()
    wait_until(lambda: car.console.loading_status == "loading", 10, what="loading")
    started = time.monotonic()
    car.vehicle.emergency_stop()
    worker.join(5)
    assert time.monotonic() - started < 2
    assert errors and "cancelled by emergency stop" in errors[0]
    assert car.console.api_paths()[-1] in ("PUT /api/start_stop", "GET /api/isModelLoading")
    assert "PUT /api/start_stop" in car.console.api_paths() and car.console.running is False


def test_the_cars_own_load_error_is_the_reason(car):
    car.console.fail_load_reason = "Model optimization failed!"
    with pytest.raises(VehicleError, match="Model optimization failed!"):
        car.vehicle.prepare_model(car.spec, lambda f: None, threading.Event())


def test_daemon_loads_onto_the_car_and_refuses_other_formats(car, tmp_path):
    blob = archive_bytes()
    peer = CarServerPeer(tokens={"tok-7": 7}).start()
    files = ModelFileServer({"/models/12": blob}).start()
    config = write_car_config(tmp_path / "config.json", peer.url, "tok-7")
    daemon = DaemonThread(config, tmp_path / "data", car.vehicle).start()
    try:
        beat = wait_until(lambda: peer.heartbeats and peer.heartbeats[-1], 10, what="heartbeat")
        assert beat["model_formats"] == ["deepracer"] and beat["battery_pct"] == 80
        refused = peer.send_command(7, "load_model", {
            "model_id": "13", "name": "donkey.keras", "format": "keras", "sha256": "0" * 64,
            "url": files.url + "/models/13"})
        wait_until(lambda: any(r["command_id"] == refused and r["status"] == "failed" for r in peer.results),
                   10, what="refusal")
        reason = next(r["reason"] for r in peer.results if r["command_id"] == refused and r["status"] == "failed")
        assert reason == "this car runs deepracer models, not keras"
        cid = peer.send_command(7, "load_model", {
            "model_id": "12", "name": "fast.tar.gz", "format": "deepracer",
            "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob), "url": files.url + "/models/12"})
        wait_until(lambda: any(r["command_id"] == cid and r["status"] == "done" for r in peer.results),
                   15, what="load done")
        progress = [r["progress"] for r in peer.results if r["command_id"] == cid and r["progress"] is not None]
        assert progress[-1] == 1.0 and any(0.4 <= p < 1.0 for p in progress)
        assert car.console.loaded == "drem-12/model"
        wait_until(lambda: peer.heartbeats[-1]["models"] and peer.heartbeats[-1]["state"] == "ready", 10,
                   what="ready heartbeat")
    finally:
        assert daemon.stop() == 0
        peer.stop()
        files.stop()
