"""The fleet HTTP API: fleets, activation codes, cars, commands, the car lap log, the
signed model download, and who may do what (docs/api.md, docs/car-protocol.md)."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.fleet.conftest import received

# ------------------------------------------------------------------------- fleets


def test_fleet_crud_is_audited(fleet, client, factory):
    h = fleet.headers
    event = factory.event(tracks=1)
    resp = client.post("/api/fleet/fleets", json={"name": "Blue cars", "track_id": event["tracks"][0]["id"]}, headers=h)
    assert resp.status_code == 201, resp.get_json()
    blue = resp.get_json()
    assert blue["name"] == "Blue cars" and blue["track_id"] == event["tracks"][0]["id"] and blue["car_ids"] == []

    clash = client.post("/api/fleet/fleets", json={"name": "blue CARS"}, headers=h)
    assert clash.status_code == 409 and clash.get_json()["field"] == "name"
    assert client.post("/api/fleet/fleets", json={"name": ""}, headers=h).status_code == 400
    assert client.post("/api/fleet/fleets", json={"name": "x", "track_id": 987654}, headers=h).status_code == 404

    red = client.post("/api/fleet/fleets", json={"name": "Red cars"}, headers=h).get_json()
    resp = client.patch(f"/api/fleet/fleets/{red['id']}", json={"name": "Red team", "track_id": None}, headers=h)
    assert resp.status_code == 200 and resp.get_json()["name"] == "Red team"
    assert client.patch(f"/api/fleet/fleets/{red['id']}", json={"name": "Blue cars"}, headers=h).status_code == 409

    car = fleet.activate("car-01", fleet_id=blue["id"])
    assert fleet.car(car["car_id"])["fleet"] == "Blue cars"
    listed = client.get("/api/fleet/fleets", headers=h).get_json()["fleets"]
    assert [(f["name"], f["car_ids"]) for f in listed] == [("Blue cars", [car["car_id"]]), ("Red team", [])]

    # a car moves between fleets; deleting its fleet keeps the car, without a fleet
    moved = client.patch(f"/api/fleet/cars/{car['car_id']}", json={"fleet_id": red["id"]}, headers=h)
    assert moved.status_code == 200 and moved.get_json()["fleet"] == "Red team"
    assert client.delete(f"/api/fleet/fleets/{red['id']}", headers=h).status_code == 204
    assert fleet.car(car["car_id"])["fleet_id"] is None
    assert client.get(f"/api/fleet/fleets/{red['id']}", headers=h).status_code in (404, 405)
    assert [f["name"] for f in client.get("/api/fleet/fleets", headers=h).get_json()["fleets"]] == ["Blue cars"]

    actions = [e["action"] for e in client.get("/api/audit?per_page=100", headers=h).get_json()["entries"]]
    for action in ("fleet.create", "fleet.rename", "fleet.delete", "car.fleet", "car.activate"):
        assert action in actions, actions


# --------------------------------------------------------------- activation codes


def _car_count(client, headers) -> int:
    return len(client.get("/api/fleet/cars", headers=headers).get_json()["cars"])


def test_activation_gives_a_token_once(fleet, client):
    code = fleet.code("car-07")
    resp = client.post("/api/car/activate", json={"code": code.lower().replace("-", ""), "hostname": "other-name",
                                                  "software_version": "0.2.0"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["hostname"] == "car-07" and body["token"].startswith("car_") and body["heartbeat_interval_s"] > 0
    car = fleet.car(body["car_id"])
    assert car["software_version"] == "0.2.0" and car["online"] is False and car["revoked"] is False

    again = client.post("/api/car/activate", json={"code": code, "hostname": "car-07"})
    assert again.status_code == 403 and again.get_json()["error"] == "activation code already used"
    assert _car_count(client, fleet.headers) == 1


def test_expired_and_unknown_codes_change_nothing(fleet, app, client):
    from drem.fleet.models import ActivationCode
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    code = fleet.code("car-09")
    with app.app_context():
        row = db.session.scalar(db.select(ActivationCode))
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    resp = client.post("/api/car/activate", json={"code": code, "hostname": "car-09"})
    assert resp.status_code == 403 and resp.get_json()["error"] == "activation code expired"
    resp = client.post("/api/car/activate", json={"code": "ZZZZ-ZZZZ", "hostname": "car-09"})
    assert resp.status_code == 403 and resp.get_json()["error"] == "unknown activation code"
    assert client.post("/api/car/activate", json=["not", "an", "object"]).status_code == 400
    assert _car_count(client, fleet.headers) == 0
    with app.app_context():
        row = db.session.scalar(db.select(ActivationCode))
        assert row.used_at is None and row.car_id is None


def test_activation_code_needs_a_valid_hostname(fleet, client):
    for hostname in ("", "-car", "car_01", "x" * 64):
        resp = client.post("/api/fleet/activation-codes", json={"hostname": hostname}, headers=fleet.headers)
        assert resp.status_code == 400 and resp.get_json()["field"] == "hostname", hostname
    resp = client.post("/api/fleet/activation-codes", json={"hostname": "car-1", "fleet_id": 987654},
                       headers=fleet.headers)
    assert resp.status_code == 404


# ------------------------------------------------------------------ commands


def test_commands_are_validated_and_nothing_is_stored(fleet, client):
    car = fleet.activate()
    cid = car["car_id"]
    unavailable = fleet.model(status="scanning")
    cases = [
        ("teleport", {}, "unknown command", "type"),
        ("set_tail_light", {"colour": "black"}, "colour must be one of", "colour"),
        ("set_max_speed", {"max_speed_mps": 9}, "between 0.1 and 4.0", "max_speed_mps"),
        ("set_max_speed", {"max_speed_mps": "fast"}, "must be a number", "max_speed_mps"),
        ("load_model", {"model_id": unavailable["id"]}, "not available", "model_id"),
        ("load_model", {"model_id": 987654}, "not available", "model_id"),
        ("load_model", {}, "model_id is required", "model_id"),
        ("delete_models", {"model_ids": "all"}, "must be a list", "model_ids"),
        ("start_driving", {"model_id": "abc"}, "whole number", "model_id"),
    ]
    for command_type, params, message, field in cases:
        resp = fleet.command([cid], command_type, params)
        assert resp.status_code == 400, (command_type, params, resp.get_json())
        assert message in resp.get_json()["error"] and resp.get_json()["field"] == field, resp.get_json()
    assert fleet.command([], "stop_driving").status_code == 400
    assert fleet.command([987654], "stop_driving").status_code == 404
    resp = client.post("/api/fleet/commands", json={"car_ids": [cid], "type": "stop_driving", "params": [1]},
                       headers=fleet.headers)
    assert resp.status_code == 400
    assert client.get("/api/fleet/commands", headers=fleet.headers).get_json()["commands"] == []


def test_offline_car_gets_commands_queued_and_emergency_stop_fails_at_once(fleet, client):
    car = fleet.activate()
    queued = fleet.command([car["car_id"]], "set_tail_light", {"colour": "blue"})
    assert queued.status_code == 201
    cmd = queued.get_json()["commands"][0]
    assert cmd["status"] == "queued" and "car offline" in cmd["reason"]
    estop = fleet.command([car["car_id"]], "emergency_stop").get_json()["commands"][0]
    assert estop["status"] == "failed" and estop["reason"] == "car offline" and estop["finished_at"]

    # the car connects: it gets the queued command (not the failed emergency stop)
    sio = fleet.connect(car["token"])
    got = received(sio, "command", "/car")
    assert got == [{"command_id": cmd["command_id"], "type": "set_tail_light", "params": {"colour": "blue"}}]
    assert fleet.command_row(cmd["id"])["status"] == "sent"
    sio.disconnect("/car")


def test_queued_commands_expire_to_failed_car_offline(fleet, app):
    from drem.fleet.commands import expire_queued
    from drem.fleet.models import CarCommand
    from drem.platform.db_types import utcnow
    from drem.platform.effects import commit
    from drem.platform.extensions import db

    car = fleet.activate()
    old = fleet.command([car["car_id"]], "set_max_speed", {"max_speed_mps": 1.5}).get_json()["commands"][0]
    fresh = fleet.command([car["car_id"]], "set_tail_light", {"colour": "red"}).get_json()["commands"][0]
    watcher = fleet.watch()
    received(watcher, "command_status", "/fleet")
    with app.app_context():
        db.session.get(CarCommand, old["id"]).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert expire_queued() == 1
        commit()  # as the job runner does: commit, then push
        assert expire_queued() == 0
    row = fleet.command_row(old["id"])
    assert row["status"] == "failed" and row["reason"] == "car offline"
    assert fleet.command_row(fresh["id"])["status"] == "queued"
    pushed = received(watcher, "command_status", "/fleet")
    assert [(p["id"], p["status"]) for p in pushed] == [(old["id"], "failed")]

    # an expired command is not delivered when the car connects later
    sio = fleet.connect(car["token"])
    assert [m["command_id"] for m in received(sio, "command", "/car")] == [fresh["command_id"]]
    sio.disconnect("/car")


def test_expired_command_found_at_connect_fails_instead_of_being_sent(fleet, app):
    from drem.fleet.models import CarCommand
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    car = fleet.activate()
    cmd = fleet.command([car["car_id"]], "stop_driving").get_json()["commands"][0]
    with app.app_context():
        db.session.get(CarCommand, cmd["id"]).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    sio = fleet.connect(car["token"])
    assert received(sio, "command", "/car") == []
    assert fleet.command_row(cmd["id"])["status"] == "failed"
    assert fleet.command_row(cmd["id"])["reason"] == "car offline"
    sio.disconnect("/car")


def test_commands_for_a_revoked_car_are_refused(fleet, client):
    car = fleet.activate()
    assert client.post(f"/api/fleet/cars/{car['car_id']}/revoke", headers=fleet.headers).status_code == 200
    resp = fleet.command([car["car_id"]], "stop_driving")
    assert resp.status_code == 400 and "revoked" in resp.get_json()["error"]


# ------------------------------------------------------------ model download


def _load(fleet, car, model) -> dict:
    resp = fleet.command([car["car_id"]], "load_model", {"model_id": model["id"]})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["commands"][0]


def _wire_url(sio) -> str:
    [message] = received(sio, "command", "/car")
    return message["params"]["url"]


def test_signed_download_url_serves_the_model_with_range(fleet, client):
    model = fleet.model()
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    sio.emit("heartbeat", {"state": "idle"}, namespace="/car", callback=True)
    cmd = _load(fleet, car, model)
    assert cmd["status"] == "sent" and "url" not in cmd["params"]  # operators never see the signed URL
    message = received(sio, "command", "/car")[0]
    params = message["params"]
    assert params["model_id"] == str(model["id"]) and params["sha256"] == model["sha256"]
    assert params["size"] == len(model["content"]) and params["name"] == "fast.tar.gz"
    assert params["format"] == "deepracer" and params["url"].startswith("http")
    path = params["url"].split("//", 1)[1].split("/", 1)[1]

    full = client.get("/" + path)  # no credentials: the signature is the credential
    assert full.status_code == 200 and full.data == model["content"]
    assert hashlib.sha256(full.data).hexdigest() == full.headers["X-Checksum-Sha256"] == model["sha256"]
    part = client.get("/" + path, headers={"Range": "bytes=1000-"})
    assert part.status_code == 206 and part.data == model["content"][1000:]
    assert part.headers["Content-Range"] == f"bytes 1000-{len(model['content']) - 1}/{len(model['content'])}"
    past = client.get("/" + path, headers={"Range": f"bytes={len(model['content'])}-"})
    assert past.status_code == 416
    sio.disconnect("/car")


def _signed_path(app, model_id: int, car_id: int, age_s: float = 0.0, secret: str | None = None) -> str:
    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age_s)

    serializer = URLSafeTimedSerializer(secret or app.config["SECRET_KEY"], salt="car-model-download", signer=Signer)
    return f"/api/car/models/{model_id}/file?t={serializer.dumps({'m': model_id, 'c': car_id})}"


def test_download_refuses_forged_expired_and_other_model_links(fleet, app, client):
    model, other = fleet.model(), fleet.model(filename="other.tar.gz")
    car = fleet.activate()
    good = _signed_path(app, model["id"], car["car_id"])
    assert client.get(good).status_code == 200

    expired = _signed_path(app, model["id"], car["car_id"], age_s=app.config["MODEL_URL_TTL_S"] + 5)
    resp = client.get(expired)
    assert resp.status_code == 403 and "expired" in resp.get_json()["error"]
    forged = _signed_path(app, model["id"], car["car_id"], secret="not-the-server-secret")
    assert client.get(forged).status_code == 403
    assert client.get(good.replace("?t=", "?t=x")).status_code == 403
    assert client.get(f"/api/car/models/{model['id']}/file").status_code == 403
    # a link for one model does not open another
    resp = client.get(good.replace(f"/models/{model['id']}/", f"/models/{other['id']}/"))
    assert resp.status_code == 403 and resp.get_json()["error"] == "invalid download link"


def test_download_of_an_unavailable_model_or_revoked_car_is_404(fleet, app, client):
    from drem.models_mgr.models import RacerModel
    from drem.platform.extensions import db

    model = fleet.model()
    car = fleet.activate()
    path = _signed_path(app, model["id"], car["car_id"])
    with app.app_context():
        db.session.get(RacerModel, model["id"]).status = "deleted"
        db.session.commit()
    assert client.get(path).status_code == 404
    scanning = fleet.model(status="scanning")
    assert client.get(_signed_path(app, scanning["id"], car["car_id"])).status_code == 404

    model2 = fleet.model()
    path2 = _signed_path(app, model2["id"], car["car_id"])
    assert client.get(path2).status_code == 200
    client.post(f"/api/fleet/cars/{car['car_id']}/revoke", headers=fleet.headers)
    assert client.get(path2).status_code == 404


# ------------------------------------------------------------------- roles


RACER_REFUSED = [
    ("GET", "/api/fleet/fleets"), ("POST", "/api/fleet/fleets"), ("GET", "/api/fleet/cars"),
    ("GET", "/api/fleet/cars/{car}"), ("GET", "/api/fleet/cars/{car}/laps"), ("PATCH", "/api/fleet/cars/{car}"),
    ("POST", "/api/fleet/cars/{car}/revoke"), ("DELETE", "/api/fleet/cars/{car}"),
    ("POST", "/api/fleet/commands"), ("GET", "/api/fleet/commands"), ("GET", "/api/fleet/commands/{command}"),
    ("POST", "/api/fleet/activation-codes"), ("PATCH", "/api/fleet/fleets/{fleet}"),
    ("DELETE", "/api/fleet/fleets/{fleet}"),
]


def test_racer_may_not_touch_the_fleet(fleet, client):
    car = fleet.activate()
    ids = {"car": car["car_id"], "command": fleet.command([car["car_id"]], "stop_driving").get_json()["commands"][0]["id"],
           "fleet": client.post("/api/fleet/fleets", json={"name": "F"}, headers=fleet.headers).get_json()["id"]}
    racer = fleet.headers_for("racer")
    for method, path in RACER_REFUSED:
        resp = client.open(path.format(**ids), method=method, json={}, headers=racer)
        assert resp.status_code == 403 and resp.get_json()["error"] == "forbidden", (method, path)
        assert client.open(path.format(**ids), method=method, json={}).status_code == 401, (method, path)
    assert fleet.car(car["car_id"])["revoked"] is False and fleet.car(car["car_id"])["fleet_id"] is None
    assert len(client.get("/api/fleet/fleets", headers=fleet.headers).get_json()["fleets"]) == 1


def test_commentator_reads_but_changes_nothing(fleet, client, factory):
    car = fleet.activate()
    viewer = fleet.headers_for("commentator")
    assert client.get("/api/fleet/cars", headers=viewer).status_code == 200
    assert client.get("/api/fleet/fleets", headers=viewer).status_code == 200
    assert client.get("/api/fleet/commands", headers=viewer).status_code == 200
    assert client.get(f"/api/fleet/cars/{car['car_id']}/laps", headers=viewer).status_code == 200
    for method, path, body in [
        ("POST", "/api/fleet/fleets", {"name": "mine"}),
        ("POST", "/api/fleet/activation-codes", {"hostname": "car-2"}),
        ("POST", "/api/fleet/commands", {"car_ids": [car["car_id"]], "type": "stop_driving"}),
        ("POST", f"/api/fleet/cars/{car['car_id']}/revoke", {}),
        ("PATCH", f"/api/fleet/cars/{car['car_id']}", {"fleet_id": None}),
    ]:
        assert client.open(path, method=method, json=body, headers=viewer).status_code == 403, path
    assert client.get("/api/fleet/fleets", headers=fleet.headers).get_json()["fleets"] == []


def test_only_admin_revokes_or_deregisters(fleet, client, factory):
    car = fleet.activate()
    operator = fleet.headers_for("operator")
    # an operator runs the fleet ...
    assert client.post("/api/fleet/activation-codes", json={"hostname": "car-2"}, headers=operator).status_code == 201
    assert fleet.command([car["car_id"]], "stop_driving", headers=operator).status_code == 201
    # ... but cannot revoke or deregister a car
    assert client.post(f"/api/fleet/cars/{car['car_id']}/revoke", headers=operator).status_code == 403
    assert client.delete(f"/api/fleet/cars/{car['car_id']}", headers=operator).status_code == 403
    assert fleet.car(car["car_id"])["revoked"] is False
    resp = client.post(f"/api/fleet/cars/{car['car_id']}/revoke", headers=fleet.headers)
    assert resp.status_code == 200 and resp.get_json()["revoked"] is True
    assert client.delete(f"/api/fleet/cars/{car['car_id']}", headers=fleet.headers).status_code == 204
    assert client.get(f"/api/fleet/cars/{car['car_id']}", headers=fleet.headers).status_code == 404
    actions = [e["action"] for e in client.get("/api/audit", headers=fleet.headers).get_json()["entries"]]
    assert "car.revoke" in actions and "car.deregister" in actions


def test_fleet_socket_is_for_fleet_viewers_only(fleet, factory):
    assert fleet.watch(factory.user("commentator")).is_connected("/fleet")
    assert not fleet.watch(factory.user("racer")).is_connected("/fleet")


# ------------------------------------------------------------------- lap log


def test_car_lap_log_lists_each_lap_once_in_order(fleet, client):
    car = fleet.activate()
    sio = fleet.connect(car["token"])
    ids = [f"lap{n:05d}aaaa" for n in range(5)]
    for n, lap_id in enumerate(ids):
        ack = sio.emit("lap", {"lap_id": lap_id, "model_id": "3", "lap_time_ms": 9000 + n, "resets": n % 2,
                               "lap_number": n + 1, "finished_at": 1795000000.0 + n}, namespace="/car", callback=True)
        assert ack["ok"] is True and ack["duplicate"] is False
    sio.emit("lap", {"lap_id": ids[2], "lap_time_ms": 9002}, namespace="/car", callback=True)
    laps = client.get(f"/api/fleet/cars/{car['car_id']}/laps", headers=fleet.headers).get_json()["laps"]
    assert [lap["lap_id"] for lap in laps] == ids
    assert laps[3] | {"id": 0, "received_at": ""} == {
        "id": 0, "lap_id": ids[3], "car_id": car["car_id"], "model_id": "3", "lap_time_ms": 9003, "resets": 1,
        "lap_number": 4, "finished_at": 1795000003.0, "received_at": "", "race_id": None,
        "outcome": "no running race for this car"}
    page = client.get(f"/api/fleet/cars/{car['car_id']}/laps?after_id={laps[1]['id']}&limit=2",
                      headers=fleet.headers).get_json()["laps"]
    assert [lap["lap_id"] for lap in page] == ids[2:4]
    assert client.get(f"/api/fleet/cars/{car['car_id']}/laps?limit=0", headers=fleet.headers).status_code == 400
    assert client.get("/api/fleet/cars/987654/laps", headers=fleet.headers).status_code == 404
    sio.disconnect("/car")
