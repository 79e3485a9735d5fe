"""The cars page's forms: rename a fleet and change its track, move a car to another
fleet, revoke a car's token and deregister a car. Each with its refusals (role, CSRF,
bad input) and against the JSON API (the same service: the same result and audit entry)."""

from __future__ import annotations

from tests.page_forms import audit, same_entry, signed_in


def _fleet(client, headers: dict, name: str, track_id=None) -> dict:
    resp = client.post("/api/fleet/fleets", json={"name": name, "track_id": track_id}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _fleets(client, headers: dict) -> dict:
    return {f["id"]: f for f in client.get("/api/fleet/fleets", headers=headers).get_json()["fleets"]}


def test_rename_a_fleet_and_change_its_track_on_the_page(app, client, factory, fleet):
    event = factory.event(tracks=2)
    t1, t2 = (t["id"] for t in event["tracks"])
    api, h = app.test_client(), fleet.headers
    blue, red = _fleet(api, h, "Blue", t1), _fleet(api, h, "Red")
    _op, csrf = signed_in(client, factory, "operator")
    page = client.get("/fleet/").get_data(as_text=True)
    assert f'action="/fleet/fleets/{blue["id"]}"' in page and 'value="Blue"' in page

    resp = client.post(f"/fleet/fleets/{blue['id']}", data={"csrf_token": csrf, "name": "Blue team", "track_id": t2})
    assert resp.status_code == 302
    assert "fleet saved" in client.get("/fleet/").get_data(as_text=True)
    assert _fleets(api, h)[blue["id"]] | {"car_ids": []} == {"id": blue["id"], "name": "Blue team", "track_id": t2,
                                                             "car_ids": []}
    client.post(f"/fleet/fleets/{blue['id']}", data={"csrf_token": csrf, "name": "Blue team", "track_id": ""})
    assert _fleets(api, h)[blue["id"]]["track_id"] is None
    assert api.patch(f"/api/fleet/fleets/{red['id']}", json={"name": "Red team", "track_id": t1},
                     headers=h).status_code == 200
    renames = audit(api, h, "fleet.rename")
    assert len(renames) == 2 and same_entry(renames[0], renames[1], "before", "after")
    assigns = audit(api, h, "fleet.assign_track")  # page: t2, page: none; API: t1 (and two at creation)
    assert [e["details"]["track_id"] for e in assigns[:3]] == [t1, None, t2]
    assert len(audit(api, h, "fleet.rename")) == 2  # saving an unchanged name records nothing


def test_fleet_form_refusals(app, client, factory, fleet):
    api, h = app.test_client(), fleet.headers
    blue, red = _fleet(api, h, "Blue"), _fleet(api, h, "Red")
    _op, csrf = signed_in(client, factory, "operator")
    clash = client.post(f"/fleet/fleets/{blue['id']}", data={"csrf_token": csrf, "name": "red", "track_id": ""},
                        follow_redirects=True)
    assert "a fleet called &#39;red&#39; exists" in clash.get_data(as_text=True)
    empty = client.post(f"/fleet/fleets/{blue['id']}", data={"csrf_token": csrf, "name": "", "track_id": ""},
                        follow_redirects=True)
    assert "a fleet name has 1-60 characters" in empty.get_data(as_text=True)
    bad_track = client.post(f"/fleet/fleets/{blue['id']}", data={"csrf_token": csrf, "name": "Blue 2",
                                                                 "track_id": "987654"}, follow_redirects=True)
    assert "no such track" in bad_track.get_data(as_text=True)
    no_csrf = client.post(f"/fleet/fleets/{blue['id']}", data={"name": "Sneaky"})
    assert no_csrf.status_code == 400 and "Reload the page" in no_csrf.get_data(as_text=True)
    assert client.post("/fleet/fleets/987654", data={"csrf_token": csrf, "name": "x"}).status_code == 404
    viewer = app.test_client()
    _c, c_csrf = signed_in(viewer, factory, "commentator")
    assert viewer.post(f"/fleet/fleets/{blue['id']}", data={"csrf_token": c_csrf, "name": "Mine"}).status_code == 403
    assert {f["name"] for f in _fleets(api, h).values()} == {"Blue", "Red"}
    assert audit(api, h, "fleet.rename") == [] and red["id"] in _fleets(api, h)


def test_move_a_car_to_another_fleet_on_the_page(app, client, factory, fleet):
    api, h = app.test_client(), fleet.headers
    blue, red = _fleet(api, h, "Blue"), _fleet(api, h, "Red")
    car = fleet.activate("car-07", blue["id"])
    other = fleet.activate("car-08", blue["id"])
    _op, csrf = signed_in(client, factory, "operator")
    page = client.get("/fleet/").get_data(as_text=True)
    assert f'action="/fleet/cars/{car["car_id"]}/fleet"' in page
    assert f'action="/fleet/cars/{car["car_id"]}/revoke"' not in page  # operators cannot revoke
    resp = client.post(f"/fleet/cars/{car['car_id']}/fleet", data={"csrf_token": csrf, "fleet_id": red["id"]})
    assert resp.status_code == 302 and fleet.car(car["car_id"])["fleet_id"] == red["id"]
    assert api.patch(f"/api/fleet/cars/{other['car_id']}", json={"fleet_id": red["id"]}, headers=h).status_code == 200
    moves = audit(api, h, "car.fleet")
    assert len(moves) == 2 and same_entry(moves[0], moves[1])
    client.post(f"/fleet/cars/{car['car_id']}/fleet", data={"csrf_token": csrf, "fleet_id": ""})
    assert fleet.car(car["car_id"])["fleet_id"] is None
    missing = client.post(f"/fleet/cars/{car['car_id']}/fleet", data={"csrf_token": csrf, "fleet_id": "987654"},
                          follow_redirects=True)
    assert "no such fleet" in missing.get_data(as_text=True)
    assert client.post(f"/fleet/cars/{car['car_id']}/fleet", data={"fleet_id": blue["id"]}).status_code == 400
    viewer = app.test_client()
    _c, c_csrf = signed_in(viewer, factory, "commentator")
    assert viewer.post(f"/fleet/cars/{car['car_id']}/fleet",
                       data={"csrf_token": c_csrf, "fleet_id": blue["id"]}).status_code == 403
    assert fleet.car(car["car_id"])["fleet_id"] is None


def test_revoke_and_deregister_a_car_on_the_page(app, client, factory, fleet):
    api, h = app.test_client(), fleet.headers
    car, other, gone = fleet.activate("car-01"), fleet.activate("car-02"), fleet.activate("car-03")
    operator = app.test_client()
    _op, op_csrf = signed_in(operator, factory, "operator")
    assert operator.post(f"/fleet/cars/{car['car_id']}/revoke", data={"csrf_token": op_csrf}).status_code == 403
    assert operator.post(f"/fleet/cars/{car['car_id']}/delete", data={"csrf_token": op_csrf}).status_code == 403
    _admin, csrf = signed_in(client, factory, "admin")
    page = client.get("/fleet/").get_data(as_text=True)
    assert f'action="/fleet/cars/{car["car_id"]}/revoke"' in page and "confirm('Revoke the token of car-01?" in page
    assert "confirm('Deregister car-01?" in page
    assert client.post(f"/fleet/cars/{car['car_id']}/revoke", data={}).status_code == 400  # no CSRF token
    assert fleet.car(car["car_id"])["revoked"] is False

    resp = client.post(f"/fleet/cars/{car['car_id']}/revoke", data={"csrf_token": csrf}, follow_redirects=True)
    assert "token revoked" in resp.get_data(as_text=True) and fleet.car(car["car_id"])["revoked"] is True
    assert f'action="/fleet/cars/{car["car_id"]}/revoke"' not in resp.get_data(as_text=True)
    assert api.post(f"/api/fleet/cars/{other['car_id']}/revoke", headers=h).status_code == 200
    revokes = audit(api, h, "car.revoke")
    assert len(revokes) == 2 and same_entry(revokes[0], revokes[1], "hostname")
    refused = fleet.connect(car["token"])  # the revoked token no longer connects
    assert not refused.is_connected("/car")

    resp = client.post(f"/fleet/cars/{gone['car_id']}/delete", data={"csrf_token": csrf}, follow_redirects=True)
    assert "car deregistered" in resp.get_data(as_text=True)
    assert api.get(f"/api/fleet/cars/{gone['car_id']}", headers=h).status_code == 404
    assert api.delete(f"/api/fleet/cars/{other['car_id']}", headers=h).status_code == 204
    removals = audit(api, h, "car.deregister")
    assert len(removals) == 2 and same_entry(removals[0], removals[1], "hostname")
    missing = client.post("/fleet/cars/987654/delete", data={"csrf_token": csrf}, follow_redirects=True)
    assert "no such car" in missing.get_data(as_text=True)
