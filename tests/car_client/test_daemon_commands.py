"""The daemon in-process against a real local Socket.IO car server and model file server."""

import hashlib
import json
import os
import types

import pytest

from car_client.daemon.outbox import LapLog
from car_client.vehicle.standin import StandInVehicle
from tests.car_client.peers import (
    CarServerPeer,
    DaemonThread,
    ModelFileServer,
    wait_until,
    write_car_config,
)

BLOB = os.urandom(200_000)
SHA = hashlib.sha256(BLOB).hexdigest()
HEARTBEAT_KEYS = {"state", "battery_pct", "ip", "hostname", "software_version", "max_speed_mps",
                  "tail_light", "models", "model_in_use", "error", "model_formats"}
LAP_KEYS = {"lap_id", "model_id", "lap_time_ms", "resets", "lap_number", "finished_at"}


@pytest.fixture
def car(tmp_path):
    peer = CarServerPeer(tokens={"tok-7": 7}).start()
    files = ModelFileServer({"/models/12": BLOB}).start()
    config = write_car_config(tmp_path / "config.json", peer.url, "tok-7")
    vehicle = StandInVehicle(lap_interval_s=0.2, seed=1)
    daemon = DaemonThread(config, tmp_path / "data", vehicle).start()
    wait_until(lambda: peer.heartbeats, 10, what="first heartbeat")
    yield types.SimpleNamespace(peer=peer, files=files, vehicle=vehicle, daemon=daemon,
                                data=tmp_path / "data")
    assert daemon.stop() == 0
    peer.stop()
    files.stop()


def result(peer, command_id, status, timeout_s=10.0):
    """Wait for a result of ``command_id`` with ``status`` and return it."""
    return wait_until(lambda: next((r for r in peer.results if r["command_id"] == command_id
                                    and r["status"] == status), None),
                      timeout_s, what=f"{status} for {command_id}")


def statuses(peer, command_id):
    return [r["status"] for r in peer.results if r["command_id"] == command_id]


def last_heartbeat(peer, **expect):
    """Wait for a heartbeat with the expected field values and return it."""
    return wait_until(lambda: next((h for h in reversed(peer.heartbeats[-1:])
                                    if all(h.get(k) == v for k, v in expect.items())), None),
                      10, what=f"heartbeat with {expect}")


def load(car, model_id="12", sha=SHA):
    cid = car.peer.send_command(7, "load_model", {
        "model_id": model_id, "name": "fast.tar.gz", "format": "deepracer", "sha256": sha,
        "size": len(BLOB), "url": car.files.url + "/models/12?expires=1&sig=x"})
    return cid


def test_heartbeat_has_the_protocol_fields(car):
    beat = car.peer.heartbeats[0]
    assert set(beat) - {"car_id", "received_at"} == HEARTBEAT_KEYS
    assert beat["state"] == "idle" and beat["ip"] == "127.0.0.1" and beat["hostname"] == "car-7"
    assert isinstance(beat["battery_pct"], int) and 0 <= beat["battery_pct"] <= 100
    assert (beat["models"], beat["model_in_use"], beat["error"]) == ([], None, None)
    assert (beat["max_speed_mps"], beat["tail_light"]) == (2.0, "white")
    # and again every heartbeat_interval_s (0.5 s in this config)
    count = len(car.peer.heartbeats)
    wait_until(lambda: len(car.peer.heartbeats) >= count + 2, 3, what="periodic heartbeats")


def test_load_drive_report_laps_and_stop(car):
    peer = car.peer
    cid = load(car)
    done = result(peer, cid, "done")
    assert done["progress"] == 1.0 and statuses(peer, cid)[0] == "acknowledged"
    beat = last_heartbeat(peer, state="ready")
    assert beat["models"] == [{"model_id": "12", "sha256": SHA, "name": "fast.tar.gz"}]

    drive = peer.send_command(7, "start_driving", {"model_id": "12"})
    result(peer, drive, "done")
    last_heartbeat(peer, state="driving", model_in_use="12")
    wait_until(lambda: len(peer.laps) >= 3, 10, what="three laps")
    stop = peer.send_command(7, "stop_driving")
    result(peer, stop, "done")
    last_heartbeat(peer, state="stopped")

    car_laps = LapLog(car.data / "laps.jsonl").read()
    wait_until(lambda: len(peer.laps) == len(car_laps), 5, what="all laps at the server")
    assert [lap["lap_id"] for lap in peer.laps] == [lap["lap_id"] for lap in car_laps]
    lap = peer.laps[0]
    assert set(lap) - {"car_id"} == LAP_KEYS
    assert (lap["model_id"], lap["lap_number"]) == ("12", 1)
    assert 150 <= lap["lap_time_ms"] <= 1000 and len(lap["lap_id"]) == 32


