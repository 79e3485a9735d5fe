"""Socket.IO namespace ``/queue``: the race queues of tracks, live.

- ``watch`` (public): ``{"track_ids": [3, 4]}`` joins the public rooms ``q:<track_id>``
  (leaving the ones of other tracks) and answers ``{"ok": true, "queues": {track_id:
  public queue state}}``; then ``queue_update`` (public shape) follows every change. The
  big screen, the overlay and the racers' phones use it.
- ``watch_console`` (``races.view``): ``{"track_id": 3}`` joins the staff room
  ``qs:<track_id>`` and answers ``{"ok": true, "queue": staff queue state}``; then
  ``queue_update`` (staff shape: models, suggested car) follows.

Every ``queue_update`` carries the queue's ``version``; a client drops one whose version
is not above the one it has. Changes go through the HTTP API (one commit per request).
Shapes: :func:`drem.race_queue.state.queue_state`, docs/api.md.
"""

from __future__ import annotations

from flask_login import current_user
from flask_socketio import join_room, leave_room, rooms

from drem.events.models import Track
from drem.platform.errors import ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.inputs import record_id, record_ids
from drem.platform.permissions import socket_public, socket_requires, user_room
from drem.race_queue.state import NAMESPACE, public_room, queue_state, staff_room

#: Most tracks one display watches at once (a combined board of an event's tracks).
MAX_WATCHED = 20


@socketio.on("connect", namespace=NAMESPACE)
@socket_public
def queue_connect(auth=None):
    """Public (no permission): anyone may see who races next. A signed-in user's socket
    joins their user room, so ending their sockets (disabled, demoted) reaches this one."""
    if getattr(current_user, "is_authenticated", False):
        join_room(user_room(current_user.id))
    return True


def _rejoin(prefix: str, wanted: set[str]) -> None:
    for joined in rooms(namespace=NAMESPACE):
        if joined.startswith(prefix) and joined not in wanted:
            leave_room(joined, namespace=NAMESPACE)
    for room in wanted:
        join_room(room, namespace=NAMESPACE)


@socketio.on("watch", namespace=NAMESPACE)
@socket_public
def watch(data):
    """Public: ``{"track_ids": [...]}`` -> ``{"ok": true, "queues": {id: state}}``; unknown
    tracks are left out. ``{"ok": false, "error"}`` for a malformed message."""
    try:
        ids = record_ids(data if isinstance(data, dict) else {}, "track_ids", max_items=MAX_WATCHED)
    except ServiceError as exc:
        return {"ok": False, "error": exc.message}
    tracks = [t for t in (db.session.get(Track, i) for i in dict.fromkeys(ids)) if t is not None]
    _rejoin("q:", {public_room(t.id) for t in tracks})  # before reading: no change falls in between
    queues = {str(t.id): queue_state(db.session, t) for t in tracks}
    db.session.remove()
    return {"ok": True, "queues": queues}


@socketio.on("watch_console", namespace=NAMESPACE)
@socket_requires("races.view")
def watch_console(data):
    """Staff (``races.view``): ``{"track_id": N}`` -> ``{"ok": true, "queue": state}``
    (staff shape); ``{"ok": false, "error"}`` for an unknown or malformed track id."""
    try:
        track_id = record_id(data if isinstance(data, dict) else {}, "track_id")
    except ServiceError as exc:
        return {"ok": False, "error": exc.message}
    track = db.session.get(Track, track_id)
    if track is None:
        db.session.remove()
        return {"ok": False, "error": "no such track"}
    _rejoin("qs:", {staff_room(track.id)})
    state = queue_state(db.session, track, staff=True)
    db.session.remove()
    return {"ok": True, "queue": state}
