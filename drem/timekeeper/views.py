"""The timekeeper console page (big touch buttons, keyboard shortcuts, live clock) and the
track's lap-timers page."""

from __future__ import annotations

from flask import Blueprint, render_template

from drem.events.service import get_track, list_events
from drem.fleet.commands import latest_loads
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
    """The console of a track. Its car list starts with the cars of the track's fleets (every
    car when no fleet is assigned to the track), with each car's newest model load; the
    page keeps it live over Socket.IO (``/fleet``)."""
    track = get_track(track_id)
    fleet_ids = sorted(db.session.scalars(db.select(Fleet.id).where(Fleet.track_id == track.id)))
    cars = [car_dict(c) for c in list_cars()
            if c.token_revoked_at is None and (not fleet_ids or c.fleet_id in fleet_ids)]
    loads = latest_loads([c["id"] for c in cars])
    return render_template("timekeeper/console.html", track=track, event=track.event, cars=cars,
                           fleet_ids=fleet_ids, car_data={"cars": cars, "loads": loads})


@bp.get("/tracks/<int:track_id>/timers")
@require("races.run")
def timers_page(track_id: int):
    """Lap timers of a track: activate one with a one-time code, see them live, revoke one."""
    track = get_track(track_id)
    return render_template("timekeeper/timers.html", track=track, event=track.event)
