"""The daemon as a real process (``python -m car_client run``): faults and restarts."""

import hashlib
import os
import signal
import time

import pytest

from car_client.daemon.outbox import LapLog, Outbox
from tests.car_client.peers import (
    CarServerPeer,
    ModelFileServer,
    PeerClient,
    free_port,
    start_car_server_process,
    start_daemon_process,
    wait_until,
    write_car_config,
)

BLOB = os.urandom(50_000)
SHA = hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
def files():
    server = ModelFileServer({"/models/12": BLOB}).start()
    yield server
    server.stop()


@pytest.fixture
def procs():
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def done(client, command_id, status="done", timeout_s=15.0):
    return wait_until(lambda: next((r for r in client.results_for(command_id)
                                    if r["status"] == status), None), timeout_s,
                      what=f"{status} for {command_id}")


def drive(client, files):
    """Load model 12 on car 7 and start driving it."""
    done(client, client.send_command(7, "load_model", {
        "model_id": "12", "name": "m.tar.gz", "format": "deepracer", "sha256": SHA,
        "size": len(BLOB), "url": files.url + "/models/12"}))
    done(client, client.send_command(7, "start_driving", {"model_id": "12"}))


def lap_ids(client):
    return [lap["lap_id"] for lap in client.state()["laps"]]


def car_lap_ids(data_dir):
    return [lap["lap_id"] for lap in LapLog(data_dir / "laps.jsonl").read()]


def test_refused_or_revoked_token_exits_with_status_3(tmp_path, procs):
    peer = CarServerPeer(tokens={"good": 7}).start()
    try:
        bad = write_car_config(tmp_path / "bad.json", peer.url, "revoked-long-ago")
        procs.append(start_daemon_process(bad, tmp_path / "bad"))
        assert procs[-1].wait(20) == 3
        assert "re-activate" in (tmp_path / "bad-daemon.log").read_text()

        good = write_car_config(tmp_path / "good.json", peer.url, "good")
        procs.append(start_daemon_process(good, tmp_path / "good"))
        wait_until(lambda: peer.heartbeats, 15, what="heartbeat")
        peer.revoke("good")  # disconnected at once; the reconnect is refused
        assert procs[-1].wait(20) == 3
    finally:
        peer.stop()


def test_reconnects_after_a_server_restart_and_no_lap_is_lost(tmp_path, files, procs):
    port = free_port()
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    procs.append(start_car_server_process(port, server_dir, {"tok": 7}))
    client = PeerClient(f"http://127.0.0.1:{port}")
    config = write_car_config(tmp_path / "config.json", client.url, "tok")
    car = start_daemon_process(config, tmp_path / "car", "--standin-lap-interval", "0.25")
    procs.append(car)
    wait_until(lambda: client.state()["connected"] == ["7"], 15, what="car connected")
    drive(client, files)
    wait_until(lambda: len(lap_ids(client)) >= 2, 10, what="laps before the cut")

    procs[0].kill()  # the server dies hard; the car keeps driving
    procs[0].wait(10)
    at_kill = len(car_lap_ids(tmp_path / "car"))
    wait_until(lambda: len(car_lap_ids(tmp_path / "car")) >= at_kill + 3, 10,
               what="laps driven while the server is down")
    procs[0] = start_car_server_process(port, server_dir, {"tok": 7})
    wait_until(lambda: client.state()["connected"] == ["7"], 20, what="car reconnected")
    done(client, client.send_command(7, "stop_driving"))

    driven = car_lap_ids(tmp_path / "car")
    wait_until(lambda: sorted(lap_ids(client)) == sorted(driven), 15,
               what="every lap the car drove at the server")
    assert len(set(lap_ids(client))) == len(driven)  # each stored once
    car.send_signal(signal.SIGTERM)
    assert car.wait(15) == 0


def test_outbox_survives_a_car_crash_while_the_server_is_down(tmp_path, files, procs):
    port = free_port()
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    procs.append(start_car_server_process(port, server_dir, {"tok": 7}))
    client = PeerClient(f"http://127.0.0.1:{port}")
    config = write_car_config(tmp_path / "config.json", client.url, "tok")
    car_dir = tmp_path / "car"
    procs.append(start_daemon_process(config, car_dir, "--standin-lap-interval", "0.2"))
    wait_until(lambda: client.state()["connected"] == ["7"], 15, what="car connected")
    drive(client, files)
    wait_until(lambda: len(lap_ids(client)) >= 2, 10, what="first laps")

    at_server = set(lap_ids(client))
    procs[0].kill()
    procs[0].wait(10)
    at_kill = len(car_lap_ids(car_dir))
    wait_until(lambda: len(car_lap_ids(car_dir)) >= at_kill + 3, 10, what="laps offline")
    procs[1].kill()  # the car crashes too, with laps waiting in its outbox
    procs[1].wait(10)
    waiting = [e for e in Outbox(car_dir / "outbox.sqlite").all() if e.kind == "lap"]
    assert len(waiting) >= 3
    driven = car_lap_ids(car_dir)
    assert not set(driven) <= at_server

    procs[0] = start_car_server_process(port, server_dir, {"tok": 7})
    procs[1] = start_daemon_process(config, car_dir)
    wait_until(lambda: sorted(lap_ids(client)) == sorted(driven), 20,
               what="the waiting laps after both restarts")
    assert len(set(lap_ids(client))) == len(driven)
    beat = wait_until(lambda: client.state()["heartbeats"], 10, what="heartbeat")[-1]
    assert beat["state"] == "ready" and beat["models"][0]["model_id"] == "12"
    procs[1].send_signal(signal.SIGINT)
    assert procs[1].wait(15) == 0


def test_restart_command_reexecs_and_keeps_settings(tmp_path, procs):
    peer = CarServerPeer(tokens={"tok": 7}).start()
    client = PeerClient(peer.url)
    try:
        config = write_car_config(tmp_path / "config.json", peer.url, "tok")
        car = start_daemon_process(config, tmp_path / "car")
        procs.append(car)
        wait_until(lambda: peer.connects == 1, 15, what="car connected")
        done(client, client.send_command(7, "set_max_speed", {"max_speed_mps": 1.5}))
        restart = client.send_command(7, "restart")
        done(client, restart, timeout_s=20)  # reported by the new process
        assert [r["status"] for r in client.results_for(restart)] == ["acknowledged", "done"]
        assert car.poll() is None and peer.connects == 2  # same process (pid), new connection
        after = time.time()
        beat = wait_until(lambda: [h for h in peer.heartbeats if h["received_at"] > after], 5,
                          what="a heartbeat from the new process")[-1]
        assert beat["max_speed_mps"] == 1.5  # the speed cap survived the restart
        assert not (tmp_path / "car" / "restart.json").exists()
        car.send_signal(signal.SIGTERM)
        assert car.wait(15) == 0
    finally:
        peer.stop()
