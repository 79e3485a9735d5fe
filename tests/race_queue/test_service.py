"""The race queue's rules, at the service level: join order, only checked-in racers are
called, a no-show moves back N places once and then to the end, positions stay 1..n, the
entries follow the races, and the waiting-time estimate."""

from __future__ import annotations

import pytest

from tests.race_queue.conftest import add_model, add_race


def _user(user_id: int):
    from drem.auth.models import User
    from drem.platform.extensions import db

    return db.session.get(User, user_id)


def _queue(track_id: int) -> list[tuple[str, int, str]]:
    """(username, position, state) of the active entries, by position."""
    from drem.platform.extensions import db
    from drem.race_queue.state import active_entries

    return [(e.racer.username, e.position, e.state) for e in active_entries(db.session, track_id)]


def _join_all(venue, n: int) -> list[int]:
    from drem.platform.effects import commit
    from drem.race_queue import service

    ids = []
    for racer in venue.racers[:n]:
        ids.append(service.join_queue(_user(racer["id"]), venue.track).id)
        commit()
    return ids


def test_join_order_but_only_checked_in_racers_are_called(ctx, venue):
    from drem.platform.effects import commit
    from drem.platform.errors import Conflict
    from drem.race_queue import service

    a, b, c = _join_all(venue, 3)
    op = _user(venue.operator["id"])
    with pytest.raises(Conflict, match="nobody is checked in"):
        service.call_next(op, venue.track)
    service.check_in(_user(venue.racers[2]["id"]), c)
    commit()
    service.check_in(_user(venue.racers[0]["id"]), a)
    commit()
    assert service.call_next(op, venue.track).id == a  # joined first, checked in second: called first
    commit()
    assert service.call_next(op, venue.track).id == c  # b never checked in
    commit()
    names = [r["username"] for r in venue.racers[:3]]
    assert _queue(venue.track) == [(names[0], 1, "called"), (names[1], 2, "waiting"), (names[2], 3, "called")]


def test_a_no_show_moves_back_three_places_once_then_to_the_end(ctx, venue):
    from drem.platform.effects import commit
    from drem.race_queue import service

    ids = _join_all(venue, 6)
    op = _user(venue.operator["id"])
    first = venue.racers[0]
    service.check_in(_user(first["id"]), ids[0])
    service.call_next(op, venue.track)
    commit()
    entry = service.skip_entry(op, ids[0])
    commit()
    assert (entry.state, entry.position, entry.skips) == ("skipped", 4, 1)
    positions = [p for _name, p, _state in _queue(venue.track)]
    assert positions == [1, 2, 3, 4, 5, 6]  # no gap, no repeat
    assert _queue(venue.track)[3][0] == first["username"]
    service.check_in(_user(first["id"]), ids[0])  # back at the track: checks in again
    commit()
    assert service.call_next(op, venue.track).id == ids[0]  # the only one checked in
    commit()
    entry = service.skip_entry(op, ids[0])  # a second no-show: to the end
    commit()
    assert (entry.state, entry.position, entry.skips) == ("skipped", 6, 2)
    assert [p for _n, p, _s in _queue(venue.track)] == [1, 2, 3, 4, 5, 6]


def test_skip_back_is_configurable_and_audited(ctx, venue):
    from drem.platform.audit import AuditEntry
    from drem.platform.effects import commit
    from drem.platform.errors import ServiceError
    from drem.platform.extensions import db
    from drem.race_queue import service

    ids = _join_all(venue, 4)
    op = _user(venue.operator["id"])
    assert service.set_skip_back(op, venue.track, 1) == 1
    commit()
    with pytest.raises(ServiceError, match="between 0 and 50"):
        service.set_skip_back(op, venue.track, 51)
    db.session.rollback()
    service.check_in(op, ids[1], own=False)
    service.skip_entry(op, ids[1])  # a checked-in racer can be skipped too
    commit()
    assert [s for _n, _p, s in _queue(venue.track)] == ["waiting", "waiting", "skipped", "waiting"]
    actions = set(db.session.scalars(db.select(AuditEntry.action)))
    assert {"queue.skip", "queue.skip_back"} <= actions


def test_leaving_and_removing_close_the_gap(ctx, venue):
    from drem.platform.effects import commit
    from drem.platform.errors import Forbidden
    from drem.race_queue import service

    ids = _join_all(venue, 4)
    with pytest.raises(Forbidden):
        service.remove_entry(_user(venue.racers[0]["id"]), ids[1])  # not one's own
    service.remove_entry(_user(venue.racers[1]["id"]), ids[1])
    commit()
    service.remove_entry(_user(venue.operator["id"]), ids[3], own=False)
    commit()
    assert [(n, p) for n, p, _s in _queue(venue.track)] == [(venue.racers[0]["username"], 1),
                                                          (venue.racers[2]["username"], 2)]


