"""What one lap costs the server: SQL statements from the lap arriving (timer crossing over
HTTP, car lap over the car socket, operator key press) to the ``lb_update`` being sent,
with a realistic board (100 racers with times) and a display in the room.

The bounds are counts, not times: they do not depend on the machine's load, and a change
that brings back a per-lap full recompute (or an N+1) fails here at once. Issue 20 saw
about 15 statements per lap, one summing over every lap of the event.
"""

from __future__ import annotations

import uuid

import pytest

from drem.demo.synthetic import board_export
from tests.timekeeper.test_car_laps import car, lap  # noqa: F401 - fixture reuse

NS = "/leaderboard"
RACERS = 100
#: Statements per lap after the first (every path, SQLite and PostgreSQL): see
#: ``docs/deployment.md`` "Capacity" for what each one is.
MAX_STATEMENTS = {"timer": 12, "car": 12, "operator": 10}
#: Connections taken from the pool per lap (each is one ping: ``pool_pre_ping``): the
#: request's only (the leaderboard gets the lap in the signal and reads nothing).
MAX_CHECKOUTS = 1



@pytest.fixture
def board(app, client, factory):
    """The imported 100-racer event, a running race of racer ``live`` and a display joined
    to the track's board. Yields ids, the operator's headers and the display client."""
    from drem.platform.extensions import socketio

    admin_h = factory.headers("admin")
    resp = client.post("/api/events/import", json=board_export(RACERS, name="Cost Cup", prefix="cost"), headers=admin_h)
    assert resp.status_code == 201, resp.get_json()
    event = resp.get_json()["event"]
    track_id = event["tracks"][0]["id"]
    racers = client.get(f"/api/events/{event['id']}", headers=admin_h).get_json()["racers"]
    live = next(r["user_id"] for r in racers if r["username"] == "live")
    display = socketio.test_client(app, namespace=NS)
    state = display.emit("join", {"event_id": event["id"], "track": track_id}, namespace=NS, callback=True)
    assert len(state["entries"]) == RACERS
    display.get_received(NS)
    yield {"event_id": event["id"], "track_id": track_id, "racer_id": live, "h": admin_h, "display": display}
    display.disconnect(NS)


def _start(client, b, **extra) -> int:
    resp = client.post("/api/races", json={"track_id": b["track_id"], "racer_id": b["racer_id"]} | extra,
                       headers=b["h"])
    assert resp.status_code == 201, resp.get_json()
    rid = resp.get_json()["race_id"]
    assert client.post(f"/api/races/{rid}/start", headers=b["h"]).status_code == 200
    b["display"].get_received(NS)
    return rid


def _updates(b) -> list[dict]:
    return [m["args"][0] for m in b["display"].get_received(NS) if m["name"] == "lb_update"]


def _counted(app, count_queries, send, b, prepare=None) -> list[int]:
    """Statements of each lap sent by ``send(i)`` (``prepare(i)`` runs before, uncounted;
    the first lap warms the process's board and is not counted); every lap must reach the
    display as one ``lb_update`` and take at most :data:`MAX_CHECKOUTS` pooled connections."""
    from sqlalchemy import event

    from drem.platform.extensions import db

    with app.app_context():
        engine = db.engine
    checkouts = []

    def checkout(*_args) -> None:
        checkouts.append(1)

    event.listen(engine, "checkout", checkout)
    counts = []
    try:
        for i in range(4):
            if prepare is not None:
                prepare(i)
            checkouts.clear()
            with count_queries as q:
                send(i)
            assert len(_updates(b)) == 1, f"lap {i + 1} did not reach the display once"
            if i:
                counts.append(q.count)
                assert len(checkouts) <= MAX_CHECKOUTS, f"lap {i + 1}: {len(checkouts)} pool checkouts"
    finally:
        event.remove(engine, "checkout", checkout)
    return counts


def _lap_ran(app, race_id: int, ms: int) -> None:
    """Let the lap in progress run ``ms`` longer (moves its start back; the race's start,
    which the leaderboard ranks, stays)."""
    from drem.events.models import Race
    from drem.platform.extensions import db

    with app.app_context():
        db.session.get(Race, race_id).lap_start_ms -= ms
        db.session.commit()


def test_a_timer_lap_costs_a_bounded_number_of_statements(app, client, board, count_queries):
    rid = _start(client, board)
    timer = client.post(f"/api/tracks/{board['track_id']}/timers", json={"name": "line"}, headers=board["h"])
    headers = {"Authorization": f"Bearer {timer.get_json()['token']}"}
    assert client.post("/api/timer/crossings", json={"crossing_id": "c0", "device_time_ms": 1000},
                       headers=headers).get_json()["status"] == "first"

    def send(i: int) -> None:
        answer = client.post("/api/timer/crossings", json={"crossing_id": f"c{i + 1}",
                                                           "device_time_ms": 1000 + (i + 1) * 10_000},
                             headers=headers).get_json()
        assert answer["stored"], answer

    counts = _counted(app, count_queries, send, board)
    assert rid and max(counts) <= MAX_STATEMENTS["timer"], counts


def test_a_car_lap_costs_a_bounded_number_of_statements(app, client, board, car, count_queries):  # noqa: F811
    _start(client, board, car_id=car["id"])
    car["sio"].get_received("/car")

    def send(i: int) -> None:
        assert lap(car["sio"], 10_000 + i, lap_id=uuid.uuid4().hex)["stored"]

    counts = _counted(app, count_queries, send, board)
    assert max(counts) <= MAX_STATEMENTS["car"], counts


def test_an_operator_lap_costs_a_bounded_number_of_statements(app, client, board, count_queries):
    rid = _start(client, board)

    def send(i: int) -> None:
        resp = client.post(f"/api/races/{rid}/laps", json={"source_id": f"k{i}"}, headers=board["h"])
        assert resp.status_code == 201, resp.get_json()

    counts = _counted(app, count_queries, send, board, prepare=lambda _i: _lap_ran(app, rid, 10_000))
    assert max(counts) <= MAX_STATEMENTS["operator"], counts


def test_the_lap_in_the_signal_is_the_lap_as_committed(app, client, board):
    """The leaderboard ranks the lap from the signal (read before the commit) instead of
    reading it again: the two must be the same, datetimes included."""
    from sqlalchemy.orm import Session

    from drem.leaderboard.service import _lap_row
    from drem.platform.extensions import db
    from drem.platform.signals import lap_recorded

    seen = []

    def spy(_sender, **kwargs) -> None:
        seen.append(kwargs)

    rid = _start(client, board)
    lap_recorded.connect(spy)
    try:
        _lap_ran(app, rid, 10_000)
        assert client.post(f"/api/races/{rid}/laps", json={"source_id": "k1"}, headers=board["h"]).status_code == 201
    finally:
        lap_recorded.disconnect(spy)
    (sent,) = seen
    assert sent["lap"] is not None
    with app.app_context(), Session(db.engine) as s:
        row = _lap_row(s, rid, sent["lap_id"])._asdict()
    assert sent["lap"] == row
