"""Enrolment JSON API: enrol a racer by name (the console's walk-up form uses it)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from drem.enrolment.service import enrol_by_name
from drem.events.service import get_event
from drem.platform.effects import commit
from drem.platform.inputs import text
from drem.platform.permissions import require
from drem.platform.web import json_body

bp = Blueprint("enrolment_api", __name__, url_prefix="/api")


@bp.post("/events/<int:event_id>/enrol")
@require("racers.enrol")
def enrol(event_id: int):
    """``{"username", "country_code", "email"?}``: find or create the racer and enrol them.
    201 with ``{"racer", "registration", "created", "already_enrolled"}`` when the account
    was created, 200 when an existing racer was found (enrolled now or before)."""
    data = json_body()
    event = get_event(event_id)
    result = enrol_by_name(current_user, event, text(data, "username", 0, 200, default=""),
                           data.get("country_code"), text(data, "email", 0, 254))
    commit()
    return jsonify(result.to_dict()), 201 if result.created else 200
