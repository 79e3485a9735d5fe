"""Fleet JSON API for operators (``/api/fleet``) and the car-facing HTTP endpoints
(``/api/car``: activation and signed model downloads, see docs/car-protocol.md)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user

from drem.fleet import car_reports, commands, service
from drem.models_mgr.download import send_model_file
from drem.models_mgr.service import available_model
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.inputs import MAX_ID, flag, id_arg, int_arg, record_id, text, whole_number
from drem.platform.permissions import public, require
from drem.platform.web import json_body, no_csrf

bp = Blueprint("fleet_api", __name__, url_prefix="/api/fleet")
car_bp = Blueprint("fleet_car_api", __name__, url_prefix="/api/car")


@bp.get("/fleets")
@require("fleet.view")
def list_fleets():
    return jsonify(fleets=[f.to_dict() for f in service.list_fleets()])


@bp.post("/fleets")
@require("fleet.manage")
def create_fleet():
    data = json_body()
    fleet = service.create_fleet(current_user, text(data, "name", default=""),
                                 record_id(data, "track_id", required=False))
    commit()
    return jsonify(fleet.to_dict()), 201


@bp.patch("/fleets/<int:fleet_id>")
@require("fleet.manage")
def update_fleet(fleet_id: int):
    data = json_body()
    fleet = service.get_fleet(fleet_id)
    if "name" in data:
        service.rename_fleet(current_user, fleet, text(data, "name", default=""))
    if "track_id" in data:
        service.assign_track(current_user, fleet, record_id(data, "track_id", required=False))
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
    row, code = service.create_activation_code(current_user, text(data, "hostname", default=""),
                                               record_id(data, "fleet_id", required=False))
    commit()
    return jsonify(code=code, hostname=row.hostname, fleet_id=row.fleet_id,
                   expires_at=row.expires_at.isoformat()), 201


@bp.get("/cars")
@require("fleet.view")
def list_cars():
    cars = service.list_cars(id_arg("fleet_id"))
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
    limit = whole_number(request.args, "limit", 1, 10_000, required=False, default=1000)
    after_id = whole_number(request.args, "after_id", 0, MAX_ID, required=False, default=0)
    laps = car_reports.list_car_laps(car, after_id, limit)
    return jsonify(laps=[lap.to_dict() for lap in laps])


@bp.patch("/cars/<int:car_id>")
@require("fleet.manage")
def update_car(car_id: int):
    data = json_body()
    car = service.get_car(car_id)
    if "fleet_id" in data:
        service.set_car_fleet(current_user, car, record_id(data, "fleet_id", required=False))
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
    sent = commands.send_commands(current_user, data.get("car_ids"), text(data, "type", 0, 40, default=""), params)
    commit()
    return jsonify(commands=[c.to_dict() for c in sent]), 201


@bp.post("/load")
@require("fleet.manage")
def load_models():
    """``{car_ids: [..], model_ids: [..], clear_first: bool}`` -> ``{commands: [..]}``: every
    model onto every car, optionally deleting the cars' models first (all or nothing)."""
    data = json_body()
    sent = commands.load_models(current_user, data.get("car_ids"), data.get("model_ids"),
                                flag(data, "clear_first"))
    commit()
    return jsonify(commands=[c.to_dict() for c in sent]), 201


@bp.get("/commands")
@require("fleet.view")
def list_commands():
    rows = commands.list_commands(id_arg("car_id"), request.args.get("type") or None,
                                  limit=int_arg("limit", 100, 1, 500))
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
    car, token = service.activate_car(text(data, "code", 0, 40, default=""), text(data, "hostname", 0, 200),
                                      text(data, "software_version", 0, 200))
    commit()
    return jsonify(car_id=car.id, token=token, hostname=car.hostname, heartbeat_interval_s=2), 201


@car_bp.get("/models/<int:model_id>/file")
@public
def model_file(model_id: int):
    """Signed, expiring model download for a car (Range supported)."""
    car_id = commands.check_model_signature(model_id, request.args.get("t", ""))
    service.get_live_car(car_id)
    return send_model_file(available_model(model_id))
