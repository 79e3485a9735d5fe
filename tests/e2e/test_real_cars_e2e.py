"""Real cars end to end (issue 14): two "DeepRacer" cars, each a real ``car_client run
--vehicle deepracer`` process bridging to a device-console stand-in (HTTPS with a
self-signed certificate, login, CSRF, the real package's routes); the server under
gunicorn; the cars page in headless Chromium. Then the faults: the console's session
expires, the car reboots in the middle of an upload, a wrong password, an emergency
stop in the middle of a load.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from drem.demo.car_process import CarProcess
from drem.demo.client import Api
from drem.demo.live_server import LiveServer, ensure_demo_models
from drem.demo.processes import wait_until
from drem.demo.real_cars import DeepRacerDemoCar, DonkeyDemoCar
from drem.demo.report import TIMER_TOLERANCE_MS, compare_with_car_logs, format_summary
from drem.demo.timer_process import DemoTrackTimer
from tests.e2e.fleet_harness import FleetApi, activation_code, upload_model
from tests.e2e.pages import login
from tests.e2e.timekeeper_helpers import open_console, race_setup
from tests.models_mgr import factories as f
from tests.standins.deepracer_console import DeepRacerConsole

pytestmark = pytest.mark.slow

#: every route of aws-deepracer-webserver-pkg the DeepRacer backend may call (METHOD path, no query)
REAL_ROUTES = {"GET /", "POST /login", "PUT /api/uploadModels", "GET /api/is_model_installed", "GET /api/models",
               "GET /api/isModelLoading", "POST /api/deleteModels", "PUT /api/drive_mode",
               "PUT /api/max_nav_throttle", "PUT /api/start_stop", "POST /api/set_led_color",
               "GET /api/get_battery_level"}


def _route(entry: str) -> str:
    """``PUT /api/models/drem-3/model`` -> the route's pattern; the query string dropped."""
    method, path = entry.split(" ", 1)
    path = path.split("?", 1)[0]
    if path.startswith("/api/models/"):
        return f"{method} /api/models/<folder>/<name>"
    return f"{method} {path}"


@pytest.fixture
def deepracers(tmp_path: Path):
    """``make(server, hostname, password="racer-pass", **console kwargs)`` -> (CarProcess, console):
    a console stand-in on its own port and an activated bridge process for it (not started)."""
    made: list[tuple[CarProcess, DeepRacerConsole]] = []

    def make(server: LiveServer, hostname: str, password: str = "racer-pass", token: str | None = None,
             **console_kwargs) -> tuple[CarProcess, DeepRacerConsole]:
        console = DeepRacerConsole(tmp_path / f"{hostname}-console", **console_kwargs).start()
        secret = tmp_path / f"{hostname}.password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        car = CarProcess(tmp_path / hostname, hostname, extra_args=[
            "--vehicle", "deepracer", "--console-url", console.url, "--console-password-file", str(secret)])
        car.activate(server.url, activation_code(server, hostname, token))
        made.append((car, console))
        return car, console

    yield make
    for car, console in made:
        car.stop(timeout=5)
        console.stop()
        print(car.log_tail(30))


