"""Fleet end to end with real processes: the server under gunicorn + gevent, real clamd,
real ``python -m car_client run --vehicle standin`` daemons, and the cars page in
headless Chromium. Then the faults: an offline car, a corrupted and a cut-off model
download, a server restart and a network cut while cars drive laps, a revoked token.

The network cut stops the server for ``DREM_FLEET_CUT_S`` seconds (default 20; 60
with ``DREM_FULL_DRILL=1``).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from drem.demo.car_process import CarProcess
from drem.demo.live_server import LiveServer
from drem.demo.processes import wait_until
from tests.e2e.fleet_harness import FleetApi, activation_code, upload_model
from tests.e2e.pages import login
from tests.models_mgr import factories as f

MIB = 1024 * 1024
#: What a car client logs when its connection to the server breaks (car_client/daemon/connection.py).
LOST = " lost; reconnecting in "
CUT_S = float(os.environ.get("DREM_FLEET_CUT_S") or (60 if os.environ.get("DREM_FULL_DRILL") == "1" else 20))


@pytest.fixture
def cars(tmp_path: Path):
    """``make(server, hostname, token=None, **CarProcess kwargs)`` activates a car client
    (code from the API) and returns its :class:`CarProcess` (not started). All are
    stopped at the end; their log tails are printed when the test fails."""
    made: list[CarProcess] = []

    def make(server: LiveServer, hostname: str, token: str | None = None, **kwargs) -> CarProcess:
        car = CarProcess(tmp_path / hostname, hostname, **kwargs)
        car.activate(server.url, activation_code(server, hostname, token))
        made.append(car)
        return car

    yield make
    for car in made:
        car.stop(timeout=5)
        print(car.log_tail(30))


def stored_file(server: LiveServer, model: dict) -> Path:
    """The model's file in the server's local storage (found by its sha256)."""
    for path in (server.storage_root / "models" / str(model["owner_id"])).iterdir():
        if hashlib.sha256(path.read_bytes()).hexdigest() == model["sha256"]:
            return path
    raise AssertionError(f"no stored file for model {model['id']}")


def _online(car: dict) -> bool:
    return car["online"] and car["battery_pct"] is not None and car["software_version"] is not None


# --------------------------------------------------------------------- the happy path


def test_operator_loads_a_model_onto_two_cars_and_watches_it_live(page, live_server: LiveServer, console_errors,
                                                                  cars, tmp_path: Path) -> None:
    operator = live_server.create_user("operator")
    racer = live_server.create_user("racer")
    api = FleetApi(live_server, operator["token"])
    car1 = cars(live_server, "e2e-car-1", operator["token"])
    car2 = cars(live_server, "e2e-car-2", operator["token"])
    model = upload_model(live_server, racer, f.deepracer_tar_gz(tmp_path, "racer-fast.tar.gz",
                                                                pb=os.urandom(2 * MIB)))

    login(page, operator)
    page.goto("/fleet/")
    rows = {c: page.locator(f"#cars-table tr[data-car-id='{c.car_id}']") for c in (car1, car2)}
    for row in rows.values():
        assert "offline" in row.locator(".online").inner_text()
    page.wait_for_function("() => window.io !== undefined")

    # the cars start: the page turns them online live (no reload) with their status
    page.evaluate("window.__sameDocument = true")
    car1.start()
    car2.start()
    for car, row in rows.items():
        row.locator(".online", has_text="online").wait_for(timeout=20_000)
        info = api.wait_car(car.car_id, _online, cars=[car])
        assert info["state"] == "idle" and 0 < info["battery_pct"] <= 100, info
        assert info["software_version"] and info["hostname"] == car.hostname and info["ip"]
        row.locator(".battery", has_text="%").wait_for()
        row.locator(".state", has_text="idle").wait_for()
        row.locator(".ip", has_text=info["software_version"]).wait_for()  # IP and version arrive live too
    assert page.evaluate("window.__sameDocument") is True

    # load the racer's model onto both cars from the page
    page.check(f".car-select[value='{car1.car_id}']")
    page.check(f".car-select[value='{car2.car_id}']")
    page.select_option("#cmd-model", str(model["id"]))
    page.click("#commands button[data-cmd=load_model]")
    page.locator("#cmd-message", has_text="load_model sent to 2 car(s)").wait_for()
    loads = [c for c in api.server.api("GET", "/api/fleet/commands?type=load_model",
                                       token=operator["token"]).json()["commands"]]
    assert sorted(c["car_id"] for c in loads) == sorted([car1.car_id, car2.car_id])
    for cmd in loads:
        done = api.wait_command(cmd["id"], cars=[car1, car2])
        assert done["status"] == "done" and done["progress"] == 1.0, done
        assert done["created_by"] == operator["username"] and done["model"] == "racer-fast.tar.gz"
        page.locator(f"#commands-table tr[data-command-id='{cmd['id']}'] .status", has_text="done").wait_for()
    for car, row in rows.items():
        info = api.wait_car(car.car_id, lambda c: c["loaded_models"] and c["state"] == "ready", cars=[car])
        assert info["loaded_models"] == [{"model_id": str(model["id"]), "sha256": model["sha256"],
                                          "name": "racer-fast.tar.gz"}]
        index = car.models_index()[str(model["id"])]
        on_car = car.data_dir / "models" / index["file"]
        assert hashlib.sha256(on_car.read_bytes()).hexdigest() == model["sha256"] == index["sha256"]
        row.locator(".models", has_text="racer-fast.tar.gz").wait_for()
        row.locator(".state", has_text="ready").wait_for()

    # tail light from the page; each car reports it back in its heartbeat
    page.select_option("#cmd-light", "green")
    page.click("#commands button[data-cmd=set_tail_light]")
    for car, row in rows.items():
        api.wait_car(car.car_id, lambda c: c["tail_light"] == "green", cars=[car])
        row.locator(".light", has_text="green").wait_for()
    lights = live_server.api("GET", "/api/fleet/commands?type=set_tail_light", token=operator["token"]).json()
    for cmd in lights["commands"]:
        assert api.wait_command(cmd["id"])["status"] == "done"
        page.locator(f"#commands-table tr[data-command-id='{cmd['id']}'] .status", has_text="done").wait_for()

    shot = tmp_path / "fleet-cars.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = page.inner_text("#cars-table")
    for car in (car1, car2):
        row_text = rows[car].inner_text()
        assert car.hostname in row_text and "online" in row_text and "ready" in row_text, row_text
        assert "racer-fast.tar.gz" in row_text and "green" in row_text, row_text
    assert "offline" not in table
    commands_text = page.inner_text("#commands-table")
    assert commands_text.count("done") >= 4 and "failed" not in commands_text, commands_text
    assert page.evaluate("window.__sameDocument") is True  # every step arrived live
    assert console_errors == []

    # the upload history lists both loads
    page.goto("/fleet/history")
    history = page.inner_text("main")
    assert history.count("racer-fast.tar.gz") == 2 and history.count("done") == 2, history


# ------------------------------------------------------------------------- faults


def test_offline_car_gets_queued_commands_when_it_starts(live_server: LiveServer, cars) -> None:
    api = FleetApi(live_server)
    car = cars(live_server, "e2e-offline")
    [light] = api.send([car.car_id], "set_tail_light", {"colour": "purple"})
    [speed] = api.send([car.car_id], "set_max_speed", {"max_speed_mps": 1.5})
    assert light["status"] == speed["status"] == "queued"
    [estop] = api.send([car.car_id], "emergency_stop")
    assert estop["status"] == "failed" and estop["reason"] == "car offline"

    car.start()
    for cmd in (light, speed):
        assert api.wait_command(cmd["id"], cars=[car])["status"] == "done"
    info = api.wait_car(car.car_id, lambda c: c["tail_light"] == "purple" and c["max_speed_mps"] == 1.5,
                        cars=[car])
    assert info["online"] is True
    assert api.command(estop["id"])["status"] == "failed"  # never delivered later


def test_corrupted_model_fails_with_checksum_mismatch(live_server: LiveServer, cars, tmp_path: Path) -> None:
    api = FleetApi(live_server)
    racer = live_server.create_user("racer")
    model = upload_model(live_server, racer, f.deepracer_tar_gz(tmp_path, "tampered.tar.gz"))
    path = stored_file(live_server, model)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the file changes on disk after it was scanned clean
    path.write_bytes(bytes(data))

    car = cars(live_server, "e2e-tamper").start()
    api.wait_car(car.car_id, _online, cars=[car])
    [cmd] = api.send([car.car_id], "load_model", {"model_id": model["id"]})
    done = api.wait_command(cmd["id"], cars=[car])
    assert done["status"] == "failed" and done["reason"] == "checksum mismatch", done
    info = api.wait_car(car.car_id, lambda c: c["state"] == "idle", cars=[car])
    assert info["loaded_models"] == [] and car.models_index() == {}
    assert not list((car.data_dir / "models" / ".partial").iterdir())  # the bad file is gone


def test_car_killed_mid_download_reports_it_and_resumes(live_server: LiveServer, cars, tmp_path: Path) -> None:
    api = FleetApi(live_server)
    racer = live_server.create_user("racer")
    model = upload_model(live_server, racer, f.deepracer_tar_gz(tmp_path, "big.tar.gz", pb=os.urandom(32 * MIB)))
    car = cars(live_server, "e2e-cut").start()
    api.wait_car(car.car_id, _online, cars=[car])
    partial = car.data_dir / "models" / ".partial" / f"{model['sha256']}.part"

    [cmd] = api.send([car.car_id], "load_model", {"model_id": model["id"]})
    wait_until(lambda: partial.exists() and partial.stat().st_size > 0, timeout_s=20, interval_s=0.002,
               what="the download to start", on_timeout=car.log_tail)
    car.kill9()  # power lost mid-download
    cut_at = partial.stat().st_size
    assert 0 < cut_at < model["size"], (cut_at, model["size"])

    car.start()
    failed = api.wait_command(cmd["id"], cars=[car])
    assert failed["status"] == "failed" and "restarted" in failed["reason"], failed
    [again] = api.send([car.car_id], "load_model", {"model_id": model["id"]})
    done = api.wait_command(again["id"], timeout=60, cars=[car])
    assert done["status"] == "done", done
    info = api.wait_car(car.car_id, lambda c: c["loaded_models"], cars=[car])
    assert info["loaded_models"][0]["sha256"] == model["sha256"]
    assert f"resuming the download of {model['sha256']}.part at byte" in car.log_text()
    on_car = car.data_dir / "models" / car.models_index()[str(model["id"])]["file"]
    assert on_car.stat().st_size == model["size"]
    assert hashlib.sha256(on_car.read_bytes()).hexdigest() == model["sha256"]


def test_revoked_car_exits_with_status_3(live_server: LiveServer, cars) -> None:
    api = FleetApi(live_server)
    car = cars(live_server, "e2e-revoked").start()
    api.wait_car(car.car_id, _online, cars=[car])
    resp = live_server.api("POST", f"/api/fleet/cars/{car.car_id}/revoke", token=live_server.admin_token)
    assert resp.status_code == 200 and resp.json()["revoked"] is True
    assert car.wait_exit(timeout=30) == 3, car.log_tail()
    assert "re-activate" in car.log_text()
    assert api.car(car.car_id)["online"] is False
    # and it stays refused: starting it again exits 3 at once
    car.start()
    assert car.wait_exit(timeout=30) == 3, car.log_tail()


def test_laps_survive_a_server_restart_and_a_network_cut(live_server_factory, cars, tmp_path: Path) -> None:
    server = live_server_factory()
    api = FleetApi(server)
    racer = server.create_user("racer")
    model = upload_model(server, racer, f.deepracer_tar_gz(tmp_path, "laps.tar.gz"))
    fleet = [cars(server, f"e2e-lap-{n}", lap_interval_s=0.5) for n in (1, 2)]
    for car in fleet:
        car.start()
    ids = [car.car_id for car in fleet]
    for car in fleet:
        api.wait_car(car.car_id, _online, cars=fleet)
    for cmd in api.send(ids, "load_model", {"model_id": model["id"]}):
        assert api.wait_command(cmd["id"], cars=fleet)["status"] == "done"
    for cmd in api.send(ids, "start_driving", {"model_id": model["id"]}):
        assert api.wait_command(cmd["id"], cars=fleet)["status"] == "done"
    wait_until(lambda: all(len(api.laps(c.car_id)) >= 3 for c in fleet), timeout_s=20, what="first laps")

    # 1. a crash and an immediate restart while the cars are connected and driving
    lost = {car.hostname: car.log_text().count(LOST) for car in fleet}
    server.kill9()
    for car in fleet:  # the server comes back only after each car has noticed the crash
        wait_until(lambda car=car: car.log_text().count(LOST) > lost[car.hostname], 20,
                   f"{car.hostname} to notice the crash", on_timeout=car.log_tail)
    server.start()
    for car in fleet:
        api.wait_car(car.car_id, lambda c: c["online"] and c["state"] == "driving", cars=fleet)
    before_cut = {c.car_id: len(c.laps()) for c in fleet}

    # 2. the network is gone for a while: the cars keep driving and keep their laps
    server.kill9()
    time.sleep(CUT_S)
    driven_offline = {c.car_id: len(c.laps()) - before_cut[c.car_id] for c in fleet}
    assert all(n >= CUT_S / 0.5 * 0.5 for n in driven_offline.values()), driven_offline
    assert all(car.running for car in fleet), [car.log_tail() for car in fleet]
    server.start()
    for car in fleet:  # back online by themselves (backoff up to 30 s)
        api.wait_car(car.car_id, lambda c: c["online"], timeout=45, cars=fleet)

    for cmd in api.send(ids, "stop_driving"):
        assert api.wait_command(cmd["id"], timeout=30, cars=fleet)["status"] == "done"
    for car in fleet:
        driven = [lap["lap_id"] for lap in car.laps()]
        wait_until(lambda car=car, driven=driven: len(api.laps(car.car_id)) >= len(driven), timeout_s=30,
                   what=f"{car.hostname}'s laps to arrive", on_timeout=car.log_tail)
        on_server = api.laps(car.car_id)
        assert sorted(lap["lap_id"] for lap in on_server) == sorted(driven), car.hostname  # each exactly once
        by_id = {lap["lap_id"]: lap for lap in car.laps()}
        for lap in on_server:
            assert lap["lap_time_ms"] == by_id[lap["lap_id"]]["lap_time_ms"]
            assert lap["lap_number"] == by_id[lap["lap_id"]]["lap_number"]
        assert len(driven) >= 10 + driven_offline[car.car_id]
        assert "reconnect" in car.log_text() or "connection to" in car.log_text()
