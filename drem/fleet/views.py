"""Fleet pages: the live cars page (commands, activation codes, fleets) and the
upload-to-car history."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from drem.fleet import commands, service
from drem.models_mgr.service import list_available_models
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import record_id
from drem.platform.permissions import require
from drem.platform.web import EmptyForm, form_action

bp = Blueprint("fleet", __name__, url_prefix="/fleet", template_folder="templates")


@bp.get("/")
@require("fleet.view")
def cars():
    return render_template("fleet/cars.html", cars=[service.car_dict(c) for c in service.list_cars()],
                           fleets=service.list_fleets(), models=list_available_models(200),
                           tracks=service.assignable_tracks(),
                           recent=[c.to_dict() for c in commands.list_commands(limit=30)],
                           loads=commands.latest_loads(),
                           tail_lights=service.TAIL_LIGHTS, form=EmptyForm(), code=None)


@bp.post("/activation-codes")
@require("fleet.manage")
def activation_code():
    if not EmptyForm().validate_on_submit():
        flash("the form expired; try again", "error")
        return redirect(url_for("fleet.cars"))
    try:
        fleet_id = record_id(request.form, "fleet_id", required=False)
        row, code = service.create_activation_code(current_user, request.form.get("hostname", ""), fleet_id)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("fleet.cars"))
    commit()
    return render_template("fleet/activation.html", code=code, row=row)


@bp.post("/fleets")
@require("fleet.manage")
def create_fleet():
    return _act(lambda: service.create_fleet(current_user, request.form.get("name", ""),
                                             record_id(request.form, "track_id", required=False)), "fleet created")


@bp.post("/fleets/<int:fleet_id>")
@require("fleet.manage")
def update_fleet(fleet_id: int):
    """Rename a fleet and/or change its track (``name``, ``track_id``: empty unassigns), with
    the API's services; only what changed is saved (and audited)."""
    fleet = service.get_fleet(fleet_id)

    def change():
        name, track_id = request.form.get("name", ""), record_id(request.form, "track_id", required=False)
        if name.strip() != fleet.name:
            service.rename_fleet(current_user, fleet, name)
        if track_id != fleet.track_id:
            service.assign_track(current_user, fleet, track_id)

    return _act(change, "fleet saved")


@bp.post("/fleets/<int:fleet_id>/delete")
@require("fleet.manage")
def delete_fleet(fleet_id: int):
    return _act(lambda: service.delete_fleet(current_user, service.get_fleet(fleet_id)), "fleet deleted")


@bp.post("/cars/<int:car_id>/fleet")
@require("fleet.manage")
def car_fleet(car_id: int):
    return _act(lambda: service.set_car_fleet(current_user, service.get_car(car_id),
                                              record_id(request.form, "fleet_id", required=False)), "car moved")


@bp.post("/cars/<int:car_id>/revoke")
@require("fleet.admin")
def revoke(car_id: int):
    return _act(lambda: service.revoke_car(current_user, service.get_car(car_id)), "token revoked")


@bp.post("/cars/<int:car_id>/delete")
@require("fleet.admin")
def deregister(car_id: int):
    return _act(lambda: service.deregister_car(current_user, service.get_car(car_id)), "car deregistered")


def _act(change, ok: str):
    return form_action(change, ok, url_for("fleet.cars"))


@bp.get("/history")
@require("fleet.view")
def history():
    """Every model load sent to a car, newest first, with its outcome."""
    rows = commands.list_commands(command_type="load_model", limit=500)
    return render_template("fleet/history.html", rows=[c.to_dict() for c in rows])
