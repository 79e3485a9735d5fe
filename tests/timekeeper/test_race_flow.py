"""Race flow through the API: the server holds the clock, laps are stored once."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import ANY

import pytest


@pytest.fixture
def setup(app, client, factory):
    """An event (best lap, 2 resets allowed, 2 runs max) with one registered racer and an operator."""
    event = factory.event(resets_allowed_per_lap=2, max_runs_per_racer=2, race_time_min=2)
    operator = factory.user("operator")
    op_h = {"Authorization": f"Bearer {factory.token(operator)}"}
    racer = factory.user("racer")
    assert client.post(f"/api/events/{event['id']}/racers", json={"user_id": racer["id"]},
                       headers=factory.headers("admin")).status_code == 201
    return {"event": event, "track_id": event["tracks"][0]["id"], "op_h": op_h, "racer": racer, "operator": operator}


def shift(app, race_id: int, ms: int) -> None:
    """Let ``ms`` of race time pass (moves the start back, as if the clock had run)."""
    from drem.events.models import Race
    from drem.platform.extensions import db

    with app.app_context():
        race = db.session.get(Race, race_id)
        race.started_at -= timedelta(milliseconds=ms)
        if race.paused_at is not None:
            race.paused_at -= timedelta(milliseconds=0)
        db.session.commit()


def new_race(client, s, **extra):
    resp = client.post("/api/races", json={"track_id": s["track_id"], "racer_id": s["racer"]["id"]} | extra,
                       headers=s["op_h"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_whole_race_with_resets_undo_pause(app, client, setup):
    s, h = setup, setup["op_h"]
    race = new_race(client, s)
    rid = race["race_id"]
    assert race["status"] == "ready" and race["time_limit_ms"] == 120_000
    assert client.post(f"/api/races/{rid}/laps", json={"source_id": "a1"}, headers=h).status_code == 409
    assert client.post(f"/api/races/{rid}/start", headers=h).get_json()["status"] == "running"
    shift(app, rid, 5000)
    resp = client.post(f"/api/races/{rid}/laps", json={"source_id": "lap-1"}, headers=h)
    assert resp.status_code == 201
    assert 5000 <= resp.get_json()["lap"]["time_ms"] < 5300
    again = client.post(f"/api/races/{rid}/laps", json={"source_id": "lap-1"}, headers=h)
    assert again.status_code == 200 and again.get_json()["created"] is False
    quick = client.post(f"/api/races/{rid}/laps", json={"source_id": "other-operator"}, headers=h)
    assert quick.status_code == 200 and quick.get_json()["lap"]["lap_number"] == 1  # debounce: same crossing
    shift(app, rid, 6000)
    for delta in (1, 1, -1):
        state = client.post(f"/api/races/{rid}/resets", json={"delta": delta}, headers=h).get_json()
    assert state["current_resets"] == 1
    lap2 = client.post(f"/api/races/{rid}/laps", json={"source_id": "lap-2"}, headers=h).get_json()["lap"]
    assert lap2["resets"] == 1 and 6000 <= lap2["time_ms"] < 6400
    state = client.post(f"/api/races/{rid}/undo", headers=h).get_json()
    assert [lap["lap_number"] for lap in state["laps"]] == [1]
    assert state["current_lap_ms"] >= 6000 and state["current_resets"] == 1  # time and resets given back
    paused = client.post(f"/api/races/{rid}/pause", headers=h).get_json()
    assert paused["status"] == "paused"
    frozen = client.get(f"/api/races/{rid}", headers=h).get_json()["elapsed_ms"]
    assert abs(frozen - paused["elapsed_ms"]) < 50
    client.post(f"/api/races/{rid}/resume", headers=h)
    lap = client.post(f"/api/races/{rid}/laps", json={"source_id": "lap-2b"}, headers=h).get_json()["lap"]
    assert lap["lap_number"] == 2 and lap["time_ms"] >= 6000
    assert client.post(f"/api/races/{rid}/end", headers=h).get_json()["status"] == "ended"
    first = client.post(f"/api/races/{rid}/submit", headers=h)
    second = client.post(f"/api/races/{rid}/submit", headers=h)
    assert first.get_json()["status"] == second.get_json()["status"] == "submitted"
    from drem.events.models import Race
    from drem.platform.extensions import db

    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Race)) == 1
    assert client.get(f"/api/tracks/{s['track_id']}/live", headers=h).get_json() == {"race": None}


def test_one_live_race_per_track_and_max_runs(app, client, setup, factory):
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    resp = client.post("/api/races", json={"track_id": s["track_id"], "racer_id": s["racer"]["id"]}, headers=h)
    assert resp.status_code == 409 and "live race" in resp.get_json()["error"]
    for _ in range(2):
        client.post(f"/api/races/{rid}/start", headers=h)
        client.post(f"/api/races/{rid}/end", headers=h)
        assert client.post(f"/api/races/{rid}/submit", headers=h).status_code == 200
        resp = client.post("/api/races", json={"track_id": s["track_id"], "racer_id": s["racer"]["id"]}, headers=h)
        rid = resp.get_json().get("race_id")
    assert resp.status_code == 409 and "used all runs (2/2)" in resp.get_json()["error"]
    other = factory.user("racer")
    resp = client.post("/api/races", json={"track_id": s["track_id"], "racer_id": other["id"]}, headers=h)
    assert resp.status_code == 400 and "not registered" in resp.get_json()["error"]


def test_second_operator_is_read_only_until_take_over(app, client, setup, factory):
    s = setup
    rid = new_race(client, s)["race_id"]
    other_h = factory.headers("operator")
    resp = client.post(f"/api/races/{rid}/start", headers=other_h)
    assert resp.status_code == 403 and "take it over" in resp.get_json()["error"]
    assert client.get(f"/api/races/{rid}", headers=other_h).status_code == 200
    assert client.post(f"/api/races/{rid}/take-over", headers=other_h).get_json()["operator_id"] != s["operator"]["id"]
    assert client.post(f"/api/races/{rid}/start", headers=other_h).status_code == 200
    assert client.post(f"/api/races/{rid}/pause", headers=s["op_h"]).status_code == 403
    assert client.get(f"/api/races/{rid}", headers=factory.headers("racer")).status_code == 403


def test_time_up_lets_the_last_lap_finish_then_ends(app, client, setup):
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    shift(app, rid, 121_000)
    state = client.get(f"/api/races/{rid}", headers=h).get_json()
    assert state["status"] == "running" and state["time_up"] and state["time_left_ms"] == 0
    lap = client.post(f"/api/races/{rid}/laps", json={"source_id": "last"}, headers=h)
    assert lap.status_code == 201 and lap.get_json()["lap"]["time_ms"] >= 121_000
    assert client.get(f"/api/races/{rid}", headers=h).get_json()["status"] == "ended"


def test_lap_count_race_ends_at_target_and_dnf(app, client, factory):
    event = factory.event(ranking_method="total_time", lap_target=2, resets_allowed_per_lap=0)
    racer, h = factory.user("racer"), factory.headers("operator")
    client.post(f"/api/events/{event['id']}/racers", json={"user_id": racer["id"]}, headers=factory.headers("admin"))
    rid = client.post("/api/races", json={"track_id": event["tracks"][0]["id"], "racer_id": racer["id"]},
                      headers=h).get_json()["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    shift(app, rid, 4000)
    client.post(f"/api/races/{rid}/resets", json={"delta": 1}, headers=h)
    client.post(f"/api/races/{rid}/laps", json={"source_id": "1"}, headers=h)  # invalid: 1 reset > 0 allowed
    shift(app, rid, 4000)
    state = client.post(f"/api/races/{rid}/dnf", json={"source_id": "dnf"}, headers=h).get_json()
    assert state["status"] == "paused" and state["laps"][-1]["dnf"] is True
    client.post(f"/api/races/{rid}/resume", headers=h)
    for i in (2, 3):
        shift(app, rid, 4000)
        state = client.post(f"/api/races/{rid}/laps", json={"source_id": f"v{i}"}, headers=h)
    state = client.get(f"/api/races/{rid}", headers=h).get_json()
    assert state["status"] == "ended" and len(state["laps"]) == 4
    assert state["lap_target"] == 2


def test_timer_device_laps(app, client, setup):
    s, h = setup, setup["op_h"]
    resp = client.post(f"/api/tracks/{s['track_id']}/timers", json={"name": "finish line"}, headers=h)
    token = resp.get_json()["token"]
    th = {"Authorization": f"Bearer {token}"}
    idle = client.post("/api/timer/crossings", json={"crossing_id": "x0", "device_time_ms": 1}, headers=th)
    assert idle.get_json() == {"ok": True, "stored": False, "reason": "no running race on this track",
                               "status": "outside_race", "crossing": ANY}
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    assert client.post("/api/timer/crossings", json={"crossing_id": "c1", "device_time_ms": 100_000},
                       headers=th).get_json()["reason"].startswith("first crossing")
    bounce = client.post("/api/timer/crossings", json={"crossing_id": "c2", "device_time_ms": 100_400}, headers=th)
    assert "debounce" in bounce.get_json()["reason"]
    lap = client.post("/api/timer/crossings", json={"crossing_id": "c3", "device_time_ms": 109_876}, headers=th)
    assert lap.get_json() == {"ok": True, "stored": True, "lap_number": 1, "status": "lap",
                              "reason": "lap 1: 9876 ms", "crossing": ANY}
    again = client.post("/api/timer/crossings", json={"crossing_id": "c3", "device_time_ms": 109_876}, headers=th)
    assert again.get_json()["duplicate"] is True
    absurd = client.post("/api/timer/crossings", json={"crossing_id": "c4", "device_time_ms": 50}, headers=th)
    assert absurd.status_code == 400
    negative = client.post("/api/timer/crossings", json={"crossing_id": "c5", "device_time_ms": -5}, headers=th)
    assert negative.status_code == 400
    assert client.post("/api/timer/crossings", json={"crossing_id": "c6", "device_time_ms": 1},
                       headers={"Authorization": "Bearer timer_forged"}).status_code == 403
    laps = client.get(f"/api/races/{rid}", headers=h).get_json()["laps"]
    assert [(lap["time_ms"], lap["source"]) for lap in laps] == [(9876, "timer")]


def test_revoked_timer_token_is_refused(client, factory, setup):
    s, h = setup, setup["op_h"]
    made = client.post(f"/api/tracks/{s['track_id']}/timers", json={"name": "finish line"}, headers=h).get_json()
    timer_id, th = made["timer"]["id"], {"Authorization": f"Bearer {made['token']}"}
    crossing = {"crossing_id": "x0", "device_time_ms": 1}
    assert client.post("/api/timer/crossings", json=crossing, headers=th).status_code == 200
    racer_h = {"Authorization": f"Bearer {factory.token(s['racer'])}"}
    assert client.post(f"/api/timers/{timer_id}/revoke", headers=racer_h).status_code == 403
    resp = client.post(f"/api/timers/{timer_id}/revoke", headers=h)
    assert resp.status_code == 200
    assert resp.get_json()["id"] == timer_id and resp.get_json()["revoked"] is True
    refused = client.post("/api/timer/crossings", json=crossing | {"crossing_id": "x1"}, headers=th)
    assert refused.status_code == 403 and refused.get_json() == {"error": "invalid timer token"}
    assert client.post(f"/api/timers/{timer_id}/revoke", headers=h).get_json()["revoked"] is True  # idempotent
    assert client.post("/api/timers/987654/revoke", headers=h).status_code == 404
    listed = client.get(f"/api/tracks/{s['track_id']}/timers", headers=h).get_json()["timers"]
    assert [(t["id"], t["revoked"]) for t in listed] == [(timer_id, True)]
    audit = client.get("/api/audit?action=timer.revoke", headers=factory.headers("admin")).get_json()["entries"]
    assert [(e["actor"], e["target_id"]) for e in audit] == [(s["operator"]["username"], str(timer_id))]
