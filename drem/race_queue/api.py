"""Race queue JSON API (docs/api.md, "Race queue"): staff routes under
``/api/tracks/<id>/queue`` and ``/api/queue/entries/<id>``, a racer's own under
``/api/me/queue``. Each handler parses its input, calls one service function and commits
once; the ``queue_update`` push follows the commit."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from drem.events.service import get_event, get_track
from drem.platform.effects import commit
from drem.platform.extensions import db
from drem.platform.inputs import id_arg, record_id, whole_number
from drem.platform.permissions import require
from drem.platform.web import json_body
from drem.race_queue import service
from drem.race_queue.state import queue_state, racer_queue

bp = Blueprint("race_queue_api", __name__, url_prefix="/api")


def _queue(track_id: int, status: int = 200, **extra):
    return jsonify(queue=queue_state(db.session, get_track(track_id), staff=True), **extra), status


def _entry_id(entry) -> dict:
    return {"entry_id": entry.id, "state": entry.state, "position": entry.position}


@bp.get("/tracks/<int:track_id>/queue")
@require("races.view")
def show(track_id: int):
    """The track's queue (staff shape: models, suggested cars)."""
    return _queue(track_id)


@bp.post("/tracks/<int:track_id>/queue")
@require("races.run")
def add(track_id: int):
    """Put a registered racer with runs left at the end of the queue: ``{racer_id}``."""
    entry = service.add_racer(current_user, track_id, record_id(json_body(), "racer_id"))
    commit()
    return _queue(track_id, 201, **_entry_id(entry))


@bp.post("/tracks/<int:track_id>/queue/call-next")
@require("races.run")
def call_next(track_id: int):
    """Call the next checked-in racer (409 when nobody is checked in)."""
    entry = service.call_next(current_user, track_id)
    commit()
    return _queue(track_id, **_entry_id(entry))


@bp.put("/tracks/<int:track_id>/queue/settings")
@require("races.run")
def settings(track_id: int):
    """``{skip_back}``: places a no-show moves back the first time (0..50)."""
    service.set_skip_back(current_user, track_id,
                          whole_number(json_body(), "skip_back", 0, service.MAX_SKIP_BACK))
    commit()
    return _queue(track_id)


@bp.post("/queue/entries/<int:entry_id>/check-in")
@require("races.run")
def staff_check_in(entry_id: int):
    """Check a racer in for them (at the desk or the track): ``{model_id?}`` (one of the
    racer's available models)."""
    entry = service.check_in(current_user, entry_id, record_id(json_body(), "model_id", required=False), own=False)
    commit()
    return _queue(entry.track_id, **_entry_id(entry))


@bp.post("/queue/entries/<int:entry_id>/skip")
@require("races.run")
def skip(entry_id: int):
    """The called racer is not there (no-show): skipped and moved back."""
    entry = service.skip_entry(current_user, entry_id)
    commit()
    return _queue(entry.track_id, **_entry_id(entry))


@bp.delete("/queue/entries/<int:entry_id>")
@require("races.run")
def remove(entry_id: int):
    """Take a racer out of the queue (audited)."""
    track_id = service.remove_entry(current_user, entry_id, own=False)
    commit()
    return _queue(track_id)


@bp.get("/me/queue")
@require("queue.join")
def mine():
    """``?event_id=``: the signed-in racer's place, state and waiting time on each track."""
    event_id = id_arg("event_id")
    if event_id is None:
        return jsonify(error="event_id is required", field="event_id"), 400
    return jsonify(tracks=racer_queue(db.session, get_event(event_id), current_user))


@bp.post("/me/queue")
@require("queue.join")
def join():
    """Join a track's queue oneself: ``{track_id}``."""
    entry = service.join_queue(current_user, record_id(json_body(), "track_id"))
    commit()
    return jsonify(_entry_id(entry)), 201


@bp.post("/me/queue/<int:entry_id>/check-in")
@require("queue.join")
def check_in(entry_id: int):
    """Check oneself in with one of one's available models: ``{model_id?}``."""
    entry = service.check_in(current_user, entry_id, record_id(json_body(), "model_id", required=False))
    commit()
    return jsonify(_entry_id(entry))


@bp.delete("/me/queue/<int:entry_id>")
@require("queue.join")
def leave(entry_id: int):
    """Leave a queue."""
    service.remove_entry(current_user, entry_id)
    commit()
    return jsonify(ok=True)