def test_operator_loads_lights_caps_starts_and_stops_two_deepracers(page, live_server: LiveServer, console_errors,
                                                                     deepracers, tmp_path: Path) -> None:
    operator = live_server.create_user("operator")
    racer = live_server.create_user("racer")
    api = FleetApi(live_server, operator["token"])
    (car1, con1), (car2, con2) = (deepracers(live_server, h, token=operator["token"], load_delay_s=1.5)
                                  for h in ("dr-e2e-1", "dr-e2e-2"))
    model = upload_model(live_server, racer, f.deepracer_tar_gz(tmp_path, "racer-fast.tar.gz"))

    login(page, operator)
    page.goto("/fleet/")
    page.wait_for_function("() => window.io !== undefined")
    car1.start()
    car2.start()
    rows = {car: page.locator(f"#cars-table tr[data-car-id='{car.car_id}']") for car in (car1, car2)}
    for row in rows.values():
        row.locator(".online", has_text="online").wait_for(timeout=30_000)
        row.locator(".battery", has_text="80%").wait_for(timeout=20_000)  # the console's level 8 of 10
        row.locator(".runs", has_text="runs deepracer").wait_for()

    # load the model onto both cars from the page; progress shows per car
    for car in (car1, car2):
        page.check(f".car-select[value='{car.car_id}']")
    page.select_option("#cmd-model", str(model["id"]))
    page.click("#commands button[data-cmd=load_model]")
    page.locator("#cmd-message", has_text="load_model sent to 2 car(s)").wait_for()
    for row in rows.values():
        row.locator(".load .load-text", has_text="acknowledged").wait_for(timeout=30_000)
    for row in rows.values():
        row.locator(".load .load-text", has_text="racer-fast.tar.gz: done").wait_for(timeout=60_000)
        assert row.locator(".load progress").get_attribute("value") == "100"
        row.locator(".models", has_text="racer-fast.tar.gz").wait_for()
        row.locator(".state", has_text="ready").wait_for()
    folder = f"drem-{model['id']}"
    for console in (con1, con2):
        assert console.uploads == [folder] and console.loaded == f"{folder}/model"
    shot = tmp_path / "real-cars.png"
    page.screenshot(path=str(shot), full_page=True)

    # tail light and max speed from the page reach each car's LED and throttle
    page.select_option("#cmd-light", "red")
    page.click("#commands button[data-cmd=set_tail_light]")
    page.fill("#cmd-speed", "2")
    page.click("#commands button[data-cmd=set_max_speed]")
    for car, console in ((car1, con1), (car2, con2)):
        api.wait_car(car.car_id, lambda c: c["tail_light"] == "red" and c["max_speed_mps"] == 2.0, cars=[car])
        wait_until(lambda console=console: console.led == (255, 0, 0) and console.throttle == 50, 10, what="LED")

    # start and stop
    page.click("#commands button[data-cmd=start_driving]")
    for car, console in ((car1, con1), (car2, con2)):
        api.wait_car(car.car_id, lambda c: c["state"] == "driving", cars=[car])
        assert console.running is True and console.drive_mode == "auto"
    page.click("#commands button[data-cmd=stop_driving]")
    for car, console in ((car1, con1), (car2, con2)):
        api.wait_car(car.car_id, lambda c: c["state"] == "stopped", cars=[car])
        assert console.running is False

    # each console got only the real package's routes, and the load in the real order
    for console in (con1, con2):
        seen = console.api_paths()
        assert {_route(e) for e in seen} <= REAL_ROUTES | {"PUT /api/models/<folder>/<name>"}, seen
        load = [e for e in seen if "Model" in e or "model" in e]
        first = load.index(f"GET /api/is_model_installed?filename={folder}")
        assert load[0] == "PUT /api/uploadModels" and load[first + 1:].count(f"PUT /api/models/{folder}/model") == 1
        assert load[-1] == "GET /api/isModelLoading"
        assert seen[:2] == ["GET /", "POST /login"]
        drive = [e for e in seen if e.startswith(("PUT /api/drive_mode", "PUT /api/start_stop"))]
        assert drive == ["PUT /api/drive_mode", "PUT /api/start_stop", "PUT /api/start_stop"]
    assert console_errors == []


