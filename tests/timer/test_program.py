"""The timer program against a real drem server (gunicorn, as in production) on
gpiozero's mock pins: activation, clock offset, the outbox across a server restart,
a revoked token, and the command line's exit statuses."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from car_client.cli import main as car_client
from car_client.daemon.outbox import Outbox
from car_client.timer.config import load_timer_config
from car_client.timer.program import ClockOffset, TimerProgram
from car_client.timer.sensors import device_time_ms
from drem.demo.live_server import LiveServer
from drem.demo.processes import wait_until
from tests.e2e.timekeeper_helpers import post, race_setup, state


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("timer-server") / "instance") as live:
        yield live


def activate(server: LiveServer, s: dict, folder, name: str = "finish line") -> tuple:
    """``car-client timer activate`` with a code from the timers API; returns (config path, CLI output)."""
    code = post(server, s["operator"]["token"], f"/api/tracks/{s['track_id']}/timer-codes", {"name": name}).json()
    config = folder / "config.json"
    result = CliRunner().invoke(car_client, ["timer", "activate", "--server", server.url, "--code", code["code"],
                                             "--config", str(config), "--hostname", "timer-t", "--pin", "17",
                                             "--pin", "27", "--bounce-ms", "30"])
    assert result.exit_code == 0, result.output
    return config, result.output


def run_in_thread(program: TimerProgram) -> tuple[threading.Thread, list]:
    status: list = []
    thread = threading.Thread(target=lambda: status.append(program.run(install_signals=False)), daemon=True)
    thread.start()
    return thread, status


def press(program: TimerProgram, sensor: int = 1) -> None:
    pin = program.sensors.pin_of(sensor)
    pin.drive_low()
    pin.drive_high()


def test_clock_offset_keeps_the_sample_with_the_smallest_round_trip():
    offset = ClockOffset(samples=3)
    assert offset.best() == (None, None)
    offset.add(10_000, 100.0, 140.0)      # 40 ms round trip: offset 9 880
    offset.add(10_050, 150.0, 154.0)      # 4 ms: offset 9 898
    offset.add(10_200, 200.0, 260.0)
    assert offset.best() == (9_898, 4)
    for i in range(3):                    # older samples leave the window
        offset.add(20_000, 300.0 + i, 310.0 + i)
    assert offset.best() == (19_693, 10)     # equal round trips: the newest


def test_activation_writes_the_wiring_and_a_0600_config(server, tmp_path):
    s = race_setup(server)
    config_path, output = activate(server, s, tmp_path)
    assert "sensors GPIO17, GPIO27" in output
    config = load_timer_config(config_path)
    assert (config.server, config.track_id, config.name, config.hostname) == \
        (server.url, s["track_id"], "finish line", "timer-t")
    assert [(x.sensor, x.pin, x.pull_up, x.edge, x.bounce_ms) for x in config.sensors] == \
        [(1, 17, True, "falling", 30), (2, 27, True, "falling", 30)]
    assert config_path.stat().st_mode & 0o777 == 0o600


def test_command_line_refusals(server, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(car_client, ["timer", "run", "--config", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "activate this timer first" in missing.output
    bad = runner.invoke(car_client, ["timer", "activate", "--server", server.url, "--code", "ABCD-EFGH",
                                     "--config", str(tmp_path / "c.json")])
    assert bad.exit_code == 1 and "activation code refused by the server: unknown activation code" in bad.output
    assert not (tmp_path / "c.json").exists()
    wiring = runner.invoke(car_client, ["timer", "activate", "--server", server.url, "--code", "ABCD-EFGH",
                                        "--config", str(tmp_path / "c.json"), "--pin", "17", "--pin", "17"])
    assert wiring.exit_code == 1 and "two sensors on the same GPIO pin" in wiring.output


def test_heartbeat_reports_the_clock_offset(server, tmp_path):
    s = race_setup(server)
    config_path, _ = activate(server, s, tmp_path)
    program = TimerProgram(load_timer_config(config_path), tmp_path / "data", pin_factory=MockFactory())
    thread, status = run_in_thread(program)
    try:
        def shown():
            timers = server.api("GET", f"/api/tracks/{s['track_id']}/timers", token=s["operator"]["token"]).json()
            return timers["timers"][0] if timers["timers"][0]["clock_offset_ms"] is not None else None

        timer = wait_until(shown, 20, "a clock offset on the timers API")
        # the server runs on this machine: server time - device clock is wall time - monotonic
        expected = time.time() * 1000 - device_time_ms()
        assert timer["online"] and 0 <= timer["round_trip_ms"] < 1000
        assert abs(timer["clock_offset_ms"] - expected) <= timer["round_trip_ms"] / 2 + 20
    finally:
        program.request_stop()
        thread.join(15)
    assert status == [0]


def test_crossings_wait_in_the_outbox_across_a_server_restart(server, tmp_path):
    s = race_setup(server)
    op = s["operator"]["token"]
    config_path, _ = activate(server, s, tmp_path)
    race_id = post(server, op, "/api/races", {"track_id": s["track_id"], "racer_id": s["racer"]["id"]}).json()["race_id"]
    assert post(server, op, f"/api/races/{race_id}/start").status_code == 200
    program = TimerProgram(load_timer_config(config_path), tmp_path / "data", pin_factory=MockFactory(),
                           ack_timeout_s=3, backoff_cap_s=2)
    thread, status = run_in_thread(program)
    try:
        wait_until(program.connection.connected.is_set, 20, "the timer to connect")
        press(program)
        wait_until(lambda: len(program.outbox) == 0 and len(program.log.read()) == 1, 10, "the first crossing sent")
        server.stop()
        wait_until(lambda: not program.connection.connected.is_set(), 20, "the timer to see the server gone")
        time.sleep(1.2)
        press(program)                    # a lap of at least 1.2 s while the server is down
        time.sleep(1.0)
        press(program, sensor=2)          # the other strip: kept as a duplicate, never lost
        assert len(program.outbox) == 2   # durable, waiting
        assert len(Outbox(tmp_path / "data" / "outbox.sqlite", kinds=("crossing",))) == 2
        server.start()
        wait_until(lambda: len(program.outbox) == 0, 60, "the outbox to drain after the restart")
    finally:
        program.request_stop()
        thread.join(15)
    assert status == [0]
    sent = program.log.read()
    crossings = server.api("GET", f"/api/races/{race_id}/crossings", token=op).json()["crossings"]
    assert [c["crossing_id"] for c in crossings] == [c["crossing_id"] for c in sent]  # each once
    assert [c["status"] for c in crossings] == ["first", "lap", "duplicate"]
    laps = state(server, race_id)["laps"]
    assert [lap["time_ms"] for lap in laps] == [sent[1]["device_time_ms"] - sent[0]["device_time_ms"]]


def test_a_revoked_timer_exits_with_status_3(server, tmp_path):
    s = race_setup(server)
    config_path, _ = activate(server, s, tmp_path)
    config = load_timer_config(config_path)
    program = TimerProgram(config, tmp_path / "data", pin_factory=MockFactory(), backoff_cap_s=1)
    thread, status = run_in_thread(program)
    wait_until(program.connection.connected.is_set, 20, "the timer to connect")
    revoked = post(server, s["operator"]["token"], f"/api/timers/{config.timer_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    thread.join(30)
    assert status == [3]
