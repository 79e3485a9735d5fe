"""The timekeeper console page (big touch buttons, keyboard shortcuts, live clock) and the
track's lap-timers page."""

from __future__ import annotations

from flask import Blueprint, render_template

from drem.events.service import get_track, list_events
from drem.fleet.models import Fleet
from drem.fleet.service import car_dict, list_cars
from drem.platform.extensions import db
from drem.platform.permissions import require

bp = Blueprint("timekeeper", __name__, url_prefix="/timekeeper", template_folder="templates")


@bp.get("/")
@require("races.run")
def index():
    return render_template("timekeeper/index.html", events=list_events())


@bp.get("/tracks/<int:track_id>")
@require("races.run")
def console(track_id: int):
    track = get_track(track_id)
    fleet_ids = set(db.session.scalars(db.select(Fleet.id).where(Fleet.track_id == track.id)))
    cars = [car_dict(c) for c in list_cars() if not fleet_ids or c.fleet_id in fleet_ids]
    return render_template("timekeeper/console.html", track=track, event=track.event, cars=cars)


@bp.get("/tracks/<int:track_id>/timers")
@require("races.run")
def timers_page(track_id: int):
    """Lap timers of a track: activate one with a one-time code, see them live, revoke one."""
    track = get_track(track_id)
    return render_template("timekeeper/timers.html", track=track, event=track.event)
