"""Model pages: the racer upload portal and the staff model list."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from drem.models_mgr import service
from drem.models_mgr.download import send_model_file
from drem.models_mgr.models import STATUSES
from drem.platform.inputs import id_arg, int_arg
from drem.platform.permissions import allowed, require
from drem.platform.web import EmptyForm, form_action

bp = Blueprint("models_mgr", __name__, url_prefix="/models", template_folder="templates")


@bp.get("/")
@require("models.upload")
def index():
    staff = allowed(current_user, "models.view_all")
    owner_id = id_arg("owner_id") if staff else current_user.id
    page = service.list_models(current_user, owner_id=owner_id, event_id=id_arg("event_id"),
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
    return form_action(lambda: service.delete_model(current_user, service.get_model(current_user, model_id)),
                       "model deleted", url_for("models_mgr.index"))
