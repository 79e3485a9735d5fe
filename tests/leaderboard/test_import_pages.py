"""The event import page: upload an ``export.json``, preview it (event, tracks, racers,
races, laps, conflicts, every problem), then "Import": all of it, or nothing. The page
and ``POST /api/events/import`` use the same ``import_event`` (same result, same audit
entry); ``POST /api/events/import/preview`` answers the page's preview."""

from __future__ import annotations

import io
import json
import re

import pytest

from tests.leaderboard.builders import Races
from tests.page_forms import audit, same_entry, signed_in


@pytest.fixture(autouse=True)
def _fresh_boards():
    from drem.leaderboard.service import clear_cache

    clear_cache()  # ids repeat between tests (tables are emptied): no board may survive
    yield
    clear_cache()


@pytest.fixture
def exported(app, factory) -> dict:
    """The export of an event with two tracks, three racers (one not registered), a
    submitted race with 3 laps, a running one with 1 lap and a ready one without laps."""
    races = Races(app)
    event = factory.event(tracks=2, name="Berlin Cup")
    t1, t2 = (t["id"] for t in event["tracks"])
    alice = factory.user("racer", "alice", password=None)
    bob = factory.user("racer", "bob", password=None)
    factory.user("racer", "carol", password=None)
    api, h = app.test_client(), factory.headers("admin")
    for racer in (alice, bob):
        assert api.post(f"/api/events/{event['id']}/racers", json={"user_id": racer["id"]}, headers=h).status_code == 201
    races.race(event["id"], t1, alice["id"], [9000, 8500, 8800])
    races.race(event["id"], t2, bob["id"], [9100], status="running")
    races.race(event["id"], t1, bob["id"], [], status="ready")
    doc = api.get(f"/api/events/{event['id']}/export.json", headers=h).get_json()
    assert len(doc["races"]) == 3
    return doc


def _upload(client, csrf: str, doc, name: str = "export.json"):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return client.post("/events/import", data={"csrf_token": csrf, "file": (io.BytesIO(body), name)},
                       content_type="multipart/form-data")


def _events(api, h) -> list[dict]:
    return api.get("/api/events", headers=h).get_json()["events"]


def test_upload_preview_import(app, client, factory, exported):
    api, h = app.test_client(), factory.headers("admin")
    _op, csrf = signed_in(client, factory, "operator")
    assert "Import an event" in client.get("/events/").get_data(as_text=True)
    doc = exported | {"racers": exported["racers"] + [{"username": "dora", "country_code": "fr"}]}
    resp = _upload(client, csrf, doc)
    assert resp.status_code == 302 and re.fullmatch(r"/events/import/\d+", resp.location)
    preview = client.get(resp.location).get_data(as_text=True)
    assert "Berlin Cup" in preview and 'id="import-confirm"' in preview and "import-problems" not in preview
    assert "2: Track 1 (reinvent_base, ccw), Track 2 (reinvent_base, ccw)" in preview
    assert "3 (1 new accounts, 2 existing)" in preview
    assert "2 (1 were live: imported as ended); 1 set-up race(s) without laps skipped" in preview
    assert '<td id="import-laps">4</td>' in preview
    assert "an event called &#39;Berlin Cup&#39; on 2026-11-22 exists already" in preview
    assert "2 racer(s) have accounts here already; their runs join those accounts: alice, bob" in preview
    assert len(_events(api, h)) == 1  # nothing imported yet

    done = client.post(resp.location, data={"csrf_token": csrf}, follow_redirects=True)
    assert done.status_code == 200
    assert "imported &#39;Berlin Cup&#39;: 2 track(s), 3 racer(s) (1 new), 2 race(s), 4 lap(s)" in done.get_data(as_text=True)
    events = _events(api, h)
    assert len(events) == 2
    new_id = max(e["id"] for e in events)
    board = api.get(f"/api/events/{new_id}/leaderboard?track={events[0]['tracks'][0]['id']}").get_json()
    assert [(e["username"], e["ranking_value_ms"]) for e in board["entries"]] == [("alice", 8500)]
    assert client.get(resp.location).status_code == 404  # the staged upload is gone

    by_api = api.post("/api/events/import", json=doc, headers=h)
    assert by_api.status_code == 201
    assert {k: by_api.get_json()[k] for k in ("tracks", "racers", "races", "laps")} == \
        {"tracks": 2, "racers": 3, "races": 2, "laps": 4}
    page_entry, api_entry = reversed(audit(api, h, "event.import"))
    assert same_entry(page_entry, api_entry, "racers")
    assert page_entry["details"]["racers"] == 3 and page_entry["actor"] == _op["username"]


