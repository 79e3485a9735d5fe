"""Commands to cars: validate, queue or send, deliver on (re)connect, track results, expire.

A command reaches a car as ``command`` on the ``/car`` namespace (room ``car:<id>``);
the car answers with ``command_result`` messages whose status only moves forward
(docs/car-protocol.md, section 2).

A car takes one model at a time (it refuses ``load_model`` while loading), so the
server holds a car's further ``load_model`` commands (``queued``, reason "waiting for
the previous load on this car") and sends the next when the previous one finishes.
A model in a format the car does not run (its heartbeat's ``model_formats``) is
refused here, before anything is sent.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, has_request_context, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from drem.fleet.models import (
    ACKNOWLEDGED,
    COMMAND_ORDER,
    DONE,
    FAILED,
    FINISHED,
    QUEUED,
    SENT,
    Car,
    CarCommand,
)
from drem.fleet.service import (
    COMMAND_TYPES,
    TAIL_LIGHTS,
    car_dict,
    check_car_runs,
    get_car,
    push_command,
)
from drem.models_mgr.service import available_model, model_exists
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Forbidden, NotFound, ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.inputs import record_id, record_ids

MAX_SPEED_RANGE = (0.1, 4.0)  # m/s, a 1/18 car


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="car-model-download")


def signed_model_path(model_id: int, car_id: int) -> str:
    """Absolute URL a car downloads a model from; valid for ``MODEL_URL_TTL_S`` seconds and
    only for this model. The host is ``PUBLIC_URL`` when set, else the one the request came to."""
    token = _serializer().dumps({"m": model_id, "c": car_id})
    path = url_for("fleet_car_api.model_file", model_id=model_id, t=token, _external=False)
    base = current_app.config["PUBLIC_URL"] or (request.host_url if has_request_context() else "")
    if not base:
        raise ServiceError("set PUBLIC_URL so cars know where to download models from")
    return base.rstrip("/") + path


def check_model_signature(model_id: int, token: str) -> int:
    """The car id a download token was made for; Forbidden when it is forged, for
    another model, or older than ``MODEL_URL_TTL_S``."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["MODEL_URL_TTL_S"])
    except SignatureExpired:
        raise Forbidden("this download link has expired; send the load command again") from None
    except BadSignature:
        raise Forbidden("invalid download link") from None
    if not isinstance(data, dict) or data.get("m") != model_id:
        raise Forbidden("invalid download link")
    return int(data["c"])


def _params(command_type: str, params: dict, car: Car) -> tuple[dict, int | None]:
    """Validate ``params`` for ``command_type``; returns (wire params, model id)."""
    if command_type == "load_model":
        try:
            model = available_model(record_id(params, "model_id"))
        except NotFound:
            raise ServiceError("that model is not available (it must be scanned clean first)", "model_id") from None
        check_car_runs(car, model)
        return {"model_id": str(model.id), "name": model.filename, "format": model.model_format,
                "sha256": model.sha256, "size": model.size, "model_settings": model.model_settings or {},
                "url": signed_model_path(model.id, car.id)}, model.id
    if command_type == "delete_models":
        ids = params.get("model_ids") or []
        if not isinstance(ids, list):
            raise ServiceError("model_ids must be a list (empty: all models)", "model_ids")
        return {"model_ids": [str(i) for i in ids]}, None
    if command_type == "start_driving":
        model_id = record_id(params, "model_id")
        wire = {"model_id": str(model_id)}
        race_id = record_id(params, "race_id", required=False)
        if race_id is not None:  # the car tags its laps with it
            wire["race_id"] = race_id
        # the car decides whether it has the model; link the row only when it exists
        return wire, (model_id if model_exists(model_id) else None)
    if command_type == "set_max_speed":
        try:
            speed = float(params.get("max_speed_mps"))
        except (TypeError, ValueError):
            raise ServiceError("max_speed_mps must be a number (m/s)", "max_speed_mps") from None
        lo, hi = MAX_SPEED_RANGE
        if not lo <= speed <= hi:
            raise ServiceError(f"max_speed_mps must be between {lo} and {hi} m/s", "max_speed_mps")
        return {"max_speed_mps": round(speed, 2)}, None
    if command_type == "set_tail_light":
        colour = str(params.get("colour", "")).lower()
        if colour not in TAIL_LIGHTS:
            raise ServiceError(f"colour must be one of {', '.join(TAIL_LIGHTS)}", "colour")
        return {"colour": colour}, None
    return {}, None


