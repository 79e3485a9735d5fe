"""The race queue's JSON API and Socket.IO namespace with the Flask test client: staff
routes, a racer's own routes, and every refusal (a racer cannot add others, check in for
someone else or with someone else's model; wrong roles get 403)."""

from __future__ import annotations

import pytest

from tests.race_queue.conftest import add_model

NS = "/queue"


@pytest.fixture
def tokens(factory, venue):
    """Bearer headers: the operator, a commentator, racers 0 and 1."""
    def h(user):
        return {"Authorization": f"Bearer {factory.token(user)}"}

    return {"op": h(venue.operator), "commentator": h(factory.user("commentator", password=None)),
            "r0": h(venue.racers[0]), "r1": h(venue.racers[1])}


def test_a_racer_joins_checks_in_and_leaves_through_the_api(app, client, venue, tokens):
    model = add_model(app, venue.racers[0]["id"])
    resp = client.post("/api/me/queue", json={"track_id": venue.track}, headers=tokens["r0"])
    assert resp.status_code == 201, resp.get_json()
    entry = resp.get_json()["entry_id"]
    assert client.post("/api/me/queue", json={"track_id": venue.track}, headers=tokens["r0"]).status_code == 409
    resp = client.post(f"/api/me/queue/{entry}/check-in", json={"model_id": model}, headers=tokens["r0"])
    assert resp.get_json() == {"entry_id": entry, "state": "checked_in", "position": 1}
    mine = client.get(f"/api/me/queue?event_id={venue.event['id']}", headers=tokens["r0"]).get_json()["tracks"]
    assert mine[0]["entry"]["place"] == 1 and mine[0]["entry"]["model"]["id"] == model
    assert mine[0]["entry"]["wait_ms"] == 0 and mine[0]["turnaround_ms"] == 300_000
    assert client.delete(f"/api/me/queue/{entry}", headers=tokens["r0"]).get_json() == {"ok": True}
    mine = client.get(f"/api/me/queue?event_id={venue.event['id']}", headers=tokens["r0"]).get_json()["tracks"]
    assert mine[0]["entry"] is None


def test_racer_refusals(app, client, venue, tokens):
    other_model = add_model(app, venue.racers[1]["id"])
    # a racer cannot add someone else (staff route)
    resp = client.post(f"/api/tracks/{venue.track}/queue", json={"racer_id": venue.racers[1]["id"]},
                       headers=tokens["r0"])
    assert resp.status_code == 403
    entry = client.post("/api/me/queue", json={"track_id": venue.track}, headers=tokens["r1"]).get_json()["entry_id"]
    # nor check in for someone else, by either route
    resp = client.post(f"/api/me/queue/{entry}/check-in", json={}, headers=tokens["r0"])
    assert resp.status_code == 403 and resp.get_json()["error"] == "that is not your place in the queue"
    assert client.post(f"/api/queue/entries/{entry}/check-in", json={}, headers=tokens["r0"]).status_code == 403
    assert client.delete(f"/api/me/queue/{entry}", headers=tokens["r0"]).status_code == 403
    # nor pick someone else's model
    mine = client.post("/api/me/queue", json={"track_id": venue.track}, headers=tokens["r0"]).get_json()["entry_id"]
    resp = client.post(f"/api/me/queue/{mine}/check-in", json={"model_id": other_model}, headers=tokens["r0"])
    assert resp.status_code == 403 and "another racer" in resp.get_json()["error"]
    # nor run the queue
    for method, url in (("POST", f"/api/tracks/{venue.track}/queue/call-next"),
                        ("POST", f"/api/queue/entries/{entry}/skip"), ("DELETE", f"/api/queue/entries/{entry}"),
                        ("PUT", f"/api/tracks/{venue.track}/queue/settings"), ("GET", f"/api/tracks/{venue.track}/queue")):
        assert client.open(url, method=method, json={}, headers=tokens["r0"]).status_code == 403, url
    # nothing was lost or changed by the refusals
    queue = client.get(f"/api/tracks/{venue.track}/queue", headers=tokens["op"]).get_json()["queue"]
    assert [(e["id"], e["state"], e["model"]) for e in queue["entries"]] == [(entry, "waiting", None),
                                                                            (mine, "waiting", None)]


def test_staff_refusals_and_bad_input(client, venue, tokens):
    # a commentator sees the queue but does not run it
    assert client.get(f"/api/tracks/{venue.track}/queue", headers=tokens["commentator"]).status_code == 200
    resp = client.post(f"/api/tracks/{venue.track}/queue", json={"racer_id": venue.racers[0]["id"]},
                       headers=tokens["commentator"])
    assert resp.status_code == 403
    # an operator does not join queues as a racer
    assert client.post("/api/me/queue", json={"track_id": venue.track}, headers=tokens["op"]).status_code == 403
    op = tokens["op"]
    assert client.post(f"/api/tracks/{venue.track}/queue", json={}, headers=op).get_json() == \
        {"error": "racer_id is required", "field": "racer_id"}
    assert client.post("/api/tracks/987654/queue", json={"racer_id": venue.racers[0]["id"]},
                       headers=op).status_code == 404
    assert client.post(f"/api/tracks/{venue.track}/queue", json={"racer_id": venue.stranger["id"]},
                       headers=op).status_code == 400
    assert client.post("/api/queue/entries/987654/skip", json={}, headers=op).status_code == 404
    assert client.put(f"/api/tracks/{venue.track}/queue/settings", json={"skip_back": -1},
                      headers=op).status_code == 400
    assert client.get("/api/me/queue", headers=tokens["r0"]).status_code == 400  # event_id missing


