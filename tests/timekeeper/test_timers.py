"""Lap timers on the server: activation with a one-time code, the ``/timer`` namespace
(heartbeats, clock offset, crossings), the console's live timer status, every crossing
kept with its reason, the first crossing starting the race, and a marshal restoring a
rejected crossing as a lap."""

from __future__ import annotations

import pytest

from tests.timekeeper.test_car_laps import car, lap  # noqa: F401 - fixture reuse
from tests.timekeeper.test_race_flow import new_race, setup, shift  # noqa: F401 - fixture reuse


@pytest.fixture
def timer(app, client, setup):  # noqa: F811
    """A timer activated with a one-time code and connected to ``/timer``."""
    from drem.platform.extensions import socketio

    s = setup
    made = client.post(f"/api/tracks/{s['track_id']}/timer-codes", json={"name": "finish line"}, headers=s["op_h"])
    assert made.status_code == 201, made.get_json()
    answer = client.post("/api/timer/activate", json={"code": made.get_json()["code"].lower(),
                                                      "hostname": "timer-01", "software_version": "0.1.0"})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    sio = socketio.test_client(app, namespace="/timer", auth={"token": body["token"]})
    assert sio.is_connected("/timer")
    yield {"id": body["timer_id"], "token": body["token"], "sio": sio, "answer": body}
    if sio.is_connected("/timer"):
        sio.disconnect("/timer")


def cross(sio, ms: int, crossing_id: str, sensor: int = 1) -> dict:
    return sio.emit("crossing", {"crossing_id": crossing_id, "device_time_ms": ms, "sensor": sensor},
                    namespace="/timer", callback=True)


def crossings(client, s, race_id: int) -> list[tuple]:
    rows = client.get(f"/api/races/{race_id}/crossings", headers=s["op_h"]).get_json()["crossings"]
    return [(c["crossing_id"], c["sensor"], c["status"]) for c in rows]


def laps(client, s, race_id: int) -> list[tuple]:
    return [(x["lap_number"], x["time_ms"], x["source"])
            for x in client.get(f"/api/races/{race_id}", headers=s["op_h"]).get_json()["laps"]]


def test_activation_code_gives_a_timer_of_the_track_once(client, setup, timer, factory):  # noqa: F811
    s = setup
    assert timer["answer"]["track_id"] == s["track_id"] and timer["answer"]["name"] == "finish line"
    assert timer["answer"]["heartbeat_interval_s"] == 2 and timer["token"].startswith("timer_")
    listed = client.get(f"/api/tracks/{s['track_id']}/timers", headers=s["op_h"]).get_json()
    assert [(t["id"], t["hostname"], t["online"], t["connected"]) for t in listed["timers"]] == \
        [(timer["id"], "timer-01", True, True)]
    assert listed["timing"] == {"track_id": s["track_id"], "first_crossing_starts_race": False}
    audit = client.get("/api/audit?action=timer.activate", headers=factory.headers("admin")).get_json()["entries"]
    assert [e["target_id"] for e in audit] == [str(timer["id"])]


def test_activation_refusals_change_nothing(client, setup, factory):  # noqa: F811
    s = setup
    assert client.post("/api/timer/activate", json={"code": "ABCD-EFGH"}).get_json() == \
        {"error": "unknown activation code"}
    code = client.post(f"/api/tracks/{s['track_id']}/timer-codes", json={"name": "line"},
                       headers=s["op_h"]).get_json()["code"]
    assert client.post("/api/timer/activate", json={"code": code}).status_code == 201
    again = client.post("/api/timer/activate", json={"code": code})
    assert again.status_code == 403 and again.get_json() == {"error": "activation code already used"}
    bad_name = client.post(f"/api/tracks/{s['track_id']}/timer-codes", json={"name": " "}, headers=s["op_h"])
    assert bad_name.status_code == 400 and "1-60 characters" in bad_name.get_json()["error"]
    assert client.post("/api/tracks/987654/timer-codes", json={"name": "x"}, headers=s["op_h"]).status_code == 404
    racer_h = {"Authorization": f"Bearer {factory.token(s['racer'])}"}
    assert client.post(f"/api/tracks/{s['track_id']}/timer-codes", json={"name": "x"},
                       headers=racer_h).status_code == 403
    assert len(client.get(f"/api/tracks/{s['track_id']}/timers", headers=s["op_h"]).get_json()["timers"]) == 1