def send_commands(actor, car_ids: list, command_type: str, params: dict | None = None) -> list[CarCommand]:
    """Create one command per car. Online cars get it right after the commit; offline
    cars keep it queued until they connect (or ``COMMAND_TTL_S`` passes). An emergency
    stop is never queued: for an offline car it fails at once with "car offline".

    Raises ServiceError for an unknown type, bad parameters or no cars; NotFound for
    an unknown car id.
    """
    if command_type not in COMMAND_TYPES:
        raise ServiceError(f"unknown command {command_type!r}; use one of {', '.join(COMMAND_TYPES)}", "type")
    ids = record_ids({"car_ids": car_ids}, "car_ids")
    if not ids:
        raise ServiceError("choose at least one car", "car_ids")
    cars = [get_car(car_id) for car_id in ids]
    now = utcnow()
    ttl = timedelta(seconds=current_app.config["COMMAND_TTL_S"])
    commands = []
    for car in cars:
        if car.token_revoked_at is not None:
            raise ServiceError(f"{car.hostname}'s token is revoked; activate it again", "car_ids")
        wire_params, model_id = _params(command_type, params or {}, car)
        cmd = CarCommand(car=car, command_type=command_type, params=wire_params, model_id=model_id,
                         created_by_id=getattr(actor, "id", None), expires_at=now + ttl, status=QUEUED)
        db.session.add(cmd)
        db.session.flush()
        online = car.is_online(now, current_app.config["CAR_OFFLINE_AFTER_S"])
        if online:
            _deliver_or_hold(cmd)
        elif command_type == "emergency_stop":
            _finish(cmd, FAILED, "car offline")
        else:
            cmd.reason = "car offline: queued until it connects"
        push_command(cmd)
        commands.append(cmd)
    db.session.flush()
    return commands


WAITING_FOR_LOAD = "waiting for the previous load on this car"


def _load_in_flight(cmd: CarCommand) -> bool:
    """Whether another ``load_model`` of ``cmd``'s car is sent but not finished."""
    return db.session.scalar(db.select(CarCommand.id).where(
        CarCommand.car_id == cmd.car_id, CarCommand.command_type == "load_model", CarCommand.id != cmd.id,
        CarCommand.status.in_((SENT, ACKNOWLEDGED))).limit(1)) is not None


def _deliver_or_hold(cmd: CarCommand) -> bool:
    """Send ``cmd`` unless it is a ``load_model`` behind another running load of its car
    (then it stays queued with :data:`WAITING_FOR_LOAD`). Returns whether it was sent."""
    if cmd.command_type == "load_model" and _load_in_flight(cmd):
        cmd.status, cmd.reason = QUEUED, WAITING_FOR_LOAD
        return False
    _deliver(cmd)
    return True


def _deliver_next_load(car: Car) -> None:
    """After a load finished: send the car's oldest held ``load_model``, if it is online."""
    if not car.is_online(utcnow(), current_app.config["CAR_OFFLINE_AFTER_S"]):
        return
    db.session.flush()
    nxt = db.session.scalar(db.select(CarCommand).where(
        CarCommand.car_id == car.id, CarCommand.command_type == "load_model", CarCommand.status == QUEUED,
        CarCommand.expires_at > utcnow()).order_by(CarCommand.id).limit(1))
    if nxt is not None and _deliver_or_hold(nxt):
        push_command(nxt)


