"""Laps reported by the car in the race arrive in the timekeeper at once, stored once."""

from __future__ import annotations

import uuid

import pytest

from tests.timekeeper.test_race_flow import new_race, setup  # noqa: F401 - fixture reuse


@pytest.fixture
def car(app, client, factory):
    """An activated car connected to /car through the Socket.IO test client."""
    from drem.platform.extensions import socketio

    admin_h = factory.headers("admin")
    code = client.post("/api/fleet/activation-codes", json={"hostname": "sim-01"}, headers=admin_h).get_json()["code"]
    act = client.post("/api/car/activate", json={"code": code, "hostname": "sim-01", "software_version": "t"})
    body = act.get_json()
    sio = socketio.test_client(app, namespace="/car", auth={"token": body["token"]})
    assert sio.is_connected("/car")
    yield {"id": body["car_id"], "sio": sio, "token": body["token"]}
    if sio.is_connected("/car"):
        sio.disconnect("/car")


def lap(sio, ms: int, lap_id: str | None = None, resets: int = 0) -> dict:
    return sio.emit("lap", {"lap_id": lap_id or uuid.uuid4().hex, "model_id": "1", "lap_time_ms": ms,
                            "resets": resets, "lap_number": 1, "finished_at": 1.0}, namespace="/car", callback=True)


def test_car_laps_go_into_the_running_race(app, client, setup, car):  # noqa: F811
    s, h = setup, setup["op_h"]
    assert lap(car["sio"], 9000) == {"ok": True, "duplicate": False, "stored": False,
                                     "reason": "no running race for this car"}
    rid = new_race(client, s, car_id=car["id"])["race_id"]
    received = car["sio"].get_received("/car")
    assert any(m["name"] == "command" and m["args"][0]["type"] == "set_tail_light" for m in received)
    paused_answer = lap(car["sio"], 9000)
    assert paused_answer["stored"] is False and "ready" in paused_answer["reason"]
    client.post(f"/api/races/{rid}/start", headers=h)
    lap_id = uuid.uuid4().hex
    first = lap(car["sio"], 10_432, lap_id, resets=1)
    assert first["ok"] and first["stored"] and first["lap_number"] == 1
    assert lap(car["sio"], 10_432, lap_id, resets=1)["duplicate"] is True
    assert lap(car["sio"], 3)["stored"] is False  # absurd: 3 ms
    laps = client.get(f"/api/races/{rid}", headers=h).get_json()["laps"]
    assert [(x["time_ms"], x["resets"], x["source"]) for x in laps] == [(10_432, 1, "car")]
    # the operator can still invalidate or undo a car lap
    state = client.patch(f"/api/races/{rid}/laps/1", json={"invalidated": True}, headers=h).get_json()
    assert state["laps"][0]["invalidated"] is True and state["best_lap_ms"] is None
    client.post(f"/api/races/{rid}/end", headers=h)
    stop = [m["args"][0]["type"] for m in car["sio"].get_received("/car") if m["name"] == "command"]
    assert stop[-2:] == ["stop_driving", "set_tail_light"]
    assert lap(car["sio"], 9000)["stored"] is False  # the race ended


def test_lap_from_a_car_not_in_the_race(app, client, setup, car, factory):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]  # manual race, no car
    client.post(f"/api/races/{rid}/start", headers=h)
    answer = lap(car["sio"], 9000)
    assert answer["stored"] is False
    assert client.get(f"/api/races/{rid}", headers=h).get_json()["laps"] == []


def test_console_socket_gets_state_and_changes(app, client, setup, factory):  # noqa: F811
    from drem.platform.extensions import socketio

    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    web = app.test_client()
    factory.login(web, s["operator"])
    console = socketio.test_client(app, namespace="/timekeeper", flask_test_client=web)
    answer = console.emit("watch", {"track_id": s["track_id"]}, namespace="/timekeeper", callback=True)
    assert answer["ok"] and answer["race"]["race_id"] == rid and answer["race"]["status"] == "ready"
    client.post(f"/api/races/{rid}/start", headers=h)
    states = [m["args"][0] for m in console.get_received("/timekeeper") if m["name"] == "race_state"]
    assert states and states[-1]["status"] == "running"
    anonymous = socketio.test_client(app, namespace="/timekeeper")
    assert not anonymous.is_connected("/timekeeper")


def test_late_lap_goes_to_the_race_it_was_driven_in(app, client, setup, car, factory):  # noqa: F811
    """A lap driven in race A but delivered after race B started on the same car is not B's."""
    s, h = setup, setup["op_h"]
    first = new_race(client, s, car_id=car["id"])["race_id"]
    client.post(f"/api/races/{first}/start", headers=h)
    client.post("/api/fleet/commands", json={"car_ids": [car["id"]], "type": "start_driving",
                                             "params": {"model_id": 5, "race_id": first}}, headers=h)
    starts = [m["args"][0] for m in car["sio"].get_received("/car")
              if m["name"] == "command" and m["args"][0]["type"] == "start_driving"]
    assert starts[-1]["params"] == {"model_id": "5", "race_id": first}
    client.post(f"/api/races/{first}/end", headers=h)
    client.post(f"/api/races/{first}/submit", headers=h)
    other = factory.user("racer")
    client.post(f"/api/events/{s['event']['id']}/racers", json={"user_id": other["id"]}, headers=factory.headers("admin"))
    second = client.post("/api/races", json={"track_id": s["track_id"], "racer_id": other["id"], "car_id": car["id"]},
                         headers=h).get_json()["race_id"]
    client.post(f"/api/races/{second}/start", headers=h)
    late = car["sio"].emit("lap", {"lap_id": uuid.uuid4().hex, "model_id": "1", "lap_time_ms": 9000, "resets": 0,
                                   "lap_number": 1, "finished_at": 1.0, "race_id": first},
                           namespace="/car", callback=True)
    assert late["ok"] and late["stored"] is False and "submitted" in late["reason"]
    assert client.get(f"/api/races/{second}", headers=h).get_json()["laps"] == []
    tagged = car["sio"].emit("lap", {"lap_id": uuid.uuid4().hex, "model_id": "1", "lap_time_ms": 9100, "resets": 0,
                                     "lap_number": 1, "finished_at": 2.0, "race_id": second},
                             namespace="/car", callback=True)
    assert tagged["stored"] is True and tagged["race_id"] == second