def test_preview_lists_every_problem_and_import_creates_nothing(app, client, factory, exported):
    api, h = app.test_client(), factory.headers("admin")
    factory.user("operator", "op_bob")
    _admin, csrf = signed_in(client, factory, "admin")
    broken = json.loads(json.dumps(exported))
    broken["event"]["race_config"]["race_time_min"] = 99
    broken["tracks"][1]["name"] = broken["tracks"][0]["name"]
    broken["racers"].append({"username": "op_bob"})
    broken["races"][0]["laps"][1]["time_ms"] = "fast"
    next(r for r in broken["races"] if r["status"] == "running")["racer"] = "nobody"
    next(r for r in broken["races"] if r["status"] == "ready")["track_id"] = 987654  # skipped: no problem
    resp = _upload(client, csrf, broken)
    preview = client.get(resp.location).get_data(as_text=True)
    problems = re.findall(r'<li class="problem">([^<]+)</li>', preview)
    assert len(problems) == 5, problems
    assert "event: race_time_min must be between 1 and 10, got 99" in problems
    assert "track 2: the name &#39;Track 1&#39; is used twice" in problems
    assert any("op_bob" in p and "operator account here" in p for p in problems)
    assert any(p.startswith(f"race {exported['races'][0]['id']}, lap 2: time_ms must be a whole number")
               for p in problems)
    assert any("racer &#39;nobody&#39; is not in the racers list" in p for p in problems)
    assert 'id="import-confirm"' not in preview
    forced = client.post(resp.location, data={"csrf_token": csrf})
    assert forced.status_code == 400 and "race_time_min must be between 1 and 10" in forced.get_data(as_text=True)
    assert len(_events(api, h)) == 1 and audit(api, h, "event.import") == []
    via_api = api.post("/api/events/import", json=broken, headers=h)
    assert via_api.status_code == 400
    assert all(p.replace("&#39;", "'") in via_api.get_json()["error"] for p in problems)
    preview_api = api.post("/api/events/import/preview", json=broken, headers=h).get_json()
    assert len(preview_api["problems"]) == 5 and preview_api["laps"] == 4
    assert len(_events(api, h)) == 1
    discarded = client.post(f"{resp.location}/discard", data={"csrf_token": csrf})
    assert discarded.status_code == 302 and client.get(resp.location).status_code == 404


def test_upload_refusals(app, client, factory, exported):
    api, h = app.test_client(), factory.headers("admin")
    _admin, csrf = signed_in(client, factory, "admin")
    not_json = _upload(client, csrf, b"\x89PNG not json")
    assert not_json.status_code == 400 and "the file is not JSON" in not_json.get_data(as_text=True)
    a_list = _upload(client, csrf, b"[1, 2]")
    assert a_list.status_code == 400 and "not a drem event export" in a_list.get_data(as_text=True)
    no_file = client.post("/events/import", data={"csrf_token": csrf}, content_type="multipart/form-data")
    assert no_file.status_code == 400 and "choose the export.json file" in no_file.get_data(as_text=True)
    no_csrf = client.post("/events/import", data={"file": (io.BytesIO(json.dumps(exported).encode()), "e.json")},
                          content_type="multipart/form-data")
    assert no_csrf.status_code == 400
    wrong = _upload(client, csrf, {"format": "csv"})
    assert "not a drem event export" in client.get(wrong.location).get_data(as_text=True)

    staged = _upload(client, csrf, exported).location
    assert client.post(staged, data={}).status_code == 400  # no CSRF token on "Import"
    other_admin = app.test_client()
    _other, other_csrf = signed_in(other_admin, factory, "admin")
    assert other_admin.get(staged).status_code == 404  # a staged upload is its uploader's only
    assert other_admin.post(staged, data={"csrf_token": other_csrf}).status_code == 404
    someone = app.test_client()
    _u, u_csrf = signed_in(someone, factory, "registration")
    assert someone.get("/events/import").status_code == 403
    assert _upload(someone, u_csrf, exported).status_code == 403
    assert someone.get(staged).status_code == 403
    assert someone.post(staged, data={"csrf_token": u_csrf}).status_code == 403
    for role in ("registration", "commentator", "racer"):
        token = factory.token(factory.user(role, password=None))
        assert api.post("/api/events/import/preview", json=exported,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert len(_events(api, h)) == 1


def test_a_new_upload_replaces_the_users_earlier_one(app, client, factory, exported):
    _admin, csrf = signed_in(client, factory, "admin")
    from drem.leaderboard.models import StagedImport
    from drem.platform.extensions import db

    _upload(client, csrf, exported, "first.json")
    second = _upload(client, csrf, exported, "second.json").location
    assert "second.json" in client.get(second).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(db.select(StagedImport.filename)).all() == ["second.json"]
