"""What the timekeeper does when other packages report something (drem.platform.signals).

Imported once by ``drem.app``; each receiver is connected here, in the package that
acts, never in the package that sends.
"""

from __future__ import annotations

from drem.platform.signals import car_lap_reported
from drem.timekeeper import laps


@car_lap_reported.connect
def take_car_lap(_sender, *, car, report, race_id: int | None) -> dict | None:
    """A car's lap goes into the car's running race (:func:`drem.timekeeper.laps.car_lap`)."""
    return laps.car_lap(car, report, race_id)
