"""Fleet operations: fleets, car activation and tokens, heartbeats, commands, car laps.

The car side of every message is described in docs/car-protocol.md. Services flush;
the caller commits; deliveries to cars and pushes to operators go out after commit.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import current_app

from car_client.protocol import CAR_STATES, COMMAND_TYPES, MODEL_FORMATS, TAIL_LIGHTS  # noqa: F401 - re-exported
from drem.events.models import Track
from drem.events.service import get_track
from drem.fleet.models import ActivationCode, Car, CarCommand, Fleet
from drem.platform.audit import record_audit
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Conflict, Forbidden, NotFound, ServiceError
from drem.platform.extensions import db, socketio
from drem.platform.tokens import code_hash, find_by_token, new_code, new_token

HOSTNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
TOKEN_PREFIX = "car_"
FLEET_ROOM = "fleet"


def _now() -> datetime:
    return utcnow()


def offline_after() -> int:
    """Seconds of silence after which a car counts as offline (``CAR_OFFLINE_AFTER_S``)."""
    return current_app.config["CAR_OFFLINE_AFTER_S"]


def car_dict(car: Car) -> dict:
    """A car's JSON shape with ``online`` computed now."""
    return car.to_dict(_now(), offline_after())


#: how the cars page and messages name each model format
FORMAT_LABELS = {"deepracer": "DeepRacer archives (.tar.gz)", "keras": "Keras models (.h5, .keras)",
                 "tflite": "TensorFlow Lite models (.tflite)", "savedmodel": "SavedModels (.zip)"}
#: one model of each format, for messages
FORMAT_NOUNS = {"deepracer": "a DeepRacer archive", "keras": "a Keras model", "tflite": "a TensorFlow Lite model",
                "savedmodel": "a SavedModel"}


def check_car_runs(car: Car, model) -> None:
    """ServiceError unless ``car`` runs ``model``'s format (a car that has not reported its
    formats yet is not refused). The message names the car, its formats and the model."""
    if car.runs(model.model_format):
        return
    formats = ", ".join(FORMAT_LABELS.get(f, f) for f in car.model_formats or [])
    raise ServiceError(f"{car.hostname} runs only {formats}: {model.filename} is "
                       f"{FORMAT_NOUNS.get(model.model_format, model.model_format)}", "model_id")


def push_car(car: Car) -> None:
    """After commit: push the car's status to the operators' cars page."""
    data = car_dict(car)
    after_commit(lambda: socketio.emit("car_status", data, namespace="/fleet", to=FLEET_ROOM))


def push_command(cmd: CarCommand) -> None:
    """After commit: push a command's status to the operators' pages."""
    data = cmd.to_dict()
    after_commit(lambda: socketio.emit("command_status", data, namespace="/fleet", to=FLEET_ROOM))


# ----------------------------------------------------------------------------- fleets

def get_fleet(fleet_id: int) -> Fleet:
    """The fleet with this id; NotFound otherwise."""
    fleet = db.session.get(Fleet, fleet_id)
    if fleet is None:
        raise NotFound("no such fleet")
    return fleet


def list_fleets() -> list[Fleet]:
    """All fleets by name."""
    return list(db.session.scalars(db.select(Fleet).order_by(Fleet.name)))


def _fleet_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 60:
        raise ServiceError("a fleet name has 1-60 characters", "name")
    return name


def create_fleet(actor, name: str, track_id: int | None = None) -> Fleet:
    """Create a fleet (unique name), optionally assigned to an event track. Audited."""
    name = _fleet_name(name)
    if db.session.scalar(db.select(Fleet).where(db.func.lower(Fleet.name) == name.lower())):
        raise Conflict(f"a fleet called {name!r} exists", "name")
    fleet = Fleet(name=name)
    db.session.add(fleet)
    db.session.flush()
    if track_id is not None:
        assign_track(actor, fleet, track_id)
    record_audit(actor, "fleet.create", "fleet", fleet.id, name=name)
    return fleet


def rename_fleet(actor, fleet: Fleet, name: str) -> Fleet:
    """Rename a fleet; Conflict when another fleet has the name."""
    name = _fleet_name(name)
    clash = db.session.scalar(db.select(Fleet).where(db.func.lower(Fleet.name) == name.lower(), Fleet.id != fleet.id))
    if clash:
        raise Conflict(f"a fleet called {name!r} exists", "name")
    record_audit(actor, "fleet.rename", "fleet", fleet.id, before=fleet.name, after=name)
    fleet.name = name
    db.session.flush()
    return fleet


def assign_track(actor, fleet: Fleet, track_id: int | None) -> Fleet:
    """Assign the fleet to an event track (None: unassign)."""
    if track_id is not None:
        get_track(track_id)
    fleet.track_id = track_id
    record_audit(actor, "fleet.assign_track", "fleet", fleet.id, track_id=track_id)
    db.session.flush()
    return fleet


def assignable_tracks() -> list[Track]:
    """Every event's tracks a fleet may be assigned to: newest event first, then by the
    track's position (read-only; fleet sits above events in the layers)."""
    return list(db.session.scalars(db.select(Track).order_by(Track.event_id.desc(), Track.position)))


