"""Timekeeper end to end (2/2): a real car-client process driving a simulated car, and faults.

3. A simulated car drives and its laps arrive in the console on their own, also across a
   server crash while the car keeps driving (its outbox delivers each lap once).
4. Faults against the live server: a browser offline for ``DREM_TK_OFFLINE_S`` seconds
   (default 30; 5 with ``DREM_QUICK=1``) while laps keep arriving; two operators pressing
   "lap" at once; laps for a race that is not running or from a car not in the race;
   negative and absurd timer crossings; the timer debounce.

Needs the trained demo model (``tests.e2e.server.ensure_demo_models`` builds it once).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from drem.demo.car_process import CarProcess
from drem.demo.live_server import LiveServer, ensure_demo_models
from drem.demo.processes import wait_until
from tests.e2e.fleet_harness import FleetApi, activation_code, upload_model
from tests.e2e.timekeeper_helpers import (
    LAP_GAP_S,
    OFFLINE_S,
    check_clock,
    live,
    login,
    network_errors_only,
    open_console,
    post,
    press,
    race_setup,
    state,
    wait_connected,
    wait_console_laps,
    wait_status,
)

# ------------------------------------------------------- 3. a simulated car drives


class SimCar(CarProcess):
    """A car-client daemon with a simulated car (``--vehicle sim``) on ``reinvent_base``."""

    def __init__(self, folder: Path, hostname: str, speedup: float = 10.0):
        super().__init__(folder, hostname)
        self.speedup = speedup

    def command(self) -> list[str]:
        return [sys.executable, "-m", "car_client", "run", "--config", str(self.config_path), "--vehicle", "sim",
                "--track", "reinvent_base", "--speedup", str(self.speedup), "--seed", "7",
                "--data-dir", str(self.data_dir), "--ack-timeout", "5"]

    def outbox_pending(self) -> int:
        """Laps still waiting in the car's durable outbox (plus any it gave up on)."""
        import sqlite3

        path = self.data_dir / "outbox.sqlite"
        if not path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
            waiting = conn.execute("SELECT count(*) FROM outbox WHERE kind = 'lap'").fetchone()[0]
            dropped = conn.execute("SELECT count(*) FROM rejected WHERE kind = 'lap'").fetchone()[0]
        return waiting + dropped


def driving_model(folder: Path) -> Path:
    """A trained demo model that completes laps (built with ``demo_models`` when missing)."""
    path = ensure_demo_models() / "steady.tflite"
    copy = folder / path.name
    shutil.copyfile(path, copy)
    return copy


