"""Timekeeper faults not covered elsewhere: the state's version for late answers, the
timer debounce at its edge, a device clock that goes back, bad lap ids, paused races."""

from __future__ import annotations

from unittest.mock import ANY

import pytest

from tests.timekeeper.test_car_laps import car, lap  # noqa: F401 - fixture reuse
from tests.timekeeper.test_race_flow import new_race, setup, shift  # noqa: F401 - fixture reuse


def test_every_change_gives_a_newer_version(app, client, setup):  # noqa: F811
    """Consoles drop a state older than the one they show (an answer that arrived late):
    each change of the race must answer a higher version."""
    s, h = setup, setup["op_h"]
    race = new_race(client, s)
    rid, seen = race["race_id"], [race["version"]]
    client.post(f"/api/races/{rid}/start", headers=h)
    seen.append(client.get(f"/api/races/{rid}", headers=h).get_json()["version"])
    for delta in (1, 1, -1):
        seen.append(client.post(f"/api/races/{rid}/resets", json={"delta": delta}, headers=h).get_json()["version"])
    shift(app, rid, 3000)
    client.post(f"/api/races/{rid}/laps", json={"source_id": "l1"}, headers=h)
    seen.append(client.get(f"/api/races/{rid}", headers=h).get_json()["version"])
    for action in ("undo", "pause", "resume", "end"):
        seen.append(client.post(f"/api/races/{rid}/{action}", headers=h).get_json()["version"])
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
    # a read changes nothing: same version, later server_time
    a = client.get(f"/api/races/{rid}", headers=h).get_json()
    b = client.get(f"/api/races/{rid}", headers=h).get_json()
    assert a["version"] == b["version"] == seen[-1] and b["server_time"] >= a["server_time"]


@pytest.mark.parametrize("source_id", ["", "x" * 65])
def test_capture_needs_a_lap_id(app, client, setup, source_id):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    shift(app, rid, 3000)
    resp = client.post(f"/api/races/{rid}/laps", json={"source_id": source_id}, headers=h)
    assert resp.status_code == 400 and "lap id" in resp.get_json()["error"]
    assert client.get(f"/api/races/{rid}", headers=h).get_json()["laps"] == []


def test_timer_debounce_edge_and_clock_going_back(app, client, setup):  # noqa: F811
    s, h = setup, setup["op_h"]
    token = client.post(f"/api/tracks/{s['track_id']}/timers", json={"name": "line"}, headers=h).get_json()["token"]
    th = {"Authorization": f"Bearer {token}"}

    def cross(cid: str, ms):
        return client.post("/api/timer/crossings", json={"crossing_id": cid, "device_time_ms": ms}, headers=th)

    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    cross("c0", 10_000)
    assert "debounce" in cross("c1", 11_999).get_json()["reason"]       # 1999 ms: the same crossing
    edge = cross("c2", 12_000)                                            # 2000 ms: a lap
    assert edge.get_json() == {"ok": True, "stored": True, "lap_number": 1, "status": "lap",
                               "reason": "lap 1: 2000 ms", "crossing": ANY}
    back = cross("c3", 11_000)                                            # the device clock went back
    assert back.status_code == 400 and "not plausible" in back.get_json()["reason"]
    assert cross("c4", 14_500).get_json()["lap_number"] == 2              # measured from the last good one
    client.post(f"/api/races/{rid}/pause", headers=h)
    paused = cross("c5", 20_000)
    assert paused.get_json()["stored"] is False
    laps = client.get(f"/api/races/{rid}", headers=h).get_json()["laps"]
    assert [(x["time_ms"], x["source"]) for x in laps] == [(2000, "timer"), (2500, "timer")]


def test_paused_race_takes_no_car_lap_and_resume_does(app, client, setup, car):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s, car_id=car["id"])["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    client.post(f"/api/races/{rid}/pause", headers=h)
    answer = lap(car["sio"], 9000)
    assert answer["ok"] is True and answer["stored"] is False and "paused" in answer["reason"]
    client.post(f"/api/races/{rid}/resume", headers=h)
    assert lap(car["sio"], 9100)["stored"] is True
    for bad in (-1, 0, 3, 10**9):
        assert lap(car["sio"], bad).get("stored") is not True
    laps = client.get(f"/api/races/{rid}", headers=h).get_json()["laps"]
    assert [(x["time_ms"], x["source"]) for x in laps] == [(9100, "car")]


def test_a_race_change_that_loses_the_optimistic_lock_runs_again(app):
    """Three quick key presses (R R E) are three changes of one race row at once: the last
    may lose the race row's version check twice and must still be applied, not refused."""
    from sqlalchemy.orm.exc import StaleDataError

    from drem.platform.errors import ServiceError
    from drem.timekeeper.api import RACE_CHANGE_ATTEMPTS, retried

    calls = []

    def losing(times):
        @retried
        def view():
            calls.append(1)
            if len(calls) <= times:
                raise StaleDataError("another request changed the race")
            return "applied"
        return view

    with app.app_context():
        assert RACE_CHANGE_ATTEMPTS >= 3
        assert losing(2)() == "applied" and len(calls) == 3
        calls.clear()
        with pytest.raises(ServiceError, match="changed at the same moment"):
            losing(RACE_CHANGE_ATTEMPTS)()
        assert len(calls) == RACE_CHANGE_ATTEMPTS


def test_resets_pressed_at_once_all_count(app, client, setup):  # noqa: F811
    """+1, +1, -1 sent at the same moment from three threads (own connections) after one
    reset: each is answered 200 and the race ends on two resets (in any order: the count
    never reaches 0, where -1 stops), on SQLite and on PostgreSQL."""
    import threading

    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    assert client.post(f"/api/races/{rid}/start", headers=h).status_code == 200
    assert client.post(f"/api/races/{rid}/resets", json={"delta": 1}, headers=h).status_code == 200
    barrier, codes = threading.Barrier(3), []

    def press(delta):
        with app.test_client() as own:
            barrier.wait(10)
            codes.append(own.post(f"/api/races/{rid}/resets", json={"delta": delta}, headers=h).status_code)

    threads = [threading.Thread(target=press, args=(d,)) for d in (1, 1, -1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == [200, 200, 200], codes
    assert client.get(f"/api/races/{rid}", headers=h).get_json()["current_resets"] == 2
