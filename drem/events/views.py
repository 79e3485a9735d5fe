"""Event pages for the organizer UI: list, create, edit, delete, tracks, racers."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from drem.auth.models import User
from drem.auth.service import get_user
from drem.events import race_admin, service
from drem.events.forms import AddRacerForm, EventForm, TrackForm
from drem.events.models import DIRECTIONS, EVENT_TYPES, MAX_LAP_MS, MIN_LAP_MS, RANKING_METHODS
from drem.platform.effects import commit
from drem.platform.errors import ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import flag, id_arg, record_id
from drem.platform.permissions import allowed, require
from drem.platform.web import EmptyForm, form_action

bp = Blueprint("events", __name__, url_prefix="/events", template_folder="templates")


def _choices() -> dict:
    return {"event_types": EVENT_TYPES, "ranking_methods": RANKING_METHODS, "directions": DIRECTIONS,
            "layouts": service.track_layouts()}


@bp.get("/")
@require("events.view")
def index():
    return render_template("events/index.html", events=service.list_events())


@bp.route("/new", methods=["GET", "POST"])
@require("events.manage")
def create():
    form = EventForm()
    values = request.form.to_dict() if request.method == "POST" else {}
    if form.validate_on_submit():
        tracks = [{"name": n.strip(), "layout": lay} for n, lay in
                  zip(request.form.getlist("track_name"), request.form.getlist("track_layout"), strict=False)
                  if n.strip()]
        try:
            event = service.create_event(current_user, values | {"tracks": tracks or None})
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            commit()
            flash(f"event {event.name!r} created", "info")
            return redirect(url_for("events.detail", event_id=event.id))
    return render_template("events/form.html", form=form, event=None, values=values, **_choices())


@bp.get("/<int:event_id>")
@require("events.view")
def detail(event_id: int):
    event = service.get_event(event_id)
    add_form = AddRacerForm()
    registered = {r.user_id for r in event.registrations}
    add_form.user_id.choices = [
        (u.id, u.username) for u in db.session.scalars(
            db.select(User).where(User.role == "racer").order_by(User.username_key))
        if u.id not in registered]
    return render_template("events/detail.html", event=event, add_form=add_form, form=EmptyForm(),
                           track_form=TrackForm(), can_manage=allowed(current_user, "events.manage"),
                           can_enrol=allowed(current_user, "racers.enrol"),
                           **_choices())


@bp.route("/<int:event_id>/edit", methods=["GET", "POST"])
@require("events.manage")
def edit(event_id: int):
    event = service.get_event(event_id)
    form = EventForm()
    values = request.form.to_dict() if request.method == "POST" else event.to_dict() | event.race_config()
    if form.validate_on_submit():
        try:
            service.update_event(current_user, event, values)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            commit()
            flash("event saved", "info")
            return redirect(url_for("events.detail", event_id=event.id))
    return render_template("events/form.html", form=form, event=event, values=values, **_choices())


@bp.post("/<int:event_id>/delete")
@require("events.manage")
def delete(event_id: int):
    event = service.get_event(event_id)
    if EmptyForm().validate_on_submit():
        service.delete_event(current_user, event)
        commit()
        flash("event deleted", "info")
    return redirect(url_for("events.index"))


def _save(change, event_id: int, ok: str):
    return form_action(change, ok, url_for("events.detail", event_id=event_id))


@bp.post("/<int:event_id>/tracks")
@require("events.manage")
def add_track(event_id: int):
    event = service.get_event(event_id)
    return _save(lambda: service.add_track(current_user, event, request.form.to_dict()), event_id, "track added")


@bp.post("/<int:event_id>/tracks/<int:track_id>")
@require("events.manage")
def update_track(event_id: int, track_id: int):
    track = service.get_track(track_id, service.get_event(event_id))
    return _save(lambda: service.update_track(current_user, track, request.form.to_dict()), event_id,
                 "track saved")


@bp.post("/<int:event_id>/tracks/<int:track_id>/delete")
@require("events.manage")
def delete_track(event_id: int, track_id: int):
    track = service.get_track(track_id, service.get_event(event_id))
    return _save(lambda: service.delete_track(current_user, track), event_id, "track deleted")


@bp.post("/<int:event_id>/racers")
@require("racers.enrol")
def add_racer(event_id: int):
    event = service.get_event(event_id)
    return _save(lambda: service.register_racer(event, get_user(record_id(request.form, "user_id")), current_user),
                 event_id,
                 "racer added")


@bp.post("/<int:event_id>/enrolment")
@require("events.manage")
def set_enrolment(event_id: int):
    """Open (form field ``open=1``) or close (``open=0``) the event's enrolment; audited as
    an event change."""
    event = service.get_event(event_id)
    is_open = flag(request.form, "open")
    return _save(lambda: service.update_event(current_user, event, {"enrolment_open": is_open}), event_id,
                 "enrolment opened" if is_open else "enrolment closed")


@bp.post("/<int:event_id>/racers/<int:user_id>/remove")
@require("events.manage")
def remove_racer(event_id: int, user_id: int):
    event = service.get_event(event_id)
    return _save(lambda: service.unregister_racer(current_user, event, get_user(user_id)), event_id,
                 "racer removed")


@bp.post("/<int:event_id>/join")
@require("events.join")
def join(event_id: int):
    event = service.get_event(event_id)
    if EmptyForm().validate_on_submit():
        service.register_racer(event, current_user)
        commit()
        flash(f"you are registered for {event.name}", "info")
    return redirect(url_for("main.home"))


@bp.get("/<int:event_id>/races")
@require("races.view")
def races(event_id: int):
    """Race admin: every race of the event with its laps; operators edit and delete."""
    event = service.get_event(event_id)
    track_id, racer_id = id_arg("track_id"), id_arg("racer_id")
    rows = race_admin.list_races(event.id, track_id, racer_id)
    return render_template("events/races.html", event=event, races=rows, track_id=track_id, racer_id=racer_id,
                           can_edit=allowed(current_user, "races.run"), min_lap_ms=MIN_LAP_MS, max_lap_ms=MAX_LAP_MS)
