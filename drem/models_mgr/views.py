"""Model pages: the racer upload portal, the staff model list and a model's page."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from drem.models_mgr import service
from drem.models_mgr.detail import model_detail
from drem.models_mgr.download import send_model_file
from drem.models_mgr.models import STATUSES
from drem.platform.inputs import id_arg, int_arg, text
from drem.platform.permissions import allowed, require
from drem.platform.web import EmptyForm, form_action

bp = Blueprint("models_mgr", __name__, url_prefix="/models", template_folder="templates")


def _list_url(**changes) -> str:
    """This list's URL with the same search and filters and ``changes`` applied."""
    return url_for("models_mgr.index", **{**request.args.to_dict(), **changes})


@bp.get("/")
@require("models.upload")
def index():
    staff = allowed(current_user, "models.view_all")
    sort = request.args.get("sort") or "newest"
    page = service.list_models(current_user, owner_id=id_arg("owner_id") if staff else current_user.id,
                               event_id=id_arg("event_id"), status=request.args.get("status") or None,
                               page=int_arg("page", 1, 1, 100000), q=text(request.args, "q", max_len=100),
                               sort=sort)
    events, upload_event_id = service.upload_events(current_user)
    return render_template("models_mgr/index.html", page=page, staff=staff, statuses=STATUSES, events=events,
                           upload_event_id=upload_event_id, sort=sort, list_url=_list_url,
                           may_delete=lambda m: service.delete_refusal(current_user, m) is None,
                           form=EmptyForm(), limit_mb=current_app.config["UPLOAD_LIMIT_BYTES"] // 2**20)


@bp.get("/upload")
@require("models.upload")
def upload():
    return redirect(url_for("models_mgr.index"))


@bp.get("/<int:model_id>")
@require("models.upload")
def detail(model_id: int):
    """A model's page: its metadata, scan result, cars, races and (staff) same-model uploads."""
    model = service.get_model(current_user, model_id)
    return render_template("models_mgr/detail.html", model=model, d=model_detail(current_user, model),
                           may_delete=service.delete_refusal(current_user, model) is None, form=EmptyForm())


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
