"""The ``/car`` Socket.IO namespace (docs/car-protocol.md section 2): token checks,
heartbeats, command results and laps, as a car client sends them."""

from __future__ import annotations

import pytest

from tests.fleet.conftest import received

NS = "/car"

HEARTBEAT = {"state": "ready", "battery_pct": 87, "ip": "192.168.1.20", "hostname": "car-01",
             "software_version": "0.3.1", "max_speed_mps": 2.5, "tail_light": "blue",
             "models": [{"model_id": "12", "sha256": "a" * 64, "name": "fast.tar.gz"}],
             "model_in_use": "12", "error": None}


def _emit(sio, event: str, data) -> dict:
    return sio.emit(event, data, namespace=NS, callback=True)


def test_unknown_missing_or_revoked_token_is_refused_at_connect(fleet, client):
    assert not fleet.connect("car_not-a-token").is_connected(NS)
    assert not fleet.connect("").is_connected(NS)
    car = fleet.activate()
    client.post(f"/api/fleet/cars/{car['car_id']}/revoke", headers=fleet.headers)
    assert not fleet.connect(car["token"]).is_connected(NS)
    assert fleet.car(car["car_id"])["online"] is False


def test_revoked_token_is_refused_at_the_next_message_and_kicked(fleet, client):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    assert _emit(sio, "heartbeat", HEARTBEAT) == {"ok": True}
    assert fleet.car(car["car_id"])["online"] is True
    client.post(f"/api/fleet/cars/{car['car_id']}/revoke", headers=fleet.headers)
    assert not sio.is_connected(NS)  # revoking disconnects the car at once
    # a message that still arrives on the old session is refused for good
    sio2 = fleet.connect(car["token"])
    assert not sio2.is_connected(NS)
    info = fleet.car(car["car_id"])
    assert info["revoked"] is True and info["online"] is False


def test_revoked_between_messages_is_refused(fleet, app):
    """Revocation is checked against the database at every message (another worker
    may have revoked the token)."""
    from drem.fleet.models import Car
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    car = fleet.activate()
    sio = fleet.connect(car["token"])
    with app.app_context():
        db.session.get(Car, car["car_id"]).token_revoked_at = utcnow()
        db.session.commit()
    for event, data in (("heartbeat", HEARTBEAT), ("lap", {"lap_id": "x" * 32, "lap_time_ms": 9000}),
                        ("command_result", {"result_id": "r" * 32, "command_id": "c-1", "status": "done"})):
        assert _emit(sio, event, data) == {"ok": False, "error": "invalid car token", "retry": False}
    assert fleet.client.get(f"/api/fleet/cars/{car['car_id']}/laps", headers=fleet.headers).get_json()["laps"] == []


def test_message_naming_another_car_is_refused_for_good(fleet):
    mine, other = fleet.activate("car-01"), fleet.activate("car-02")
    sio = fleet.connect(mine["token"])
    for event, data in (("heartbeat", HEARTBEAT), ("lap", {"lap_id": "y" * 32, "lap_time_ms": 9000}),
                        ("command_result", {"command_id": "c-1", "status": "done"})):
        ack = _emit(sio, event, data | {"car_id": other["car_id"]})
        assert ack["ok"] is False and ack["retry"] is False and str(other["car_id"]) in ack["error"], ack
    assert fleet.car(other["car_id"])["battery_pct"] is None
    assert fleet.car(mine["car_id"])["battery_pct"] is None
    # naming itself is fine
    assert _emit(sio, "heartbeat", HEARTBEAT | {"car_id": mine["car_id"]}) == {"ok": True}
    assert _emit(sio, "heartbeat", ["not", "an", "object"]) == {"ok": False, "error": "send a JSON object",
                                                                "retry": False}


