"""The public ``/leaderboard`` Socket.IO namespace with Flask-SocketIO's test client:
joining answers the full state at once, a lap pushes a small change to the right rooms,
the live race reaches the displays."""

from __future__ import annotations

import json

import pytest

from tests.leaderboard.builders import Races

NS = "/leaderboard"


@pytest.fixture
def setup(app, factory):
    """An event with two tracks; anna has a submitted 9000 ms on track 1, ben a running race."""
    races = Races(app)
    ev = factory.event(tracks=2)
    t1, t2 = (t["id"] for t in ev["tracks"])
    anna = factory.user("racer", "anna", password=None, country_code="SE")
    ben = factory.user("racer", "ben", password=None, country_code="NL")
    races.race(ev["id"], t1, anna["id"], [9000])
    ben_race = races.race(ev["id"], t1, ben["id"], [9600], status="running")
    return {"event": ev["id"], "t1": t1, "t2": t2, "anna": anna["id"], "ben": ben["id"],
            "ben_race": ben_race["id"], "races": races}


def display(app, **auth):
    from drem.platform.extensions import socketio

    return socketio.test_client(app, namespace=NS, auth=auth or None)


def received(client, name):
    return [m["args"][0] for m in client.get_received(NS) if m["name"] == name]


def test_join_answers_the_full_state_at_once(app, setup):
    sio = display(app)
    assert sio.is_connected(NS)  # public: no login
    state = sio.emit("join", {"event_id": setup["event"], "track": setup["t1"]}, namespace=NS, callback=True)
    assert [(e["rank"], e["username"], e["ranking_value_ms"]) for e in state["entries"]] == [
        (1, "anna", 9000), (2, "ben", 9600)]
    assert state["races"][str(setup["t1"])]["racer"]["username"] == "ben"
    assert state["version"] and state["track"] == setup["t1"]
    bad = sio.emit("join", {"event_id": 987654, "track": "combined"}, namespace=NS, callback=True)
    assert bad == {"error": "no such event"}
    assert sio.emit("join", "nonsense", namespace=NS, callback=True)["error"]
    sio.disconnect(NS)


def test_connect_with_auth_joins_and_sends_the_state(app, setup):
    sio = display(app, event_id=setup["event"], track="combined")
    full = received(sio, "lb_full")
    assert len(full) == 1 and full[0]["track"] == "combined"
    assert [e["username"] for e in full[0]["entries"]] == ["anna", "ben"]
    sio.disconnect(NS)


def test_a_lap_pushes_a_small_change_to_its_rooms(app, setup):
    t1_display = display(app)
    t1_state = t1_display.emit("join", {"event_id": setup["event"], "track": setup["t1"]}, namespace=NS,
                               callback=True)
    combined = display(app, event_id=setup["event"], track="combined")
    t2_display = display(app, event_id=setup["event"], track=setup["t2"])
    for c in (t1_display, combined, t2_display):
        c.get_received(NS)

    setup["races"].lap(setup["ben_race"], 8800)  # ben takes the lead from anna

    updates = received(t1_display, "lb_update")
    assert len(updates) == 1
    msg = updates[0]
    assert msg["from"] == t1_state["version"] and msg["track"] == setup["t1"]
    assert [(e["username"], e["rank"], e["ranking_value_ms"]) for e in msg["entries"]] == [
        ("ben", 1, 8800), ("anna", 2, 9000)]
    assert msg["highlight"] == setup["ben"] and msg["lap"]["time_ms"] == 8800
    assert len(json.dumps(msg)) < 2500  # a small change, not the whole board
    assert [m["track"] for m in received(combined, "lb_update")] == ["combined"]
    assert received(t2_display, "lb_update") == []  # another track's room hears nothing
    # a display that (re)connects now gets the new state in full
    again = display(app).emit("join", {"event_id": setup["event"], "track": setup["t1"]}, namespace=NS,
                              callback=True)
    assert again["version"] == msg["to"] and again["entries"][0]["username"] == "ben"


def test_switching_tracks_leaves_the_old_room(app, setup):
    sio = display(app)
    sio.emit("join", {"event_id": setup["event"], "track": setup["t1"]}, namespace=NS, callback=True)
    sio.emit("join", {"event_id": setup["event"], "track": setup["t2"]}, namespace=NS, callback=True)
    sio.get_received(NS)
    setup["races"].lap(setup["ben_race"], 8800)
    assert received(sio, "lb_update") == []


