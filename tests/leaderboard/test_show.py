"""The show: the commentator's data (positions and gaps are the ranking engine's), the run
summary of the big screen, statistics, and the refusals of each."""

from __future__ import annotations

import pytest

from tests.leaderboard.builders import Races


@pytest.fixture
def show(app, factory):
    """Best lap, resets allowed 1, one track (plus a second one for the combined board):

    anna 9000 (submitted), ben 9400 then a running race with 9600, 9300 (2 resets: invalid),
    9100; dora 8000 in a discarded race (not counted); on track 2 carol is set up and
    waiting (ready: one live race per track, so a ready race is a track's next racer).
    After ben's laps: anna 9000 (1), ben 9100 (2, +100 to the leader and to the next place).
    """
    races = Races(app)
    ev = factory.event(tracks=2, resets_allowed_per_lap=1)
    t1, t2 = (t["id"] for t in ev["tracks"])
    ids = {"event": ev["id"], "t1": t1, "t2": t2, "races": races}
    for name, cc in (("anna", "SE"), ("ben", "NL"), ("carol", "FR"), ("dora", "JP")):
        ids[name] = factory.user("racer", name, password=None, country_code=cc)["id"]
    ids["anna_race"] = races.race(ev["id"], t1, ids["anna"], [9000])["id"]
    ids["ben_first"] = races.race(ev["id"], t1, ids["ben"], [9400, 9700])["id"]
    races.race(ev["id"], t1, ids["dora"], [8000], status="discarded")
    ids["ben_race"] = races.race(ev["id"], t1, ids["ben"], [9600, (9300, 2), 9100], status="running")["id"]
    races.race(ev["id"], t2, ids["carol"], [], status="ready")
    return ids


def _as(client, factory, role):
    factory.login(client, factory.user(role))
    return client


def test_commentator_follows_the_live_race(client, factory, show):
    c = _as(client, factory, "commentator")
    resp = c.get(f"/api/events/{show['event']}/commentator?track={show['t1']}")
    assert resp.status_code == 200, resp.get_json()
    d = resp.get_json()
    race = d["race"]
    assert race["race_id"] == show["ben_race"] and race["racer"]["username"] == "ben"
    assert race["racer"]["country_code"] == "NL" and race["status"] == "running"
    assert [(lap["time_ms"], lap["valid"]) for lap in race["laps"]] == [(9600, True), (9300, False), (9100, True)]
    assert race["best_lap_ms"] == 9100 and race["valid_laps"] == 2 and race["resets"] == 2
    # the ranking engine's numbers, as the public leaderboard has them
    board = client.get(f"/api/events/{show['event']}/leaderboard?track={show['t1']}").get_json()
    ben = next(e for e in board["entries"] if e["username"] == "ben")
    assert d["position"]["rank"] == ben["rank"] == 2 and d["position"]["count"] == 2
    assert d["position"]["gap_to_leader_ms"] == ben["gap_to_leader_ms"] == 100
    assert d["position"]["gap_to_next_ms"] == ben["gap_to_ahead_ms"] == 100
    assert d["position"]["projected_rank"] == 2
    assert [r["race_id"] for r in d["previous_runs"]] == [show["ben_first"]]
    assert d["previous_runs"][0]["best_lap_ms"] == 9400 and d["previous_runs"][0]["laps"] == 2
    assert d["next_racers"] == []  # the track's one live race runs: nobody set up after it
    assert [e["username"] for e in d["top"]] == ["anna", "ben"]


def test_projection_places_a_faster_run_ahead(client, factory, show):
    """A run whose laps point to a better value projects a better place: ben drives 8900."""
    show["races"].lap(show["ben_race"], 8900)
    c = _as(client, factory, "commentator")
    d = c.get(f"/api/events/{show['event']}/commentator?track={show['t1']}").get_json()
    assert d["position"]["rank"] == 1 and d["position"]["projected_rank"] == 1
    assert d["position"]["gap_to_leader_ms"] == 0 and d["position"]["gap_to_next_ms"] is None


def test_projected_value_by_method(ctx, factory):
    from drem.events.models import Event
    from drem.leaderboard.commentator import projected_value
    from drem.platform.extensions import db

    ev = db.session.get(Event, factory.event(ranking_method="best_average", averaging_window=3)["id"])
    assert projected_value(ev, [10_000, 11_000]) == 10_500  # short of the window: mean so far
    assert projected_value(ev, [12_000, 10_000, 11_000, 9_000]) == 10_000
    assert projected_value(ev, []) is None
    ev.ranking_method, ev.lap_target = "total_time", 4
    assert projected_value(ev, [10_000, 11_000]) == 42_000  # mean x target
    assert projected_value(ev, [10_000, 11_000, 9_000, 10_000, 1]) == 40_000