def test_heartbeat_fields_are_stored_and_pushed(fleet):
    car = fleet.activate()
    watcher = fleet.watch()
    sio = fleet.connect(car["token"])
    connected = received(watcher, "car_status", "/fleet")
    assert connected and connected[-1]["id"] == car["car_id"] and connected[-1]["online"] is True
    assert _emit(sio, "heartbeat", HEARTBEAT) == {"ok": True}
    [pushed] = received(watcher, "car_status", "/fleet")
    stored = fleet.car(car["car_id"])
    for data in (pushed, stored):
        assert data["online"] is True and data["state"] == "ready" and data["battery_pct"] == 87
        assert data["ip"] is None and data["software_version"] == "0.3.1"  # ip: the test client has no peer address; the claimed one is ignored
        assert data["max_speed_mps"] == 2.5 and data["tail_light"] == "blue" and data["model_in_use"] == "12"
        assert data["loaded_models"] == HEARTBEAT["models"] and data["error"] is None and data["last_seen_at"]

    # malformed fields are ignored one by one; the rest is taken
    ack = _emit(sio, "heartbeat", HEARTBEAT | {"state": "flying", "battery_pct": 140, "tail_light": "black",
                                               "max_speed_mps": True, "error": "camera unplugged",
                                               "models": "all"})
    assert ack == {"ok": True}
    stored = fleet.car(car["car_id"])
    assert (stored["state"], stored["battery_pct"], stored["tail_light"], stored["max_speed_mps"]) == (
        "ready", 87, "blue", 2.5)
    assert stored["error"] == "camera unplugged" and stored["loaded_models"] == HEARTBEAT["models"]

    sio.disconnect(NS)
    gone = received(watcher, "car_status", "/fleet")
    assert gone[-1]["online"] is False
    assert fleet.car(car["car_id"])["online"] is False


def test_car_that_stops_talking_counts_as_offline(fleet, app):
    from datetime import timedelta

    from drem.fleet.models import Car
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    car = fleet.activate()
    sio = fleet.connect(car["token"])
    _emit(sio, "heartbeat", HEARTBEAT)
    with app.app_context():
        db.session.get(Car, car["car_id"]).last_seen_at = utcnow() - timedelta(
            seconds=app.config["CAR_OFFLINE_AFTER_S"] + 1)
        db.session.commit()
    assert fleet.car(car["car_id"])["online"] is False
    # a command now waits for the car instead of being sent into the void
    cmd = fleet.command([car["car_id"]], "set_tail_light", {"colour": "red"}).get_json()["commands"][0]
    assert cmd["status"] == "queued"
    sio.disconnect(NS)


# ------------------------------------------------------------ command results


def _sent_command(fleet, sio, car, command_type="set_tail_light", params=None) -> dict:
    _emit(sio, "heartbeat", HEARTBEAT)
    cmd = fleet.command([car["car_id"]], command_type, params or {"colour": "green"}).get_json()["commands"][0]
    assert cmd["status"] == "sent"
    assert [m["command_id"] for m in received(sio, "command", NS)] == [cmd["command_id"]]
    return cmd


def test_command_status_only_moves_forward(fleet):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    watcher = fleet.watch()
    cmd = _sent_command(fleet, sio, car)
    received(watcher, "command_status", "/fleet")

    def result(status, **extra):
        return _emit(sio, "command_result", {"result_id": status + "1" * 20, "command_id": cmd["command_id"],
                                             "status": status, **extra})

    assert result("acknowledged", progress=0.25) == {"ok": True}
    row = fleet.command_row(cmd["id"])
    assert row["status"] == "acknowledged" and row["progress"] == 0.25
    assert result("acknowledged", progress=0.5) == {"ok": True}  # progress update
    assert fleet.command_row(cmd["id"])["progress"] == 0.5
    assert result("done") == {"ok": True}
    row = fleet.command_row(cmd["id"])
    assert row["status"] == "done" and row["progress"] == 1.0 and row["finished_at"]
    # late, repeated or backward results are acknowledged (so the car drops them) and ignored
    assert result("acknowledged", progress=0.75) == {"ok": True, "ignored": True}
    assert result("failed", reason="late") == {"ok": True, "ignored": True}
    assert result("done") == {"ok": True, "ignored": True}
    row = fleet.command_row(cmd["id"])
    assert row["status"] == "done" and row["reason"] is None and row["progress"] == 1.0
    pushed = [(p["status"], p["progress"]) for p in received(watcher, "command_status", "/fleet")]
    assert pushed == [("acknowledged", 0.25), ("acknowledged", 0.5), ("done", 1.0)]


def test_failed_result_keeps_the_reason(fleet):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    cmd = _sent_command(fleet, sio, car, "start_driving", {"model_id": 5})
    ack = _emit(sio, "command_result", {"result_id": "f" * 32, "command_id": cmd["command_id"], "status": "failed",
                                        "reason": "model 5 is not on the car; send load_model first"})
    assert ack == {"ok": True}
    row = fleet.command_row(cmd["id"])
    assert row["status"] == "failed" and row["reason"] == "model 5 is not on the car; send load_model first"


