"""Real cars on the server side (issue 14): capabilities in the heartbeat, models of the
wrong kind refused at load and at race set-up, several models onto several cars in one
action with per-car sequencing, and the per-car load progress of the cars page."""

from __future__ import annotations

from tests.fleet.conftest import received

NS = "/car"
DEEPRACER_BEAT = {"state": "idle", "battery_pct": 80, "hostname": "dr-01", "software_version": "0.3.1",
                  "max_speed_mps": 2.0, "tail_light": "white", "models": [], "model_in_use": None,
                  "error": None, "model_formats": ["deepracer"]}


def online_car(fleet, hostname: str, formats: list[str], fps=None):
    car = fleet.activate(hostname)
    sio = fleet.connect(car["token"])
    beat = DEEPRACER_BEAT | {"hostname": hostname, "model_formats": formats} | ({"fps": fps} if fps else {})
    assert sio.emit("heartbeat", beat, namespace=NS, callback=True) == {"ok": True}
    received(sio, "command", NS)
    return car, sio


def test_heartbeat_capabilities_and_frame_rate_are_stored(fleet):
    car, sio = online_car(fleet, "donkey-01", ["tflite", "keras"], fps=19.84)
    row = fleet.car(car["car_id"])
    assert row["model_formats"] == ["keras", "tflite"] and row["fps"] == 19.8
    # nonsense is ignored field by field, never the whole heartbeat
    sio.emit("heartbeat", DEEPRACER_BEAT | {"model_formats": ["onnx"], "fps": "fast", "battery_pct": 55},
             namespace=NS, callback=True)
    row = fleet.car(car["car_id"])
    assert row["model_formats"] == ["keras", "tflite"] and row["fps"] is None and row["battery_pct"] == 55
    sio.disconnect(NS)


def test_a_model_the_car_cannot_run_is_refused_and_nothing_is_sent(fleet, client):
    car, sio = online_car(fleet, "dr-01", ["deepracer"])
    keras = fleet.model(filename="donkey.h5")
    from drem.models_mgr.models import RacerModel
    from drem.platform.extensions import db

    with fleet.app.app_context():
        db.session.get(RacerModel, keras["id"]).model_format = "keras"
        db.session.commit()
    resp = fleet.command([car["car_id"]], "load_model", {"model_id": keras["id"]})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "dr-01 runs only DeepRacer archives (.tar.gz): donkey.h5 is a Keras model"
    resp = client.post("/api/fleet/load", json={"car_ids": [car["car_id"]], "model_ids": [keras["id"]]},
                       headers=fleet.headers)
    assert resp.status_code == 400 and "runs only DeepRacer archives" in resp.get_json()["error"]
    assert received(sio, "command", NS) == []
    assert client.get("/api/fleet/commands", headers=fleet.headers).get_json()["commands"] == []
    sio.disconnect(NS)