def test_expired_activation_code_is_refused(app, client, setup):  # noqa: F811
    from datetime import timedelta

    from drem.platform.extensions import db
    from drem.timekeeper.models import TimerActivationCode

    s = setup
    code = client.post(f"/api/tracks/{s['track_id']}/timer-codes", json={"name": "line"},
                       headers=s["op_h"]).get_json()["code"]
    with app.app_context():
        row = db.session.scalar(db.select(TimerActivationCode))
        row.expires_at -= timedelta(days=1)
        db.session.commit()
    refused = client.post("/api/timer/activate", json={"code": code})
    assert refused.status_code == 403 and refused.get_json() == {"error": "activation code expired"}


def test_heartbeat_stores_clock_offset_and_answers_server_time(client, setup, timer):  # noqa: F811
    import time

    s = setup
    before = int(time.time() * 1000)
    ack = timer["sio"].emit("heartbeat", {"device_time_ms": 5000, "clock_offset_ms": 1_795_000_000_000,
                                          "round_trip_ms": 4, "sensors": [{"sensor": 1, "pin": 17, "pull_up": True,
                                                                           "edge": "falling", "bounce_ms": 50}]},
                            namespace="/timer", callback=True)
    assert ack["ok"] is True and ack["heartbeat_interval_s"] == 2
    assert before <= ack["server_time_ms"] <= int(time.time() * 1000)
    shown = client.get(f"/api/tracks/{s['track_id']}/timers", headers=s["op_h"]).get_json()["timers"][0]
    assert (shown["clock_offset_ms"], shown["round_trip_ms"]) == (1_795_000_000_000, 4)
    assert shown["sensors"] == [{"sensor": 1, "pin": 17, "pull_up": True, "edge": "falling", "bounce_ms": 50}]
    refused = timer["sio"].emit("heartbeat", ["not", "an", "object"], namespace="/timer", callback=True)
    assert refused == {"ok": False, "error": "send a JSON object", "retry": False}


def test_console_sees_the_timer_go_offline_and_flash_on_crossings(app, client, setup, timer, factory):  # noqa: F811
    from drem.platform.extensions import socketio

    s = setup
    console_http = app.test_client()
    factory.login(console_http, s["operator"])
    console = socketio.test_client(app, namespace="/timekeeper", flask_test_client=console_http)
    watched = console.emit("watch", {"track_id": s["track_id"]}, namespace="/timekeeper", callback=True)
    assert watched == {"ok": True, "race": None}
    on_watch = [m["args"][0] for m in console.get_received("/timekeeper") if m["name"] == "timer_status"]
    assert [(t["id"], t["online"]) for t in on_watch] == [(timer["id"], True)]
    cross(timer["sio"], 1000, "c-idle")
    timer["sio"].disconnect("/timer")
    got = console.get_received("/timekeeper")
    flashes = [m["args"][0] for m in got if m["name"] == "timer_crossing"]
    assert [(f["status"], f["timer_id"]) for f in flashes] == [("outside_race", timer["id"])]
    statuses = [m["args"][0] for m in got if m["name"] == "timer_status"]
    assert (statuses[-1]["id"], statuses[-1]["online"], statuses[-1]["connected"]) == (timer["id"], False, False)


def test_every_crossing_is_kept_with_its_reason(client, setup, timer):  # noqa: F811
    s, h, sio = setup, setup["op_h"], timer["sio"]
    assert cross(sio, 1_000, "idle")["status"] == "outside_race"
    rid = new_race(client, s)["race_id"]
    ready = cross(sio, 2_000, "ready")
    assert (ready["status"], ready["reason"]) == ("outside_race", "no running race on this track (the race is ready)")
    client.post(f"/api/races/{rid}/start", headers=h)
    assert cross(sio, 10_000, "c1")["status"] == "first"
    assert cross(sio, 10_400, "c2", sensor=2)["status"] == "duplicate"   # the other strip saw the same car
    bounce = cross(sio, 11_000, "c3")
    assert (bounce["status"], bounce["stored"], bounce["ok"]) == ("debounced", False, True)
    assert cross(sio, 19_876, "c4")["lap_number"] == 1
    again = cross(sio, 19_876, "c4")
    assert (again["duplicate"], again["status"]) == (True, "lap")      # a resend is stored once
    back = cross(sio, 15_000, "c5")                                    # the device clock went back
    assert (back["ok"], back["status"]) == (True, "too_short")        # kept: the device may drop it
    assert cross(sio, 19_876 + 30 * 60_000, "c6")["status"] == "too_long"
    bad = sio.emit("crossing", {"crossing_id": "c7", "device_time_ms": "12"}, namespace="/timer", callback=True)
    assert bad == {"ok": False, "error": "device_time_ms must be a whole number", "retry": False}
    no_id = sio.emit("crossing", {"device_time_ms": 12}, namespace="/timer", callback=True)
    assert no_id == {"ok": False, "error": "crossing_id is required", "retry": False}
    assert crossings(client, s, rid) == [("ready", 1, "outside_race"), ("c1", 1, "first"), ("c2", 2, "duplicate"),
                                         ("c3", 1, "debounced"), ("c5", 1, "too_short"), ("c4", 1, "lap"),
                                         ("c6", 1, "too_long")]
    track = client.get(f"/api/tracks/{s['track_id']}/crossings?limit=100", headers=h).get_json()["crossings"]
    assert [c["crossing_id"] for c in track][0] == "idle" and len(track) == 8
    assert laps(client, s, rid) == [(1, 9876, "timer")]


