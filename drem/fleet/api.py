"""Fleet JSON API for operators (``/api/fleet``) and the car-facing HTTP endpoints
(``/api/car``: activation and signed model downloads, see docs/car-protocol.md)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user

from drem.fleet import car_reports, commands, service
from drem.platform.effects import commit
from drem.platform.errors import NotFound, ServiceError
from drem.platform.extensions import db
from drem.platform.permissions import public, require
from drem.platform.web import json_body, no_csrf

bp = Blueprint("fleet_api", __name__, url_prefix="/api/fleet")
car_bp = Blueprint("fleet_car_api", __name__, url_prefix="/api/car")


def _opt_int(value, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ServiceError(f"{field} must be a whole number", field) from None


@bp.get("/fleets")
@require("fleet.view")
def list_fleets():
    return jsonify(fleets=[f.to_dict() for f in service.list_fleets()])


@bp.post("/fleets")
@require("fleet.manage")
def create_fleet():
    data = json_body()
    fleet = service.create_fleet(current_user, str(data.get("name", "")), _opt_int(data.get("track_id"), "track_id"))
    commit()
    return jsonify(fleet.to_dict()), 201


@bp.patch("/fleets/<int:fleet_id>")
@require("fleet.manage")
def update_fleet(fleet_id: int):
    data = json_body()
    fleet = service.get_fleet(fleet_id)
    if "name" in data:
        service.rename_fleet(current_user, fleet, str(data["name"]))
    if "track_id" in data:
        service.assign_track(current_user, fleet, _opt_int(data["track_id"], "track_id"))
    commit()
    return jsonify(fleet.to_dict())


@bp.delete("/fleets/<int:fleet_id>")
@require("fleet.manage")
def delete_fleet(fleet_id: int):
    service.delete_fleet(current_user, service.get_fleet(fleet_id))
    commit()
    return "", 204


@bp.post("/activation-codes")
@require("fleet.manage")
def create_activation_code():
    """One-time code for one car: ``{hostname, fleet_id?}`` -> ``{code, hostname, expires_at}``."""
    data = json_body()
    row, code = service.create_activation_code(current_user, str(data.get("hostname", "")),
                                               _opt_int(data.get("fleet_id"), "fleet_id"))
    commit()
    return jsonify(code=code, hostname=row.hostname, fleet_id=row.fleet_id,
                   expires_at=row.expires_at.isoformat()), 201


@bp.get("/cars")
@require("fleet.view")
def list_cars():
    cars = service.list_cars(_opt_int(request.args.get("fleet_id"), "fleet_id"))
    return jsonify(cars=[service.car_dict(c) for c in cars])


@bp.get("/cars/<int:car_id>")
@require("fleet.view")
def car_detail(car_id: int):
    return jsonify(service.car_dict(service.get_car(car_id)))


@bp.get("/cars/<int:car_id>/laps")
@require("fleet.view")
def car_laps(car_id: int):
    """The car's lap log (every lap it reported, once each), oldest first:
    ``?after_id=&limit=`` (default 1000, at most 10000) -> ``{laps: [..]}``."""
    car = service.get_car(car_id)
    limit = _opt_int(request.args.get("limit"), "limit")
    limit = 1000 if limit is None else limit
    if not 1 <= limit <= 10_000:
        raise ServiceError("limit must be between 1 and 10000", "limit")
    laps = car_reports.list_car_laps(car, _opt_int(request.args.get("after_id"), "after_id") or 0, limit)
    return jsonify(laps=[lap.to_dict() for lap in laps])


@bp.patch("/cars/<int:car_id>")
@require("fleet.manage")
def update_car(car_id: int):
    data = json_body()
    car = service.get_car(car_id)
    if "fleet_id" in data:
        service.set_car_fleet(current_user, car, _opt_int(data["fleet_id"], "fleet_id"))
    commit()
    return jsonify(service.car_dict(car))


@bp.post("/cars/<int:car_id>/revoke")
@require("fleet.admin")
def revoke_car(car_id: int):
    car = service.revoke_car(current_user, service.get_car(car_id))
    commit()
    return jsonify(service.car_dict(car))


@bp.delete("/cars/<int:car_id>")
@require("fleet.admin")
def deregister_car(car_id: int):
    service.deregister_car(current_user, service.get_car(car_id))
    commit()
    return "", 204


@bp.post("/commands")
@require("fleet.manage")
def send_commands():
    """``{car_ids: [..], type, params}`` -> ``{commands: [..]}`` (one per car)."""
    data = json_body()
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ServiceError("params must be a JSON object", "params")
    sent = commands.send_commands(current_user, data.get("car_ids"), str(data.get("type", "")), params)
    commit()
    return jsonify(commands=[c.to_dict() for c in sent]), 201


@bp.get("/commands")
@require("fleet.view")
def list_commands():
    rows = commands.list_commands(_opt_int(request.args.get("car_id"), "car_id"), request.args.get("type") or None,
                                  limit=min(500, _opt_int(request.args.get("limit"), "limit") or 100))
    return jsonify(commands=[c.to_dict() for c in rows])


@bp.get("/commands/<int:command_id>")
@require("fleet.view")
def command_detail(command_id: int):
    return jsonify(commands.get_command(command_id).to_dict())


@car_bp.post("/activate")
@public
@no_csrf
def activate():
    """A car client exchanges a one-time activation code for its token."""
    data = json_body()
    car, token = service.activate_car(str(data.get("code", "")), data.get("hostname"), data.get("software_version"))
    commit()
    return jsonify(car_id=car.id, token=token, hostname=car.hostname, heartbeat_interval_s=2), 201


@car_bp.get("/models/<int:model_id>/file")
@public
def model_file(model_id: int):
    """Signed, expiring model download for a car (Range supported)."""
    from drem.models_mgr.download import send_model_file
    from drem.models_mgr.models import AVAILABLE, RacerModel

    car_id = commands.check_model_signature(model_id, request.args.get("t", ""))
    car = db.session.get(service.Car, car_id)
    if car is None or car.token_revoked_at is not None:
        raise NotFound("no such car")
    model = db.session.get(RacerModel, model_id)
    if model is None or model.status != AVAILABLE:
        raise NotFound("the model is gone or not available")
    return send_model_file(model)
