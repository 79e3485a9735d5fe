"""Fixtures of the race-queue tests: an event with one track, an operator and registered
racers (ids only), and builders for available models and counted races."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest


@pytest.fixture
def venue(app, factory):
    """An event (4-minute races, 2 runs per racer) with one track, an operator, six
    registered racers and one unregistered racer."""
    from drem.events.models import EventRacer
    from drem.platform.extensions import db

    event = factory.event(max_runs_per_racer=2, race_time_min=4)
    racers = [factory.user("racer", password=None) for _ in range(6)]  # no password hashing: fast
    with app.app_context():
        for racer in racers:
            db.session.add(EventRacer(event_id=event["id"], user_id=racer["id"], colour="blue"))
        db.session.commit()
    return SimpleNamespace(event=event, track=event["tracks"][0]["id"], operator=factory.user("operator", password=None),
                           racers=racers, stranger=factory.user("racer", password=None))


def add_model(app, owner_id: int, status: str = "available", name: str = "fast.tar.gz") -> int:
    """A racer model row of ``owner_id`` in ``status``; returns its id."""
    from drem.models_mgr.models import RacerModel
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    with app.app_context():
        now = utcnow()
        key = f"models/{owner_id}/{name}/{status}"
        model = RacerModel(owner_id=owner_id, filename=name, storage_key=key, status=status, model_format="deepracer",
                           size=1, sha256=hashlib.sha256(key.encode()).hexdigest(), md5="0" * 32, uploaded_at=now,
                           expires_at=now + timedelta(days=30))
        db.session.add(model)
        db.session.commit()
        return model.id


def add_race(app, event_id: int, track_id: int, racer_id: int, started_min_ago: float, status: str = "submitted") -> int:
    """A counted race of ``racer_id`` started ``started_min_ago`` minutes ago; returns its id."""
    from drem.events.models import Race
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    with app.app_context():
        race = Race(event_id=event_id, track_id=track_id, racer_id=racer_id, status=status, time_limit_ms=240_000,
                    started_at=utcnow() - timedelta(minutes=started_min_ago))
        db.session.add(race)
        db.session.commit()
        return race.id
