"""Leaderboards from the database: per track and combined, the event's method decides,
which races count, live pushes, and the results exports (CSV numbers, JSON round trip).

Races and laps are written with tests/leaderboard/builders.py; expectations are
computed by hand in the comments.
"""

from __future__ import annotations

import csv
import io

import pytest

from tests.leaderboard.builders import Races


@pytest.fixture
def races(app):
    return Races(app)


@pytest.fixture
def emitted(monkeypatch):
    """Every Socket.IO message the leaderboard sends: (name, data, room)."""
    from drem.leaderboard import service

    sent: list[tuple[str, dict, str]] = []
    monkeypatch.setattr(service.socketio, "emit",
                        lambda name, data, namespace=None, to=None: sent.append((name, data, to)))
    return sent


def _board(client, event_id, track):
    resp = client.get(f"/api/events/{event_id}/leaderboard?track={track}")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _rows(state):
    return [(e["rank"], e["username"], e["ranking_value_ms"], e["gap_to_leader_ms"]) for e in state["entries"]]


@pytest.fixture
def two_tracks(factory, races):
    """Event, best lap, resets allowed 1, two tracks:

    track 1: alice 9000, 8500 (2 resets: invalid), 8800 -> 8800; bob 8900, 8700 -> 8700;
             carol 7000 in a discarded race and a ready race: not counted;
    track 2: alice 8600; carol 8650, 8000 (invalidated) -> 8650.
    """
    ev = factory.event(tracks=2, resets_allowed_per_lap=1)
    t1, t2 = (t["id"] for t in ev["tracks"])
    alice = factory.user("racer", "alice", country_code="DE", password=None)
    bob = factory.user("racer", "bob", country_code="GB", password=None)
    carol = factory.user("racer", "carol", country_code="FR", password=None)
    ids = {"event": ev["id"], "t1": t1, "t2": t2, "alice": alice["id"], "bob": bob["id"], "carol": carol["id"]}
    ids["a1"] = races.race(ev["id"], t1, alice["id"], [9000, (8500, 2), 8800])
    ids["b1"] = races.race(ev["id"], t1, bob["id"], [8900, 8700])
    races.race(ev["id"], t1, carol["id"], [7000], status="discarded")
    races.race(ev["id"], t1, carol["id"], [], status="ready")
    ids["a2"] = races.race(ev["id"], t2, alice["id"], [8600])
    ids["c3"] = races.race(ev["id"], t2, carol["id"], [8650, (8000, 0, True)])
    return ids


def test_per_track_and_combined(client, two_tracks):
    e = two_tracks
    s1 = _board(client, e["event"], e["t1"])
    assert _rows(s1) == [(1, "bob", 8700, 0), (2, "alice", 8800, 100)]
    alice = s1["entries"][1]
    assert alice["country"] == "DE"
    assert alice["summary"]["valid_laps"] == 2 and alice["summary"]["total_laps"] == 3
    assert s1["title"].endswith("Track 1") and s1["track"] == e["t1"]
    assert _rows(_board(client, e["event"], e["t2"])) == [(1, "alice", 8600, 0), (2, "carol", 8650, 50)]
    combined = _board(client, e["event"], "combined")
    assert _rows(combined) == [(1, "alice", 8600, 0), (2, "carol", 8650, 50), (3, "bob", 8700, 100)]
    assert combined["entries"][0]["summary"]["runs"] == 2  # one run on each track
    assert {t["id"] for t in combined["tracks"]} == {e["t1"], e["t2"]}
    # an unknown track or event is a 404, not a crash
    assert client.get(f"/api/events/{e['event']}/leaderboard?track=987654").status_code == 404
    assert client.get("/api/events/987654/leaderboard").status_code == 404


