"""Events, tracks and race config through the JSON API and the pages."""

from __future__ import annotations

import pytest

from tests.factories import csrf_from

GOOD = {"name": "Berlin Cup", "date": "2026-12-05", "country_code": "de", "event_type": "official_track_race",
        "sponsor": "ACME", "race_time_min": 4, "resets_allowed_per_lap": "unlimited",
        "ranking_method": "best_average", "averaging_window": 5, "max_runs_per_racer": 2,
        "tracks": [{"name": "Main", "layout": "reinvent_base", "direction": "ccw",
                    "leaderboard_title": "Berlin Cup", "leaderboard_footer": "Powered by drem"},
                   {"name": "Second", "layout": "2022_reinvent_champ_cw", "direction": "cw"}]}


def test_create_event_with_two_tracks(client, factory):
    headers = factory.headers("operator")
    resp = client.post("/api/events", json=GOOD, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    event = resp.get_json()
    assert event["country_code"] == "DE" and event["combined_leaderboard"] is True
    assert event["race_config"] == {"race_time_min": 4, "resets_allowed_per_lap": None,
                                    "ranking_method": "best_average", "averaging_window": 5,
                                    "max_runs_per_racer": 2, "lap_target": None}
    assert [t["layout"] for t in event["tracks"]] == ["reinvent_base", "2022_reinvent_champ_cw"]
    listed = client.get("/api/events", headers=headers).get_json()["events"]
    assert [e["id"] for e in listed] == [event["id"]]


@pytest.mark.parametrize("field,value,message", [
    ("race_time_min", 0, "between 1 and 10"), ("race_time_min", 11, "between 1 and 10"),
    ("resets_allowed_per_lap", 11, "between 0 and 10"), ("resets_allowed_per_lap", "many", "whole number"),
    ("averaging_window", 2, "between 3 and 7"), ("averaging_window", 8, "between 3 and 7"),
    ("max_runs_per_racer", 6, "between 1 and 5"), ("ranking_method", "fastest", "ranking method"),
    ("date", "22.11.2026", "YYYY-MM-DD"), ("name", "", "name is required"), ("country_code", "DEU", "two letters"),
])
def test_out_of_range_race_config_changes_nothing(client, factory, field, value, message):
    headers = factory.headers("admin")
    resp = client.post("/api/events", json=GOOD | {field: value}, headers=headers)
    assert resp.status_code == 400 and message in resp.get_json()["error"]
    assert resp.get_json()["field"] == field
    assert client.get("/api/events", headers=headers).get_json()["events"] == []


def test_lap_count_race_needs_target(client, factory):
    headers = factory.headers("admin")
    resp = client.post("/api/events", json=GOOD | {"ranking_method": "total_time"}, headers=headers)
    assert resp.status_code == 400 and "lap target" in resp.get_json()["error"]
    resp = client.post("/api/events", json=GOOD | {"ranking_method": "total_time", "lap_target": 10}, headers=headers)
    assert resp.status_code == 201


def test_edit_event_is_audited_and_partial(client, factory):
    headers = factory.headers("admin")
    event = client.post("/api/events", json=GOOD, headers=headers).get_json()
    resp = client.patch(f"/api/events/{event['id']}", json={"race_time_min": 6}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["race_config"]["race_time_min"] == 6
    assert resp.get_json()["name"] == "Berlin Cup"
    bad = client.patch(f"/api/events/{event['id']}", json={"race_time_min": 60}, headers=headers)
    assert bad.status_code == 400
    assert client.get(f"/api/events/{event['id']}", headers=headers).get_json()["race_config"]["race_time_min"] == 6
    audit = client.get("/api/audit?action=event.update", headers=headers).get_json()["entries"]
    assert audit[0]["details"]["changes"] == {"race_time_min": [4, 6]}


def test_tracks_and_racers(client, factory):
    headers = factory.headers("operator")
    event = factory.event(tracks=1)
    eid = event["id"]
    resp = client.post(f"/api/events/{eid}/tracks", json={"name": "Outer", "layout": "nope"}, headers=headers)
    assert resp.status_code == 400 and "unknown track layout" in resp.get_json()["error"]
    resp = client.post(f"/api/events/{eid}/tracks", json={"name": "Track 1"}, headers=headers)
    assert resp.status_code == 409
    track = client.post(f"/api/events/{eid}/tracks", json={"name": "Outer", "layout": "reInvent2019_wide"},
                        headers=headers).get_json()
    assert client.get(f"/api/events/{eid}", headers=headers).get_json()["combined_leaderboard"] is True
    first = event["tracks"][0]["id"]
    assert client.delete(f"/api/events/{eid}/tracks/{first}", headers=headers).status_code == 204
    resp = client.delete(f"/api/events/{eid}/tracks/{track['id']}", headers=headers)
    assert resp.status_code == 409 and "at least one track" in resp.get_json()["error"]
    racers = [factory.user("racer") for _ in range(2)]
    for r in racers:
        assert client.post(f"/api/events/{eid}/racers", json={"user_id": r["id"]}, headers=headers).status_code == 201
    regs = client.get(f"/api/events/{eid}", headers=headers).get_json()["racers"]
    assert [r["colour"] for r in regs] == ["blue", "red"]
    operator = factory.user("operator")
    resp = client.post(f"/api/events/{eid}/racers", json={"user_id": operator["id"]}, headers=headers)
    assert resp.status_code == 400
    # a racer registers themselves, twice: stored once
    racer_h = {"Authorization": f"Bearer {factory.token(factory.user('racer'))}"}
    assert client.post(f"/api/events/{eid}/join", headers=racer_h).status_code == 201
    assert client.post(f"/api/events/{eid}/join", headers=racer_h).status_code == 201
    assert len(client.get(f"/api/events/{eid}", headers=headers).get_json()["racers"]) == 3


def test_event_pages_create_with_two_tracks(client, factory):
    admin = factory.user("admin")
    factory.login(client, admin)
    token = csrf_from(client.get("/events/new").get_data(as_text=True))
    resp = client.post("/events/new", data={
        "csrf_token": token, "name": "Paris Open", "date": "2026-12-01", "race_time_min": "3",
        "resets_allowed_per_lap": "", "ranking_method": "best_lap", "averaging_window": "3",
        "max_runs_per_racer": "", "lap_target": "", "event_type": "other",
        "track_name": ["North", "South", ""], "track_layout": ["reinvent_base", "reInvent2019_track", "other"]})
    assert resp.status_code == 302
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Paris Open" in page and "North" in page and "South" in page and "combined leaderboard" in page
    edit = client.get(resp.headers["Location"] + "/edit").get_data(as_text=True)
    assert 'value="Paris Open"' in edit


def test_delete_event(client, factory):
    headers = factory.headers("admin")
    event = factory.event()
    assert client.delete(f"/api/events/{event['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/events/{event['id']}", headers=headers).status_code == 404
