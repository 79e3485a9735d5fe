"""The race queue under concurrent requests (threads, each with its own connection, on
SQLite and on PostgreSQL): racers joining and checking in at once get positions 1..n with
no gap and no repeat, and two consoles pressing "call next" at once call two different
racers. The queue's version grows by one per committed change."""

from __future__ import annotations

import threading

from tests.race_queue.test_service import _queue, _user


def _at_once(app, jobs) -> list:
    """Run each job (a function of no arguments calling one service function) in its own
    thread and app context, started together; commit each. Returns each job's result or
    the ServiceError it raised; fails on any other error."""
    from drem.platform.effects import commit
    from drem.platform.errors import ServiceError
    from drem.platform.extensions import db

    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(10)
                value = jobs[i]()
                result = getattr(value, "id", value)
                commit()
                results[i] = result
            except ServiceError as exc:
                db.session.rollback()
                results[i] = exc
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def _version(track_id: int) -> int:
    from drem.platform.extensions import db
    from drem.race_queue.models import RaceQueue

    db.session.expire_all()
    return db.session.get(RaceQueue, track_id).version


def test_racers_joining_and_checking_in_at_once_keep_a_gap_free_order(app, venue):
    from drem.race_queue import service

    racers = venue.racers

    def joiner(racer_id):
        return lambda: service.join_queue(_user(racer_id), venue.track)

    entries = _at_once(app, [joiner(r["id"]) for r in racers])
    assert all(isinstance(e, int) for e in entries), entries
    with app.app_context():
        queue = _queue(venue.track)
        assert [p for _n, p, _s in queue] == list(range(1, len(racers) + 1))
        assert sorted(n for n, _p, _s in queue) == sorted(r["username"] for r in racers)  # each once
        assert _version(venue.track) == len(racers)
        order = [n for n, _p, _s in queue]

    def checker(racer_id, entry_id):
        return lambda: service.check_in(_user(racer_id), entry_id)

    done = _at_once(app, [checker(r["id"], e) for r, e in zip(racers, entries, strict=True)])
    assert done == entries
    with app.app_context():
        queue = _queue(venue.track)
        assert [n for n, _p, _s in queue] == order  # check-ins do not reorder
        assert [p for _n, p, _s in queue] == list(range(1, len(racers) + 1))
        assert {s for _n, _p, s in queue} == {"checked_in"}
        assert _version(venue.track) == 2 * len(racers)


def test_two_consoles_calling_next_at_once_call_two_different_racers(app, venue):
    from drem.platform.effects import commit
    from drem.race_queue import service

    with app.app_context():
        op = _user(venue.operator["id"])
        ids = [service.add_racer(op, venue.track, r["id"]).id for r in venue.racers[:5]]
        for entry_id in ids:
            service.check_in(op, entry_id, own=False)
        commit()
    second_operator = venue.operator["id"]

    def call():
        return service.call_next(_user(second_operator), venue.track)

    for round_ids in (ids[0:2], ids[2:4]):
        called = _at_once(app, [call, call])
        assert sorted(called) == sorted(round_ids)  # two racers, the first two checked in, never one twice
    from drem.platform.errors import Conflict

    last = _at_once(app, [call, call])  # one racer left: the other console hears 409
    assert [x for x in last if isinstance(x, int)] == [ids[4]]
    assert len([x for x in last if isinstance(x, Conflict) and x.status == 409]) == 1
    with app.app_context():
        assert {s for _n, _p, s in _queue(venue.track)} == {"called"}
