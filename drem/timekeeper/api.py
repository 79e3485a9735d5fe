"""Timekeeper JSON API: race set-up and control, lap capture, timers (docs/api.md)."""

from __future__ import annotations

import functools

from flask import Blueprint, jsonify, request
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from drem.events.models import MAX_LAP_MS, MIN_LAP_MS
from drem.events.service import get_race
from drem.platform.effects import commit
from drem.platform.errors import Forbidden, ServiceError
from drem.platform.extensions import db
from drem.platform.inputs import duration_ms, flag, int_arg, record_id, text, whole_number
from drem.platform.permissions import public, require
from drem.platform.tokens import bearer_token
from drem.platform.web import json_body, no_csrf
from drem.timekeeper import crossings, laps, review, service, timers

bp = Blueprint("timekeeper_api", __name__, url_prefix="/api")


#: How often a race change runs before it is refused. The console sends each key press at
#: once, so a quick "R R E" is three changes of one race row at the same moment: the last of
#: k concurrent changes may lose the optimistic lock k - 1 times.
RACE_CHANGE_ATTEMPTS = 4


def retried(view):
    """Run a race change again (up to :data:`RACE_CHANGE_ATTEMPTS` times in all) when another
    request changed the race meanwhile (optimistic lock) or stored the same lap id first;
    then ServiceError (400)."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        for attempt in range(1, RACE_CHANGE_ATTEMPTS + 1):
            try:
                return view(*args, **kwargs)
            except (StaleDataError, IntegrityError):
                db.session.rollback()
                if attempt == RACE_CHANGE_ATTEMPTS:
                    raise ServiceError("the race changed at the same moment; try again") from None
        return None

    return wrapper


def _state(race, status: int = 200):
    return jsonify(service.race_state(race)), status


@bp.post("/races")
@require("races.run")
@retried
def setup():
    """Set up the next race on a track: ``{track_id, racer_id, car_id?, model_id?, raced_by_proxy?}``."""
    data = json_body()
    race = service.setup_race(current_user, record_id(data, "track_id"), record_id(data, "racer_id"),
                              record_id(data, "car_id", required=False), record_id(data, "model_id", required=False),
                              flag(data, "raced_by_proxy"))
    commit()
    return _state(race, 201)


@bp.get("/races/<int:race_id>")
@require("races.view")
def detail(race_id: int):
    return _state(get_race(race_id))


@bp.get("/tracks/<int:track_id>/live")
@require("races.view")
def live(track_id: int):
    """The live race of a track (``{"race": null}`` when there is none)."""
    race = service.live_race(track_id)
    return jsonify(race=service.race_state(race) if race else None)


@bp.post("/races/<int:race_id>/start")
@require("races.run")
@retried
def start(race_id: int):
    """Start the race: ``{override?: bool, override_reason?: text}``. 409 while the model is
    not on the car (the message says how far its load is) unless ``override`` with a reason.
    An empty body is a plain start."""
    data = json_body() if request.get_data(cache=True) else {}
    race = service.start_race(current_user, get_race(race_id), override=flag(data, "override"),
                              override_reason=text(data, "override_reason", 0, 200, default="") or "")
    commit()
    return _state(race)


ACTIONS = {"pause": service.pause_race, "resume": service.resume_race,
           "end": service.end_race, "submit": service.submit_race, "discard": service.discard_race,
           "take-over": service.take_over, "undo": laps.undo_last_lap}


@bp.post("/races/<int:race_id>/<any(pause,resume,end,submit,discard,'take-over',undo):action>")
@require("races.run")
@retried
def act(race_id: int, action: str):
    race = ACTIONS[action](current_user, get_race(race_id))
    commit()
    return _state(race)


@bp.post("/races/<int:race_id>/laps")
@require("races.run")
@retried
def capture(race_id: int):
    """Capture a lap now: ``{source_id}`` (made by the console, so a resend is stored once)."""
    data = json_body()
    lap, created = laps.capture_lap(current_user, get_race(race_id), text(data, "source_id", 0, 1000, default=""))
    body = lap.to_dict()  # flushed: read now, before the commit expires the lap, its race and event
    commit()
    return jsonify(lap=body, created=created), 201 if created else 200


@bp.post("/races/<int:race_id>/resets")
@require("races.run")
@retried
def resets(race_id: int):
    """``{delta: 1|-1}`` on the lap in progress."""
    data = json_body()
    race = laps.change_resets(current_user, get_race(race_id), whole_number(data, "delta", -1, 1))
    commit()
    return _state(race)


@bp.post("/races/<int:race_id>/dnf")
@require("races.run")
@retried
def dnf(race_id: int):
    data = json_body()
    race = get_race(race_id)
    laps.dnf(current_user, race, text(data, "source_id", 1, 64, default=f"dnf-{len(race.laps) + 1}"))
    commit()
    return _state(race)


@bp.patch("/races/<int:race_id>/laps/<int:lap_number>")
@require("races.run")
@retried
def invalidate(race_id: int, lap_number: int):
    """``{invalidated: bool}`` for a lap of a live race (use race admin for finished ones)."""
    data = json_body()
    race = get_race(race_id)
    laps.invalidate_lap(current_user, race, lap_number, flag(data, "invalidated", default=True))
    commit()
    return _state(race)


@bp.patch("/races/<int:race_id>/review/laps/<int:lap_number>")
@require("races.run")
@retried
def review_lap(race_id: int, lap_number: int):
    """Review a lap of the ended race: ``{invalidated?, resets?, penalty_ms?, penalty_reason?}``
    -> the race state."""
    race = get_race(race_id)
    review.review_lap(current_user, race, lap_number, json_body())
    commit()
    return _state(race)


@bp.post("/races/<int:race_id>/review/laps")
@require("races.run")
@retried
def add_missed_lap(race_id: int):
    """Add a missed lap to the ended race: ``{time: ms or "m:ss.mmm", lap_number?, source_id?}``
    -> the race state (201 when added, 200 for a repeated ``source_id``)."""
    data = json_body()
    race = get_race(race_id)
    _lap, created = review.add_missed_lap(current_user, race, duration_ms(data, "time", MIN_LAP_MS, MAX_LAP_MS),
                                          whole_number(data, "lap_number", 1, 100_000, required=False),
                                          text(data, "source_id", 1, 64))
    commit()
    return _state(race, 201 if created else 200)


@bp.put("/races/<int:race_id>/penalty")
@require("races.run")
@retried
def penalty(race_id: int):
    """The ended race's time penalty: ``{penalty_ms, penalty_reason}`` (0 removes it) -> the race state."""
    race = review.penalise(current_user, get_race(race_id), json_body())
    commit()
    return _state(race)


