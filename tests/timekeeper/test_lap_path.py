"""The lap path end to end: fleet records -> car_lap_reported -> timekeeper stores ->
lap_recorded after the commit -> leaderboard ranks and pushes; one announcement per race
and transaction; ``valid`` on every lap the server sends; the leaderboard versions."""

from __future__ import annotations

from tests.timekeeper.test_car_laps import car, lap  # noqa: F401 - fixture reuse
from tests.timekeeper.test_race_flow import new_race, setup, shift  # noqa: F401 - fixture reuse

NS = "/leaderboard"


def _display(app, event_id: int, track):
    from drem.platform.extensions import socketio

    sio = socketio.test_client(app, namespace=NS)
    state = sio.emit("join", {"event_id": event_id, "track": track}, namespace=NS, callback=True)
    assert "error" not in state, state
    sio.get_received(NS)
    return sio, state


def _console(app, factory, operator, track_id: int):
    from drem.platform.extensions import socketio

    web = app.test_client()
    factory.login(web, operator)
    console = socketio.test_client(app, namespace="/timekeeper", flask_test_client=web)
    assert console.emit("watch", {"track_id": track_id}, namespace="/timekeeper", callback=True)["ok"]
    console.get_received("/timekeeper")
    return console


def _versions(app, event_id: int, track_id: int) -> tuple[int, int]:
    """(track version, event version) as committed."""
    from drem.events.models import Event, Track
    from drem.platform.extensions import db

    with app.app_context():
        versions = (db.session.get(Track, track_id).leaderboard_version,
                    db.session.get(Event, event_id).leaderboard_version)
        db.session.remove()
    return versions


def test_a_car_lap_reaches_the_leaderboard_as_one_update_carrying_the_race(app, client, setup, car):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s, car_id=car["id"])["race_id"]
    assert client.post(f"/api/races/{rid}/start", headers=h).status_code == 200
    board, state = _display(app, s["event"]["id"], s["track_id"])
    answer = lap(car["sio"], 10_432, resets=3)  # 3 resets, 2 allowed: stored, not valid
    assert answer["ok"] and answer["stored"] and answer["lap_number"] == 1
    messages = board.get_received(NS)
    assert [m["name"] for m in messages] == ["lb_update"]
    msg = messages[0]["args"][0]
    assert (msg["from"], msg["to"]) == (state["version"], state["version"] + 1)
    assert msg["lap"]["race_id"] == rid and msg["lap"]["time_ms"] == 10_432 and msg["lap"]["valid"] is False
    assert msg["race"]["race_id"] == rid and msg["race"]["lap_count"] == 1
    assert msg["race"]["last_lap"]["valid"] is False and msg["race"]["best_lap_ms"] is None
    answer = lap(car["sio"], 9_876)
    msg2 = [m["args"][0] for m in board.get_received(NS) if m["name"] == "lb_update"]
    assert len(msg2) == 1 and msg2[0]["from"] == msg["to"] and msg2[0]["lap"]["valid"] is True
    assert [(e["rank"], e["ranking_value_ms"]) for e in msg2[0]["entries"]] == [(1, 9_876)]


def test_a_lap_that_ends_the_race_is_announced_once(app, client, factory, setup):  # noqa: F811
    """The last lap (time up) stores the lap and ends the race in one transaction: the
    console gets one race_state, each display one lb_update with the ended race."""
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    console = _console(app, factory, s["operator"], s["track_id"])
    board, _ = _display(app, s["event"]["id"], s["track_id"])
    combined, _ = _display(app, s["event"]["id"], "combined")
    shift(app, rid, 2 * 60_000 + 500)  # the 2-minute race time ran out during this lap
    assert client.post(f"/api/races/{rid}/laps", json={"source_id": "last"}, headers=h).status_code == 201
    states = [m["args"][0] for m in console.get_received("/timekeeper")]
    assert len(states) == 1 and states[0]["status"] == "ended" and len(states[0]["laps"]) == 1
    versions = dict(zip((s["track_id"], "combined"), _versions(app, s["event"]["id"], s["track_id"]), strict=True))
    for display, track in ((board, s["track_id"]), (combined, "combined")):
        messages = display.get_received(NS)
        assert [m["name"] for m in messages] == ["lb_update"]
        msg = messages[0]["args"][0]
        assert msg["race"]["status"] == "ended"
        assert msg["to"] == versions[track] and msg["from"] == msg["to"] - 1  # the end did not bump


