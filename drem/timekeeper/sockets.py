"""Socket.IO: ``/timekeeper`` for consoles watching a track's live race, ``/timer`` for
lap-timer devices (docs/timer-protocol.md).

Joining gives the full race state and the track's timers at once; changes follow as
``race_state``, ``timer_status`` and ``timer_crossing``. Race actions go through the
HTTP API (one commit per request), so a reconnecting console never replays anything.
A timer connects with ``auth={"token": "timer_…"}`` and sends ``heartbeat`` and
``crossing`` messages; each message handler commits once.
"""

from __future__ import annotations

from flask import g, request, session
from flask_socketio import emit, join_room, leave_room, rooms

from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.inputs import record_id, text, whole_number
from drem.platform.permissions import SocketAuthority, socket_requires
from drem.timekeeper import crossings, service, timers

TIMER_NS = "/timer"


@socketio.on("connect", namespace="/timekeeper")
@socket_requires("races.view")
def connect(auth=None):
    """Consoles and commentators (``races.view``); others are refused."""
    return True


@socketio.on("watch", namespace="/timekeeper")
@socket_requires("races.view")
def watch(data):
    """``{"track_id": N}`` -> ``{"ok": true, "race": state | null}``; joins the track's room
    and sends the track's timers (one ``timer_status`` each).
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
    for device in timers.list_timers(track_id, include_revoked=False):  # the console's timer indicator
        emit("timer_status", timers.timer_dict(device), to=request.sid, namespace="/timekeeper")
    db.session.remove()
    return {"ok": True, "race": state}


def _holds_timer_token(*args) -> bool:
    """The timer token authority: on connect the ``auth`` dict's token must belong to a live
    timer; afterwards the connection's timer is re-checked at every message (a revoked
    token stops working at its next message). Leaves the timer in ``g.timer``."""
    if request.event["message"] == "connect":
        auth = args[0] if args else None
        g.timer = timers.timer_for_token(auth.get("token") if isinstance(auth, dict) else None)
    else:
        g.timer = timers.live_timer(session.get("timer_id"))
    return g.timer is not None


#: Who may use the ``/timer`` namespace: the holder of a live timer token.
TIMER_TOKEN = SocketAuthority("timer token", _holds_timer_token,
                              refusal={"ok": False, "error": "invalid timer token", "retry": False},
                              connect_refusal="invalid timer token")


@socketio.on("connect", namespace=TIMER_NS)
@socket_requires(TIMER_TOKEN)
def timer_connect(auth=None):
    """The timer is online; its track's consoles hear of it."""
    session["timer_id"] = g.timer.id
    hostname = auth.get("hostname") if isinstance(auth, dict) and isinstance(auth.get("hostname"), str) else None
    timers.connected(g.timer, request.sid, hostname)
    commit()


@socketio.on("disconnect", namespace=TIMER_NS)
@socket_requires(TIMER_TOKEN)
def timer_disconnect(*_args):
    timers.disconnected(g.timer, request.sid)
    commit()


@socketio.on("heartbeat", namespace=TIMER_NS)
@socket_requires(TIMER_TOKEN)
def timer_heartbeat(data):
    """``{device_time_ms, clock_offset_ms?, round_trip_ms?, sensors?}`` -> ``{ok, server_time_ms, …}``."""
    if not isinstance(data, dict):
        return {"ok": False, "error": "send a JSON object", "retry": False}
    if g.timer.sid != request.sid:  # a heartbeat on a socket the server took for closed
        timers.connected(g.timer, request.sid)
    answer = timers.record_heartbeat(g.timer, data)
    commit()
    return answer


@socketio.on("crossing", namespace=TIMER_NS)
@socket_requires(TIMER_TOKEN)
def timer_crossing(data):
    """``{crossing_id, device_time_ms, sensor?}`` -> the ack of
    :func:`drem.timekeeper.crossings.report_crossing` (``ok: true`` once stored, whatever
    its status: the device may drop it from its outbox); ``{ok: false, retry: false}``
    for a malformed message."""
    if not isinstance(data, dict):
        return {"ok": False, "error": "send a JSON object", "retry": False}
    try:
        device_ms = whole_number(data, "device_time_ms", 0, 2**63 - 1, strict=True)
        sensor = whole_number(data, "sensor", 1, 2, required=False, default=1, strict=True)
        crossing_id = text(data, "crossing_id", 1, 48, required=True)
    except ServiceError as exc:
        db.session.rollback()
        return {"ok": False, "error": exc.message, "retry": False}
    answer = crossings.report_crossing(g.timer, crossing_id, device_ms, sensor)
    commit()
    answer["ok"] = True  # stored (a lap, or kept with its reason): the device is done with it
    return answer
