"""Event JSON API: the same rights as the pages (see docs/api.md)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from drem.auth.service import get_user
from drem.events import race_admin, service
from drem.platform.effects import commit
from drem.platform.inputs import id_arg, record_id
from drem.platform.permissions import require
from drem.platform.web import json_body

bp = Blueprint("events_api", __name__, url_prefix="/api/events")
laps_bp = Blueprint("race_admin_api", __name__, url_prefix="/api")


@bp.get("")
@require("events.view")
def list_events():
    return jsonify(events=[e.to_dict() for e in service.list_events()])


@bp.post("")
@require("events.manage")
def create():
    event = service.create_event(current_user, json_body())
    commit()
    return jsonify(event.to_dict()), 201


@bp.get("/<int:event_id>")
@require("events.view")
def detail(event_id: int):
    event = service.get_event(event_id)
    return jsonify(event.to_dict() | {"racers": [r.to_dict() for r in event.registrations]})


@bp.patch("/<int:event_id>")
@require("events.manage")
def update(event_id: int):
    event = service.update_event(current_user, service.get_event(event_id), json_body())
    commit()
    return jsonify(event.to_dict())


@bp.delete("/<int:event_id>")
@require("events.manage")
def delete(event_id: int):
    service.delete_event(current_user, service.get_event(event_id))
    commit()
    return "", 204


@bp.post("/<int:event_id>/tracks")
@require("events.manage")
def add_track(event_id: int):
    track = service.add_track(current_user, service.get_event(event_id), json_body())
    commit()
    return jsonify(track.to_dict()), 201


@bp.patch("/<int:event_id>/tracks/<int:track_id>")
@require("events.manage")
def update_track(event_id: int, track_id: int):
    track = service.get_track(track_id, service.get_event(event_id))
    service.update_track(current_user, track, json_body())
    commit()
    return jsonify(track.to_dict())


@bp.delete("/<int:event_id>/tracks/<int:track_id>")
@require("events.manage")
def delete_track(event_id: int, track_id: int):
    service.delete_track(current_user, service.get_track(track_id, service.get_event(event_id)))
    commit()
    return "", 204


@bp.post("/<int:event_id>/racers")
@require("racers.enrol")
def add_racer(event_id: int):
    data = json_body()
    reg = service.register_racer(service.get_event(event_id), get_user(record_id(data, "user_id")),
                                 current_user)
    commit()
    return jsonify(reg.to_dict()), 201


@bp.delete("/<int:event_id>/racers/<int:user_id>")
@require("events.manage")
def remove_racer(event_id: int, user_id: int):
    service.unregister_racer(current_user, service.get_event(event_id), get_user(user_id))
    commit()
    return "", 204


@bp.post("/<int:event_id>/join")
@require("events.join")
def join(event_id: int):
    reg = service.register_racer(service.get_event(event_id), current_user)
    commit()
    return jsonify(reg.to_dict()), 201


@bp.get("/<int:event_id>/races")
@require("races.view")
def list_races(event_id: int):
    """Races of the event (newest first); filter with ``track_id`` and ``racer_id``."""
    service.get_event(event_id)
    track_id, racer_id = id_arg("track_id"), id_arg("racer_id")
    return jsonify(races=[race_admin.race_dict(r) for r in race_admin.list_races(event_id, track_id, racer_id)])


@laps_bp.patch("/laps/<int:lap_id>")
@require("races.run")
def edit_lap(lap_id: int):
    lap = race_admin.edit_lap(current_user, race_admin.get_lap(lap_id), json_body())
    commit()
    return jsonify(lap.to_dict())


@laps_bp.delete("/laps/<int:lap_id>")
@require("races.run")
def delete_lap(lap_id: int):
    race_admin.delete_lap(current_user, race_admin.get_lap(lap_id))
    commit()
    return "", 204


@laps_bp.delete("/races/<int:race_id>")
@require("races.run")
def delete_race(race_id: int):
    race_admin.delete_race(current_user, service.get_race(race_id))
    commit()
    return "", 204