@bp.put("/races/<int:race_id>/disqualification")
@require("races.run")
@retried
def disqualification(race_id: int):
    """Disqualify the ended race (``{disqualified: true, reason}``) or lift it -> the race state."""
    race = review.disqualify(current_user, get_race(race_id), json_body())
    commit()
    return _state(race)


@bp.get("/tracks/<int:track_id>/racers")
@require("races.run")
def racers(track_id: int):
    """Racers of the track's event with runs done / max and their available models."""
    return jsonify(racers=service.racer_list(track_id))


@bp.post("/tracks/<int:track_id>/timers")
@require("races.run")
def create_timer(track_id: int):
    """Register a lap timer by hand: ``{name}`` -> ``{timer, token}`` (token shown once)."""
    device, token = timers.create_timer(current_user, track_id, text(json_body(), "name", default=""))
    commit()
    return jsonify(timer=timers.timer_dict(device), token=token), 201


@bp.post("/tracks/<int:track_id>/timer-codes")
@require("races.run")
def create_timer_code(track_id: int):
    """A one-time activation code for a timer of this track: ``{name}`` ->
    ``{code, name, track_id, expires_at}`` (the code is shown once)."""
    row, code = timers.create_activation_code(current_user, track_id, text(json_body(), "name", default=""))
    commit()
    return jsonify(code=code, name=row.name, track_id=row.track_id, expires_at=row.expires_at.isoformat()), 201


