"""Socket.IO namespace ``/models``: live status of the viewer's models (and all, for staff)."""

from __future__ import annotations

from flask_login import current_user
from flask_socketio import join_room

from drem.platform.extensions import socketio
from drem.platform.permissions import allowed, socket_requires


@socketio.on("connect", namespace="/models")
@socket_requires("models.upload")
def connect(auth=None):
    """Signed-in users join their own room; staff also join the all-models room.
    Anyone else is refused."""
    join_room(f"user:{current_user.id}")
    if allowed(current_user, "models.view_all"):
        join_room("models:staff")
    return True