def test_the_events_ranking_method_decides(client, factory, races):
    """Best average of 3: X 9000, 9000, 9000 -> 9000.0; Y 8000, 10000, 9500, 9400 -> best
    window 27500/3 = 9166.67 (best lap 8000). Best lap puts Y first, best average X."""
    ev = factory.event()
    track = ev["tracks"][0]["id"]
    x, y = factory.user("racer", "xavier", password=None), factory.user("racer", "yvonne", password=None)
    races.race(ev["id"], track, x["id"], [9000, 9000, 9000])
    races.race(ev["id"], track, y["id"], [8000, 10000, 9500, 9400])
    assert [r[1:3] for r in _rows(_board(client, ev["id"], track))] == [("yvonne", 8000), ("xavier", 9000)]
    # the URL cannot switch the method: only the event's race config does
    assert _rows(_board(client, ev["id"], f"{track}&method=best_average"))[0][1] == "yvonne"
    resp = client.patch(f"/api/events/{ev['id']}", json={"ranking_method": "best_average", "averaging_window": 3},
                        headers=factory.headers("admin"))
    assert resp.status_code == 200
    state = _board(client, ev["id"], track)
    assert [(r[1], round(r[2], 2)) for r in _rows(state)] == [("xavier", 9000.0), ("yvonne", 9166.67)]
    assert state["entries"][1]["summary"]["best_average_first_lap"] == 1
    assert state["event"]["ranking_method"] == "best_average"


def test_running_races_count_discarded_do_not(client, factory, races, emitted):
    ev = factory.event()
    track = ev["tracks"][0]["id"]
    dave = factory.user("racer", "dave", password=None)
    race = races.race(ev["id"], track, dave["id"], [], status="running")
    state = _board(client, ev["id"], track)
    assert _rows(state) == [(1, "dave", None, None)]  # a run without laps: on the board, no time
    assert state["races"][str(track)]["status"] == "running"
    assert state["races"][str(track)]["racer"]["username"] == "dave"
    races.lap(race["id"], 8123)
    assert _rows(_board(client, ev["id"], track)) == [(1, "dave", 8123, 0)]
    emitted.clear()
    races.set(race["id"], status="discarded", live_track_id=None)
    assert _board(client, ev["id"], track)["entries"] == []
    full = [(name, data) for name, data, _room in emitted if name == "lb_full"]
    assert full and full[0][1]["entries"] == []


def test_lap_pushes_a_small_change(app, client, factory, races, emitted):
    """Two racers on one track; laps arrive one by one and each push carries only the
    entries that changed, versions chain from one push to the next."""
    from drem.leaderboard.service import room

    ev = factory.event()
    track = ev["tracks"][0]["id"]
    a, b = factory.user("racer", "anna", password=None), factory.user("racer", "ben", password=None)
    ra = races.race(ev["id"], track, a["id"], [9000], status="submitted")
    rb = races.race(ev["id"], track, b["id"], [9500], status="running")
    v0 = _board(client, ev["id"], track)["version"]

    races.lap(rb["id"], 9400)  # ben improves but stays 2nd
    updates = [(d, r) for n, d, r in emitted if n == "lb_update"]
    assert {r for _d, r in updates} == {room(ev["id"], track), room(ev["id"], "combined")}
    msg = next(d for d, r in updates if r == room(ev["id"], track))
    assert msg["from"] == v0 and msg["count"] == 2 and msg["highlight"] == b["id"]
    assert [(e["username"], e["rank"], e["ranking_value_ms"]) for e in msg["entries"]] == [("ben", 2, 9400)]
    assert msg["lap"]["time_ms"] == 9400 and msg["lap"]["valid"] is True

    emitted.clear()
    races.lap(rb["id"], 8000)  # ben takes the lead: both entries change rank
    msg2 = next(d for n, d, r in emitted if n == "lb_update" and r == room(ev["id"], track))
    assert msg2["from"] == msg["to"]
    assert [(e["username"], e["rank"]) for e in msg2["entries"]] == [("ben", 1), ("anna", 2)]
    assert msg2["to"] == _board(client, ev["id"], track)["version"]

    emitted.clear()
    races.lap(rb["id"], 9900)  # no improvement: ben's lap counts change, no highlight
    msg3 = next(d for n, d, r in emitted if n == "lb_update" and r == room(ev["id"], track))
    assert msg3["highlight"] is None
    assert [e["summary"]["valid_laps"] for e in msg3["entries"]] == [4]
    assert ra  # anna's race stays untouched