def _deliver(cmd: CarCommand) -> None:
    """Mark sent and emit to the car's room after the commit. A ``load_model`` gets a
    freshly signed URL each time it is (re)sent, so a late delivery never carries an
    expired link."""
    if cmd.command_type == "load_model" and cmd.model_id is not None:
        try:
            cmd.params = cmd.params | {"url": signed_model_path(cmd.model_id, cmd.car_id)}
        except ServiceError:
            pass  # no request context and no PUBLIC_URL: keep the URL signed at creation
    cmd.status, cmd.sent_at, cmd.reason = SENT, utcnow(), None
    wire, room = cmd.wire(), f"car:{cmd.car_id}"
    after_commit(lambda: socketio.emit("command", wire, namespace="/car", to=room))


def deliver_pending(car: Car) -> int:
    """Send every queued, unexpired command of ``car`` (called when it connects), oldest
    first; expired ones fail with "car offline". Also resends commands that were sent but
    never acknowledged (the car may have missed them). Returns how many were sent."""
    now = utcnow()
    rows = db.session.scalars(db.select(CarCommand).where(CarCommand.car_id == car.id,
                                                          CarCommand.status.in_((QUEUED, SENT)))
                              .order_by(CarCommand.id))
    sent = 0
    for cmd in rows:
        if cmd.expires_at <= now:
            _finish(cmd, FAILED, "car offline")
        elif _deliver_or_hold(cmd):
            sent += 1
        db.session.flush()  # the next held load sees this one in flight
        push_command(cmd)
    return sent


def _finish(cmd: CarCommand, status: str, reason: str | None) -> None:
    cmd.status, cmd.reason, cmd.finished_at = status, reason, utcnow()


def record_result(car: Car, data: dict) -> dict:
    """Apply a ``command_result`` from ``car``. Status only moves forward; a repeated or late
    result is acknowledged and ignored. Returns the ack payload."""
    command_id = str(data.get("command_id", ""))
    status = data.get("status")
    if status not in (ACKNOWLEDGED, DONE, FAILED):
        return {"ok": False, "error": "status must be acknowledged, done or failed"}
    try:
        row_id = record_id({"command_id": command_id.removeprefix("c-")}, "command_id")
    except ServiceError:
        return {"ok": False, "error": f"unknown command {command_id!r}"}
    cmd = db.session.get(CarCommand, row_id)
    if cmd is None or cmd.car_id != car.id:
        return {"ok": False, "error": f"command {command_id} is not for this car"}
    if cmd.status in FINISHED or COMMAND_ORDER[status] < COMMAND_ORDER[cmd.status]:
        return {"ok": True, "ignored": True}
    progress = data.get("progress")
    if isinstance(progress, int | float):
        cmd.progress = max(0.0, min(1.0, float(progress)))
    if status in FINISHED:
        _finish(cmd, status, (str(data.get("reason"))[:500] if data.get("reason") else None))
        if status == DONE:
            cmd.progress = 1.0
    else:
        cmd.status = status
        cmd.reason = str(data["reason"])[:500] if data.get("reason") else None
    push_command(cmd)
    db.session.flush()
    if status in FINISHED and cmd.command_type == "load_model":
        _deliver_next_load(car)
    return {"ok": True}


def load_models(actor, car_ids: list, model_ids: list, clear_first: bool = False) -> list[CarCommand]:
    """Load several models onto several cars in one action (as DREM's "Load model").

    Every model must be available and every car must run every model's format, or
    nothing is sent (ServiceError naming the car, its formats and the model). With
    ``clear_first`` each car first gets ``delete_models`` for all its models. Per car
    the loads run one after the other (see the module docstring). Returns every
    command created, in order; progress arrives per command (``command_status``).
    """
    ids = record_ids({"model_ids": model_ids}, "model_ids")
    if not ids:
        raise ServiceError("choose at least one model", "model_ids")
    cars = [get_car(car_id) for car_id in record_ids({"car_ids": car_ids}, "car_ids")]
    if not cars:
        raise ServiceError("choose at least one car", "car_ids")
    for model_id in ids:
        try:
            model = available_model(model_id)
        except NotFound:
            raise ServiceError(f"model {model_id} is not available (it must be scanned clean first)",
                               "model_ids") from None
        for car in cars:
            check_car_runs(car, model)
    created: list[CarCommand] = []
    for car in cars:
        if clear_first:
            created += send_commands(actor, [car.id], "delete_models", {"model_ids": []})
        for model_id in ids:
            created += send_commands(actor, [car.id], "load_model", {"model_id": model_id})
    return created


