"""Editing a track from the event page: the form, the same service and audit entry as
``PATCH /api/events/<id>/tracks/<tid>``, and its refusals (role, CSRF, bad input)."""

from __future__ import annotations

from tests.page_forms import audit, same_entry, signed_in

FIELDS = {"name": "Main", "layout": "2022_reinvent_champ_cw", "direction": "cw", "leaderboard_title": "Finals",
          "leaderboard_footer": "Good luck"}


def _tracks(api, headers: dict, event_id: int) -> list[dict]:
    return api.get(f"/api/events/{event_id}", headers=headers).get_json()["tracks"]


def test_edit_a_track_on_the_event_page(app, client, factory):
    event = factory.event(tracks=2)
    t1, t2 = (t["id"] for t in event["tracks"])
    api, h = app.test_client(), factory.headers("admin")
    _op, csrf = signed_in(client, factory, "operator")
    page = client.get(f"/events/{event['id']}").get_data(as_text=True)
    assert f'action="/events/{event["id"]}/tracks/{t1}"' in page and f'href="/timekeeper/tracks/{t1}/timers"' in page
    resp = client.post(f"/events/{event['id']}/tracks/{t1}", data={"csrf_token": csrf, **FIELDS},
                       follow_redirects=True)
    assert resp.status_code == 200 and "track saved" in resp.get_data(as_text=True)
    saved = _tracks(api, h, event["id"])[0]
    assert {k: saved[k] for k in FIELDS} == FIELDS
    assert api.patch(f"/api/events/{event['id']}/tracks/{t2}", json=FIELDS | {"name": "Second"},
                     headers=h).status_code == 200
    page_entry, api_entry = reversed(audit(api, h, "track.update"))
    assert page_entry["target_id"] == str(t1) and api_entry["target_id"] == str(t2)
    assert same_entry(page_entry, api_entry, "name")


def test_track_edit_refusals(app, client, factory):
    event = factory.event(tracks=2)
    t1 = event["tracks"][0]["id"]
    api, h = app.test_client(), factory.headers("admin")
    before = _tracks(api, h, event["id"])
    _op, csrf = signed_in(client, factory, "operator")
    for bad, message in (({"layout": "moon_base"}, "unknown track layout"), ({"direction": "up"}, "ccw or cw"),
                         ({"name": ""}, "name is required"), ({"name": "track 2"}, "already has a track")):
        resp = client.post(f"/events/{event['id']}/tracks/{t1}", data={"csrf_token": csrf, **FIELDS, **bad},
                           follow_redirects=True)
        assert message in resp.get_data(as_text=True), bad
    assert client.post(f"/events/{event['id']}/tracks/{t1}", data=FIELDS).status_code == 400  # no CSRF token
    other = factory.event()
    assert client.post(f"/events/{other['id']}/tracks/{t1}", data={"csrf_token": csrf, **FIELDS}).status_code == 404
    viewer = app.test_client()
    _c, c_csrf = signed_in(viewer, factory, "commentator")
    assert viewer.post(f"/events/{event['id']}/tracks/{t1}", data={"csrf_token": c_csrf, **FIELDS}).status_code == 403
    assert 'class="track-edit"' not in viewer.get(f"/events/{event['id']}").get_data(as_text=True)
    assert _tracks(api, h, event["id"]) == before and audit(api, h, "track.update") == []
