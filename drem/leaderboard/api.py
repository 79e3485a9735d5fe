"""Leaderboard and results JSON API (see docs/api.md, "Leaderboard and results")."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request
from flask_login import current_user

from drem.events.service import get_event
from drem.leaderboard import export, service
from drem.platform.extensions import db
from drem.platform.permissions import public, require
from drem.platform.web import json_body

bp = Blueprint("leaderboard_api", __name__, url_prefix="/api/events")


@bp.get("/<int:event_id>/leaderboard")
@public
def leaderboard(event_id: int):
    """The full leaderboard state of ``?track=<id>|combined`` (public; times in ms)."""
    event = get_event(event_id)
    return jsonify(service.leaderboard_state(event, service.parse_track(event, request.args.get("track"))))


def _download(body: str, mimetype: str, filename: str) -> Response:
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


@bp.get("/<int:event_id>/laps.csv")
@require("events.view")
def laps_csv(event_id: int):
    event = get_event(event_id)
    return _download(export.laps_csv(event), "text/csv", export.export_filename(event, "laps.csv"))


@bp.get("/<int:event_id>/racers.csv")
@require("events.view")
def racers_csv(event_id: int):
    event = get_event(event_id)
    return _download(export.racers_csv(event), "text/csv", export.export_filename(event, "racers.csv"))


@bp.get("/<int:event_id>/export.json")
@require("events.view")
def export_json(event_id: int):
    event = get_event(event_id)
    return _download(json.dumps(export.export_event(event), indent=1), "application/json",
                     export.export_filename(event, "export.json"))


@bp.post("/import")
@require("events.manage")
def import_json():
    event, counts = export.import_event(current_user, json_body())
    db.session.commit()
    return jsonify(event=event.to_dict(), **counts), 201