def test_commentator_refusals(client, factory, show):
    url = f"/api/events/{show['event']}/commentator"
    assert client.get(f"{url}?track={show['t1']}").status_code in (401, 302)  # not logged in
    racer = client.application.test_client()
    factory.login(racer, factory.user("racer"))
    assert racer.get(f"{url}?track={show['t1']}").status_code == 403
    c = _as(client, factory, "commentator")
    resp = c.get(f"{url}?track=combined")
    assert resp.status_code == 404 and "one track" in resp.get_json()["error"]
    assert c.get(f"{url}?track=999999").status_code == 404
    page = c.get(f"/events/{show['event']}/commentator?track={show['t1']}")
    assert page.status_code == 200 and b"cm-chart" in page.data and b"chart.umd.min.js" in page.data


def test_commentator_without_a_race(client, factory, show):
    c = _as(client, factory, "commentator")
    d = c.get(f"/api/events/{show['event']}/commentator?track={show['t2']}").get_json()
    assert d["race"] is None and d["position"] is None and d["top"] == []
    assert [(n["racer"], n["country_code"]) for n in d["next_racers"]] == [("carol", "FR")]


def test_run_summary(client, show, factory):
    races = show["races"]
    # ben's running race: before it he was 2nd (9400), after it still 2nd (9100)
    s = client.get(f"/api/events/{show['event']}/races/{show['ben_race']}/summary").get_json()
    assert (s["rank_before"], s["rank"], s["rank_change"], s["count"]) == (2, 2, 0, 2)
    assert s["gap_to_leader_ms"] == 100 and s["best_lap_ms"] == 9100
    assert (s["laps"], s["valid_laps"], s["resets"]) == (3, 2, 2)
    # a new racer straight to the top: eve 8800 -> rank 1, no position before
    eve_id = factory.user("racer", "eve", password=None)["id"]
    run = races.race(show["event"], show["t1"], eve_id, [8800])
    s = client.get(f"/api/events/{show['event']}/races/{run['id']}/summary").get_json()
    assert (s["rank_before"], s["rank"], s["rank_change"], s["gap_to_leader_ms"]) == (None, 1, None, 0)
    # ben again, now behind eve: his earlier run moves him from 3rd (9400) to 3rd
    s = client.get(f"/api/events/{show['event']}/races/{show['ben_race']}/summary").get_json()
    assert (s["rank_before"], s["rank"]) == (3, 3)


def test_run_summary_refusals(client, show, factory):
    from drem.events.models import Race
    from drem.platform.extensions import db

    with client.application.app_context():
        discarded = db.session.scalar(db.select(Race.id).where(Race.status == "discarded"))
        ready = db.session.scalar(db.select(Race.id).where(Race.status == "ready"))
    for race_id in (discarded, ready, 999999):
        resp = client.get(f"/api/events/{show['event']}/races/{race_id}/summary")
        assert resp.status_code == 404, race_id
    other = factory.event()
    assert client.get(f"/api/events/{other['id']}/races/{show['ben_race']}/summary").status_code == 404


def test_statistics(client, show, factory):
    d = client.get(f"/api/events/{show['event']}/statistics").get_json()
    # counted: anna 1 lap, ben 2 + 3 laps; dora's discarded run and carol's ready race do not count
    assert (d["racers"], d["runs"], d["laps"], d["valid_laps"], d["resets"]) == (2, 3, 6, 5, 2)
    assert d["countries"] == {"SE": 1, "NL": 1}
    assert d["resets_per_lap"] == round(2 / 6, 3)
    assert [f["time_ms"] for f in d["fastest_laps"]] == [9000, 9100, 9400, 9600, 9700]
    assert sum(h["laps"] for h in d["laps_per_hour"]) == 6
    other = factory.event()
    Races(client.application).race(other["id"], other["tracks"][0]["id"], show["carol"], [8500])
    everything = client.get("/api/events/statistics").get_json()
    assert everything["events"] == 2 and everything["racers"] == 3 and everything["laps"] == 7
    assert everything["fastest_laps"][0]["time_ms"] == 8500
    assert client.get(f"/events/{show['event']}/statistics?lang=de").status_code == 200
    assert b"Statistik" in client.get("/statistics?lang=de").data
    assert client.get("/api/events/999999/statistics").status_code == 404