def test_session_expiry_reboot_mid_upload_and_emergency_stop_mid_load(live_server: LiveServer, deepracers,
                                                                      tmp_path: Path) -> None:
    api = FleetApi(live_server)
    racer = live_server.create_user("racer")
    model = upload_model(live_server, racer, f.deepracer_tar_gz(tmp_path, "racer-b.tar.gz"))
    car, console = deepracers(live_server, "dr-faults", load_delay_s=20)
    car.start()
    api.wait_car(car.car_id, lambda c: c["online"] and c["battery_pct"] == 80, cars=[car])
    # the bridge gave the car its saved tail light (white) at start: the LED below is the command's
    wait_until(lambda: console.led == (255, 255, 255), 10, what="the saved tail light applied at start")

    # the console's hour is over: the bridge logs in again and the command still works
    logins = console.api_paths().count("POST /login")
    console.expire_session()
    [light] = api.send([car.car_id], "set_tail_light", {"colour": "blue"})
    assert api.wait_command(light["id"], cars=[car])["status"] == "done"
    assert console.led == (0, 0, 255) and console.api_paths().count("POST /login") == logins + 1

    # e-stop while the car is loading the model: the load ends at once, the car is stopped
    [load] = api.send([car.car_id], "load_model", {"model_id": model["id"]})
    wait_until(lambda: console.loading_status == "loading", 30, what="the car loading the model")
    [estop] = api.send([car.car_id], "emergency_stop")
    assert api.wait_command(estop["id"], cars=[car])["status"] == "done"
    failed = api.wait_command(load["id"], cars=[car])
    assert failed["status"] == "failed" and "cancelled by emergency stop" in failed["reason"], failed
    assert console.api_paths()[-1] == "PUT /api/start_stop" or "PUT /api/start_stop" in console.api_paths()[-3:]
    assert console.running is False

    # the car reboots in the middle of the next upload: the bridge waits for it and finishes
    console.load_delay_s = 0.5
    console.stop()
    [again] = api.send([car.car_id], "load_model", {"model_id": model["id"]})
    wait_until(lambda: "car unreachable, retrying" in car.log_text(), 30, what="the bridge retrying")
    console.reboot()
    done = api.wait_command(again["id"], timeout=60, cars=[car])
    assert done["status"] == "done", done
    assert console.loaded == f"drem-{model['id']}/model"


def test_wrong_console_password_exits_with_a_clear_error(live_server: LiveServer, deepracers) -> None:
    car, console = deepracers(live_server, "dr-wrong", password="not-the-password")
    car.start()
    assert car.wait_exit(30) == 4
    assert "the DeepRacer console refused the password" in car.log_text()
    assert console.token is None and console.api_paths() == ["GET /", "POST /login"]


def test_timekeeper_console_shows_the_race_cars_load_before_start(page, live_server: LiveServer, console_errors,
                                                                   deepracers, tmp_path: Path) -> None:
    s = race_setup(live_server)
    car, console = deepracers(live_server, "dr-tk", token=s["operator"]["token"], load_delay_s=3)
    car.start()
    FleetApi(live_server).wait_car(car.car_id, lambda c: c["online"] and c["model_formats"] == ["deepracer"],
                                   cars=[car])
    model = upload_model(live_server, s["racer"], f.deepracer_tar_gz(tmp_path, "racer-tk.tar.gz"))

    login(page, s["operator"])
    open_console(page, s["track_id"])
    page.select_option("#tk-racer", str(s["racer"]["id"]))
    page.select_option("#tk-car", str(car.car_id))
    page.select_option("#tk-model", str(model["id"]))
    page.click("#tk-setup-btn")
    page.locator("#tk-status", has_text="ready").wait_for()
    page.locator("#tk-car-load-car", has_text="dr-tk").wait_for(timeout=15_000)
    page.locator("#tk-car-load-text", has_text="racer-tk.tar.gz: acknowledged").wait_for(timeout=30_000)
    page.locator("#tk-car-load-text", has_text="racer-tk.tar.gz: loaded").wait_for(timeout=60_000)
    assert page.locator("#tk-car-load-bar").evaluate("b => b.value") == 100
    assert console.loaded == f"drem-{model['id']}/model"
    page.screenshot(path=str(tmp_path / "timekeeper-car-load.png"), full_page=True)
    page.click("button[data-act=start]")
    page.locator("#tk-status", has_text="running").wait_for()
    assert page.locator("#tk-car-load").is_hidden()
    wait_until(lambda: console.running, 20, what="the car driving")
    assert console_errors == []


