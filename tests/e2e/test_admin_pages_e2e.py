"""The organizer's admin pages in headless Chromium against the real server, once, as an
admin walks them: create an operator on the Users page (the generated password is shown
once and signs in), rename a fleet, give it a track and move a car to another fleet on the
Cars page, edit a track from the event page, and import an event's ``export.json`` with
its preview."""

from __future__ import annotations

import json
import re

from tests.e2e.pages import login


def _ok(resp, status: int = 200) -> dict:
    assert resp.status_code == status, resp.text[:300]
    return resp.json() if resp.content else {}


def test_admin_walks_the_admin_pages(live_server, page, console_errors, tmp_path):
    srv, token = live_server, live_server.admin_token
    event = _ok(srv.api("POST", "/api/events", token=token, json={
        "name": "Walk Cup", "date": "2026-12-01", "tracks": [{"name": "Track A", "layout": "reinvent_base"}]}), 201)
    track_id = event["tracks"][0]["id"]
    blue = _ok(srv.api("POST", "/api/fleet/fleets", token=token, json={"name": "Blue"}), 201)
    red = _ok(srv.api("POST", "/api/fleet/fleets", token=token, json={"name": "Red"}), 201)
    code = _ok(srv.api("POST", "/api/fleet/activation-codes", token=token,
                       json={"hostname": "walk-car", "fleet_id": blue["id"]}), 201)["code"]
    car = _ok(srv.api("POST", "/api/car/activate", json={"code": code, "hostname": "walk-car"}), 201)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_ok(srv.api("GET", f"/api/events/{event['id']}/export.json", token=token))))

    login(page, {"username": srv.admin_username, "password": srv.admin_password})
    page.goto("/admin/users")  # an operator, password generated and shown once
    page.click("#new-user summary")
    page.fill("#new-username", "op_walk")
    page.select_option("#new-role", "operator")
    with page.expect_navigation():
        page.click("#new-user button[type=submit]")
    password = page.inner_text("#one-time-password").strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", password)
    assert "operator" in page.inner_text("table.users")
    assert srv.token_for("op_walk", password)

    page.goto("/fleet/")  # rename Blue, give it the track, move the car to Red
    row = page.locator(f"#fleet-{blue['id']}")
    row.locator("input[name=name]").fill("Blue team")
    row.locator("select[name=track_id]").select_option(str(track_id))
    with page.expect_navigation():
        row.locator(".fleet-edit button").click()
    assert "fleet saved" in page.inner_text("main")
    assert page.locator(f"#fleet-{blue['id']} input[name=name]").input_value() == "Blue team"
    mover = page.locator(f"#manage-car-{car['car_id']}")
    mover.locator("select[name=fleet_id]").select_option(str(red["id"]))
    with page.expect_navigation():
        mover.locator(".car-move button").click()
    assert "car moved" in page.inner_text("main")
    fleets = {f["id"]: f for f in _ok(srv.api("GET", "/api/fleet/fleets", token=token))["fleets"]}
    assert fleets[blue["id"]]["name"] == "Blue team" and fleets[blue["id"]]["track_id"] == track_id
    assert fleets[red["id"]]["car_ids"] == [car["car_id"]]

    page.goto(f"/events/{event['id']}")  # edit the track
    page.click(f"#track-edit-{track_id} summary")
    page.fill(f"#track_name_{track_id}", "Main track")
    page.select_option(f"#track_direction_{track_id}", "cw")
    with page.expect_navigation():
        page.click(f"#track-edit-{track_id} button[type=submit]:has-text('Save track')")
    assert "track saved" in page.inner_text("main") and "Main track" in page.inner_text("table.tracks")

    page.goto("/events/import")  # import the export: preview, then Import
    page.set_input_files("#file", str(export))
    with page.expect_navigation():
        page.click("#import-form button[type=submit]")
    assert "Walk Cup" in page.inner_text("#import-summary") and page.inner_text("#import-laps") == "0"
    assert "exists already" in page.inner_text("#import-conflicts")
    with page.expect_navigation():
        page.click("#import-confirm")
    assert "imported 'Walk Cup': 1 track(s)" in page.inner_text("main")
    assert "Track A" in page.inner_text("table.tracks")
    events = _ok(srv.api("GET", "/api/events", token=token))["events"]
    assert [e["name"] for e in events] == ["Walk Cup", "Walk Cup"]
    assert console_errors == []
