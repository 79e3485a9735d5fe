"""Issue 16, models for staff: search and filters, "same model as", the cars and races
of a model, delete rules with the audit log, and the event of an upload (services)."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from drem.auth.models import User
from drem.events.models import Event, Race
from drem.events.service import register_racer
from drem.models_mgr import detail, service
from drem.models_mgr.models import RacerModel
from drem.platform.audit import AuditEntry
from drem.platform.effects import commit
from drem.platform.errors import Conflict, Forbidden, ServiceError
from drem.platform.extensions import db

from .staff import car_holding, digest, model_row, race_with


def _user(factory, role: str, username: str | None = None) -> User:
    return db.session.get(User, factory.user(role, username, password=None)["id"])  # no slow hashing


def _names(page) -> list[str]:
    return [m.filename for m in page.items]


def test_search_by_racer_name_and_file_name(ctx, factory):
    operator = _user(factory, "operator")
    anna, bob = _user(factory, "racer", "AnnaFast"), _user(factory, "racer", "bob_50")
    model_row(anna.id, "slow.h5", minutes_ago=3)
    model_row(bob.id, "Fast-V3.tar.gz", minutes_ago=2)
    model_row(bob.id, "other.tar.gz", minutes_ago=1)

    assert _names(service.list_models(operator, q="anna")) == ["slow.h5"]  # racer name, any case
    assert _names(service.list_models(operator, q="FAST")) == ["Fast-V3.tar.gz", "slow.h5"]  # file or racer
    assert _names(service.list_models(operator, q="v3.TAR")) == ["Fast-V3.tar.gz"]
    assert _names(service.list_models(operator, q="_5")) == ["other.tar.gz", "Fast-V3.tar.gz"]
    assert _names(service.list_models(operator, q="%")) == []  # LIKE wildcards are plain characters
    assert _names(service.list_models(operator, q="b__0")) == []  # as a wildcard it would match "bob_50"
    # a racer searches their own models only, never other racers' by name
    assert _names(service.list_models(bob, q="anna")) == []
    assert _names(service.list_models(bob, q="tar")) == ["other.tar.gz", "Fast-V3.tar.gz"]


def test_filters_sort_and_pages(ctx, factory):
    operator = _user(factory, "operator")
    racer = _user(factory, "racer")
    ev1, ev2 = factory.event(), factory.event()
    model_row(racer.id, "a.tar.gz", event_id=ev1["id"], minutes_ago=5)
    model_row(racer.id, "b.tar.gz", event_id=ev2["id"], minutes_ago=4)
    model_row(racer.id, "c.tar.gz", status="invalid", event_id=ev1["id"], minutes_ago=3)
    model_row(racer.id, "d.tar.gz", status="deleted", event_id=ev1["id"], minutes_ago=2)
    model_row(racer.id, "e.tar.gz", status="quarantined", minutes_ago=1)

    assert _names(service.list_models(operator, event_id=ev1["id"])) == ["c.tar.gz", "a.tar.gz"]
    assert _names(service.list_models(operator, status="invalid")) == ["c.tar.gz"]
    assert _names(service.list_models(operator, status="deleted")) == ["d.tar.gz"]
    assert _names(service.list_models(operator, event_id=ev1["id"], status="available")) == ["a.tar.gz"]
    assert _names(service.list_models(operator, sort="oldest")) == ["a.tar.gz", "b.tar.gz", "c.tar.gz", "e.tar.gz"]
    page = service.list_models(operator, page=2, per_page=3)
    assert _names(page) == ["a.tar.gz"] and page.total == 4 and page.pages == 2
    with pytest.raises(ServiceError) as bad:
        service.list_models(operator, status="lost")
    assert bad.value.field == "status" and "unknown status" in bad.value.message
    with pytest.raises(ServiceError) as bad:
        service.list_models(operator, sort="biggest")
    assert bad.value.field == "sort"


def test_same_model_finds_other_racers_uploads_of_the_same_weights(ctx, factory):
    anna, bob, cleo = (_user(factory, "racer") for _ in range(3))
    pb = digest("model.pb weights")
    original = model_row(anna.id, "anna.tar.gz", model_pb_sha256=pb, minutes_ago=10)
    # bob re-packed anna's model (other metadata, so another file checksum, same model.pb)
    copy = model_row(bob.id, "bob.tar.gz", model_pb_sha256=pb, minutes_ago=5)
    again = model_row(anna.id, "anna-again.tar.gz", model_pb_sha256=pb, minutes_ago=4)  # her own copy
    model_row(cleo.id, "cleo.tar.gz", model_pb_sha256=pb, status="deleted", minutes_ago=3)  # deleted: not listed
    model_row(cleo.id, "cleo-own.tar.gz", model_pb_sha256=digest("other weights"))
    # Donkey models are one file: the file checksum is the weights checksum
    h5 = model_row(anna.id, "pilot.h5", sha256=digest("pilot"), model_format="keras")
    h5_copy = model_row(cleo.id, "pilot (1).h5", sha256=digest("pilot"), model_format="keras")

    assert [m.id for m in detail.same_models(copy)] == [original.id, again.id]  # first upload first
    assert [m.filename for m in detail.same_models(original)] == ["bob.tar.gz"]  # not anna's own copy
    assert [m.id for m in detail.same_models(h5)] == [h5_copy.id]
    assert detail.weights_checksum(copy) == pb and detail.weights_checksum(h5) == digest("pilot")
    assert detail.car_type(copy) == "AWS DeepRacer" and detail.car_type(h5) == "Donkey Car"


def test_cars_and_races_of_a_model(ctx, factory):
    racer, operator = _user(factory, "racer"), _user(factory, "operator")
    event = factory.event()
    model, other = model_row(racer.id, "m.tar.gz"), model_row(racer.id, "n.tar.gz")
    car_b = car_holding("car-b", model.id, other.id, in_use=model.id)
    car_a = car_holding("car-a", model.id)
    race_with(model, event, "submitted")
    race_with(model, event, "discarded")

    assert detail.cars_holding([model.id, other.id]) == {
        model.id: [{"car_id": car_a.id, "hostname": "car-a", "in_use": False},
                   {"car_id": car_b.id, "hostname": "car-b", "in_use": True}],
        other.id: [{"car_id": car_b.id, "hostname": "car-b", "in_use": False}]}
    assert detail.race_counts(model) == {"submitted": 1, "discarded": 1}
    assert detail.race_counts(other) == {}
    data = detail.model_detail(operator, model)
    assert [c["hostname"] for c in data["cars"]] == ["car-a", "car-b"] and data["same_models"] == []
    assert [r["status"] for r in data["recent_races"]] == ["discarded", "submitted"]
    assert "same_models" not in detail.model_detail(racer, model)


def test_operator_deletes_a_racers_model_soft_and_audited(models_app, factory):
    with models_app.app_context():
        operator, racer = _user(factory, "operator"), _user(factory, "racer")
        event = factory.event()
        storage = service.get_storage()
        key = "models/x/stored.tar.gz"
        storage.put(key, io.BytesIO(b"model bytes"), max_size=100)
        model = model_row(racer.id, "friend.tar.gz", storage_key=key)
        race = race_with(model, event, "submitted")
        car_holding("car-1", model.id)
        service.delete_model(operator, model)
        commit()

        model = db.session.get(RacerModel, model.id)
        assert model.status == "deleted" and model.deleted_at is not None
        assert model.status_reason == f"deleted by {operator.username}"
        assert not storage.exists(key)  # the file is gone after the commit
        assert db.session.get(Race, race.id).model_id == model.id  # race history intact
        assert service.list_models(operator).total == 0
        entry = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "model.delete"))
        assert entry.actor_name == operator.username and entry.target_id == str(model.id)
        assert entry.details["owner"] == racer.username and entry.details["owner_id"] == racer.id
        assert entry.details["cars"] == ["car-1"] and entry.details["races"] == {"submitted": 1}
        assert entry.details["filename"] == "friend.tar.gz"


def test_delete_rules(ctx, factory):
    operator, admin = _user(factory, "operator"), _user(factory, "admin")
    racer, other = _user(factory, "racer"), _user(factory, "racer")
    event = factory.event()
    model = model_row(racer.id, "mine.tar.gz")
    with pytest.raises(Forbidden, match="only delete your own"):
        service.delete_model(other, model)
    quarantined = model_row(racer.id, "virus.tar.gz", status="quarantined")
    for who in (racer, operator):
        assert service.delete_refusal(who, quarantined) == "only an admin can delete a quarantined model"
        with pytest.raises(Forbidden, match="quarantined"):
            service.delete_model(who, quarantined)
    assert service.delete_refusal(admin, quarantined) is None
    racing = model_row(racer.id, "racing.tar.gz")
    race = race_with(racing, event, "running")
    with pytest.raises(Conflict, match=f"race {race.id} on Track 1, which is running"):
        service.delete_model(operator, racing)
    assert db.session.get(RacerModel, racing.id).status == "available"
    # a racer deleting their own model is no privileged change: no audit entry
    service.delete_model(racer, model)
    assert model.status == "deleted" and model.status_reason == "deleted by its racer"
    assert db.session.scalar(db.select(db.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "model.delete")) == 0


def test_upload_event_must_be_the_racers_and_defaults_to_the_open_one(ctx, factory):
    racer, operator, other = _user(factory, "racer"), _user(factory, "operator"), _user(factory, "racer")
    today = date(2026, 11, 22)
    past = db.session.get(Event, factory.event(date=(today - timedelta(days=30)).isoformat())["id"])
    soon = db.session.get(Event, factory.event(date=(today + timedelta(days=2)).isoformat())["id"])
    later = db.session.get(Event, factory.event(date=(today + timedelta(days=40)).isoformat())["id"])
    stranger = db.session.get(Event, factory.event(date=today.isoformat())["id"])
    assert service.upload_events(racer, today) == ([], None)
    for event in (past, soon, later):
        register_racer(event, racer)
    events, default = service.upload_events(racer, today)
    assert [e.id for e in events] == [later.id, soon.id, past.id] and default == soon.id
    register_racer(stranger, racer)  # the event of today is open, the nearest one
    assert service.upload_events(racer, today)[1] == stranger.id
    events, default = service.upload_events(operator, today)
    assert len(events) == 4 and default is None
    service.check_upload_event(operator, past)  # staff upload for any event
    with pytest.raises(ServiceError) as refused:
        service.check_upload_event(other, soon)
    assert refused.value.field == "event_id" and "not registered" in refused.value.message
