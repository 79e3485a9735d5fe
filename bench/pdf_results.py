"""Benchmark of the printable results (drem.leaderboard.pdf_reports, WeasyPrint).

Event: 200 racers on two tracks (plus the combined board), each racer 3 runs x 10 laps
on one track (6,000 laps), seeded random data, in a fresh SQLite database of a
temporary instance folder. Prints the render time and size of the results PDF (A4 and
Letter), the podium, the 200 certificates and a car label sheet; the first render
includes loading WeasyPrint and the fonts. Target: the results of a 200-racer event in
under 10 s.

Run: ``.venv/bin/python bench/pdf_results.py [--racers 200] [--repeat 2]``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

from drem.app import create_app
from drem.auth.service import create_user
from drem.events.models import Lap, Race
from drem.events.service import create_event
from drem.fleet.models import Car
from drem.leaderboard import pdf_reports
from drem.platform.extensions import db, upgrade_database

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def build(racers: int, seed: int = 17) -> int:
    """The event in the database; returns its id."""
    rng = random.Random(seed)
    admin = create_user("bench_admin", "bench-password-1", role="admin")
    event = create_event(admin, {"name": "PDF bench Grand Prix", "date": "2026-11-22",
                                 "tracks": [{"name": "North", "layout": "reinvent_base"},
                                            {"name": "South", "layout": "reinvent_base"}]})
    db.session.flush()
    tracks = [t.id for t in event.tracks]
    at = T0
    for i in range(racers):
        user = create_user(f"racer{i:03d}", None, role="racer", country_code=rng.choice(["DE", "GB", "JP", "FR", "US"]))
        db.session.flush()
        for run in range(3):
            race = Race(event_id=event.id, track_id=tracks[i % 2], racer_id=user.id, status="submitted",
                        time_limit_ms=240_000, started_at=at)
            db.session.add(race)
            db.session.flush()
            for n in range(1, 11):
                ms = rng.randint(8_000, 15_000)
                at += timedelta(milliseconds=ms)
                db.session.add(Lap(race_id=race.id, lap_number=n, time_ms=ms, resets=rng.choice([0, 0, 0, 1, 2]),
                                   invalidated=rng.random() < 0.02, source="operator",
                                   source_id=f"bench-{i}-{run}-{n}", recorded_at=at))
    db.session.add_all([Car(hostname=f"deepracer-{n:02d}") for n in range(1, 17)])
    db.session.commit()
    return event.id


def timed(label: str, fn) -> float:
    t0 = time.perf_counter()
    body = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<28} {dt * 1000:8.0f} ms  {len(body) / 1024:8.0f} KiB")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--racers", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    instance = tempfile.mkdtemp(prefix="drem-pdf-bench-")
    env = {"DREM_ENV": "testing", "SECRET_KEY": "bench", "DREM_INSTANCE_PATH": instance, "DATABASE_URL": "",
           "REDIS_URL": "", "STORAGE_URL": "", "SOCKETIO_ASYNC_MODE": "threading", "CLAMD_URL": ""}
    app = create_app(overrides={"JOBS_AUTOSTART": False, "SERVER_NAME": "drem.local"}, env=env)
    with app.app_context():
        upgrade_database()
        t0 = time.perf_counter()
        event_id = build(args.racers)
        print(f"event: {args.racers} racers, {db.session.query(Lap).count()} laps "
              f"(built in {time.perf_counter() - t0:.1f} s); load average {os.getloadavg()}")
    with app.test_request_context():
        event = db.session.get(pdf_reports.Event, event_id)
        worst = 0.0
        for i in range(args.repeat):
            print(f"-- round {i + 1}")
            worst = max(worst, timed("results A4", lambda: pdf_reports.results_pdf(event, "A4")))
            worst = max(worst, timed("results Letter (de)", lambda: pdf_reports.results_pdf(event, "letter", "de")))
            timed("podium", lambda: pdf_reports.podium_pdf(event))
            timed(f"certificates ({args.racers})", lambda: pdf_reports.certificates_pdf(event))
            timed("car labels (16)", lambda: pdf_reports.labels_pdf(
                pdf_reports.event_cars(event), lambda c: f"http://drem.local/fleet/#car-{c.id}"))
        print(f"results of {args.racers} racers: worst {worst:.2f} s (target < 10 s): "
              f"{'OK' if worst < 10 else 'SLOW'}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