def test_a_lap_recorded_by_another_process(app, client, factory, races, emitted):
    """This process's board is behind (a lap went through another worker): the next lap's
    push still starts from the version the displays have and carries the right change."""
    from drem.leaderboard import service

    ev = factory.event()
    track = ev["tracks"][0]["id"]
    a, b = factory.user("racer", "anna", password=None), factory.user("racer", "ben", password=None)
    races.race(ev["id"], track, a["id"], [9000])
    rb = races.race(ev["id"], track, b["id"], [9500], status="running")
    _board(client, ev["id"], track)  # this process ranks the track now
    races.lap(rb["id"], 8900, notify=False)  # "another worker": this process hears nothing
    with app.app_context():
        with service._reading() as s:
            expected_from = service.read_version(s, ev["id"], track)
        assert service._boards[(ev["id"], track)].version == expected_from - 1  # this process is behind
    races.lap(rb["id"], 8800)
    msg = next(d for n, d, r in emitted if n == "lb_update" and r == service.room(ev["id"], track))
    assert msg["from"] == expected_from
    assert [(e["username"], e["rank"], e["ranking_value_ms"]) for e in msg["entries"]] == [("ben", 1, 8800)]
    service.clear_cache()
    fresh = _board(client, ev["id"], track)
    assert msg["to"] == fresh["version"]
    assert _rows(fresh) == [(1, "ben", 8800, 0), (2, "anna", 9000, 200)]


def test_edits_and_deletions_recompute(client, factory, races, emitted, two_tracks):
    e = two_tracks
    _board(client, e["event"], e["t1"])
    # bob's 8700 becomes invalid: bob falls back to 8900 and behind alice's 8800
    races.edit_lap(e["b1"]["lap_ids"][1], invalidated=True)
    full = [d for n, d, r in emitted if n == "lb_full" and r == f"lb:{e['event']}:{e['t1']}"]
    assert _rows(full[-1]) == [(1, "alice", 8800, 0), (2, "bob", 8900, 100)]
    assert _rows(_board(client, e["event"], e["t1"])) == [(1, "alice", 8800, 0), (2, "bob", 8900, 100)]
    # alice's track-2 race deleted: combined best of alice is now 8800 (track 1)
    races.delete(e["a2"]["id"])
    assert _rows(_board(client, e["event"], "combined")) == [
        (1, "carol", 8650, 0), (2, "alice", 8800, 150), (3, "bob", 8900, 250)]
    assert _rows(_board(client, e["event"], e["t2"])) == [(1, "carol", 8650, 0)]
    combined = [d for n, d, r in emitted if n == "lb_full" and r == f"lb:{e['event']}:combined"]
    assert _rows(combined[-1])[0][1] == "carol"


def test_incremental_equals_from_scratch(client, factory, races):
    """Laps pushed one by one give the same board as ranking the database from scratch."""
    import random

    from drem.leaderboard import service

    rnd = random.Random(8)
    ev = factory.event(ranking_method="best_average", averaging_window=3, resets_allowed_per_lap=2)
    track = ev["tracks"][0]["id"]
    users = [factory.user("racer", f"r{i}", password=None) for i in range(4)]
    live = [races.race(ev["id"], track, u["id"], [rnd.randint(8000, 9999)], status="submitted")
            for u in users[:3]]
    _board(client, ev["id"], track)
    for _ in range(12):
        race = rnd.choice(live)
        races.lap(race["id"], rnd.randint(7000, 11000), resets=rnd.choice([0, 0, 1, 3]))
    incremental = _board(client, ev["id"], track)
    service.clear_cache()
    assert _board(client, ev["id"], track)["entries"] == incremental["entries"]


# ------------------------------------------------------------------------------ exports