def test_demo_deepracer_races_on_the_track_timed_by_the_lap_timer(live_server: LiveServer, tmp_path: Path) -> None:
    """``drem demo --real-cars``'s "DeepRacer" in a race: the console stand-in drives the
    simulator with the loaded model, the demo's lap timer (a real timer program on mock
    pins) is pulsed at its simulated start-line crossings, and every lap of the race comes
    from the timer and equals the stand-in's simulator lap log; the demo's final check
    (:func:`drem.demo.report.compare_with_car_logs`) agrees."""
    s = race_setup(live_server)
    operator = Api(live_server.url, s["operator"]["token"])
    steady = tmp_path / "steady.tar.gz"
    shutil.copyfile(ensure_demo_models() / "steady.tar.gz", steady)
    model = upload_model(live_server, s["racer"], steady, timeout=90)
    car = DeepRacerDemoCar(tmp_path / "demo-dr", "demo-dr", "reinvent_base", speedup=8.0)
    timer = DemoTrackTimer(Api(live_server.url, live_server.admin_token), live_server.url, s["track_id"],
                           tmp_path / "timer", laps=3)
    try:
        car.start(live_server.url, activation_code(live_server, "demo-dr"))
        api = FleetApi(live_server)
        api.wait_car(car.car_id, lambda c: c["online"] and c["model_formats"] == ["deepracer"], timeout=60)
        timer.start()

        # the operator sets the race up: the model is loaded through the console's routes
        rid = operator.post("/api/races", {"track_id": s["track_id"], "racer_id": s["racer"]["id"],
                                           "car_id": car.car_id, "model_id": model["id"]})["race_id"]
        api.wait_car(car.car_id, lambda c: any(m["model_id"] == str(model["id"]) for m in c["loaded_models"]),
                     timeout=90, what="the model loaded on the DeepRacer")
        assert car.lap_log.exists() is False  # not driven yet

        # the car on the line: the timer's first crossing starts the race and the car drives
        timer.start_race(rid, car.lap_log)
        race = wait_until(lambda: (lambda r: r if len(r["laps"]) >= 3 else None)(operator.get(f"/api/races/{rid}")),
                          120, what="3 laps timed by the lap timer")
        timer.end_race()
        operator.post(f"/api/races/{rid}/end")
        operator.post(f"/api/races/{rid}/submit")
        race = operator.get(f"/api/races/{rid}")
        assert [lap["source"] for lap in race["laps"]] == ["timer"] * 3, race["laps"]
        standin = [json.loads(line)["lap_time_ms"] for line in car.lap_log.read_text().splitlines()]
        assert len(standin) >= 3 and [lap["lap_time_ms"] for lap in timer.timed[rid]] == standin[:3]
        late = timer.late_ms()[rid]  # how late the mock pin played each pulse (a busy machine)
        for i, (lap, driven) in enumerate(zip(race["laps"], standin[:3], strict=True)):
            assert abs(lap["time_ms"] - driven) <= TIMER_TOLERANCE_MS + late[i] + late[i + 1], (race["laps"], late)
        assert "PUT /api/start_stop" in (tmp_path / "demo-dr" / "console.log").read_text()

        # the demo's final check covers the DeepRacer's race
        event_id = s["event"]["id"]
        races = operator.get(f"/api/events/{event_id}/races")["races"]
        boards = {"Track 1": operator.get(f"/api/events/{event_id}/leaderboard",
                                          params={"track": s["track_id"]})["entries"]}
        check = compare_with_car_logs(operator, [], races, boards, s["event"], timer.timed, [rid], timer.late_ms())
        assert check["leaderboard_matches_car_logs"] is True and check["mismatches"] == {}, check
        assert check["timer_laps"] == 3 and check["lost_laps"] == 0 and check["doubled_laps"] == 0
        [entry] = check["deepracer"]
        assert entry["race_id"] == rid and entry["sources"] == ["timer"] and entry["standin_laps_ms"] == standin[:3]
    finally:
        timer.stop()
        car.stop()


