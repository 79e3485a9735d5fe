"""Two copies of one car lap arriving at once (the car resends a lap whose ack was lost
while the original is still being stored): the lap is stored once, one copy gets the
normal ack and the other "duplicate", and neither request fails. On SQLite and on
PostgreSQL, each copy in its own thread, connection and transaction."""

from __future__ import annotations

import threading

from drem.fleet.car_reports import record_car_lap
from drem.fleet.models import Car, CarLapReport
from drem.platform.effects import commit
from drem.platform.extensions import db

LAP = {"lap_id": "lap-0000-0001", "lap_time_ms": 12_345, "resets": 0, "lap_number": 1}


def _send_at_once(app, car_id: int, copies: int) -> list[dict]:
    answers: list = [None] * copies
    errors: list[BaseException] = []
    barrier = threading.Barrier(copies)

    def send(i: int) -> None:
        with app.app_context():
            try:
                car = db.session.get(Car, car_id)
                barrier.wait(10)
                answers[i] = record_car_lap(car, dict(LAP))
                commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return answers


def test_a_lap_sent_twice_at_once_is_stored_once_and_both_copies_are_answered(app, fleet):
    car_id = fleet.activate("dup-car")["car_id"]
    for _round in range(3):  # a few rounds: the copies interleave differently each time
        LAP["lap_id"] = f"lap-dup-{_round:04d}"
        answers = _send_at_once(app, car_id, 3)
        assert all(a["ok"] for a in answers), answers
        assert sorted(a["duplicate"] for a in answers) == [False, True, True], answers
        with app.app_context():
            stored = db.session.scalars(db.select(CarLapReport).where(CarLapReport.lap_id == LAP["lap_id"])).all()
            assert len(stored) == 1 and stored[0].car_id == car_id and stored[0].lap_time_ms == 12_345


def test_a_lap_id_of_another_car_is_refused_and_the_first_cars_lap_stays(app, fleet):
    first = fleet.activate("car-a")["car_id"]
    second = fleet.activate("car-b")["car_id"]
    LAP["lap_id"] = "lap-owner-0001"
    assert _send_at_once(app, first, 1)[0]["duplicate"] is False
    answer = _send_at_once(app, second, 1)[0]
    assert answer == {"ok": False, "error": "that lap id belongs to another car", "retry": False}
    with app.app_context():
        assert db.session.scalar(db.select(CarLapReport.car_id).where(CarLapReport.lap_id == "lap-owner-0001")) == first
