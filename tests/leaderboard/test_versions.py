"""Leaderboard versions under concurrent writers: every committed change gets its own
number, the numbers of a board form a chain without gaps or repeats."""

from __future__ import annotations

import threading

from tests.leaderboard.builders import Races


def test_two_writers_get_a_chain_of_versions(app, factory):
    from sqlalchemy.exc import OperationalError

    from drem.events.models import Lap, Track
    from drem.events.versions import bump_of
    from drem.platform.extensions import db

    ev = factory.event()
    track = ev["tracks"][0]["id"]
    races = Races(app)
    runs = [races.race(ev["id"], track, factory.user("racer", password=None)["id"], [9000], status="submitted")
            for _ in range(2)]
    got: list[dict] = []
    errors: list[BaseException] = []
    laps_each = 15

    def writer(race_id: int) -> None:
        try:
            with app.app_context():
                for number in range(2, laps_each + 2):
                    for _attempt in range(50):  # SQLite: one writer at a time; wait for the lock
                        try:
                            lap = Lap(race_id=race_id, lap_number=number, time_ms=8000 + number, source="car",
                                      source_id=f"w{race_id}-{number}")
                            db.session.add(lap)
                            db.session.flush()
                            bump = bump_of(("lap", lap.id))
                            db.session.commit()
                            got.append(bump)
                            break
                        except OperationalError:
                            db.session.rollback()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(r["id"],)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(got) == 2 * laps_each and all(b is not None for b in got)
    track_versions = sorted(b["track_version"] for b in got)
    event_versions = sorted(b["event_version"] for b in got)
    assert track_versions == list(range(track_versions[0], track_versions[0] + 2 * laps_each))
    assert event_versions == list(range(event_versions[0], event_versions[0] + 2 * laps_each))
    with app.app_context():
        assert db.session.get(Track, track).leaderboard_version == track_versions[-1]