@pytest.mark.parametrize("data,error", [
    ({"command_id": "c-{id}", "status": "finished"}, "status must be"),
    ({"command_id": "nonsense", "status": "done"}, "unknown command"),
    ({"command_id": "c-987654", "status": "done"}, "not for this car"),
])
def test_malformed_command_results_are_refused_for_good(fleet, data, error):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    cmd = _sent_command(fleet, sio, car)
    data = {k: (v.format(id=cmd["id"]) if isinstance(v, str) else v) for k, v in data.items()}
    ack = _emit(sio, "command_result", data)
    assert ack["ok"] is False and ack["retry"] is False and error in ack["error"], ack
    assert fleet.command_row(cmd["id"])["status"] == "sent"


def test_a_car_cannot_answer_another_cars_command(fleet):
    a, b = fleet.activate("car-a"), fleet.activate("car-b")
    sio_a, sio_b = fleet.connect(a["token"]), fleet.connect(b["token"])
    cmd = _sent_command(fleet, sio_a, a)
    ack = _emit(sio_b, "command_result", {"command_id": cmd["command_id"], "status": "done"})
    assert ack["ok"] is False and ack["retry"] is False
    assert fleet.command_row(cmd["id"])["status"] == "sent"
    assert received(sio_b, "command", NS) == []  # commands go to their car's room only


def test_sent_but_unanswered_commands_are_sent_again_on_reconnect(fleet):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    cmd = _sent_command(fleet, sio, car)
    sio.disconnect(NS)
    again = fleet.connect(car["token"])
    assert [m["command_id"] for m in received(again, "command", NS)] == [cmd["command_id"]]
    _emit(again, "command_result", {"command_id": cmd["command_id"], "status": "acknowledged"})
    again.disconnect(NS)
    third = fleet.connect(car["token"])
    assert received(third, "command", NS) == []  # acknowledged: the car has it


# ---------------------------------------------------------------------- laps


def test_lap_is_stored_once_per_lap_id(fleet, client):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    lap = {"lap_id": "0f3c" * 8, "model_id": "12", "lap_time_ms": 10432, "resets": 0, "lap_number": 3,
           "finished_at": 1795000000.25}
    first = _emit(sio, "lap", lap)
    assert first == {"ok": True, "duplicate": False, "stored": False, "reason": "no running race for this car"}
    assert _emit(sio, "lap", lap)["duplicate"] is True
    sio.disconnect(NS)
    again = fleet.connect(car["token"])  # resent after a reconnect: still one lap
    assert _emit(again, "lap", lap) == {"ok": True, "duplicate": True, "stored": False}
    laps = client.get(f"/api/fleet/cars/{car['car_id']}/laps", headers=fleet.headers).get_json()["laps"]
    assert len(laps) == 1 and laps[0]["lap_time_ms"] == 10432 and laps[0]["finished_at"] == 1795000000.25

    # the same lap id from another car is refused, not stored twice
    other = fleet.connect(fleet.activate("car-02")["token"])
    ack = _emit(other, "lap", lap)
    assert ack["ok"] is False and ack["retry"] is False


@pytest.mark.parametrize("lap", [
    {"lap_id": "short", "lap_time_ms": 9000},
    {"lap_id": 12345678, "lap_time_ms": 9000},
    {"lap_id": "a" * 65, "lap_time_ms": 9000},
    {"lap_id": "a" * 32},
    {"lap_id": "a" * 32, "lap_time_ms": 9000.5},
    {"lap_id": "a" * 32, "lap_time_ms": "9000"},
    {"lap_id": "a" * 32, "lap_time_ms": 0},
    {"lap_id": "a" * 32, "lap_time_ms": True},
    {"lap_id": "a" * 32, "lap_time_ms": 31 * 60 * 1000},
    {"lap_id": "a" * 32, "lap_time_ms": 9000, "resets": -1},
    {"lap_id": "a" * 32, "lap_time_ms": 9000, "resets": "2"},
])
def test_malformed_lap_is_refused_for_good(fleet, client, lap):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    ack = _emit(sio, "lap", lap)
    assert ack["ok"] is False and ack["retry"] is False and ack["error"], ack
    assert client.get(f"/api/fleet/cars/{car['car_id']}/laps", headers=fleet.headers).get_json()["laps"] == []