def test_load_several_models_onto_several_cars_one_load_at_a_time(fleet, client):
    (one, sio1), (two, sio2) = online_car(fleet, "dr-01", ["deepracer"]), online_car(fleet, "dr-02", ["deepracer"])
    a, b = fleet.model(filename="a.tar.gz"), fleet.model(filename="b.tar.gz")
    resp = client.post("/api/fleet/load", json={"car_ids": [one["car_id"], two["car_id"]],
                                                "model_ids": [a["id"], b["id"]], "clear_first": True},
                       headers=fleet.headers)
    assert resp.status_code == 201, resp.get_json()
    cmds = resp.get_json()["commands"]
    assert [(c["hostname"], c["type"], c["model_id"], c["status"]) for c in cmds] == [
        ("dr-01", "delete_models", None, "sent"), ("dr-01", "load_model", a["id"], "sent"),
        ("dr-01", "load_model", b["id"], "queued"),
        ("dr-02", "delete_models", None, "sent"), ("dr-02", "load_model", a["id"], "sent"),
        ("dr-02", "load_model", b["id"], "queued")]
    assert cmds[2]["reason"] == "waiting for the previous load on this car"
    got = received(sio1, "command", NS)
    assert [(m["type"], m["params"].get("model_id")) for m in got] == [("delete_models", None),
                                                                       ("load_model", str(a["id"]))]
    # progress, then done: the car's next load goes out
    first = cmds[1]["command_id"]
    sio1.emit("command_result", {"result_id": "r1", "command_id": first, "status": "acknowledged",
                                 "progress": 0.5}, namespace=NS, callback=True)
    loads = client.get(f"/api/fleet/commands?car_id={one['car_id']}&type=load_model",
                       headers=fleet.headers).get_json()["commands"]
    assert [(c["status"], c["progress"]) for c in loads] == [("queued", None), ("acknowledged", 0.5)]
    assert received(sio1, "command", NS) == []
    sio1.emit("command_result", {"result_id": "r2", "command_id": first, "status": "failed",
                                 "reason": "loading the model: Model optimization failed!"},
              namespace=NS, callback=True)
    [nxt] = received(sio1, "command", NS)
    assert (nxt["type"], nxt["params"]["model_id"], nxt["command_id"]) == ("load_model", str(b["id"]),
                                                                           cmds[2]["command_id"])
    assert fleet.command_row(cmds[1]["id"])["reason"] == "loading the model: Model optimization failed!"
    # the cars page shows each car's newest load with its progress, and what each car runs
    page_client = fleet.app.test_client()
    fleet.factory.login(page_client, fleet.factory.user("operator"))
    page = page_client.get("/fleet/").get_data(as_text=True)
    assert '<span class="load-text">b.tar.gz: sent 0%</span>' in page  # dr-01's next load
    assert '<span class="load-text">b.tar.gz: queued (waiting for the previous load on this car)</span>' in page
    assert '<progress max="100" value="0"></progress> <span class="load-text">a.tar.gz: sent 0%</span>' not in page
    assert page.count("runs deepracer") == 2
    sio1.disconnect(NS)
    sio2.disconnect(NS)


def test_load_action_refusals_change_nothing(fleet, client):
    car, sio = online_car(fleet, "dr-01", ["deepracer"])
    model = fleet.model()
    scanning = fleet.model(status="scanning")
    for body, message in (({"car_ids": [car["car_id"]], "model_ids": []}, "choose at least one model"),
                          ({"car_ids": [], "model_ids": [model["id"]]}, "choose at least one car"),
                          ({"car_ids": [car["car_id"]], "model_ids": [scanning["id"]]}, "is not available"),
                          ({"car_ids": [car["car_id"]], "model_ids": "all"}, "model_ids")):
        resp = client.post("/api/fleet/load", json=body, headers=fleet.headers)
        assert resp.status_code == 400 and message in resp.get_json()["error"], resp.get_json()
    assert client.post("/api/fleet/load", json={"car_ids": [987654], "model_ids": [model["id"]]},
                       headers=fleet.headers).status_code == 404
    assert client.get("/api/fleet/commands", headers=fleet.headers).get_json()["commands"] == []
    assert received(sio, "command", NS) == []
    sio.disconnect(NS)


def test_race_set_up_refuses_a_model_of_the_wrong_kind(fleet, client, factory):
    event = factory.event()
    racer = factory.user("racer")
    assert client.post(f"/api/events/{event['id']}/racers", json={"user_id": racer["id"]},
                       headers=factory.headers("admin")).status_code == 201
    car, sio = online_car(fleet, "donkey-01", ["keras", "tflite", "savedmodel"])
    model = fleet.model(filename="racer.tar.gz")
    from drem.models_mgr.models import RacerModel
    from drem.platform.extensions import db

    with fleet.app.app_context():
        db.session.get(RacerModel, model["id"]).owner_id = racer["id"]
        db.session.commit()
    op_h = {"Authorization": f"Bearer {factory.token(factory.user('operator'))}"}
    resp = client.post("/api/races", json={"track_id": event["tracks"][0]["id"], "racer_id": racer["id"],
                                           "car_id": car["car_id"], "model_id": model["id"]}, headers=op_h)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == ("donkey-01 runs only Keras models (.h5, .keras), TensorFlow Lite models "
                                        "(.tflite), SavedModels (.zip): racer.tar.gz is a DeepRacer archive")
    assert client.get(f"/api/tracks/{event['tracks'][0]['id']}/live", headers=op_h).get_json()["race"] is None
    assert received(sio, "command", NS) == []
    sio.disconnect(NS)