def test_first_crossing_starts_the_race_when_the_track_says_so(app, client, setup, timer, factory):  # noqa: F811
    from datetime import UTC, datetime

    s, h, sio = setup, setup["op_h"], timer["sio"]
    racer_h = {"Authorization": f"Bearer {factory.token(s['racer'])}"}
    assert client.put(f"/api/tracks/{s['track_id']}/timing", json={"first_crossing_starts_race": True},
                      headers=racer_h).status_code == 403
    set_ = client.put(f"/api/tracks/{s['track_id']}/timing", json={"first_crossing_starts_race": True}, headers=h)
    assert set_.get_json() == {"track_id": s["track_id"], "first_crossing_starts_race": True}
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    sio.emit("heartbeat", {"device_time_ms": 50_000, "clock_offset_ms": now_ms - 50_000 - 300}, namespace="/timer",
             callback=True)
    rid = new_race(client, s)["race_id"]
    started = cross(sio, 50_000, "go")
    assert (started["status"], started["reason"]) == ("first", "first crossing: race started")
    race = client.get(f"/api/races/{rid}", headers=h).get_json()
    assert race["status"] == "running" and 250 <= race["elapsed_ms"] < 5000  # the clock started at the crossing
    assert cross(sio, 58_000, "l1")["lap_number"] == 1
    assert laps(client, s, rid) == [(1, 8000, "timer")]
    audit = client.get("/api/audit?action=track.timing", headers=factory.headers("admin")).get_json()["entries"]
    assert len(audit) == 1


