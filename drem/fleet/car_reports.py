"""What cars report: heartbeats (live status) and laps (stored once per car-made id).

A stored lap is announced with :data:`drem.platform.signals.car_lap_reported`; the
timekeeper takes it into the car's running race, so the fleet package does not depend on
race logic.
"""

from __future__ import annotations

from drem.events.models import MAX_LAP_MS
from drem.fleet.models import Car, CarLapReport
from drem.fleet.service import CAR_STATES, MODEL_FORMATS, TAIL_LIGHTS, push_car
from drem.platform.db_types import utcnow
from drem.platform.extensions import db
from drem.platform.inputs import MAX_ID
from drem.platform.inserts import insert_unless_present
from drem.platform.signals import car_lap_reported


def record_heartbeat(car: Car, data: dict, ip: str | None) -> dict:
    """Store a heartbeat's fields on ``car`` (unknown or malformed fields are ignored one
    by one, never the whole heartbeat) and push the new status. Returns the ack.

    ``ip`` is the address the server sees (``drem.platform.web.client_address``): the car's
    shown IP; an ``ip`` the heartbeat claims is ignored, so no client can choose it."""
    car.last_seen_at, car.connected = utcnow(), True
    if isinstance(data.get("state"), str) and data["state"] in CAR_STATES:
        car.state = data["state"]
    battery = data.get("battery_pct")
    if isinstance(battery, int | float) and not isinstance(battery, bool) and 0 <= battery <= 100:
        car.battery_pct = int(battery)
    car.ip = (ip or "")[:45] or car.ip
    if isinstance(data.get("software_version"), str):
        car.software_version = data["software_version"][:40]
    speed = data.get("max_speed_mps")
    if isinstance(speed, int | float) and not isinstance(speed, bool) and 0 <= speed <= 10:
        car.max_speed_mps = float(speed)
    if data.get("tail_light") in TAIL_LIGHTS:
        car.tail_light = data["tail_light"]
    models = data.get("models")
    if isinstance(models, list):
        car.loaded_models = [{"model_id": str(m.get("model_id")), "sha256": str(m.get("sha256", ""))[:64],
                              "name": str(m.get("name", ""))[:255]} for m in models[:50] if isinstance(m, dict)]
    in_use = data.get("model_in_use")
    car.model_in_use = str(in_use)[:40] if in_use not in (None, "") else None
    car.error = str(data["error"])[:500] if data.get("error") else None
    formats = data.get("model_formats")
    if isinstance(formats, list) and formats and all(f in MODEL_FORMATS for f in formats):
        car.model_formats = [f for f in MODEL_FORMATS if f in formats]
    fps = data.get("fps")
    car.fps = round(float(fps), 1) if isinstance(fps, int | float) and not isinstance(fps, bool) \
        and 0 <= fps <= 1000 else None
    push_car(car)
    db.session.flush()
    return {"ok": True}


def _small_id(value, lowest: int) -> int | None:
    """``value`` when it is a whole number in ``lowest``..MAX_ID (fits the database's
    integer columns), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and lowest <= value <= MAX_ID:
        return value
    return None


def record_car_lap(car: Car, data: dict) -> dict:
    """Store a lap reported by ``car`` once per ``lap_id`` and offer it to the timekeeper.

    Returns the ack: ``{"ok": True, "duplicate": bool, "stored": bool, ...}``, or
    ``{"ok": False, "error": ..., "retry": False}`` for a malformed lap (the car then
    drops it instead of resending it for ever).
    """
    lap_id = data.get("lap_id")
    lap_ms = data.get("lap_time_ms")
    resets = data.get("resets", 0)
    if not isinstance(lap_id, str) or not 8 <= len(lap_id) <= 64:
        return {"ok": False, "error": "lap_id must be a string of 8-64 characters", "retry": False}
    # The log keeps every lap a car reports that is a time at all; whether it is a
    # plausible lap (MIN_LAP_MS..MAX_LAP_MS) is the timekeeper's verdict, noted as its outcome.
    if not isinstance(lap_ms, int) or isinstance(lap_ms, bool) or not 1 <= lap_ms <= MAX_LAP_MS:
        return {"ok": False, "retry": False, "error": f"lap_time_ms must be whole milliseconds in 1..{MAX_LAP_MS}"}
    if not isinstance(resets, int) or isinstance(resets, bool) or not 0 <= resets <= 1000:
        return {"ok": False, "error": "resets must be a whole number >= 0", "retry": False}
    finished = data.get("finished_at")
    # one statement: two copies of a lap sent at once (a resend racing its original) store
    # it once, and the second gets "duplicate" instead of a unique-index error
    report = insert_unless_present(CarLapReport, {
        "lap_id": lap_id, "car_id": car.id, "model_id": str(data.get("model_id") or "")[:40] or None,
        "lap_time_ms": lap_ms, "resets": resets, "lap_number": _small_id(data.get("lap_number"), 0),
        "finished_at": float(finished) if isinstance(finished, int | float) else None,
        "received_at": utcnow()}, key=["lap_id"])
    if report is None:
        existing = db.session.scalar(db.select(CarLapReport).where(CarLapReport.lap_id == lap_id))
        if existing.car_id != car.id:
            return {"ok": False, "error": "that lap id belongs to another car", "retry": False}
        return {"ok": True, "duplicate": True, "stored": existing.race_id is not None}
    race_id = _small_id(data.get("race_id"), 1)  # a huge number would overflow the database column
    car.last_seen_at, car.connected = utcnow(), True
    for _receiver, answer in car_lap_reported.send("fleet", car=car, report=report, race_id=race_id):
        if answer is not None:
            report.outcome = answer.pop("outcome", None)
            return {"ok": True, "duplicate": False} | answer
    report.outcome = "no running race for this car"
    return {"ok": True, "duplicate": False, "stored": False, "reason": report.outcome}


def list_car_laps(car: Car, after_id: int = 0, limit: int = 1000) -> list[CarLapReport]:
    """The car's lap log in the order the laps arrived: reports with an id above
    ``after_id``, at most ``limit`` of them (page on with the last id seen)."""
    query = (db.select(CarLapReport).where(CarLapReport.car_id == car.id, CarLapReport.id > after_id)
             .order_by(CarLapReport.id).limit(limit))
    return list(db.session.scalars(query))
