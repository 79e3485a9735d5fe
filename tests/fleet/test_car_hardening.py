"""Issue 18 on the car protocol: the car IP operators see is the address the server saw
(not an ``X-Forwarded-For`` or heartbeat claim), and huge numbers in a lap report are
answered, never a server error."""

from __future__ import annotations

from drem.platform.extensions import socketio

NS = "/car"
CLAIMING = {"state": "ready", "battery_pct": 50, "ip": "6.6.6.6", "software_version": "0.3.1"}


def _connect(app, token: str, headers: dict):
    return socketio.test_client(app, namespace=NS, auth={"token": token}, headers=headers)


def test_car_ip_cannot_be_claimed_by_the_client(app, fleet):
    car = fleet.activate()
    sio = _connect(app, car["token"], {"X-Forwarded-For": "6.6.6.6"})
    assert sio.is_connected(NS)
    assert sio.emit("heartbeat", CLAIMING, namespace=NS, callback=True) == {"ok": True}
    assert fleet.car(car["car_id"])["ip"] is None  # the test client has no peer address; X-Forwarded-For and the claim are ignored


def test_car_ip_behind_a_trusted_proxy_is_the_proxy_entry(app, fleet, monkeypatch):
    monkeypatch.setitem(app.config, "PROXY_HOPS", 1)
    car = fleet.activate()
    # the client sent "6.6.6.6" itself; HAProxy appended the address it saw
    sio = _connect(app, car["token"], {"X-Forwarded-For": "6.6.6.6, 192.168.8.31"})
    assert sio.is_connected(NS)
    assert fleet.car(car["car_id"])["ip"] == "192.168.8.31"
    assert sio.emit("heartbeat", CLAIMING, namespace=NS, callback=True) == {"ok": True}
    assert fleet.car(car["car_id"])["ip"] == "192.168.8.31"


def test_huge_numbers_in_a_lap_report_are_answered(app, fleet):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    lap = {"lap_id": "lap-huge-0001", "lap_time_ms": 9000, "resets": 0, "race_id": 10**30,
           "lap_number": 10**25, "finished_at": 1.0}
    answer = sio.emit("lap", lap, namespace=NS, callback=True)
    assert answer["ok"] is True and answer["stored"] is False
    again = sio.emit("lap", dict(lap, lap_id="lap-huge-0002", race_id=2**31), namespace=NS, callback=True)
    assert again["ok"] is True and again["stored"] is False