def delete_fleet(actor, fleet: Fleet) -> None:
    """Delete a fleet; its cars stay, without a fleet. Audited."""
    record_audit(actor, "fleet.delete", "fleet", fleet.id, name=fleet.name)
    for car in fleet.cars:
        car.fleet_id = None
    db.session.delete(fleet)
    db.session.flush()


# ------------------------------------------------------------------- activation, tokens

def create_activation_code(actor, hostname: str, fleet_id: int | None = None) -> tuple[ActivationCode, str]:
    """A one-time code for one car (expires after ``ACTIVATION_CODE_TTL_MIN``).
    Returns (row, plain code ``XXXX-XXXX``); only the hash is stored."""
    hostname = (hostname or "").strip()
    if not HOSTNAME_RE.match(hostname):
        raise ServiceError("hostname: 1-63 letters, digits or '-', starting with a letter or digit", "hostname")
    if fleet_id is not None:
        get_fleet(fleet_id)
    printed, hashed = new_code()
    ttl = timedelta(minutes=current_app.config["ACTIVATION_CODE_TTL_MIN"])
    row = ActivationCode(code_hash=hashed, hostname=hostname, fleet_id=fleet_id, expires_at=_now() + ttl,
                         created_by_id=getattr(actor, "id", None))
    db.session.add(row)
    record_audit(actor, "car.activation_code", "car", None, hostname=hostname, fleet_id=fleet_id)
    db.session.flush()
    return row, printed


def activate_car(code: str, hostname: str | None, software_version: str | None) -> tuple[Car, str]:
    """Exchange a one-time activation code for a new car and its token.

    Raises Forbidden (403) for an unknown, used or expired code; nothing changes then.
    The code's hostname wins over the one the car sends.
    """
    row = db.session.scalar(db.select(ActivationCode).where(ActivationCode.code_hash == code_hash(code)))
    if row is None:
        raise Forbidden("unknown activation code")
    if row.used_at is not None:
        raise Forbidden("activation code already used")
    if row.expires_at <= _now():
        raise Forbidden("activation code expired")
    token, hashed = new_token(TOKEN_PREFIX)
    car = Car(hostname=row.hostname, fleet_id=row.fleet_id, token_hash=hashed,
              software_version=(software_version or "")[:40] or None, state="idle")
    db.session.add(car)
    db.session.flush()
    row.used_at, row.car_id = _now(), car.id
    record_audit(None, "car.activate", "car", car.id, hostname=car.hostname, reported_hostname=hostname)
    push_car(car)  # the cars page and the timekeeper consoles list it at once
    db.session.flush()
    return car, token


def car_for_token(token: str | None) -> Car | None:
    """The car holding this live token, or None (unknown or revoked)."""
    return find_by_token(Car, Car.token_hash, token, TOKEN_PREFIX, revoked_column=Car.token_revoked_at)


def get_car(car_id: int) -> Car:
    """The car with this id; NotFound otherwise."""
    car = db.session.get(Car, car_id)
    if car is None:
        raise NotFound("no such car")
    return car


def get_live_car_or_none(car_id: int) -> Car | None:
    """The car with this id whose token is not revoked, or None."""
    car = db.session.get(Car, car_id)
    return None if car is None or car.token_revoked_at is not None else car


def get_live_car(car_id: int) -> Car:
    """The car with this id whose token is not revoked; NotFound otherwise."""
    car = get_live_car_or_none(car_id)
    if car is None:
        raise NotFound("no such car")
    return car


def list_cars(fleet_id: int | None = None) -> list[Car]:
    """Cars by hostname, optionally of one fleet."""
    query = db.select(Car).order_by(Car.hostname, Car.id)
    if fleet_id is not None:
        query = query.where(Car.fleet_id == fleet_id)
    return list(db.session.scalars(query))


def _kick(car: Car) -> None:
    sid = car.sid
    if sid:
        after_commit(lambda: socketio.server.disconnect(sid, namespace="/car"))


def revoke_car(actor, car: Car) -> Car:
    """Revoke the car's token: it is disconnected and every later use is refused. Audited."""
    car.token_revoked_at = car.token_revoked_at or _now()
    car.connected = False
    record_audit(actor, "car.revoke", "car", car.id, hostname=car.hostname)
    _kick(car)
    push_car(car)
    db.session.flush()
    return car


def deregister_car(actor, car: Car) -> None:
    """Remove a car with its commands and lap log. Audited."""
    record_audit(actor, "car.deregister", "car", car.id, hostname=car.hostname)
    _kick(car)
    db.session.delete(car)
    db.session.flush()


def set_car_fleet(actor, car: Car, fleet_id: int | None) -> Car:
    """Move a car to a fleet (a car belongs to at most one) or out of every fleet."""
    if fleet_id is not None:
        get_fleet(fleet_id)
    record_audit(actor, "car.fleet", "car", car.id, before=car.fleet_id, after=fleet_id)
    car.fleet_id = fleet_id
    push_car(car)
    db.session.flush()
    return car