def test_demo_donkey_car_drives_the_simulator_through_its_pwm(live_server: LiveServer, tmp_path: Path) -> None:
    """``drem demo --real-cars``'s Donkey Car: camera and PCA9685 are the simulator."""
    racer = live_server.create_user("racer")
    steady = tmp_path / "steady.tflite"
    shutil.copyfile(ensure_demo_models() / "steady.tflite", steady)
    model = upload_model(live_server, racer, steady, timeout=90)
    car = DonkeyDemoCar(tmp_path / "demo-donkey", "demo-donkey", "reinvent_base")
    try:
        car.start(live_server.url, activation_code(live_server, "demo-donkey"))
        api = FleetApi(live_server)
        api.wait_car(car.car_id, lambda c: c["online"] and c["model_formats"] == ["keras", "tflite", "savedmodel"],
                     timeout=60)
        [load] = api.send([car.car_id], "load_model", {"model_id": model["id"]})
        assert api.wait_command(load["id"], timeout=60)["status"] == "done"
        [start] = api.send([car.car_id], "start_driving", {"model_id": model["id"]})
        assert api.wait_command(start["id"], timeout=60)["status"] == "done"
        info = api.wait_car(car.car_id, lambda c: c["state"] == "driving" and (c["fps"] or 0) > 5, timeout=30)
        assert info["battery_pct"] is None  # a Donkey Car has no gauge
        wait_until(lambda: "simulated lap: " in (tmp_path / "demo-donkey" / "car.log").read_text(), 120,
                   what="a simulated lap driven through the PWM outputs")
        [stop] = api.send([car.car_id], "stop_driving")
        assert api.wait_command(stop["id"])["status"] == "done"
    finally:
        car.stop()


def test_demo_check_flags_a_deepracer_race_whose_laps_are_not_all_from_the_timer() -> None:
    """The demo's final check (no processes): a DeepRacer race with a lap from anywhere but
    the timer, a lap time off the stand-in's log, or a race missing from the results fails."""
    event = {"race_config": {"resets_allowed_per_lap": 3}}
    replayed = [{"lap_time_ms": 9137, "resets": 0}, {"lap_time_ms": 8800, "resets": 0}]
    board = {"T": [{"username": "ada", "summary": {"best_lap_ms": 8800}}]}

    def race(*laps: tuple[str, int]) -> dict:
        return {"id": 7, "status": "submitted", "racer": "ada",
                "laps": [{"source": src, "time_ms": ms, "invalidated": False, "resets": 0} for src, ms in laps]}

    good = compare_with_car_logs(None, [], [race(("timer", 9138), ("timer", 8800))], board, event, {7: replayed}, [7])
    assert good["leaderboard_matches_car_logs"] is True and good["mismatches"] == {}
    assert good["deepracer"] == [{"race_id": 7, "racer": "ada", "laps_ms": [9138, 8800], "sources": ["timer"],
                                  "standin_laps_ms": [9137, 8800]}]

    by_hand = compare_with_car_logs(None, [], [race(("timer", 9137), ("operator", 8800))], board, event,
                                    {7: replayed}, [7])
    assert by_hand["leaderboard_matches_car_logs"] is False
    assert "race 7 (DeepRacer laps not all from the timer: ['operator', 'timer'])" in by_hand["mismatches"]

    off = compare_with_car_logs(None, [], [race(("timer", 9137), ("timer", 8900))], board, event, {7: replayed}, [7])
    assert off["mismatches"]["race 7 (lap timer)"] == {"car_logs": [9137, 8800], "leaderboard": [9137, 8900]}
    # a pulse the mock pin played 3 ms late moves the laps either side of it by that much, no more
    late = {7: [0.0, 3.0, 0.0]}
    jitter = [race(("timer", 9140), ("timer", 8797))]
    assert compare_with_car_logs(None, [], jitter, board, event, {7: replayed}, [7], late)["mismatches"] == {}
    too_far = compare_with_car_logs(None, [], [race(("timer", 9143), ("timer", 8800))], board, event,
                                    {7: replayed}, [7], late)
    assert "race 7 (lap timer)" in too_far["mismatches"]

    missing = compare_with_car_logs(None, [], [], board, event, {7: replayed}, [7])
    assert missing["mismatches"]["race 7 (DeepRacer)"] == {"car_logs": [9137, 8800], "leaderboard": None}
    assert "DeepRacer race 7 (ada): laps 9.138, 8.800 s from timer" in format_summary(
        {"event_id": 1, "url": "u", "leaderboards": {}, "races": 1, "laps": 2, "resets": 0, "seconds": 1.0,
         "lost_laps": 0} | good)
