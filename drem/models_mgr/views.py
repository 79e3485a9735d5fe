"""Model pages: the racer upload portal and the staff model list."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from drem.auth.forms import EmptyForm
from drem.models_mgr import service
from drem.models_mgr.download import send_model_file
from drem.models_mgr.models import STATUSES
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import int_arg
from drem.platform.permissions import allowed, require

bp = Blueprint("models_mgr", __name__, url_prefix="/models", template_folder="templates")


@bp.get("/")
@require("models.upload")
def index():
    staff = allowed(current_user, "models.view_all")
    owner_id = request.args.get("owner_id", type=int) if staff else current_user.id
    page = service.list_models(current_user, owner_id=owner_id, event_id=request.args.get("event_id", type=int),
                               status=request.args.get("status") or None, page=int_arg("page", 1, 1, 100000))
    return render_template("models_mgr/index.html", page=page, staff=staff, statuses=STATUSES,
                           form=EmptyForm(), limit_mb=current_app.config["UPLOAD_LIMIT_BYTES"] // 2**20)


@bp.get("/upload")
@require("models.upload")
def upload():
    return redirect(url_for("models_mgr.index"))


@bp.get("/<int:model_id>/download")
@require("models.upload")
def download(model_id: int):
    model = service.get_model(current_user, model_id)
    service.check_download(current_user, model)
    return send_model_file(model)


@bp.post("/<int:model_id>/delete")
@require("models.upload")
def delete(model_id: int):
    if EmptyForm().validate_on_submit():
        try:
            service.delete_model(current_user, service.get_model(current_user, model_id))
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            commit()
            flash("model deleted", "info")
    return redirect(url_for("models_mgr.index"))