def test_the_operator_runs_the_queue(client, venue, tokens):
    op = tokens["op"]
    ids = []
    for racer in venue.racers[:3]:
        resp = client.post(f"/api/tracks/{venue.track}/queue", json={"racer_id": racer["id"]}, headers=op)
        assert resp.status_code == 201
        ids.append(resp.get_json()["entry_id"])
    resp = client.post(f"/api/tracks/{venue.track}/queue/call-next", json={}, headers=op)
    assert resp.status_code == 409 and resp.get_json()["error"] == "nobody is checked in on this track's queue"
    for entry in ids:
        assert client.post(f"/api/queue/entries/{entry}/check-in", json={}, headers=op).status_code == 200
    called = client.post(f"/api/tracks/{venue.track}/queue/call-next", json={}, headers=op).get_json()
    assert called["entry_id"] == ids[0] and called["queue"]["next"][0] == ids[0]
    assert client.put(f"/api/tracks/{venue.track}/queue/settings", json={"skip_back": 1},
                      headers=op).get_json()["queue"]["skip_back"] == 1
    skipped = client.post(f"/api/queue/entries/{ids[0]}/skip", json={}, headers=op).get_json()
    assert [(e["id"], e["position"], e["state"]) for e in sorted(skipped["queue"]["entries"], key=lambda e: e["position"])] \
        == [(ids[1], 1, "checked_in"), (ids[0], 2, "skipped"), (ids[2], 3, "checked_in")]
    removed = client.delete(f"/api/queue/entries/{ids[1]}", headers=op).get_json()["queue"]
    assert [e["position"] for e in removed["entries"]] == [2, 1]  # line order: checked in first
    assert {e["id"] for e in removed["entries"]} == {ids[0], ids[2]}


def test_queue_updates_reach_the_displays_and_consoles_with_versions(app, client, factory, venue, tokens):
    from drem.platform.extensions import socketio

    display = socketio.test_client(app, namespace=NS)
    answer = display.emit("watch", {"track_ids": [venue.track, 987654]}, namespace=NS, callback=True)
    assert answer["ok"] and list(answer["queues"]) == [str(venue.track)]
    assert answer["queues"][str(venue.track)]["entries"] == []
    assert display.emit("watch", {"track_ids": "x"}, namespace=NS, callback=True)["ok"] is False
    staff_web = app.test_client()
    commentator = factory.user("commentator")
    factory.login(staff_web, commentator)
    console = socketio.test_client(app, namespace=NS, flask_test_client=staff_web)
    assert console.emit("watch_console", {"track_id": venue.track}, namespace=NS, callback=True)["ok"]
    assert display.emit("watch_console", {"track_id": venue.track}, namespace=NS, callback=True) == \
        {"ok": False, "error": "forbidden"}
    model = add_model(app, venue.racers[0]["id"])
    entry = client.post("/api/me/queue", json={"track_id": venue.track}, headers=tokens["r0"]).get_json()["entry_id"]
    client.post(f"/api/me/queue/{entry}/check-in", json={"model_id": model}, headers=tokens["r0"])
    public = [m["args"][0] for m in display.get_received(NS) if m["name"] == "queue_update"]
    staff = [m["args"][0] for m in console.get_received(NS) if m["name"] == "queue_update"]
    assert [q["version"] for q in public] == [1, 2] and [q["version"] for q in staff] == [1, 2]
    assert public[-1]["next"] == [entry] and public[-1]["entries"][0]["racer"]["username"] == venue.racers[0]["username"]
    assert "model" not in public[-1]["entries"][0]  # the public shape has no models or cars
    assert staff[-1]["entries"][0]["model"] == {"id": model, "filename": "fast.tar.gz"}


def test_the_commentator_sees_the_queue_as_next_racers(client, venue, tokens):
    op = tokens["op"]
    ids = [client.post(f"/api/tracks/{venue.track}/queue", json={"racer_id": r["id"]}, headers=op).get_json()["entry_id"]
           for r in venue.racers[:3]]
    for entry in ids[1:]:
        client.post(f"/api/queue/entries/{entry}/check-in", json={}, headers=op)
    client.post(f"/api/tracks/{venue.track}/queue/call-next", json={}, headers=op)
    client.post("/api/races", json={"track_id": venue.track, "racer_id": venue.racers[0]["id"]}, headers=op)
    data = client.get(f"/api/events/{venue.event['id']}/commentator?track={venue.track}",
                      headers=tokens["commentator"]).get_json()
    names = [r["username"] for r in venue.racers]
    assert [(n["racer"], n["state"]) for n in data["next_racers"]] == \
        [(names[0], "ready"), (names[1], "called"), (names[2], "checked_in")]