def test_restore_a_debounced_crossing_splits_the_lap(client, setup, timer, factory):  # noqa: F811
    s, h, sio = setup, setup["op_h"], timer["sio"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    cross(sio, 10_000, "c1")
    cross(sio, 21_000, "c2")                       # lap 1: 11 000 ms
    bounce = cross(sio, 22_500, "c3")              # debounced (1 500 ms)
    cross(sio, 30_000, "c4")                       # lap 2: 9 000 ms
    late = cross(sio, 31_000, "c5")                # debounced, after the last lap
    racer_h = {"Authorization": f"Bearer {factory.token(s['racer'])}"}
    assert client.post(f"/api/crossings/{bounce['crossing']}/restore", headers=racer_h).status_code == 403
    restored = client.post(f"/api/crossings/{bounce['crossing']}/restore", headers=h)
    assert restored.status_code == 200, restored.get_json()
    assert restored.get_json()["crossing"]["status"] == "restored"
    assert laps(client, s, rid) == [(1, 11_000, "timer"), (2, 1_500, "timer"), (3, 7_500, "timer")]
    client.post(f"/api/crossings/{late['crossing']}/restore", headers=h)
    assert laps(client, s, rid)[-1] == (4, 1_000, "timer")
    assert cross(sio, 40_000, "c6")["lap_number"] == 5   # the next lap is measured from the restored crossing
    assert laps(client, s, rid)[-1] == (5, 9_000, "timer")
    again = client.post(f"/api/crossings/{bounce['crossing']}/restore", headers=h)
    assert again.status_code == 409 and again.get_json()["error"] == "this crossing is restored, not a rejected one"
    audit = client.get("/api/audit?action=lap.restore", headers=factory.headers("admin")).get_json()["entries"]
    assert len(audit) == 2


def test_restore_refusals_change_nothing(client, setup, timer):  # noqa: F811
    s, h, sio = setup, setup["op_h"], timer["sio"]
    idle = cross(sio, 1_000, "idle")
    refused = client.post(f"/api/crossings/{idle['crossing']}/restore", headers=h)
    assert refused.status_code == 409 and "no race" in refused.get_json()["error"]
    rid = new_race(client, s)["race_id"]
    early = cross(sio, 2_000, "early")
    client.post(f"/api/races/{rid}/start", headers=h)
    cross(sio, 10_000, "c1")
    lap = cross(sio, 20_000, "c2")
    before_first = client.post(f"/api/crossings/{early['crossing']}/restore", headers=h)
    assert before_first.status_code == 400 and "before the race's first crossing" in before_first.get_json()["error"]
    counted = client.post(f"/api/crossings/{lap['crossing']}/restore", headers=h)
    assert counted.status_code == 409 and counted.get_json()["error"] == "this crossing is lap, not a rejected one"
    too_close = cross(sio, 20_500, "c3")
    short = client.post(f"/api/crossings/{too_close['crossing']}/restore", headers=h)
    assert short.status_code == 400 and "a restored lap would last 500 ms" in short.get_json()["error"]
    assert client.post("/api/crossings/987654/restore", headers=h).status_code == 404
    assert laps(client, s, rid) == [(1, 10_000, "timer")]
    assert [c[2] for c in crossings(client, s, rid)] == ["outside_race", "first", "lap", "debounced"]


def test_revoked_timer_is_disconnected_and_refused(app, client, setup, timer, factory):  # noqa: F811
    from drem.platform.extensions import socketio

    s = setup
    assert client.post(f"/api/timers/{timer['id']}/revoke", headers=s["op_h"]).get_json()["revoked"] is True
    assert not timer["sio"].is_connected("/timer")  # the server closed its socket
    again = socketio.test_client(app, namespace="/timer", auth={"token": timer["token"]})
    assert not again.is_connected("/timer")
    shown = client.get(f"/api/tracks/{s['track_id']}/timers", headers=s["op_h"]).get_json()["timers"][0]
    assert (shown["revoked"], shown["online"], shown["connected"]) == (True, False, False)


def test_timers_page_lists_and_console_links_it(client, setup, timer, factory):  # noqa: F811
    s = setup
    factory.login(client, s["operator"])
    page = client.get(f"/timekeeper/tracks/{s['track_id']}/timers")
    assert page.status_code == 200 and "Activate a timer" in page.get_data(as_text=True)
    console = client.get(f"/timekeeper/tracks/{s['track_id']}").get_data(as_text=True)
    assert f"/timekeeper/tracks/{s['track_id']}/timers" in console and 'id="tk-timer"' in console


def test_undoing_a_timer_lap_measures_the_next_one_from_the_crossing_before(client, setup, timer):  # noqa: F811
    s, h, sio = setup, setup["op_h"], timer["sio"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    cross(sio, 10_000, "c1")
    false_finish = cross(sio, 14_000, "c2")                  # something else crossed the line
    assert false_finish["lap_number"] == 1
    assert client.post(f"/api/races/{rid}/undo", headers=h).status_code == 200
    assert cross(sio, 21_000, "c3")["lap_number"] == 1
    assert laps(client, s, rid) == [(1, 11_000, "timer")]
    undone = [c for c in client.get(f"/api/races/{rid}/crossings", headers=h).get_json()["crossings"]
              if c["crossing_id"] == "c2"][0]
    assert (undone["status"], undone["reason"], undone["restorable"]) == \
        ("undone", "lap 1 undone on the console", True)


def test_a_timed_track_takes_its_laps_from_the_timer_not_the_car(client, setup, timer, car):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s, car_id=car["id"])["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    answer = lap(car["sio"], 9_000)
    assert (answer["ok"], answer["stored"], answer["reason"]) == (True, False, "this track is timed by its lap timer")
    cross(timer["sio"], 10_000, "c1")
    cross(timer["sio"], 19_000, "c2")
    assert laps(client, s, rid) == [(1, 9_000, "timer")]
    car_log = client.get(f"/api/fleet/cars/{car['id']}/laps", headers=h).get_json()["laps"]
    assert [x["lap_time_ms"] for x in car_log] == [9_000]   # kept in the car's lap log


def test_http_crossing_refuses_a_bad_sensor(client, setup, timer):  # noqa: F811
    th = {"Authorization": f"Bearer {timer['token']}"}
    bad = client.post("/api/timer/crossings", json={"crossing_id": "x", "device_time_ms": 5, "sensor": 3}, headers=th)
    assert bad.status_code == 400 and bad.get_json()["error"] == "sensor must be between 1 and 2, got 3"
    as_text = client.post("/api/timer/crossings", json={"crossing_id": "y", "device_time_ms": 5, "sensor": "1"},
                          headers=th)
    assert as_text.status_code == 400 and as_text.get_json()["error"] == "sensor must be a whole number"
    rows = client.get(f"/api/tracks/{timer['answer']['track_id']}/crossings", headers=setup["op_h"]).get_json()
    assert rows["crossings"] == []                                 # nothing stored
