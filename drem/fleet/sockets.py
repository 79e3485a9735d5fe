"""Socket.IO: ``/car`` for car clients (token auth, every message checked against the
token's car) and ``/fleet`` for the operators' live cars page.

Each message handler commits once; deliveries and pushes go out after the commit.
"""

from __future__ import annotations

from flask import current_app, request, session
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from drem.fleet import car_reports, commands, service
from drem.platform.background import ensure_background_jobs
from drem.platform.effects import commit
from drem.platform.extensions import db, socketio
from drem.platform.permissions import allowed

CAR_NS = "/car"


def _current_car():
    """The car of this connection, re-checked against the database (a revoked token stops
    working at its next message)."""
    car_id = session.get("car_id")
    car = db.session.get(service.Car, car_id) if car_id else None
    if car is None or car.token_revoked_at is not None:
        return None
    return car


def _checked(data) -> tuple[object, dict | None]:
    car = _current_car()
    if car is None:
        return None, {"ok": False, "error": "invalid car token", "retry": False}
    if not isinstance(data, dict):
        return None, {"ok": False, "error": "send a JSON object", "retry": False}
    claimed = data.get("car_id")
    if claimed is not None and str(claimed) != str(car.id):
        return None, {"ok": False, "error": f"this token belongs to car {car.id}, not {claimed}", "retry": False}
    return car, None


@socketio.on("connect", namespace=CAR_NS)
def car_connect(auth=None):
    """Authenticate the car token; join the car's room; send queued commands."""
    ensure_background_jobs(current_app._get_current_object())
    token = auth.get("token") if isinstance(auth, dict) else None
    car = service.car_for_token(token)
    if car is None:
        raise ConnectionRefusedError("invalid car token")
    session["car_id"] = car.id
    join_room(f"car:{car.id}")
    car.connected, car.sid, car.last_seen_at = True, request.sid, service.utcnow()
    car.ip = request.headers.get("X-Forwarded-For", request.remote_addr or "").split(",")[0].strip()[:45] or car.ip
    commands.deliver_pending(car)
    service.push_car(car)
    commit()


@socketio.on("disconnect", namespace=CAR_NS)
def car_disconnect(*_args):
    car = _current_car()
    if car is not None and car.sid == request.sid:
        car.connected, car.sid = False, None
        service.push_car(car)
        commit()


@socketio.on("heartbeat", namespace=CAR_NS)
def heartbeat(data):
    car, refusal = _checked(data)
    if refusal:
        return refusal
    answer = car_reports.record_heartbeat(car, data, request.remote_addr)
    commit()
    return answer


@socketio.on("lap", namespace=CAR_NS)
def lap(data):
    car, refusal = _checked(data)
    if refusal:
        return refusal
    answer = car_reports.record_car_lap(car, data)
    commit()
    return answer


@socketio.on("command_result", namespace=CAR_NS)
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
def fleet_connect(auth=None):
    """Operators and commentators watching the cars page; others are refused."""
    if not allowed(current_user, "fleet.view"):
        return False
    join_room(service.FLEET_ROOM)
    return True
