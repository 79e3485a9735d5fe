"""What the fleet answers when other packages ask about cars (drem.platform.signals).

Imported once by ``drem.app``; each receiver is connected here, in the package that
acts, never in the package that sends.
"""

from __future__ import annotations

from drem.fleet.models import Car
from drem.platform.extensions import db
from drem.platform.signals import racer_model_cars


@racer_model_cars.connect
def cars_holding_models(_sender, *, model_ids: list[int]) -> dict[int, list[dict]]:
    """The cars whose last heartbeat lists any of ``model_ids`` as loaded:
    ``{model_id: [{"car_id", "hostname", "in_use"}]}`` (cars sorted by hostname).
    A venue has tens of cars, so the JSON lists are read in Python on every database."""
    wanted = {str(i): i for i in model_ids}
    found: dict[int, list[dict]] = {}
    if not wanted:
        return found
    for car in db.session.scalars(db.select(Car).order_by(Car.hostname, Car.id)):
        for entry in car.loaded_models or []:
            model_id = wanted.get(str(entry.get("model_id")))
            if model_id is not None:
                found.setdefault(model_id, []).append({"car_id": car.id, "hostname": car.hostname,
                                                       "in_use": car.model_in_use == str(model_id)})
    return found