@pytest.mark.slow
def test_simulated_car_laps_arrive_on_their_own_across_a_crash(page, live_server: LiveServer, console_errors,
                                                               tmp_path: Path) -> None:
    s = race_setup(live_server)
    fleet = FleetApi(live_server, s["operator"]["token"])
    model = upload_model(live_server, s["racer"], driving_model(tmp_path), timeout=90)
    car = SimCar(tmp_path / "car", f"tk-sim-{uuid.uuid4().hex[:4]}")
    car.activate(live_server.url, activation_code(live_server, car.hostname))
    try:
        car.start()
        fleet.wait_car(car.car_id, lambda c: c["online"] and c["software_version"], timeout=60, cars=[car])

        # the operator sets up the race with car and model in the console
        login(page, s["operator"])
        open_console(page, s["track_id"])
        page.locator(f"#tk-racer option[value='{s['racer']['id']}']").wait_for(state="attached")
        page.select_option("#tk-racer", str(s["racer"]["id"]))
        page.select_option("#tk-car", str(car.car_id))
        assert page.input_value("#tk-model") == str(model["id"])  # the racer's available model
        page.click("#tk-setup-btn")
        wait_status(page, "ready")
        rid = live(live_server, s["track_id"])["race_id"]
        colour = live_server.api("GET", f"/api/events/{s['event']['id']}", token=live_server.admin_token).json()
        colour = next(r["colour"] for r in colour["racers"] if r["user_id"] == s["racer"]["id"])
        fleet.wait_car(car.car_id, lambda c: c["loaded_models"] and c["tail_light"] == colour, timeout=60,
                       what="the model on the car and the racer's colour", cars=[car])

        press(page, "s")
        wait_status(page, "running")
        fleet.wait_car(car.car_id, lambda c: c["state"] == "driving", timeout=30, cars=[car])
        page.evaluate("window.__same_document = true")
        # laps appear in the console on their own
        page.locator("#tk-laps tbody tr td:nth-child(4)", has_text="car").nth(1).wait_for(timeout=60_000)

        # the server crashes while the car keeps driving; its outbox keeps the laps
        driven_before = len(car.laps())
        live_server.kill9()
        wait_until(lambda: len(car.laps()) >= driven_before + 2, 60, what="laps driven during the outage",
                   on_timeout=car.log_tail)
        live_server.start()
        driven_offline = len(car.laps()) - driven_before
        wait_connected(page, timeout_ms=30_000)
        assert page.evaluate("window.__same_document") is True
        # every lap driven so far arrives, once
        started = state(live_server, rid)
        race_started = started["server_time"] - started["elapsed_ms"] / 1000

        def delivered() -> bool:
            ids = {f"car:{lap['lap_id']}" for lap in car.laps() if lap["finished_at"] >= race_started}
            return ids <= source_ids(live_server, s, rid)

        wait_until(delivered, 60, interval_s=0.2, what="the outbox to deliver", on_timeout=car.log_tail)
        wait_console_laps(page, live_server, rid)

        # end right after a lap arrives, so no lap is in flight
        count = len(state(live_server, rid)["laps"])
        wait_until(lambda: len(state(live_server, rid)["laps"]) > count, 30, interval_s=0.05, what="one more lap")
        press(page, "x")
        wait_status(page, "ended")
        fleet.wait_car(car.car_id, lambda c: c["state"] != "driving", timeout=30, cars=[car])
        check_clock(page, live_server, rid)
        wait_console_laps(page, live_server, rid)
        press(page, "Enter")
        page.locator("#tk-setup").wait_for()
        final = state(live_server, rid)
        assert final["status"] == "submitted"
        race_ended = race_started + final["elapsed_ms"] / 1000
        wait_until(lambda: not car.outbox_pending(), 30, what="the car's outbox to drain", on_timeout=car.log_tail)

        driven = [lap for lap in car.laps() if race_started <= lap["finished_at"] <= race_ended]
        stored = [lap for lap in races_laps(live_server, s, rid)]
        by_source = {}
        for lap in stored:
            by_source.setdefault(lap["source_id"], []).append(lap)
        assert all(len(v) == 1 for v in by_source.values())  # the unique constraint holds
        assert {f"car:{lap['lap_id']}" for lap in driven} == set(by_source), (
            [lap["lap_id"] for lap in driven], sorted(by_source))
        for lap in driven:
            got = by_source[f"car:{lap['lap_id']}"][0]
            assert (got["time_ms"], got["resets"], got["source"]) == (lap["lap_time_ms"], lap["resets"], "car")
        assert [lap["lap_number"] for lap in stored] == list(range(1, len(stored) + 1))
        assert driven_offline >= 2 and len(stored) >= driven_offline + 3
        assert network_errors_only(console_errors) == []
    finally:
        car.stop(timeout=10)
        if not live_server.running:
            live_server.start()


def races_laps(server: LiveServer, s: dict, race_id: int) -> list[dict]:
    """The race's stored laps with their source ids (race admin API)."""
    resp = server.api("GET", f"/api/events/{s['event']['id']}/races", token=s["operator"]["token"], timeout=10)
    resp.raise_for_status()
    return next(r for r in resp.json()["races"] if r["id"] == race_id)["laps"]


def source_ids(server: LiveServer, s: dict, race_id: int) -> set[str]:
    return {lap["source_id"] for lap in races_laps(server, s, race_id)}


# ------------------------------------------------------- 4. faults


def timer_token(server: LiveServer, token: str, track_id: int) -> dict:
    resp = post(server, token, f"/api/tracks/{track_id}/timers", {"name": f"finish {uuid.uuid4().hex[:4]}"})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def crossing(server: LiveServer, headers: dict, crossing_id: str, device_ms: Any) -> requests.Response:
    return requests.post(server.url + "/api/timer/crossings", headers=headers,
                         json={"crossing_id": crossing_id, "device_time_ms": device_ms}, timeout=30)


