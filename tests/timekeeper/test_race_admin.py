"""Race admin: list, edit and delete laps and races; audited; the page renders."""

from __future__ import annotations

from tests.timekeeper.test_race_flow import new_race, setup, shift  # noqa: F401 - fixture reuse


def _finished_race(app, client, s, laps=(5000, 6000, 7000)) -> int:
    h = s["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    for i, ms in enumerate(laps):
        shift(app, rid, ms)
        assert client.post(f"/api/races/{rid}/laps", json={"source_id": f"l{i}"}, headers=h).status_code == 201
    client.post(f"/api/races/{rid}/end", headers=h)
    client.post(f"/api/races/{rid}/submit", headers=h)
    return rid


def test_edit_and_delete_laps_and_races(app, client, setup, factory):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = _finished_race(app, client, s)
    eid = s["event"]["id"]
    races = client.get(f"/api/events/{eid}/races?racer_id={s['racer']['id']}", headers=h).get_json()["races"]
    assert [r["id"] for r in races] == [rid] and len(races[0]["laps"]) == 3
    lap_ids = [lap["id"] for lap in races[0]["laps"]]
    resp = client.patch(f"/api/laps/{lap_ids[0]}", json={"time_ms": 4321, "invalidated": True}, headers=h)
    assert resp.status_code == 200 and resp.get_json()["time_ms"] == 4321
    for bad in ({"time_ms": -5}, {"time_ms": 1.5}, {"resets": "x"}, {}):
        assert client.patch(f"/api/laps/{lap_ids[0]}", json=bad, headers=h).status_code == 400
    assert client.delete(f"/api/laps/{lap_ids[1]}", headers=h).status_code == 204
    laps = client.get(f"/api/races/{rid}", headers=h).get_json()["laps"]
    assert [(x["lap_number"], x["invalidated"]) for x in laps] == [(1, True), (2, False)]
    assert laps[1]["time_ms"] >= 7000
    audit = client.get("/api/audit", headers=factory.headers("admin")).get_json()["entries"]
    actions = [e["action"] for e in audit]
    assert "lap.edit" in actions and "lap.delete" in actions
    edit = next(e for e in audit if e["action"] == "lap.edit")
    assert edit["details"]["after"] == {"time_ms": 4321, "invalidated": True}
    web = app.test_client()
    factory.login(web, s["operator"])
    page = web.get(f"/events/{eid}/races").get_data(as_text=True)
    assert s["racer"]["username"] in page and 'value="4321"' in page
    assert client.delete(f"/api/races/{rid}", headers=factory.headers("racer")).status_code == 403
    assert client.delete(f"/api/races/{rid}", headers=h).status_code == 204
    assert client.get(f"/api/events/{eid}/races", headers=h).get_json()["races"] == []


def test_running_race_cannot_be_deleted(app, client, setup):  # noqa: F811
    s, h = setup, setup["op_h"]
    rid = new_race(client, s)["race_id"]
    client.post(f"/api/races/{rid}/start", headers=h)
    resp = client.delete(f"/api/races/{rid}", headers=h)
    assert resp.status_code == 409 and "end the race" in resp.get_json()["error"]