def test_race_state_reaches_the_displays_and_a_started_race_shows_its_racer(app, factory, setup):
    from drem.events.models import Race
    from drem.events.versions import bump_of
    from drem.platform.effects import after_commit, commit
    from drem.platform.extensions import db
    from drem.platform.signals import race_state_changed
    from drem.timekeeper.service import race_state

    cara = factory.user("racer", "cara", password=None)
    sio = display(app, event_id=setup["event"], track=setup["t2"])
    sio.get_received(NS)
    with app.app_context():  # a race starts on track 2: the timekeeper pushes its state
        race = Race(event_id=setup["event"], track_id=setup["t2"], racer_id=cara["id"], status="running",
                    time_limit_ms=180_000, live_track_id=setup["t2"], started_at=db.func.now())
        db.session.add(race)
        db.session.flush()
        race_id = race.id
        bump = bump_of(("race", race_id))  # the race alone moved the boards on
        assert bump is not None and bump["track_id"] == setup["t2"]
        after_commit(lambda: race_state_changed.send("test", state=race_state(db.session.get(Race, race_id)),
                                                     bump=bump))
        commit()
    states = received_all = sio.get_received(NS)
    states = [m["args"][0] for m in received_all if m["name"] == "race_state"]
    assert states and states[0]["race_id"] == race_id and states[0]["racer"]["username"] == "cara"
    assert states[0]["time_limit_ms"] == 180_000 and states[0]["status"] == "running"
    updates = [m["args"][0] for m in received_all if m["name"] == "lb_update"]
    assert [(e["username"], e["ranking_value_ms"]) for e in updates[0]["entries"]] == [("cara", None)]


def test_a_timed_lap_reaches_a_display_as_one_message_with_the_race(app, client, factory, setup):
    """A lap captured by the timekeeper: each display gets one ``lb_update`` carrying the
    standings change and the race state after the lap (no separate ``race_state``)."""
    from tests.timekeeper.test_race_flow import shift

    operator = factory.user("operator")
    h = {"Authorization": f"Bearer {factory.token(operator)}"}
    cara = factory.user("racer", "cara", password=None)
    assert client.post(f"/api/events/{setup['event']}/racers", json={"user_id": cara["id"]},
                       headers=factory.headers("admin")).status_code == 201
    race = client.post("/api/races", json={"track_id": setup["t2"], "racer_id": cara["id"]}, headers=h).get_json()
    rid = race["race_id"]
    t2 = display(app, event_id=setup["event"], track=setup["t2"])
    combined = display(app, event_id=setup["event"], track="combined")
    assert client.post(f"/api/races/{rid}/start", headers=h).status_code == 200
    [started] = received(t2, "race_state")
    assert started["status"] == "running"
    combined.get_received(NS)
    shift(app, rid, 7000)

    assert client.post(f"/api/races/{rid}/laps", json={"source_id": "cara-1"}, headers=h).status_code == 201

    ranks = {setup["t2"]: [("cara", 1)], "combined": [("cara", 1), ("anna", 2), ("ben", 3)]}  # 7 s leads
    for sio, track in ((t2, setup["t2"]), (combined, "combined")):
        messages = sio.get_received(NS)
        assert [m["name"] for m in messages] == ["lb_update"], track
        msg = messages[0]["args"][0]
        assert msg["track"] == track and msg["lap"]["race_id"] == rid and msg["lap"]["lap_number"] == 1
        assert [(e["username"], e["rank"]) for e in msg["entries"]] == ranks[track]
        assert msg["race"]["race_id"] == rid and msg["race"]["status"] == "running"
        assert msg["race"]["lap_count"] == 1 and "laps" not in msg["race"]  # the displays' compact form
        assert msg["race"]["last_lap"]["time_ms"] == msg["lap"]["time_ms"]
        assert 7000 <= msg["lap"]["time_ms"] < 7500
    # pausing is not a lap: the race state comes on its own
    assert client.post(f"/api/races/{rid}/pause", headers=h).status_code == 200
    assert [m["name"] for m in t2.get_received(NS)] == ["race_state"]


def test_deleting_a_race_the_process_never_saw_pushes_the_full_state(app, client, factory, setup):
    """A race deleted at the race admin: the displays get the board without it, even when
    this process has no record of the race (another worker recorded its laps)."""
    from drem.leaderboard.service import clear_cache

    sio = display(app, event_id=setup["event"], track=setup["t1"])
    sio.get_received(NS)
    assert client.post(f"/api/races/{setup['ben_race']}/end", headers=factory.headers("admin")).status_code == 200
    sio.get_received(NS)
    clear_cache()  # as in a fresh worker
    assert client.delete(f"/api/races/{setup['ben_race']}", headers=factory.headers("admin")).status_code == 204
    [full] = received(sio, "lb_full")
    assert [(e["username"], e["ranking_value_ms"]) for e in full["entries"]] == [("anna", 9000)]
