"""Socket.IO namespace ``/leaderboard``: the public displays (big screen, overlay, phones).

Public, no login: a display sends ``join`` ``{"event_id": 1, "track": 3 | "combined"}``
and gets the full state as the answer (acknowledgement) at once; it then receives
``lb_update`` (small changes; after a lap it also carries the race state), ``lb_full``
(after a race edit) and ``race_state`` (the live race when it changes without a lap) in
its room ``lb:<event_id>:<track>``. It may also pass the same dict as
the connection's ``auth``: it is then joined on connect and gets ``lb_full`` at once.
On every reconnect the display joins again, so it always starts from the full state.
Message shapes: :mod:`drem.leaderboard.service`, docs/api.md.
"""

from __future__ import annotations

from flask import request
from flask_socketio import emit, join_room, leave_room, rooms

from drem.events.service import get_event
from drem.leaderboard import service
from drem.leaderboard.service import NAMESPACE
from drem.platform.errors import ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.inputs import record_id
from drem.platform.permissions import socket_public


def _join(data) -> dict:
    """Join the leaderboard's room (leaving any other one) and return its full state."""
    if not isinstance(data, dict):
        return {"error": "send {event_id, track}"}
    try:
        event_id = record_id(data, "event_id")
    except ServiceError:
        return {"error": "event_id must be a number"}
    try:
        event = get_event(event_id)
        track = service.parse_track(event, data.get("track"))
    except ServiceError as exc:
        db.session.rollback()
        return {"error": exc.message}
    wanted = service.room(event.id, track)
    for joined in rooms(namespace=NAMESPACE):
        if joined.startswith("lb:") and joined != wanted:
            leave_room(joined, namespace=NAMESPACE)
    join_room(wanted, namespace=NAMESPACE)  # before reading: no change can fall in between
    state = service.leaderboard_state(event, track)
    db.session.rollback()  # end the read transaction
    return state


@socketio.on("connect", namespace=NAMESPACE)
@socket_public
def leaderboard_connect(auth=None):
    """Public (no permission): anyone may watch a leaderboard."""
    if isinstance(auth, dict) and auth.get("event_id") is not None:
        state = _join(auth)
        if "error" not in state:
            emit("lb_full", state, to=request.sid, namespace=NAMESPACE)
    return True


@socketio.on("join", namespace=NAMESPACE)
@socket_public
def leaderboard_join(data):
    """Public (no permission): ``{"event_id", "track"}`` → the full leaderboard state."""
    return _join(data)