def test_who_may_queue(app, ctx, venue):
    from drem.platform.effects import commit
    from drem.platform.errors import Conflict, ServiceError
    from drem.platform.extensions import db
    from drem.race_queue import service

    op = _user(venue.operator["id"])
    with pytest.raises(ServiceError, match="not registered"):
        service.add_racer(op, venue.track, venue.stranger["id"])
    db.session.rollback()
    service.add_racer(op, venue.track, venue.racers[0]["id"])
    commit()
    with pytest.raises(Conflict, match="already in"):
        service.join_queue(_user(venue.racers[0]["id"]), venue.track)
    db.session.rollback()
    for minutes in (30, 20):  # two runs of two
        add_race(app, venue.event["id"], venue.track, venue.racers[1]["id"], minutes)
    with pytest.raises(Conflict, match="used all runs"):
        service.join_queue(_user(venue.racers[1]["id"]), venue.track)
    db.session.rollback()


def test_check_in_takes_only_ones_own_available_model(app, ctx, venue):
    from drem.platform.effects import commit
    from drem.platform.errors import Forbidden, ServiceError
    from drem.platform.extensions import db
    from drem.race_queue import service

    me, other = venue.racers[0], venue.racers[1]
    mine = add_model(app, me["id"])
    scanning = add_model(app, me["id"], status="scanning", name="new.tar.gz")
    theirs = add_model(app, other["id"])
    (entry,) = _join_all(venue, 1)
    with pytest.raises(Forbidden, match="another racer"):
        service.check_in(_user(me["id"]), entry, theirs)
    db.session.rollback()
    with pytest.raises(ServiceError, match="not available"):
        service.check_in(_user(me["id"]), entry, scanning)
    db.session.rollback()
    with pytest.raises(Forbidden, match="not your place"):
        service.check_in(_user(other["id"]), entry, None)
    db.session.rollback()
    checked = service.check_in(_user(me["id"]), entry, mine)
    commit()
    assert (checked.state, checked.model_id) == ("checked_in", mine)
    assert checked.checked_in_at is not None


def test_the_entry_follows_its_race(ctx, venue):
    from drem.platform.effects import commit
    from drem.race_queue import service
    from drem.timekeeper import service as tk

    ids = _join_all(venue, 3)
    op = _user(venue.operator["id"])
    for i in range(3):
        service.check_in(op, ids[i], own=False)
    commit()
    service.call_next(op, venue.track)
    commit()
    race = tk.setup_race(op, venue.track, venue.racers[0]["id"])
    commit()
    assert _queue(venue.track)[0][2] == "called"
    tk.start_race(op, race)
    commit()
    assert _queue(venue.track)[0][2] == "racing"
    tk.end_race(op, race)
    tk.submit_race(op, race)
    commit()
    names = [r["username"] for r in venue.racers]
    assert _queue(venue.track) == [(names[1], 1, "checked_in"), (names[2], 2, "checked_in")]
    # a race set up by mistake and discarded before it started: the racer keeps the place
    race = tk.setup_race(op, venue.track, venue.racers[1]["id"])
    commit()
    assert _queue(venue.track)[0] == (names[1], 1, "called")
    tk.discard_race(op, race)
    commit()
    assert _queue(venue.track)[0] == (names[1], 1, "checked_in")
    # a racer who is not queued races: the queue does not change
    before = _queue(venue.track)
    tk.discard_race(op, tk.setup_race(op, venue.track, venue.racers[4]["id"]))
    commit()
    assert _queue(venue.track) == before


def test_waiting_time_from_the_race_time_or_the_measured_turnaround(app, ctx, venue):
    from drem.events.models import Track
    from drem.platform.effects import commit
    from drem.platform.extensions import db
    from drem.race_queue import service
    from drem.race_queue.state import queue_state

    ids = _join_all(venue, 3)
    op = _user(venue.operator["id"])
    service.check_in(op, ids[2], own=False)
    commit()
    track = db.session.get(Track, venue.track)
    state = queue_state(db.session, track)
    assert state["turnaround_ms"] == 4 * 60_000 + 60_000  # no race yet: race time + 1 min
    # the checked-in racer goes first; waiting racers after, in join order
    assert [(e["id"], e["place"], e["wait_ms"]) for e in state["entries"]] == \
        [(ids[2], 1, 0), (ids[0], 2, 300_000), (ids[1], 3, 600_000)]
    assert state["next"] == [ids[2]]
    for minutes in (17, 11, 6, 90):  # starts 6 and 5 min apart; 90 min ago is before a break
        add_race(app, venue.event["id"], venue.track, venue.racers[5]["id"], minutes)
    db.session.expire_all()
    assert abs(queue_state(db.session, track)["turnaround_ms"] - 330_000) < 1000  # rows made ms apart


def test_one_push_per_track_and_committed_transaction(ctx, venue, monkeypatch):
    from drem.platform.effects import commit
    from drem.platform.errors import Conflict
    from drem.platform.extensions import db
    from drem.race_queue import service

    pushed: list[int] = []
    monkeypatch.setattr(service, "push_queue", pushed.append)
    op = _user(venue.operator["id"])
    service.add_racer(op, venue.track, venue.racers[0]["id"])
    service.add_racer(op, venue.track, venue.racers[1]["id"])
    commit()
    assert pushed == [venue.track]  # two changes, one transaction: one push
    with pytest.raises(Conflict):
        service.add_racer(op, venue.track, venue.racers[0]["id"])
    db.session.rollback()
    assert pushed == [venue.track]  # rolled back: nothing pushed
    service.add_racer(op, venue.track, venue.racers[2]["id"])
    commit()
    assert pushed == [venue.track, venue.track]
