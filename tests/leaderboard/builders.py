"""Races and laps written straight into the database for leaderboard tests.

The timekeeper normally creates races and laps; these builders insert the same rows
with SQLAlchemy so the leaderboard can be tested on its own. After the commit they send
the signals the timekeeper and the race admin send (drem.platform.signals): a new lap
``lap_recorded`` with the versions it produced, any other change ``race_changed``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from drem.events.models import LIVE, Lap, Race
from drem.events.versions import bump_of
from drem.platform.effects import after_commit, commit
from drem.platform.extensions import db
from drem.platform.signals import lap_recorded, race_changed
from drem.timekeeper.service import race_state

_seq = itertools.count(1)
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class Races:
    """Builds races and laps for one app; returns plain ids."""

    def __init__(self, app):
        self.app = app

    def race(self, event_id: int, track_id: int, racer_id: int, laps=(), status: str = "submitted",
             raced_by_proxy: bool = False, start_s: float | None = None) -> dict:
        """A race with ``laps`` (tuples ``(time_ms, resets=0, invalidated=False)``), recorded
        one after another from ``start_s`` seconds after T0. Returns ``{"id", "lap_ids"}``."""
        start = T0 + timedelta(seconds=start_s if start_s is not None else next(_seq) * 600)
        with self.app.app_context():
            race = Race(event_id=event_id, track_id=track_id, racer_id=racer_id, status=status,
                        raced_by_proxy=raced_by_proxy, time_limit_ms=240_000, started_at=start,
                        live_track_id=track_id if status in LIVE else None)
            db.session.add(race)
            db.session.flush()
            at = start
            rows = []
            for number, spec in enumerate(laps, 1):
                time_ms, resets, invalidated = (tuple(spec) + (0, False))[:3] if isinstance(spec, tuple) \
                    else (spec, 0, False)
                at = at + timedelta(milliseconds=time_ms)
                lap = Lap(race_id=race.id, lap_number=number, time_ms=time_ms, resets=resets,
                          invalidated=invalidated, source="operator", source_id=f"b{next(_seq)}",
                          recorded_at=at)
                db.session.add(lap)
                rows.append(lap)
            db.session.commit()
            return {"id": race.id, "lap_ids": [r.id for r in rows]}

    def lap(self, race_id: int, time_ms: int, resets: int = 0, invalidated: bool = False,
            notify: bool = True) -> int:
        """Add the next lap to a race; with ``notify`` send ``lap_recorded`` after the
        commit, as the timekeeper does. Returns the lap id."""
        with self.app.app_context():
            race = db.session.get(Race, race_id)
            number = len(race.laps) + 1
            last = race.laps[-1].recorded_at if race.laps else race.started_at
            lap = Lap(race_id=race_id, lap_number=number, time_ms=time_ms, resets=resets,
                      invalidated=invalidated, source="operator", source_id=f"b{next(_seq)}",
                      recorded_at=last + timedelta(milliseconds=time_ms))
            db.session.add(lap)
            db.session.flush()
            lap_id = lap.id
            bump = bump_of(("lap", lap_id))
            if notify:
                after_commit(lambda: lap_recorded.send(
                    "test", race_id=race_id, lap_id=lap_id, bump=bump,
                    state=race_state(db.session.get(Race, race_id))))
            commit()
            return lap_id

    def set(self, race_id: int, notify: bool = True, **fields) -> None:
        """Change a race's columns (e.g. status) and send ``race_changed`` after the commit."""
        with self.app.app_context():
            race = db.session.get(Race, race_id)
            for key, value in fields.items():
                setattr(race, key, value)
            if notify:
                event_id, track_id = race.event_id, race.track_id
                after_commit(lambda: race_changed.send("test", race_id=race_id, event_id=event_id,
                                                       track_id=track_id, state=None))
            commit()

    def edit_lap(self, lap_id: int, notify: bool = True, **fields) -> None:
        """Change a lap (time, resets, invalidated) and send ``race_changed`` after the commit."""
        with self.app.app_context():
            lap = db.session.get(Lap, lap_id)
            for key, value in fields.items():
                setattr(lap, key, value)
            race_id, event_id, track_id = lap.race_id, lap.race.event_id, lap.race.track_id
            if notify:
                after_commit(lambda: race_changed.send("test", race_id=race_id, event_id=event_id,
                                                       track_id=track_id, state=None))
            commit()

    def delete(self, race_id: int, notify: bool = True) -> None:
        """Delete a race and send ``race_changed`` (with its event and track) after the commit."""
        with self.app.app_context():
            race = db.session.get(Race, race_id)
            event_id, track_id = race.event_id, race.track_id
            db.session.delete(race)
            if notify:
                after_commit(lambda: race_changed.send("test", race_id=race_id, event_id=event_id,
                                                       track_id=track_id, state=None))
            commit()
