"""Socket.IO: ``/car`` for car clients (token auth, every message checked against the
token's car) and ``/fleet`` for the operators' live cars page.

Each message handler commits once; deliveries and pushes go out after the commit.
"""

from __future__ import annotations

from flask import current_app, g, request, session
from flask_socketio import join_room

from drem.fleet import car_reports, commands, service
from drem.platform.background import ensure_background_jobs
from drem.platform.effects import commit
from drem.platform.extensions import socketio
from drem.platform.permissions import SocketAuthority, socket_requires
from drem.platform.web import client_address

CAR_NS = "/car"


def _holds_car_token(*args) -> bool:
    """The car token authority: on connect the ``auth`` dict's token must belong to a live
    car; afterwards the connection's car is re-checked against the database at every
    message (a revoked token stops working at its next message). Leaves the car in
    ``g.car``."""
    if request.event["message"] == "connect":
        auth = args[0] if args else None
        g.car = service.car_for_token(auth.get("token") if isinstance(auth, dict) else None)
    else:
        car_id = session.get("car_id")
        g.car = service.get_live_car_or_none(car_id) if car_id else None
    return g.car is not None


#: Who may use the ``/car`` namespace: the holder of a live car token.
CAR_TOKEN = SocketAuthority("car token", _holds_car_token,
                            refusal={"ok": False, "error": "invalid car token", "retry": False},
                            connect_refusal="invalid car token")


def _checked(data) -> tuple[object, dict | None]:
    car = g.car
    if not isinstance(data, dict):
        return None, {"ok": False, "error": "send a JSON object", "retry": False}
    claimed = data.get("car_id")
    if claimed is not None and str(claimed) != str(car.id):
        return None, {"ok": False, "error": f"this token belongs to car {car.id}, not {claimed}", "retry": False}
    return car, None


@socketio.on("connect", namespace=CAR_NS)
@socket_requires(CAR_TOKEN)
def car_connect(auth=None):
    """Join the car's room (the token was checked by ``CAR_TOKEN``); send queued commands."""
    ensure_background_jobs(current_app._get_current_object())
    car = g.car
    session["car_id"] = car.id
    join_room(f"car:{car.id}")
    car.connected, car.sid, car.last_seen_at = True, request.sid, service.utcnow()
    car.ip = client_address() or car.ip  # the address the server sees, never one the client claims
    commands.deliver_pending(car)
    service.push_car(car)
    commit()


@socketio.on("disconnect", namespace=CAR_NS)
@socket_requires(CAR_TOKEN)
def car_disconnect(*_args):
    car = g.car
    if car.sid == request.sid:
        car.connected, car.sid = False, None
        service.push_car(car)
        commit()


@socketio.on("heartbeat", namespace=CAR_NS)
@socket_requires(CAR_TOKEN)
def heartbeat(data):
    car, refusal = _checked(data)
    if refusal:
        return refusal
    answer = car_reports.record_heartbeat(car, data, client_address())
    commit()
    return answer


@socketio.on("lap", namespace=CAR_NS)
@socket_requires(CAR_TOKEN)
def lap(data):
    car, refusal = _checked(data)
    if refusal:
        return refusal
    answer = car_reports.record_car_lap(car, data)
    commit()
    return answer


@socketio.on("command_result", namespace=CAR_NS)
@socket_requires(CAR_TOKEN)
def command_result(data):
    car, refusal = _checked(data)
    if refusal:
        return refusal
    answer = commands.record_result(car, data)
    if not answer.get("ok"):
        answer["retry"] = False
    commit()
    return answer


@socketio.on("connect", namespace="/fleet")
@socket_requires("fleet.view")
def fleet_connect(auth=None):
    """Operators and commentators watching the cars page; others are refused."""
    join_room(service.FLEET_ROOM)
    return True
