"""Rows for the staff model tests (issue 16): racer models in any status without a scan,
races that used them, and cars that hold them."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import timedelta

from drem.events.models import Race
from drem.fleet.models import Car
from drem.models_mgr.models import RacerModel
from drem.platform.db_types import utcnow
from drem.platform.extensions import db

_seq = itertools.count(1)


def digest(text: str) -> str:
    """A sha256 hex digest of ``text`` (stands for a file's or a model.pb's checksum)."""
    return hashlib.sha256(text.encode()).hexdigest()


def model_row(owner_id: int, filename: str, *, status: str = "available", event_id: int | None = None,
              sha256: str | None = None, model_pb_sha256: str | None = None, minutes_ago: int = 0,
              **fields) -> RacerModel:
    """Add and flush a racer model as inspection leaves it (DeepRacer metadata unless
    ``fields`` say otherwise), uploaded ``minutes_ago`` minutes ago; no stored file unless
    ``storage_key`` names one. Create users and events (tests.factories, which commit in
    their own session) before the first row: on SQLite the flushed rows lock the file."""
    n = next(_seq)
    uploaded = utcnow() - timedelta(minutes=minutes_ago)
    values = dict(model_format="deepracer", sensors=["FRONT_FACING_CAMERA"], action_space_type="discrete",
                  action_space=[{"steering_angle": -30, "speed": 1.5}, {"steering_angle": 30, "speed": 1.5}],
                  neural_network="DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", training_algorithm="clipped_ppo")
    values.update({"storage_key": f"models/{owner_id}/{uuid.uuid4().hex}.tar.gz", **fields})
    model = RacerModel(owner_id=owner_id, event_id=event_id, filename=filename, status=status, size=1000 + n,
                       sha256=sha256 or digest(f"file {n}"), md5="0" * 32, model_pb_sha256=model_pb_sha256,
                       uploaded_at=uploaded, expires_at=uploaded + timedelta(days=30), **values)
    db.session.add(model)
    db.session.flush()
    return model


def race_with(model: RacerModel, event: dict, status: str) -> Race:
    """Add and flush a race (run) of ``model``'s racer on the event's first track."""
    race = Race(event_id=event["id"], track_id=event["tracks"][0]["id"], racer_id=model.owner_id,
                model_id=model.id, status=status, time_limit_ms=240_000,
                live_track_id=event["tracks"][0]["id"] if status in ("ready", "running", "paused", "ended") else None)
    db.session.add(race)
    db.session.flush()
    return race


def car_holding(hostname: str, *model_ids: int, in_use: int | None = None) -> Car:
    """Add and flush a car whose last heartbeat listed ``model_ids`` as loaded."""
    car = Car(hostname=hostname, loaded_models=[{"model_id": str(i), "sha256": "", "name": ""} for i in model_ids],
              model_in_use=str(in_use) if in_use else None)
    db.session.add(car)
    db.session.flush()
    return car
