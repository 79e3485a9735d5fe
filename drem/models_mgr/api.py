"""Model JSON API: streamed upload, list, detail, download, delete."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user

from drem.models_mgr import service
from drem.models_mgr.detail import model_detail
from drem.models_mgr.donkey_settings import settings_from_upload
from drem.models_mgr.download import send_model_file
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.inputs import id_arg, int_arg, text
from drem.platform.permissions import require

bp = Blueprint("models_api", __name__, url_prefix="/api/models")


@bp.post("")
@require("models.upload")
def upload():
    """Upload one model. Raw body with ``?filename=NAME`` (streamed straight to storage),
    or ``multipart/form-data`` with a ``file`` field. Donkey models take optional
    settings (query or form fields ``categorical_throttle_range``, ``crop_top``,
    ``crop_bottom``; 400 naming the field for a bad value). Answers 201 with the model
    (status ``uploaded``); its scan runs in the background."""
    event_id = id_arg("event_id")
    if request.mimetype == "multipart/form-data":
        limit = current_app.config["UPLOAD_LIMIT_BYTES"]
        if request.content_length and request.content_length > limit + 1024 * 1024:
            raise service.TooLarge(f"the upload is larger than the {limit // 2**20} MB limit")
        upload_file = request.files.get("file")
        if upload_file is None:
            raise ServiceError("send the model in a form field called 'file'", "file")
        settings = settings_from_upload({**request.args.to_dict(), **request.form.to_dict()})
        model = service.upload_model(current_user, upload_file.filename or "", upload_file.stream, None, event_id,
                                     settings)
    else:
        settings = settings_from_upload(request.args.to_dict())
        model = service.upload_model(current_user, request.args.get("filename", ""), request.stream,
                                     request.content_length, event_id, settings)
    try:
        commit()
    except Exception:
        service.get_storage().delete(model.storage_key)
        raise
    return jsonify(model.to_dict()), 201


@bp.get("")
@require("models.upload")
def list_models():
    """Search and filter (``q`` racer name or file name, ``event_id``, ``status``; staff
    also ``owner_id``), ``sort`` newest|oldest upload first; paginated. 400 for an unknown
    status or order."""
    page = service.list_models(current_user, owner_id=id_arg("owner_id"), event_id=id_arg("event_id"),
                               status=request.args.get("status") or None, page=int_arg("page", 1, 1, 100000),
                               per_page=int_arg("per_page", 25, 1, 200), q=text(request.args, "q", max_len=100),
                               sort=request.args.get("sort") or "newest")
    return jsonify(models=[m.to_dict() for m in page.items], page=page.page, pages=page.pages, total=page.total)


@bp.get("/<int:model_id>")
@require("models.upload")
def detail(model_id: int):
    """The model with its page's extras (:func:`drem.models_mgr.detail.model_detail`)."""
    return jsonify(model_detail(current_user, service.get_model(current_user, model_id)))


@bp.get("/<int:model_id>/download")
@require("models.upload")
def download(model_id: int):
    model = service.get_model(current_user, model_id)
    service.check_download(current_user, model)
    return send_model_file(model)


@bp.delete("/<int:model_id>")
@require("models.upload")
def delete(model_id: int):
    service.delete_model(current_user, service.get_model(current_user, model_id))
    commit()
    return "", 204
