"""Socket.IO namespace ``/timekeeper``: consoles watch a track's live race.

Joining gives the full race state at once; changes follow as ``race_state``. Race
actions go through the HTTP API (one commit per request), so a reconnecting
console never replays anything.
"""

from __future__ import annotations

from flask_login import current_user
from flask_socketio import join_room, leave_room, rooms

from drem.platform.extensions import db, socketio
from drem.platform.permissions import allowed
from drem.timekeeper import service


@socketio.on("connect", namespace="/timekeeper")
def connect(auth=None):
    return allowed(current_user, "races.view")


@socketio.on("watch", namespace="/timekeeper")
def watch(data):
    """``{"track_id": N}`` -> ``{"ok": true, "race": state | null}``; joins the track's room."""
    if not allowed(current_user, "races.view"):
        return {"ok": False, "error": "forbidden"}
    try:
        track_id = int((data or {}).get("track_id"))
    except (TypeError, ValueError):
        return {"ok": False, "error": "track_id must be a whole number"}
    for room in rooms(namespace="/timekeeper"):
        if room.startswith("tk:"):
            leave_room(room)
    join_room(f"tk:{track_id}")
    race = service.live_race(track_id)
    state = service.race_state(race) if race else None
    db.session.remove()
    return {"ok": True, "race": state}
