"""Socket.IO namespace ``/timekeeper``: consoles watch a track's live race.

Joining gives the full race state at once; changes follow as ``race_state``. Race
actions go through the HTTP API (one commit per request), so a reconnecting
console never replays anything.
"""

from __future__ import annotations

from flask_socketio import join_room, leave_room, rooms

from drem.platform.errors import ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.inputs import record_id
from drem.platform.permissions import socket_requires
from drem.timekeeper import service


@socketio.on("connect", namespace="/timekeeper")
@socket_requires("races.view")
def connect(auth=None):
    """Consoles and commentators (``races.view``); others are refused."""
    return True


@socketio.on("watch", namespace="/timekeeper")
@socket_requires("races.view")
def watch(data):
    """``{"track_id": N}`` -> ``{"ok": true, "race": state | null}``; joins the track's room.
    ``{"ok": false, "error"}`` for a track_id that is not an id."""
    try:
        track_id = record_id(data if isinstance(data, dict) else {}, "track_id")
    except ServiceError:
        return {"ok": False, "error": "track_id must be a whole number"}
    for room in rooms(namespace="/timekeeper"):
        if room.startswith("tk:"):
            leave_room(room)
    join_room(f"tk:{track_id}")
    race = service.live_race(track_id)
    state = service.race_state(race) if race else None
    db.session.remove()
    return {"ok": True, "race": state}
