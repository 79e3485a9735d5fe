"""The race set-up form's racer list: right numbers, and a fixed number of queries."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest


def _racers(app, factory, event_id: int, track_id: int, n: int) -> list[int]:
    """``n`` registered racers; racer i has i % 3 submitted runs and i % 2 available models
    (plus one model still scanning, which is not listed)."""
    from drem.events.models import EventRacer, Race
    from drem.models_mgr.models import AVAILABLE, RacerModel
    from drem.platform.db_types import utcnow
    from drem.platform.extensions import db

    users = [factory.user("racer", f"r{i:02d}_{event_id}", password=None) for i in range(n)]
    with app.app_context():
        now = utcnow()
        for i, user in enumerate(users):
            db.session.add(EventRacer(event_id=event_id, user_id=user["id"], colour="blue"))
            for _ in range(i % 3):
                db.session.add(Race(event_id=event_id, track_id=track_id, racer_id=user["id"], status="submitted",
                                    time_limit_ms=60_000))
            db.session.add(Race(event_id=event_id, track_id=track_id, racer_id=user["id"], status="discarded",
                                time_limit_ms=60_000))
            for k, status in enumerate([AVAILABLE] * (i % 2) + ["scanning"]):
                key = f"models/{user['id']}/{k}.tar.gz"
                db.session.add(RacerModel(owner_id=user["id"], filename=f"m{k}.tar.gz", storage_key=key,
                                          status=status, model_format="deepracer", size=1,
                                          sha256=hashlib.sha256(key.encode()).hexdigest(), md5="0" * 32,
                                          uploaded_at=now - timedelta(minutes=k), expires_at=now + timedelta(days=30)))
        db.session.commit()
    return [u["id"] for u in users]


@pytest.mark.parametrize("n", [3, 30])
def test_racer_list_numbers(app, client, factory, n):
    event = factory.event(max_runs_per_racer=3)
    track_id = event["tracks"][0]["id"]
    ids = _racers(app, factory, event["id"], track_id, n)
    h = {"Authorization": f"Bearer {factory.token(factory.user('operator'))}"}
    racers = client.get(f"/api/tracks/{track_id}/racers", headers=h).get_json()["racers"]
    assert [r["user_id"] for r in racers] == ids  # by name: r00, r01, ...
    assert [r["runs_done"] for r in racers] == [i % 3 for i in range(n)]  # discarded runs do not count
    assert [len(r["models"]) for r in racers] == [i % 2 for i in range(n)]  # available models only
    assert {r["max_runs"] for r in racers} == {3}


def test_racer_list_queries_do_not_grow_with_the_racers(app, client, factory, count_queries):
    h = {"Authorization": f"Bearer {factory.token(factory.user('operator'))}"}
    counts = []
    for n in (3, 30):
        event = factory.event()
        track_id = event["tracks"][0]["id"]
        _racers(app, factory, event["id"], track_id, n)
        with count_queries as q:
            resp = client.get(f"/api/tracks/{track_id}/racers", headers=h)
        assert resp.status_code == 200 and len(resp.get_json()["racers"]) == n
        counts.append(q.count)
    assert counts[0] == counts[1], counts
