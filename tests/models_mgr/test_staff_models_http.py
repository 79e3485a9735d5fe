"""Issue 16, models for staff, over HTTP: the list's search and filters on the page and
the JSON API, a model's page, deletes with every refusal, and uploads for an event."""

from __future__ import annotations

from drem.auth.models import User
from drem.events.models import Event
from drem.events.service import register_racer
from drem.models_mgr.models import RacerModel
from drem.platform.audit import AuditEntry
from drem.platform.extensions import db
from tests.factories import csrf_from
from tests.models_mgr import factories as f

from .staff import digest, model_row, race_with


def _rows(app, *specs) -> list[int]:
    """Commit one model row per ``(owner_id, filename, fields)``; returns their ids."""
    with app.app_context():
        models = [model_row(owner, name, **fields) for owner, name, fields in specs]
        db.session.commit()
        return [m.id for m in models]


def _token_headers(factory, user: dict) -> dict:
    return {"Authorization": f"Bearer {factory.token(user)}"}


def _ids(resp) -> list[int]:
    assert resp.status_code == 200, resp.get_json()
    return [m["id"] for m in resp.get_json()["models"]]


def test_api_search_filters_and_sort(app, client, factory):
    op_h = factory.headers("operator")
    anna, bob = factory.user("racer", "anna_k", None), factory.user("racer", "bobby", None)
    event = factory.event()
    a1, b1, b2 = _rows(app, (anna["id"], "monza.tar.gz", {"event_id": event["id"], "minutes_ago": 3}),
                       (bob["id"], "Anna-copy.h5", {"minutes_ago": 2, "model_format": "keras"}),
                       (bob["id"], "fast.tar.gz", {"status": "quarantined", "minutes_ago": 1}))
    assert _ids(client.get("/api/models?q=ANNA", headers=op_h)) == [b1, a1]  # file name or racer name
    assert _ids(client.get("/api/models?q=bobby", headers=op_h)) == [b2, b1]
    assert _ids(client.get(f"/api/models?event_id={event['id']}", headers=op_h)) == [a1]
    assert _ids(client.get("/api/models?status=quarantined", headers=op_h)) == [b2]
    assert _ids(client.get("/api/models?q=bobby&status=available", headers=op_h)) == [b1]
    assert _ids(client.get("/api/models?sort=oldest", headers=op_h)) == [a1, b1, b2]
    bad = client.get("/api/models?status=gone", headers=op_h)
    assert bad.status_code == 400 and bad.get_json()["field"] == "status"
    assert client.get("/api/models?sort=size", headers=op_h).status_code == 400
    assert client.get("/api/models?event_id=abc", headers=op_h).status_code == 400
    # a racer's search covers their own models only
    anna_h = _token_headers(factory, anna)
    assert _ids(client.get("/api/models?q=bobby", headers=anna_h)) == []
    assert _ids(client.get("/api/models?q=monza", headers=anna_h)) == [a1]
    assert client.get("/api/models", headers=factory.headers("registration")).status_code == 403


def test_api_detail_shows_same_model_to_staff_only(app, client, factory):
    op_h = factory.headers("operator")
    anna, bob = factory.user("racer", None, None), factory.user("racer", None, None)
    pb = digest("weights")
    mine, copy = _rows(app, (anna["id"], "mine.tar.gz", {"model_pb_sha256": pb, "minutes_ago": 5}),
                       (bob["id"], "copied.tar.gz", {"model_pb_sha256": pb}))
    data = client.get(f"/api/models/{copy}", headers=op_h).get_json()
    assert data["car_type"] == "AWS DeepRacer" and data["weights_sha256"] == pb
    assert [(s["id"], s["owner"], s["filename"]) for s in data["same_models"]] == [(mine, anna["username"], "mine.tar.gz")]
    assert data["cars"] == [] and data["races"] == {} and data["event"] is None
    own = client.get(f"/api/models/{copy}", headers=_token_headers(factory, bob)).get_json()
    assert own["id"] == copy and "same_models" not in own  # a racer learns nothing of other racers
    assert client.get(f"/api/models/{mine}", headers=_token_headers(factory, bob)).status_code == 404


def test_delete_refusals_and_operator_delete(app, client, factory):
    racer, other = factory.user("racer", None, None), factory.user("racer", None, None)
    operator = factory.user("operator", None, None)
    op_h = _token_headers(factory, operator)
    event = factory.event()
    model, virus, racing = _rows(app, (racer["id"], "friend.tar.gz", {}),
                                 (racer["id"], "virus.tar.gz", {"status": "quarantined"}),
                                 (racer["id"], "racing.tar.gz", {}))
    with app.app_context():
        race_with(db.session.get(RacerModel, racing), event, "paused")
        db.session.commit()
    assert client.delete(f"/api/models/{model}", headers=factory.headers("registration")).status_code == 403
    assert client.delete(f"/api/models/{model}", headers=factory.headers("commentator")).status_code == 403
    assert client.delete(f"/api/models/{model}", headers=_token_headers(factory, other)).status_code == 404
    resp = client.delete(f"/api/models/{virus}", headers=op_h)
    assert resp.status_code == 403 and "only an admin" in resp.get_json()["error"]
    resp = client.delete(f"/api/models/{racing}", headers=op_h)
    assert resp.status_code == 409 and "submit or discard that race first" in resp.get_json()["error"]
    assert client.delete(f"/api/models/{model}", headers=op_h).status_code == 204
    assert client.get(f"/api/models/{model}", headers=op_h).status_code == 404
    with app.app_context():
        statuses = {m.id: m.status for m in db.session.scalars(db.select(RacerModel))}
        assert statuses == {model: "deleted", virus: "quarantined", racing: "available"}
        entries = list(db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "model.delete")))
        assert [(e.actor_name, e.target_id) for e in entries] == [(operator["username"], str(model))]
    assert client.delete(f"/api/models/{virus}", headers=factory.headers("admin")).status_code == 204