def _csv(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_csv_exports_hold_the_right_numbers(client, factory, two_tracks):
    e = two_tracks
    headers = factory.headers("operator")
    assert client.get(f"/api/events/{e['event']}/laps.csv").status_code == 401
    assert client.get(f"/api/events/{e['event']}/laps.csv", headers=factory.headers("racer")).status_code == 403
    laps = _csv(client.get(f"/api/events/{e['event']}/laps.csv", headers=headers))
    assert len(laps) == 3 + 2 + 1 + 1 + 2  # every lap of every race, counted or not
    alice1 = [r for r in laps if r["race_id"] == str(e["a1"]["id"])]
    assert [(r["lap_number"], r["time_ms"], r["time_s"], r["resets"], r["valid"]) for r in alice1] == [
        ("1", "9000", "9.000", "0", "true"), ("2", "8500", "8.500", "2", "false"), ("3", "8800", "8.800", "0", "true")]
    discarded = [r for r in laps if r["race_status"] == "discarded"]
    assert discarded[0]["counted"] == "false" and discarded[0]["valid"] == "false"
    carol = [r for r in laps if r["race_id"] == str(e["c3"]["id"])]
    assert [(r["invalidated"], r["valid"]) for r in carol] == [("false", "true"), ("true", "false")]

    racers = _csv(client.get(f"/api/events/{e['event']}/racers.csv", headers=headers))
    by_board = {}
    for r in racers:
        by_board.setdefault(r["leaderboard"], []).append(
            (r["rank"], r["username"], r["ranking_value_ms"], r["gap_to_leader_ms"], r["valid_laps"], r["total_laps"]))
    assert by_board["Track 1"] == [("1", "bob", "8700", "0", "2", "2"), ("2", "alice", "8800", "100", "2", "3")]
    assert by_board["Track 2"] == [("1", "alice", "8600", "0", "1", "1"), ("2", "carol", "8650", "50", "1", "2")]
    assert [row[1] for row in by_board["combined"]] == ["alice", "carol", "bob"]
    assert by_board["combined"][0][4:] == ("3", "4")  # alice: 2 + 1 valid of 3 + 1 laps


def _comparable(state):
    """A leaderboard without database ids (they differ after an import)."""
    out = []
    for e in state["entries"]:
        summary = {k: v for k, v in e["summary"].items() if not k.endswith("race_id")}
        out.append((e["rank"], e["username"], e["country"], e["ranking_value_ms"], e["gap_to_leader_ms"],
                    e["gap_to_ahead_ms"], tuple(sorted(summary.items()))))
    return out


def test_json_export_reimports_into_an_empty_database(app, client, factory, two_tracks):
    from drem.leaderboard.service import clear_cache
    from drem.platform.extensions import db

    e = two_tracks
    headers = factory.headers("admin")
    resp = client.get(f"/api/events/{e['event']}/export.json", headers=headers)
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    doc = resp.get_json()
    assert doc["format"] == "drem-event" and len(doc["races"]) == 6 and len(doc["tracks"]) == 2
    before = {k: _comparable(_board(client, e["event"], k)) for k in (e["t1"], e["t2"], "combined")}
    before_laps = [{k: v for k, v in r.items() if k not in ("event_id", "track_id", "race_id", "racer_id")}
                   for r in _csv(client.get(f"/api/events/{e['event']}/laps.csv", headers=headers))]

    with app.app_context():  # an empty database: no event, no racer, no user at all
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
    clear_cache()
    admin_headers = factory.headers("admin")
    assert client.post("/api/events/import", json={"format": "nope"}, headers=admin_headers).status_code == 400
    assert client.post("/api/events/import", json=doc, headers=factory.headers("racer")).status_code == 403
    resp = client.post("/api/events/import", json=doc, headers=admin_headers)
    assert resp.status_code == 201, resp.get_json()
    answer = resp.get_json()
    assert sorted(answer["created_users"]) == ["alice", "bob", "carol"]
    assert answer["races"] == 5 and answer["laps"] == 9  # the ready race without laps is skipped
    new = answer["event"]
    t1, t2 = (t["id"] for t in new["tracks"])
    assert new["race_config"] == doc["event"]["race_config"]
    for old_key, new_key in ((e["t1"], t1), (e["t2"], t2), ("combined", "combined")):
        assert _comparable(_board(client, new["id"], new_key)) == before[old_key]
    after_laps = [{k: v for k, v in r.items() if k not in ("event_id", "track_id", "race_id", "racer_id")}
                  for r in _csv(client.get(f"/api/events/{new['id']}/laps.csv", headers=admin_headers))]
    assert after_laps == before_laps
    with app.app_context():
        from drem.auth.service import find_user

        assert find_user("alice").password_hash is None and find_user("alice").country_code == "DE"