def test_a_started_race_enters_the_boards_at_once(app, client, setup):  # noqa: F811
    """The start makes the race counted: each display gets the race state and one
    ``lb_update`` (the next version) with the racer, still without a time."""
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    board, state = _display(app, s["event"]["id"], s["track_id"])
    assert client.post(f"/api/races/{rid}/start", headers=h).status_code == 200
    messages = {m["name"]: m["args"][0] for m in board.get_received(NS)}
    assert sorted(messages) == ["lb_update", "race_state"]
    assert messages["race_state"]["race_id"] == rid and messages["race_state"]["status"] == "running"
    update = messages["lb_update"]
    assert (update["from"], update["to"]) == (state["version"], state["version"] + 1)
    assert [(e["username"], e["ranking_value_ms"]) for e in update["entries"]] == [(s["racer"]["username"], None)]


def test_race_states_carry_valid_per_lap(app, client, setup):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    shift(app, rid, 5000)
    client.post(f"/api/races/{rid}/laps", json={"source_id": "a"}, headers=h)
    for _ in range(3):  # 3 resets on lap 2: more than the 2 allowed
        client.post(f"/api/races/{rid}/resets", json={"delta": 1}, headers=h)
    shift(app, rid, 5000)
    client.post(f"/api/races/{rid}/laps", json={"source_id": "b"}, headers=h)
    shift(app, rid, 5000)
    client.post(f"/api/races/{rid}/laps", json={"source_id": "c"}, headers=h)
    state = client.patch(f"/api/races/{rid}/laps/3", json={"invalidated": True}, headers=h).get_json()
    assert [(x["lap_number"], x["resets"], x["invalidated"], x["valid"]) for x in state["laps"]] == [
        (1, 0, False, True), (2, 3, False, False), (3, 0, True, False)]
    assert state["best_lap_ms"] == state["laps"][0]["time_ms"]
    dnf = client.post(f"/api/races/{rid}/dnf", json={"source_id": "d"}, headers=h).get_json()
    assert dnf["laps"][-1]["dnf"] is True and dnf["laps"][-1]["valid"] is False
    races = client.get(f"/api/events/{s['event']['id']}/races", headers=h).get_json()["races"]
    assert [x["valid"] for x in races[0]["laps"]] == [True, False, False, False]


def test_each_change_bumps_the_versions_once(app, client, factory, setup):  # noqa: F811
    """A start, a lap, an invalidation, a race delete, a ranking-config change: each moves
    the track's and the event's version on by exactly one; a pause, an end and a submit
    (nothing ranked changes) do not."""
    s, h = setup, setup["op_h"]
    event_id, track_id = s["event"]["id"], s["track_id"]
    rid = new_race(client, s)["race_id"]

    def bumps(action) -> tuple[int, int]:
        before = _versions(app, event_id, track_id)
        action()
        after = _versions(app, event_id, track_id)
        return after[0] - before[0], after[1] - before[1]

    assert bumps(lambda: client.post(f"/api/races/{rid}/start", headers=h)) == (1, 1)  # the race counts now
    shift(app, rid, 5000)
    assert bumps(lambda: client.post(f"/api/races/{rid}/laps", json={"source_id": "a"}, headers=h)) == (1, 1)
    assert bumps(lambda: client.post(f"/api/races/{rid}/pause", headers=h)) == (0, 0)
    assert bumps(lambda: client.patch(f"/api/races/{rid}/laps/1", json={"invalidated": True},
                                      headers=h)) == (1, 1)
    assert bumps(lambda: client.post(f"/api/races/{rid}/end", headers=h)) == (0, 0)
    assert bumps(lambda: client.post(f"/api/races/{rid}/submit", headers=h)) == (0, 0)
    assert bumps(lambda: client.delete(f"/api/races/{rid}", headers=h)) == (1, 1)
    assert bumps(lambda: client.patch(f"/api/events/{event_id}", json={"resets_allowed_per_lap": 0},
                                      headers=factory.headers("admin"))) == (1, 1)


def test_a_stale_process_ranks_the_board_again(app, client, factory, setup):  # noqa: F811
    """A lap recorded by "another worker" (this process heard nothing): the board this
    process holds is behind the database's version, so reading it ranks it again."""
    from drem.events.models import Lap, Race
    from drem.leaderboard import service
    from drem.platform.extensions import db

    s, h = setup, setup["op_h"]
    event_id, track_id = s["event"]["id"], s["track_id"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    before = client.get(f"/api/events/{event_id}/leaderboard?track={track_id}").get_json()
    assert [(e["username"], e["ranking_value_ms"]) for e in before["entries"]] == [(s["racer"]["username"], None)]
    with app.app_context():  # the other worker's transaction: a lap, no signal here
        race = db.session.get(Race, rid)
        db.session.add(Lap(race=race, lap_number=1, time_ms=8765, source="operator", source_id="elsewhere"))
        db.session.commit()
    assert service._boards[(event_id, track_id)].version == before["version"]  # stale
    after = client.get(f"/api/events/{event_id}/leaderboard?track={track_id}").get_json()
    assert after["version"] == before["version"] + 1
    assert [(e["username"], e["ranking_value_ms"]) for e in after["entries"]] == [(s["racer"]["username"], 8765)]