def expire_queued() -> int:
    """Fail queued commands whose time ran out ("car offline"); returns how many."""
    now = utcnow()
    rows = list(db.session.scalars(db.select(CarCommand).where(CarCommand.status == QUEUED,
                                                               CarCommand.expires_at <= now)))
    for cmd in rows:
        held = cmd.reason == WAITING_FOR_LOAD
        _finish(cmd, FAILED, "the previous load on this car took too long; send it again" if held
                else "car offline")
        push_command(cmd)
    db.session.flush()
    return len(rows)


def latest_loads(car_ids: list[int] | None = None) -> dict[int, dict]:
    """Each car's newest ``load_model`` command (operator JSON shape), by car id: what the
    cars page and the timekeeper console show as the car's load progress. ``car_ids``
    None: every car."""
    newest = db.select(db.func.max(CarCommand.id)).where(CarCommand.command_type == "load_model")
    if car_ids is not None:
        if not car_ids:
            return {}
        newest = newest.where(CarCommand.car_id.in_(car_ids))
    rows = db.session.scalars(db.select(CarCommand).where(
        CarCommand.id.in_(newest.group_by(CarCommand.car_id).scalar_subquery())))
    return {cmd.car_id: cmd.to_dict() for cmd in rows}


#: What :func:`model_load_state` answers, in words the console shows.
LOAD_STATES = ("loaded", "queued", "downloading", "failed", "not sent")


def model_load_state(car: Car, model_id: int) -> dict:
    """How far model ``model_id`` is from being on ``car``: ``{"state", "progress",
    "reason", "hostname"}`` with ``state`` one of :data:`LOAD_STATES` and ``progress``
    0.0-1.0 (None when unknown). ``loaded`` when the car's heartbeat lists the model or
    the car's newest load of this model finished (the heartbeat follows); otherwise from
    that newest ``load_model`` command: queued or sent (``queued``), acknowledged
    (``downloading``), failed (``failed``, with its reason), none (``not sent``)."""
    answer = {"state": "not sent", "progress": None, "reason": None, "hostname": car.hostname}
    if any(m.get("model_id") == str(model_id) for m in car.loaded_models or []):
        return answer | {"state": "loaded", "progress": 1.0}
    cmd = db.session.scalar(db.select(CarCommand).where(
        CarCommand.car_id == car.id, CarCommand.command_type == "load_model", CarCommand.model_id == model_id)
        .order_by(CarCommand.id.desc()).limit(1))
    if cmd is None:
        return answer
    state = {DONE: "loaded", FAILED: "failed", ACKNOWLEDGED: "downloading"}.get(cmd.status, "queued")
    return answer | {"state": state, "progress": cmd.progress, "reason": cmd.reason}


def get_command(command_id: int) -> CarCommand:
    """The command with this row id; NotFound otherwise."""
    cmd = db.session.get(CarCommand, command_id)
    if cmd is None:
        raise NotFound("no such command")
    return cmd


def list_commands(car_id: int | None = None, command_type: str | None = None, limit: int = 100) -> list[CarCommand]:
    """Newest-first commands, optionally of one car and/or one type."""
    query = db.select(CarCommand).order_by(CarCommand.id.desc()).limit(limit)
    if car_id is not None:
        query = query.where(CarCommand.car_id == car_id)
    if command_type:
        query = query.where(CarCommand.command_type == command_type)
    return list(db.session.scalars(query))


__all__ = ["car_dict", "send_commands", "deliver_pending", "record_result", "expire_queued"]
