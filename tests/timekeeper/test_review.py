"""Issue 16 on the console's API: Start waits for the model on the car (override with a
reason, audited); the review step of an ended race (valid toggle, resets, a missed lap,
penalties per lap and per race, disqualification), each edit audited and refused to
anyone but the race's operator; the leaderboard ranks the penalised result."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from tests.timekeeper.test_car_laps import car  # noqa: F401 - fixture reuse
from tests.timekeeper.test_race_flow import new_race, setup, shift  # noqa: F401 - fixture reuse


def _model(app, owner_id: int) -> int:
    """An available model of ``owner_id`` (a row only: the car never downloads it here)."""
    from drem.models_mgr.models import AVAILABLE, RacerModel
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    with app.app_context():
        now = utcnow()
        row = RacerModel(owner_id=owner_id, filename="fast.tar.gz", storage_key=f"models/{owner_id}/fast.tar.gz",
                         status=AVAILABLE, model_format="deepracer", size=1, md5="0" * 32,
                         sha256=hashlib.sha256(b"fast").hexdigest(), uploaded_at=now,
                         expires_at=now + timedelta(days=30))
        db.session.add(row)
        db.session.commit()
        return row.id


def _audit(app, action: str) -> list[dict]:
    from drem.platform.audit import AuditEntry
    from drem.platform.extensions import db

    with app.app_context():
        return [e.details for e in db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == action)
                                                      .order_by(AuditEntry.id))]


def _load_command(sio) -> str:
    """The ``command_id`` of the newest ``load_model`` the car got."""
    loads = [m["args"][0] for m in sio.get_received("/car")
             if m["name"] == "command" and m["args"][0]["type"] == "load_model"]
    assert loads, "no load_model reached the car"
    return loads[-1]["command_id"]


# ------------------------------------------------------------------ start waits for the model


def test_start_waits_for_the_model_on_the_car_unless_overridden_with_a_reason(app, client, setup, car):  # noqa: F811
    s, h = setup, setup["op_h"]
    model_id = _model(app, s["racer"]["id"])
    race = new_race(client, s, car_id=car["id"], model_id=model_id)
    rid = race["race_id"]
    assert race["car_model"] == {"state": "queued", "progress": None, "reason": None, "hostname": "sim-01",
                                 "ready": False}
    refused = client.post(f"/api/races/{rid}/start", headers=h)
    assert refused.status_code == 409
    assert refused.get_json()["error"].startswith("the model is not on the car yet (sim-01: queued)")

    command_id = _load_command(car["sio"])
    car["sio"].emit("command_result", {"command_id": command_id, "status": "acknowledged", "progress": 0.4},
                    namespace="/car", callback=True)
    refused = client.post(f"/api/races/{rid}/start", json={}, headers=h)
    assert refused.status_code == 409 and "sim-01: downloading 40%" in refused.get_json()["error"]

    no_reason = client.post(f"/api/races/{rid}/start", json={"override": True, "override_reason": "  "}, headers=h)
    assert no_reason.status_code == 400 and no_reason.get_json()["field"] == "override_reason"
    assert client.get(f"/api/races/{rid}", headers=h).get_json()["status"] == "ready"  # nothing changed
    assert _audit(app, "race.start_override") == []

    started = client.post(f"/api/races/{rid}/start", json={"override": True, "override_reason": "model is old"},
                          headers=h)
    assert started.status_code == 200 and started.get_json()["status"] == "running"
    assert started.get_json()["car_model"] is None  # shown only before the start
    assert _audit(app, "race.start_override") == [{"car": "sim-01", "model_id": model_id,
                                                   "load_state": "downloading", "reason": "model is old"}]


def test_start_goes_once_the_car_has_the_model_and_races_without_a_car_never_wait(app, client, setup, car):  # noqa: F811
    s, h = setup, setup["op_h"]
    model_id = _model(app, s["racer"]["id"])
    rid = new_race(client, s, car_id=car["id"], model_id=model_id)["race_id"]
    car["sio"].emit("command_result", {"command_id": _load_command(car["sio"]), "status": "done"},
                    namespace="/car", callback=True)
    assert client.get(f"/api/races/{rid}", headers=h).get_json()["car_model"]["ready"] is True
    assert client.post(f"/api/races/{rid}/start", headers=h).status_code == 200
    client.post(f"/api/races/{rid}/discard", headers=h)

    # the car's heartbeat lists the model: loaded whatever the command says
    rid = new_race(client, s, car_id=car["id"], model_id=model_id)["race_id"]
    car["sio"].emit("heartbeat", {"state": "idle", "models": [{"model_id": str(model_id), "name": "fast"}]},
                    namespace="/car", callback=True)
    assert client.post(f"/api/races/{rid}/start", headers=h).status_code == 200
    client.post(f"/api/races/{rid}/discard", headers=h)

    rid = new_race(client, s, car_id=car["id"])["race_id"]  # a car, no model: hand-held timing
    assert client.post(f"/api/races/{rid}/start", headers=h).status_code == 200
    assert _audit(app, "race.start_override") == []


# ------------------------------------------------------------------ the review step


def _ended_race(app, client, s, laps=(9000, 9500, 12000)) -> int:
    h = s["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    for i, ms in enumerate(laps):
        shift(app, rid, ms)
        assert client.post(f"/api/races/{rid}/laps", json={"source_id": f"l{i}"}, headers=h).status_code == 201
    assert client.post(f"/api/races/{rid}/end", headers=h).get_json()["status"] == "ended"
    return rid


def _board(client, s) -> dict:
    entries = client.get(f"/api/events/{s['event']['id']}/leaderboard?track={s['track_id']}").get_json()["entries"]
    assert len(entries) == 1
    return entries[0]


def test_review_edits_each_audited_then_submit(app, client, setup):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = _ended_race(app, client, s)
    base = f"/api/races/{rid}"
    assert abs(_board(client, s)["ranking_value_ms"] - 9000) < 300

    state = client.patch(f"{base}/review/laps/1", json={"invalidated": True}, headers=h).get_json()
    assert [lap["valid"] for lap in state["laps"]] == [False, True, True]
    state = client.patch(f"{base}/review/laps/2", json={"resets": 3}, headers=h).get_json()  # 2 allowed
    assert [(lap["resets"], lap["valid"]) for lap in state["laps"]] == [(0, False), (3, False), (0, True)]
    state = client.patch(f"{base}/review/laps/2", json={"resets": 1}, headers=h).get_json()
    assert state["laps"][1]["valid"] is True

    no_reason = client.patch(f"{base}/review/laps/2", json={"penalty_ms": 2000}, headers=h)
    assert no_reason.status_code == 400 and no_reason.get_json()["field"] == "penalty_reason"
    state = client.patch(f"{base}/review/laps/2", json={"penalty_ms": 2000, "penalty_reason": "cone"},
                         headers=h).get_json()
    assert (state["laps"][1]["penalty_ms"], state["laps"][1]["penalty_reason"]) == (2000, "cone")
    assert client.patch(f"{base}/review/laps/2", json={"time_ms": 1}, headers=h).status_code == 400  # not a review field
    assert client.patch(f"{base}/review/laps/9", json={"invalidated": True}, headers=h).status_code == 400

    # a missed lap, typed as m:ss.mmm, inserted as lap 2: the later laps move up
    added = client.post(f"{base}/review/laps", json={"time": "0:08.250", "lap_number": 2, "source_id": "m1"},
                        headers=h)
    assert added.status_code == 201
    laps = added.get_json()["laps"]
    assert [lap["lap_number"] for lap in laps] == [1, 2, 3, 4]
    assert laps[1]["time_ms"] == 8250 and laps[1]["source"] == "operator" and laps[2]["penalty_reason"] == "cone"
    again = client.post(f"{base}/review/laps", json={"time": "0:08.250", "lap_number": 2, "source_id": "m1"},
                        headers=h)
    assert again.status_code == 200 and len(again.get_json()["laps"]) == 4  # a resend is stored once
    for bad in ({"time": "8.2.5"}, {"time": "500"}, {"time": "1:07", "lap_number": 9}):
        assert client.post(f"{base}/review/laps", json=bad, headers=h).status_code == 400, bad
    assert abs(_board(client, s)["ranking_value_ms"] - 8250) <= 1  # the missed lap is the best

    state = client.put(f"{base}/penalty", json={"penalty_ms": 1000, "penalty_reason": "jump start"},
                       headers=h).get_json()
    assert (state["penalty_ms"], state["penalty_reason"]) == (1000, "jump start")
    entry = _board(client, s)  # best lap: every lap of the run carries the run's penalty
    assert entry["ranking_value_ms"] == 9250 and entry["summary"]["best_lap_penalty_ms"] == 1000
    assert entry["summary"]["penalty_ms"] == 3000

    assert client.put(f"{base}/disqualification", json={"disqualified": True}, headers=h).status_code == 400
    state = client.put(f"{base}/disqualification", json={"disqualified": True, "reason": "touched the car"},
                       headers=h).get_json()
    assert state["disqualified"] is True and state["disqualified_reason"] == "touched the car"
    entry = _board(client, s)  # a run used, no result
    assert entry["ranking_value_ms"] is None and entry["summary"]["disqualified_runs"] == 1
    assert entry["summary"]["runs"] == 1 and entry["summary"]["valid_laps"] == 0
    state = client.put(f"{base}/disqualification", json={"disqualified": False}, headers=h).get_json()
    assert state["disqualified"] is False and state["disqualified_reason"] == ""

    assert client.post(f"{base}/submit", headers=h).get_json()["status"] == "submitted"
    assert client.patch(f"{base}/review/laps/1", json={"invalidated": False}, headers=h).status_code == 409
    assert [d["after"] for d in _audit(app, "lap.edit")] == [
        {"invalidated": True}, {"resets": 3}, {"resets": 1}, {"penalty_ms": 2000, "penalty_reason": "cone"}]
    assert [(d["lap_number"], d["time_ms"], d["missed"]) for d in _audit(app, "lap.restore")] == [(2, 8250, True)]
    assert [d["after"] for d in _audit(app, "race.penalty")] == [{"penalty_ms": 1000, "penalty_reason": "jump start"}]
    assert [(d["disqualified"], d["reason"]) for d in _audit(app, "race.disqualify")] == [
        (True, "touched the car"), (False, "")]
    races = client.get(f"/api/events/{s['event']['id']}/races", headers=h).get_json()["races"]
    assert (races[0]["penalty_ms"], races[0]["disqualified"]) == (1000, False)
    assert races[0]["laps"][2]["penalty_ms"] == 2000


def test_review_only_of_an_ended_race_by_its_operator(app, client, setup, factory):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    shift(app, rid, 9000)
    client.post(f"/api/races/{rid}/laps", json={"source_id": "l1"}, headers=h)
    base = f"/api/races/{rid}"
    running = client.patch(f"{base}/review/laps/1", json={"invalidated": True}, headers=h)
    assert running.status_code == 409 and "running" in running.get_json()["error"]
    assert client.put(f"{base}/penalty", json={"penalty_ms": 1000, "penalty_reason": "x"},
                      headers=h).status_code == 409
    client.post(f"{base}/end", headers=h)

    other_op = {"Authorization": f"Bearer {factory.token(factory.user('operator'))}"}
    refused = client.put(f"{base}/penalty", json={"penalty_ms": 1000, "penalty_reason": "x"}, headers=other_op)
    assert refused.status_code == 403 and "take it over" in refused.get_json()["error"]
    for role in ("racer", "registration", "commentator"):
        hh = factory.headers(role)
        assert client.patch(f"{base}/review/laps/1", json={"invalidated": True}, headers=hh).status_code == 403
        assert client.post(f"{base}/review/laps", json={"time": 9000}, headers=hh).status_code == 403
        assert client.put(f"{base}/penalty", json={"penalty_ms": 1, "penalty_reason": "x"},
                          headers=hh).status_code == 403
        assert client.put(f"{base}/disqualification", json={"reason": "x"}, headers=hh).status_code == 403
        assert client.post(f"{base}/start", headers=hh).status_code == 403
    state = client.get(base, headers=h).get_json()
    assert state["penalty_ms"] == 0 and not state["disqualified"] and state["laps"][0]["valid"]
    assert _audit(app, "race.penalty") == [] and _audit(app, "lap.edit") == []


def test_the_console_page_has_the_review_and_the_live_cars(app, client, setup, factory, car):  # noqa: F811
    s = setup
    web = app.test_client()
    factory.login(web, s["operator"])
    page = web.get(f"/timekeeper/tracks/{s['track_id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="tk-review"' in html and 'id="tk-start-hold"' in html and "timekeeper-review.js" in html
    assert '"hostname": "sim-01"' in html  # the car list starts with the track's cars
    for role in ("racer", "registration"):
        other = app.test_client()
        factory.login(other, factory.user(role))
        assert other.get(f"/timekeeper/tracks/{s['track_id']}").status_code == 403


@pytest.mark.parametrize("typed, ms", [("83500", 83500), ("1:23.5", 83500), ("1:23.456", 83456), ("9.25", 9250),
                                       (9000, 9000)])
def test_lap_times_as_typed(typed, ms):
    from drem.platform.inputs import duration_ms

    assert duration_ms({"time": typed}, "time") == ms


@pytest.mark.parametrize("typed", ["", "abc", "1:75", "1:2:3", "-5", True, 9.5])
def test_lap_times_refused(typed):
    from drem.platform.errors import ServiceError
    from drem.platform.inputs import duration_ms

    with pytest.raises(ServiceError):
        duration_ms({"time": typed}, "time")


def test_the_consoles_hear_of_a_car_activated_or_moved_after_the_page_loaded(app, client, factory):
    """The console's car list (timekeeper-cars.js) follows ``car_status`` on ``/fleet``: an
    activation and a fleet move are pushed there."""
    from drem.platform.extensions import socketio

    web = app.test_client()
    factory.login(web, factory.user("operator"))
    console = socketio.test_client(app, namespace="/fleet", flask_test_client=web)
    admin_h = factory.headers("admin")
    fleet_id = client.post("/api/fleet/fleets", json={"name": "track one"}, headers=admin_h).get_json()["id"]
    code = client.post("/api/fleet/activation-codes", json={"hostname": "late-01"}, headers=admin_h).get_json()["code"]
    car_id = client.post("/api/car/activate", json={"code": code, "hostname": "late-01"}).get_json()["car_id"]
    pushed = [m["args"][0] for m in console.get_received("/fleet") if m["name"] == "car_status"]
    assert [(c["id"], c["hostname"], c["online"], c["fleet_id"]) for c in pushed] == [(car_id, "late-01", False, None)]
    assert client.patch(f"/api/fleet/cars/{car_id}", json={"fleet_id": fleet_id},
                      headers=admin_h).status_code == 200
    pushed = [m["args"][0] for m in console.get_received("/fleet") if m["name"] == "car_status"]
    assert [(c["id"], c["fleet_id"]) for c in pushed] == [(car_id, fleet_id)]