@bp.get("/tracks/<int:track_id>/timers")
@require("races.view")
def list_timers(track_id: int):
    """The track's timers (``online``, last seen, last crossing, clock offset) and its timing option."""
    return jsonify(timers=[timers.timer_dict(t) for t in timers.list_timers(track_id)],
                   timing=timers.track_timing(track_id))


@bp.put("/tracks/<int:track_id>/timing")
@require("races.run")
def set_timing(track_id: int):
    """``{first_crossing_starts_race: bool}`` -> the track's timing option. Audited."""
    timing = timers.set_track_timing(current_user, track_id,
                                     flag(json_body(), "first_crossing_starts_race", default=False))
    commit()
    return jsonify(timing)


@bp.post("/timers/<int:timer_id>/revoke")
@require("races.run")
def revoke_timer(timer_id: int):
    """Revoke a lap timer's token (idempotent, audited) -> the timer (``revoked: true``);
    its crossings are refused from then on (403 "invalid timer token")."""
    device = timers.revoke_timer(current_user, timer_id)
    commit()
    return jsonify(timers.timer_dict(device))


@bp.get("/races/<int:race_id>/crossings")
@require("races.view")
def race_crossings(race_id: int):
    """Every crossing a timer reported during this race, with its status and reason."""
    get_race(race_id)
    return jsonify(crossings=[c.to_dict() for c in crossings.list_crossings(race_id=race_id)])


@bp.get("/tracks/<int:track_id>/crossings")
@require("races.view")
def track_crossings(track_id: int):
    """The track's latest crossings (``?limit=``, default 100, at most 500), oldest first."""
    rows = crossings.list_crossings(track_id=track_id, limit=500)
    return jsonify(crossings=[c.to_dict() for c in rows[-int_arg("limit", 100, 1, 500):]])


@bp.post("/crossings/<int:crossing_id>/restore")
@require("races.run")
@retried
def restore_crossing(crossing_id: int):
    """Turn a rejected crossing into a lap (audited) -> ``{crossing, race}``."""
    row = crossings.restore_crossing(current_user, crossing_id)
    commit()
    return jsonify(crossing=row.to_dict(), race=service.race_state(get_race(row.race_id)))


@bp.post("/timer/activate")
@public
@no_csrf
def activate_timer():
    """A timer device trades a one-time code for its token: ``{code, hostname?, software_version?}``
    -> ``{timer_id, token, name, track_id, heartbeat_interval_s}`` (docs/timer-protocol.md)."""
    data = json_body()
    device, token = timers.activate_timer(text(data, "code", 0, 40, default=""), text(data, "hostname", 0, 200),
                                          text(data, "software_version", 0, 200))
    commit()
    return jsonify(timer_id=device.id, token=token, name=device.name, track_id=device.track_id,
                   heartbeat_interval_s=timers.HEARTBEAT_INTERVAL_S), 201


@bp.post("/timer/crossings")
@public
@no_csrf
@retried
def crossing():
    """A lap timer reports a crossing: ``Authorization: Bearer timer_…``,
    ``{crossing_id, device_time_ms, sensor?}`` (docs/timer-protocol.md)."""
    device = timers.timer_for_token(bearer_token(request))
    if device is None:
        raise Forbidden("invalid timer token")
    data = json_body()
    device_ms = whole_number(data, "device_time_ms", 0, 2**63 - 1, strict=True)
    sensor = whole_number(data, "sensor", 1, 2, required=False, default=1, strict=True)
    answer = crossings.report_crossing(device, text(data, "crossing_id", 1, 48, default=str(device_ms)), device_ms,
                                       sensor)
    commit()
    return jsonify(answer), 200 if answer.get("ok") else 400
