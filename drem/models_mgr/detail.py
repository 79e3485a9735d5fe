"""What a model's page shows beyond its row: the car type, other racers' uploads of the
same model, the cars that hold it and the races that used it.

Read-only: nothing here changes a row. The cars come from the fleet through the
``racer_model_cars`` signal (the fleet is a higher layer); the races from the events
package's ``races`` table.
"""

from __future__ import annotations

from sqlalchemy.orm import selectinload

from drem.auth.models import User
from drem.events.models import Race
from drem.events.rules import LIVE
from drem.models_mgr.models import DELETED, RacerModel
from drem.platform.extensions import db
from drem.platform.permissions import allowed
from drem.platform.signals import racer_model_cars

#: The car a model format drives (``RacerModel.model_format`` -> what staff call it).
CAR_TYPES = {"deepracer": "AWS DeepRacer", "keras": "Donkey Car", "tflite": "Donkey Car",
             "savedmodel": "Donkey Car"}


def car_type(model: RacerModel) -> str | None:
    """``"AWS DeepRacer"`` or ``"Donkey Car"`` for an inspected model, None before
    inspection (or for a file that was never recognised)."""
    return CAR_TYPES.get(model.model_format or "")


def weights_checksum(model: RacerModel) -> str:
    """The sha256 that identifies the model's weights: the DeepRacer frozen graph
    (``agent/model.pb``, the same in two archives with different metadata or packing),
    else the whole file (Donkey models are one file)."""
    return model.model_pb_sha256 or model.sha256


def same_models(model: RacerModel, limit: int = 50) -> list[RacerModel]:
    """Other racers' models (not deleted) with the same weights as ``model``: the same
    whole-file sha256, or the same DeepRacer ``model.pb`` sha256. First upload first, so
    the racer who had it first heads the list. At most ``limit`` rows."""
    same = RacerModel.sha256 == model.sha256
    if model.model_pb_sha256:
        same = db.or_(same, RacerModel.model_pb_sha256 == model.model_pb_sha256)
    query = (db.select(RacerModel).options(selectinload(RacerModel.owner))
             .where(same, RacerModel.id != model.id, RacerModel.owner_id != model.owner_id,
                    RacerModel.status != DELETED)
             .order_by(RacerModel.uploaded_at.asc(), RacerModel.id.asc()).limit(limit))
    return list(db.session.scalars(query))


def cars_holding(model_ids: list[int]) -> dict[int, list[dict]]:
    """The cars whose last heartbeat lists each model as loaded:
    ``{model_id: [{"car_id", "hostname", "in_use": bool}]}`` (only models some car holds;
    empty when no fleet answers)."""
    found: dict[int, list[dict]] = {}
    for _receiver, answer in racer_model_cars.send("models_mgr", model_ids=list(model_ids)):
        for model_id, cars in (answer or {}).items():
            found.setdefault(model_id, []).extend(cars)
    return found


def races_using(model: RacerModel, limit: int = 20) -> list[Race]:
    """The newest ``limit`` races (runs) set up with ``model``, with their event, track and
    racer loaded."""
    query = (db.select(Race).where(Race.model_id == model.id)
             .options(selectinload(Race.event), selectinload(Race.track), selectinload(Race.racer))
             .order_by(Race.created_at.desc(), Race.id.desc()).limit(limit))
    return list(db.session.scalars(query))


def race_counts(model: RacerModel) -> dict[str, int]:
    """How many races of each status used ``model`` (``{"submitted": 3, ...}``; ``{}``
    when none did)."""
    rows = db.session.execute(db.select(Race.status, db.func.count())
                              .where(Race.model_id == model.id).group_by(Race.status)).all()
    return {str(status): int(n) for status, n in rows}


def live_race(model: RacerModel) -> Race | None:
    """A race on a track right now (set up, running, paused or ended, not yet submitted)
    that drives ``model``, else None."""
    return db.session.scalar(db.select(Race).where(Race.model_id == model.id, Race.status.in_(LIVE))
                             .order_by(Race.id).limit(1))


def model_detail(viewer: User, model: RacerModel) -> dict:
    """JSON shape of a model's page: ``RacerModel.to_dict()`` plus ``car_type``,
    ``weights_sha256``, ``event`` (name or None), ``cars`` (list of ``{car_id, hostname,
    in_use}``), ``races`` (``{status: count}``), ``recent_races`` (the newest 20: ``{id, event_id,
    event, track, racer, status, created_at}``) and, for staff only, ``same_models``
    (other racers' models with the same weights: ``{id, owner_id, owner, filename,
    status, uploaded_at}``). A racer never learns about other racers' models."""
    data = model.to_dict()
    data.update(car_type=car_type(model), weights_sha256=weights_checksum(model),
                event=model.event.name if model.event else None,
                cars=cars_holding([model.id]).get(model.id, []), races=race_counts(model),
                recent_races=[{"id": r.id, "event_id": r.event_id, "event": r.event.name, "track": r.track.name,
                               "racer": r.racer.username, "status": str(r.status),
                               "created_at": r.created_at.isoformat()} for r in races_using(model)])
    if allowed(viewer, "models.view_all"):
        data["same_models"] = [{"id": m.id, "owner_id": m.owner_id, "owner": m.owner.username,
                                "filename": m.filename, "status": m.status,
                                "uploaded_at": m.uploaded_at.isoformat()} for m in same_models(model)]
    return data