def test_browser_offline_while_consoles_and_a_timer_capture_laps(page, live_server: LiveServer, console_errors) -> None:
    s = race_setup(live_server)
    op = s["operator"]["token"]
    timer = timer_token(live_server, op, s["track_id"])
    login(page, s["operator"])
    open_console(page, s["track_id"])
    rid = post(live_server, op, "/api/races", {"track_id": s["track_id"], "racer_id": s["racer"]["id"]}).json()[
        "race_id"]
    wait_status(page, "ready")
    press(page, "s")
    wait_status(page, "running")
    page.evaluate("window.__same_document = true")

    page.context.set_offline(True)
    gone = time.monotonic()
    page.locator("#tk-connection", has_text="reconnecting").wait_for(timeout=max(OFFLINE_S, 10) * 1000)
    # laps keep arriving from a lap timer at the line and from two other consoles (the
    # operator on a second device and an admin) pressing "lap" at the same moment
    admin = live_server.admin_token
    rounds = [
        lambda n: [(op, f"op-{n}"), (admin, f"admin-{n}")],                       # one crossing, two presses
        lambda n: [(op, f"same-{n}"), (admin, f"same-{n}")],                      # one press sent twice
        lambda n: [(op, f"a-{n}"), (admin, f"b-{n}"), (op, f"a-{n}"), (admin, f"c-{n}")],
    ]
    device_ms, sent = 1_000_000, 0
    assert crossing(live_server, timer, "t0", device_ms).json()["reason"].startswith("first crossing")
    while time.monotonic() - gone < OFFLINE_S or sent < 2 * len(rounds):
        time.sleep(LAP_GAP_S)
        if sent % 2 == 0:
            press_together(live_server, rid, rounds[(sent // 2) % len(rounds)](sent), number=sent + 1)
        else:
            device_ms += 4000 + sent  # device clock: beyond the 2 s debounce
            assert crossing(live_server, timer, f"t{sent}", device_ms).json()["stored"] is True
        sent += 1
    post(live_server, op, f"/api/races/{rid}/resets", {"delta": 1})
    press(page, " ")  # pressed while offline: refused on the spot, never sent later
    page.locator("#tk-message", has_text="not sent").wait_for()
    page.context.set_offline(False)

    wait_connected(page, timeout_ms=30_000)
    assert page.evaluate("window.__same_document") is True
    shown = wait_console_laps(page, live_server, rid)
    assert len(shown) == sent and {lap[3] for lap in shown} == {"operator", "timer"}
    assert page.inner_text("#tk-resets") == "1"
    check_clock(page, live_server, rid)
    assert len(state(live_server, rid)["laps"]) == sent  # the offline press was not stored
    press(page, "x")
    wait_status(page, "ended")
    press(page, "Enter")
    page.locator("#tk-setup").wait_for()
    final = state(live_server, rid)
    assert final["status"] == "submitted"
    assert [lap["lap_number"] for lap in final["laps"]] == list(range(1, sent + 1))
    assert all(lap["time_ms"] >= 1000 for lap in final["laps"]), final["laps"]
    assert "Traceback" not in live_server.log_text()
    assert network_errors_only(console_errors) == []


def at_once(calls: list) -> list:
    """Run the callables in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def press_together(server: LiveServer, race_id: int, presses: list[tuple[str, str]], number: int) -> None:
    """Several consoles press "lap" at the same moment (``(token, source_id)`` each, sent in
    threads released together): exactly one lap, number ``number``, is stored."""
    answers = at_once([lambda t=t, sid=sid: post(server, t, f"/api/races/{race_id}/laps", {"source_id": sid})
                       for t, sid in presses])
    assert all(isinstance(a, requests.Response) for a in answers), answers
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * (len(presses) - 1) + [201], [(a.status_code, a.text) for a in answers]
    laps = {(a.json()["lap"]["id"], a.json()["lap"]["lap_number"]) for a in answers}
    assert len(laps) == 1 and laps.pop()[1] == number, [a.json() for a in answers]
    assert sum(a.json()["created"] for a in answers) == 1


def car_socket(server: LiveServer, hostname: str):
    """A car connected to ``/car`` with python-socketio (activated through the API)."""
    import socketio

    code = activation_code(server, hostname)
    resp = requests.post(server.url + "/api/car/activate", timeout=30,
                         json={"code": code, "hostname": hostname, "software_version": "e2e"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    sio = socketio.Client(reconnection=False)
    sio.connect(server.url, namespaces=["/car"], auth={"token": body["token"]}, transports=["websocket"],
                wait_timeout=20)
    return body["car_id"], sio


def car_lap(sio, ms: Any, lap_id: str | None = None, resets: int = 0) -> dict:
    return sio.call("lap", {"lap_id": lap_id or uuid.uuid4().hex, "model_id": "1", "lap_time_ms": ms,
                            "resets": resets, "lap_number": 1, "finished_at": time.time()},
                    namespace="/car", timeout=20)


def test_laps_that_must_not_count(live_server: LiveServer) -> None:
    """A lap for a race that is not running, a lap from a car not in the race, negative and
    absurd lap times, a timer crossing within the debounce: each answered, none stored."""
    s = race_setup(live_server)
    op = s["operator"]["token"]
    in_race, car_a = car_socket(live_server, f"tk-in-{uuid.uuid4().hex[:4]}")
    other, car_b = car_socket(live_server, f"tk-out-{uuid.uuid4().hex[:4]}")
    try:
        resp = post(live_server, op, "/api/races", {"track_id": s["track_id"], "racer_id": s["racer"]["id"],
                                                     "car_id": in_race})
        rid = resp.json()["race_id"]
        base = f"/api/races/{rid}"

        # not running yet: nothing counts
        refused = post(live_server, op, f"{base}/laps", {"source_id": "early"})
        assert refused.status_code == 409 and "ready" in refused.json()["error"]
        assert car_lap(car_a, 9000)["stored"] is False

        post(live_server, op, f"{base}/start")
        # a car that is not in the race
        answer = car_lap(car_b, 9000)
        assert answer["ok"] is True and answer["stored"] is False, answer
        # the car in the race: stored once, even when sent twice at once
        lap_id = uuid.uuid4().hex
        answers = at_once([lambda: car_lap(car_a, 9876, lap_id, 1), lambda: car_lap(car_a, 9876, lap_id, 1)])
        assert all(a["ok"] for a in answers) and sorted(bool(a.get("duplicate")) for a in answers) == [
            False, True], answers
        # absurd and negative car lap times
        assert car_lap(car_a, 3)["stored"] is False
        assert car_lap(car_a, 60 * 60_000)["ok"] is False
        assert car_lap(car_a, -5000) == {"ok": False, "retry": False, "error": car_lap(car_a, -1)["error"]}
        assert car_lap(car_a, "9000")["ok"] is False

        # the timer protocol: the operator registers a lap timer mid-race; from then on the
        # timer times the track and a car's lap stays in its lap log only
        timer = timer_token(live_server, op, s["track_id"])
        timed = car_lap(car_a, 9100)
        assert timed["ok"] is True and timed["stored"] is False, timed
        assert timed["reason"] == "this track is timed by its lap timer"
        # first crossing starts the lap, the debounce, bad clocks
        assert crossing(live_server, timer, "c1", 100_000).json()["reason"].startswith("first crossing")
        bounce = crossing(live_server, timer, "c2", 101_999)
        assert bounce.status_code == 200 and "debounce" in bounce.json()["reason"]
        for bad in (-1, -100_000, "100", 100.5, True, None):
            resp = crossing(live_server, timer, f"bad-{bad}", bad)
            assert resp.status_code == 400 and "device_time_ms" in resp.json()["error"], (bad, resp.text)
        backwards = crossing(live_server, timer, "c3", 50_000)  # the device clock went back
        assert backwards.status_code == 400 and "not plausible" in backwards.json()["reason"]
        absurd = crossing(live_server, timer, "c4", 100_000 + 3 * 60_000 + 11 * 60_000)
        assert absurd.status_code == 400 and "not plausible" in absurd.json()["reason"]
        good = crossing(live_server, timer, "c5", 112_345)
        answer = good.json()
        assert isinstance(answer.pop("crossing"), int), answer  # every crossing is stored, with its id
        assert answer == {"ok": True, "stored": True, "lap_number": 2, "status": "lap", "reason": "lap 2: 12345 ms"}
        assert crossing(live_server, timer, "c5", 112_345).json()["duplicate"] is True
        assert crossing(live_server, {"Authorization": "Bearer timer_forged"}, "c6", 120_000).status_code == 403

        # paused and ended races take no lap from anyone
        post(live_server, op, f"{base}/pause")
        assert post(live_server, op, f"{base}/laps", {"source_id": "paused"}).status_code == 409
        assert car_lap(car_a, 9000)["stored"] is False
        assert crossing(live_server, timer, "c7", 130_000).json()["stored"] is False
        post(live_server, op, f"{base}/end")
        assert post(live_server, op, f"{base}/laps", {"source_id": "ended"}).status_code == 409
        assert car_lap(car_a, 9000)["stored"] is False

        final = state(live_server, rid)
        assert [(lap["time_ms"], lap["resets"], lap["source"]) for lap in final["laps"]] == [
            (9876, 1, "car"), (12_345, 0, "timer")]
        lap_rows = live_server.api("GET", f"/api/events/{s['event']['id']}/races", token=op).json()["races"][0]
        sources = [lap["source_id"] for lap in lap_rows["laps"]]
        assert sources[0] == f"car:{lap_id}" and re.fullmatch(r"timer:\d+:c5", sources[1]), sources
    finally:
        car_a.disconnect()
        car_b.disconnect()