def test_pages_search_detail_and_delete(app, client, factory):
    anna, bob = factory.user("racer", "annette"), factory.user("racer", "bert", None)
    pb = digest("shared weights")
    a1, b1 = _rows(app, (anna["id"], "anna-v1.tar.gz", {"model_pb_sha256": pb, "minutes_ago": 2}),
                   (bob["id"], "bert-v1.tar.gz", {"model_pb_sha256": pb}))
    operator = factory.user("operator")
    factory.login(client, operator)
    page = client.get("/models/?q=annet").get_data(as_text=True)
    assert 'id="model-filters"' in page and "anna-v1.tar.gz" in page and "bert-v1.tar.gz" not in page
    assert client.get("/models/?status=nope").status_code == 302  # flashed error, back to a page
    html = client.get(f"/models/{b1}").get_data(as_text=True)
    for text in ("AWS DeepRacer", "FRONT_FACING_CAMERA", "clipped_ppo", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
                 "Same model as", "anna-v1.tar.gz", "annette", pb, 'id="delete-button"'):
        assert text in html, text
    resp = client.post(f"/models/{b1}/delete", data={"csrf_token": csrf_from(html)})
    assert resp.status_code == 302
    with app.app_context():
        assert db.session.get(RacerModel, b1).status == "deleted"

    racer_client = app.test_client()
    factory.login(racer_client, factory.user("racer"))
    assert racer_client.get(f"/models/{a1}").status_code == 404  # another racer's model looks absent
    owner_client = app.test_client()
    factory.login(owner_client, anna)
    own = owner_client.get(f"/models/{a1}").get_data(as_text=True)
    assert "anna-v1.tar.gz" in own and "Same model as" not in own and 'id="model-filters"' not in own
    desk = app.test_client()
    factory.login(desk, factory.user("registration"))
    assert desk.get("/models/").status_code == 403 and desk.get(f"/models/{a1}").status_code == 403
    desk_token = csrf_from(desk.get("/").get_data(as_text=True))
    assert desk.post(f"/models/{a1}/delete", data={"csrf_token": desk_token}).status_code == 403
    with app.app_context():
        assert db.session.get(RacerModel, a1).status == "available"


def test_upload_for_an_event(models_app, client, factory, tmp_path):
    racer = factory.user("racer")
    racer_h = _token_headers(factory, racer)
    mine, theirs = factory.event(date="2099-01-01"), factory.event(date="2099-01-02")
    with models_app.app_context():
        register_racer(db.session.get(Event, mine["id"]), db.session.get(User, racer["id"]))
        db.session.commit()
    old = _rows(models_app, (racer["id"], "before-events.tar.gz", {}))[0]  # no event: stays valid
    path = f.deepracer_tar_gz(tmp_path)

    def upload(event_id):
        return client.post("/api/models", query_string={"filename": "m.tar.gz", "event_id": event_id},
                           data=path.read_bytes(), headers=racer_h | {"Content-Type": "application/octet-stream"})

    refused = upload(theirs["id"])
    assert refused.status_code == 400 and refused.get_json()["field"] == "event_id"
    assert upload(999999).status_code == 404
    resp = upload(mine["id"])
    assert resp.status_code == 201 and resp.get_json()["event_id"] == mine["id"]
    assert _ids(client.get(f"/api/models?event_id={mine['id']}", headers=racer_h)) == [resp.get_json()["id"]]
    assert set(_ids(client.get("/api/models", headers=racer_h))) == {old, resp.get_json()["id"]}
    files = [p for p in models_app.extensions["drem_storage"].root.rglob("*") if p.is_file()]
    assert len(files) == 1  # the refused uploads kept nothing
    factory.login(client, racer)
    page = client.get("/models/").get_data(as_text=True)
    assert f'<option value="{mine["id"]}" selected>{mine["name"]}' in page and theirs["name"] not in page


def test_list_queries_do_not_grow_with_rows(app, client, factory, count_queries):
    """The list loads each page's racers and events together, not one query per row."""
    op_h = factory.headers("operator")
    racers = [factory.user("racer", None, None) for _ in range(4)]
    events = [factory.event() for _ in range(2)]
    _rows(app, (racers[0]["id"], "first.tar.gz", {"event_id": events[0]["id"]}))
    with count_queries:
        assert len(_ids(client.get("/api/models", headers=op_h))) == 1
    one = count_queries.count
    _rows(app, *[(r["id"], f"m{i}.tar.gz", {"event_id": events[i % 2]["id"]}) for i, r in enumerate(racers)])
    with count_queries:
        assert len(_ids(client.get("/api/models", headers=op_h))) == 5
    assert count_queries.count == one, count_queries.statements