def test_impossible_commands_fail_with_a_reason(car):
    peer = car.peer
    cid = peer.send_command(7, "start_driving", {"model_id": "99"})
    assert result(peer, cid, "failed")["reason"] == \
        "model 99 is not on the car (no model loaded); send load_model first"
    assert statuses(peer, cid) == ["acknowledged", "failed"]

    result(peer, load(car), "done")
    result(peer, peer.send_command(7, "start_driving", {"model_id": "12"}), "done")
    again = peer.send_command(7, "load_model", {"model_id": "13", "sha256": SHA,
                                                "url": car.files.url + "/models/12"})
    assert "while driving" in result(peer, again, "failed")["reason"]
    delete = peer.send_command(7, "delete_models", {"model_ids": []})
    assert "while driving" in result(peer, delete, "failed")["reason"]
    speed = peer.send_command(7, "set_max_speed", {"max_speed_mps": 9})
    assert "0.1 to 4.0" in result(peer, speed, "failed")["reason"]
    bogus = peer.send_command(7, "self_destruct")
    assert result(peer, bogus, "failed")["reason"] == "unknown command type 'self_destruct'"
    last_heartbeat(peer, state="driving")  # none of that disturbed the drive


def test_checksum_mismatch_is_refused_and_reported(car):
    cid = load(car, sha="ab" * 32)
    assert result(car.peer, cid, "failed")["reason"] == "checksum mismatch"
    beat = last_heartbeat(car.peer, state="idle")
    assert beat["models"] == []
    assert not list((car.data / "models" / ".partial").iterdir())


def test_a_lap_whose_ack_was_lost_is_resent_and_stored_once(car):
    peer = car.peer
    result(peer, load(car), "done")
    peer.lose_next_acks = 1  # the server stores the first lap, then the network "drops"
    result(peer, peer.send_command(7, "start_driving", {"model_id": "12"}), "done")
    wait_until(lambda: peer.duplicates >= 1, 10, what="the lap sent again")
    wait_until(lambda: len(peer.laps) >= 3, 10, what="more laps")
    result(peer, peer.send_command(7, "stop_driving"), "done")
    car_laps = LapLog(car.data / "laps.jsonl").read()
    wait_until(lambda: len(peer.laps) == len(car_laps), 5, what="all laps")
    ids = [lap["lap_id"] for lap in peer.laps]
    assert len(ids) == len(set(ids)) == len(car_laps)
    assert peer.connects >= 2 and peer.lap_receipts > len(ids)


def test_settings_emergency_stop_delete_and_redelivery(car):
    peer, vehicle = car.peer, car.vehicle
    light = peer.send_command(7, "set_tail_light", {"colour": "blue"}, command_id="c-1")
    result(peer, light, "done")
    peer.send_command(7, "set_tail_light", {"colour": "blue"}, command_id="c-1")  # redelivered
    speed = peer.send_command(7, "set_max_speed", {"max_speed_mps": 1.5})
    result(peer, speed, "done")
    assert statuses(peer, "c-1") == ["acknowledged", "done"]
    assert (vehicle.tail_light, vehicle.max_speed_mps) == ("blue", 1.5)
    last_heartbeat(peer, tail_light="blue", max_speed_mps=1.5)
    assert json.loads((car.data / "settings.json").read_text()) == \
        {"max_speed_mps": 1.5, "tail_light": "blue"}

    result(peer, load(car), "done")
    result(peer, peer.send_command(7, "start_driving", {"model_id": "12"}), "done")
    assert vehicle.status()["driving"]
    stop = peer.send_command(7, "emergency_stop")
    result(peer, stop, "done")
    assert vehicle.emergency_stops == 1 and not vehicle.status()["driving"]
    last_heartbeat(peer, state="stopped")

    delete = peer.send_command(7, "delete_models", {"model_ids": ["12"]})
    result(peer, delete, "done")
    beat = last_heartbeat(peer, state="idle")
    assert beat["models"] == [] and beat["model_in_use"] is None
    assert not (car.data / "models" / "12").exists()


def test_a_vehicle_that_stops_on_its_own_puts_the_car_in_error(car):
    peer = car.peer
    result(peer, load(car), "done")
    result(peer, peer.send_command(7, "start_driving", {"model_id": "12"}), "done")
    car.vehicle.stop_driving()  # behind the daemon's back, as a crashed drive thread would
    beat = last_heartbeat(peer, state="error")
    assert beat["error"] == "vehicle stopped driving unexpectedly"
    # the operator can drive again from error
    result(peer, peer.send_command(7, "start_driving", {"model_id": "12"}), "done")
    assert last_heartbeat(peer, state="driving")["error"] is None
