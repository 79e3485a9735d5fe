"""Changing a track's race queue: join, add, check in, call next, skip a no-show, leave or
remove, and the moves a race makes (racing, done).

Every change starts with :func:`lock_queue`: one ``UPDATE race_queues SET version =
version + 1 ... RETURNING`` on the track's row. It is the transaction's first write, so
the database serialises the changes of one queue (PostgreSQL holds the row lock, SQLite
the write lock, until the commit): two consoles pressing "call next" at once call two
different racers, and racers joining at once get positions 1..n with no gap and no
repeat. The entries are read after the lock, fresh from the database. Functions flush,
never commit; the ``queue_update`` push goes out after the commit
(:func:`drem.race_queue.state.push_queue`).

The order rule (docs/operations.md, "Race queue"): join order (``position``), but only
checked-in racers are called, the lowest position first; a called racer who is not there
is skipped: moved back ``skip_back`` places (default 3) the first time, to the end after
that, and must check in again to be called.
"""

from __future__ import annotations

import sqlalchemy as sa

from drem.events.models import EventRacer, Track
from drem.events.rules import DISCARDED, ENDED, PAUSED, READY, RUNNING, SUBMITTED
from drem.events.service import get_track
from drem.models_mgr.models import AVAILABLE, RacerModel
from drem.platform.audit import record_audit
from drem.platform.db_types import utcnow
from drem.platform.effects import after_commit
from drem.platform.errors import Conflict, Forbidden, NotFound, ServiceError
from drem.platform.extensions import db
from drem.platform.inserts import insert_unless_present
from drem.race_queue.models import (
    ACTIVE,
    CALLED,
    CHECK_IN_FROM,
    CHECKED_IN,
    DEFAULT_SKIP_BACK,
    DONE,
    RACING,
    SKIPPED,
    WAITING,
    QueueEntry,
    RaceQueue,
)
from drem.race_queue.state import active_entries, push_queue
from drem.timekeeper.service import runs_done

#: Most places a no-show may be moved back (the track's ``skip_back`` setting).
MAX_SKIP_BACK = 50
_PUSHED = "drem_queue_pushes"


def lock_queue(track_id: int) -> tuple[int, int]:
    """Take the track's queue for this transaction and bump its version: creates the
    ``race_queues`` row if missing, then one atomic ``UPDATE ... RETURNING``. Returns
    ``(version, skip_back)``; the ``queue_update`` push is scheduled for after the commit."""
    insert_unless_present(RaceQueue, {"track_id": track_id, "version": 0, "skip_back": DEFAULT_SKIP_BACK},
                          key=["track_id"])
    version, skip_back = db.session.connection().execute(
        sa.update(RaceQueue.__table__).where(RaceQueue.track_id == track_id)
        .values(version=RaceQueue.version + 1).returning(RaceQueue.version, RaceQueue.skip_back)).one()
    _push_after_commit(track_id)
    return version, skip_back


def _push_after_commit(track_id: int) -> None:
    """One ``queue_update`` per track and transaction, after the commit (dropped with the
    transaction on rollback)."""
    session = db.session()
    transaction = session.get_transaction()
    holder = session.info.get(_PUSHED)
    if holder is None or holder[0] is not transaction:  # the first change of this transaction
        holder = session.info[_PUSHED] = (transaction, set())
    if track_id not in holder[1]:
        holder[1].add(track_id)
        after_commit(lambda: push_queue(track_id))


def _racer_may_queue(track: Track, racer_id: int) -> None:
    """ServiceError unless the racer is registered for the track's event; Conflict when the
    racer has no runs left on the track (max runs per racer)."""
    reg = db.session.scalar(sa.select(EventRacer).filter_by(event_id=track.event_id, user_id=racer_id))
    if reg is None:
        raise ServiceError("that racer is not registered for this event; register at the desk first", "racer_id")
    limit = track.event.max_runs_per_racer
    done = runs_done(track.id, racer_id)
    if limit is not None and done >= limit:
        raise Conflict(f"{reg.user.username} has used all runs on this track ({done}/{limit})", "racer_id")


def _append(actor, track: Track, racer_id: int) -> QueueEntry:
    lock_queue(track.id)
    _racer_may_queue(track, racer_id)
    entries = active_entries(db.session, track.id)
    if any(e.racer_id == racer_id for e in entries):
        raise Conflict("already in this track's queue", "racer_id")
    entry = QueueEntry(track_id=track.id, racer_id=racer_id, state=WAITING, position=len(entries) + 1,
                       active_track_id=track.id, added_by_id=actor.id)
    db.session.add(entry)
    db.session.flush()
    return entry


def add_racer(actor, track_id: int, racer_id: int) -> QueueEntry:
    """An operator puts a registered racer with runs left at the end of a track's queue
    (state ``waiting``). NotFound for an unknown track; ServiceError (400) when the racer is
    not registered for the event; Conflict (409) when out of runs or already queued."""
    return _append(actor, get_track(track_id), racer_id)


def join_queue(actor, track_id: int) -> QueueEntry:
    """A racer joins a track's queue themselves ("Join the queue"): as :func:`add_racer`
    for ``actor``."""
    return _append(actor, get_track(track_id), actor.id)


def get_entry(entry_id: int) -> QueueEntry:
    """The queue entry; NotFound otherwise."""
    entry = db.session.get(QueueEntry, entry_id)
    if entry is None:
        raise NotFound("no such queue entry")
    return entry


def _locked_entry(entry_id: int, owner=None) -> QueueEntry:
    """The entry, re-read after locking its queue. With ``owner`` (a racer acting for
    themselves): Forbidden unless the entry is theirs (checked before the lock)."""
    entry = get_entry(entry_id)
    if owner is not None and entry.racer_id != owner.id:
        raise Forbidden("that is not your place in the queue")
    lock_queue(entry.track_id)
    db.session.refresh(entry)
    if entry.state not in ACTIVE:
        raise Conflict(f"this queue entry is {entry.state}")
    return entry


def _checked_model(racer_id: int, model_id: int | None) -> RacerModel | None:
    if model_id is None:
        return None
    model = db.session.get(RacerModel, model_id)
    if model is None:
        raise ServiceError("no such model", "model_id")
    if model.owner_id != racer_id:
        raise Forbidden("that model belongs to another racer")
    if model.status != AVAILABLE:
        raise ServiceError(f"{model.filename} is not available ({model.status})", "model_id")
    return model


def check_in(actor, entry_id: int, model_id: int | None = None, *, own: bool = True) -> QueueEntry:
    """Check a queued racer in (they are at the venue and may be called), with the model
    they race (one of their available models, or None). ``own``: the actor is the racer
    (Forbidden for someone else's entry); False for staff checking a racer in. A checked-in
    or called racer may check in again to change the model; Conflict once racing or done."""
    entry = _locked_entry(entry_id, owner=actor if own else None)
    if entry.state not in CHECK_IN_FROM:
        raise Conflict(f"cannot check in: this entry is {entry.state}")
    model = _checked_model(entry.racer_id, model_id)
    entry.model_id = model.id if model else None
    if entry.state in (WAITING, SKIPPED):
        entry.state, entry.checked_in_at = CHECKED_IN, utcnow()
    db.session.flush()
    return entry


def call_next(actor, track_id: int) -> QueueEntry:
    """Call the next racer of a track to the start: the checked-in entry with the lowest
    position becomes ``called``. Two consoles calling at once call two different racers.
    Conflict (409) when nobody is checked in."""
    track = get_track(track_id)
    lock_queue(track.id)
    ready = [e for e in active_entries(db.session, track.id) if e.state == CHECKED_IN]
    if not ready:
        raise Conflict("nobody is checked in on this track's queue")
    entry = ready[0]
    entry.state, entry.called_at = CALLED, utcnow()
    db.session.flush()
    return entry


def _move(track_id: int, entry: QueueEntry, new_position: int) -> None:
    """Move an active entry to ``new_position``, shifting the ones between (no gaps)."""
    old = entry.position
    if new_position > old:
        db.session.execute(sa.update(QueueEntry).where(
            QueueEntry.active_track_id == track_id, QueueEntry.position > old,
            QueueEntry.position <= new_position).values(position=QueueEntry.position - 1)
            .execution_options(synchronize_session=False))
        entry.position = new_position
        db.session.flush()


def skip_entry(actor, entry_id: int) -> QueueEntry:
    """A called (or checked-in) racer is not at the track: state ``skipped``, moved back the
    queue's ``skip_back`` places the first time, to the end of the queue after that; they
    are called again once checked in again. Conflict for other states. Audited."""
    entry = _locked_entry(entry_id)
    if entry.state not in (CALLED, CHECKED_IN):
        raise Conflict(f"only a called or checked-in racer can be skipped; this one is {entry.state}")
    _version, skip_back = db.session.execute(sa.select(RaceQueue.version, RaceQueue.skip_back)
                                             .where(RaceQueue.track_id == entry.track_id)).one()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(QueueEntry)
                              .where(QueueEntry.active_track_id == entry.track_id))
    target = count if entry.skips >= 1 else min(count, entry.position + skip_back)
    entry.skips += 1
    entry.state, entry.called_at = SKIPPED, None
    _move(entry.track_id, entry, target)
    record_audit(actor, "queue.skip", "queue_entry", entry.id, racer=entry.racer.username,
                 skips=entry.skips, position=entry.position)
    return entry


def _close(entry: QueueEntry, state: str) -> None:
    """Take an entry out of the queue (``done``) or delete it, closing the gap behind it."""
    old, track_id = entry.position, entry.track_id
    if state == DONE:
        entry.state, entry.position, entry.active_track_id, entry.done_at = DONE, None, None, utcnow()
    else:
        db.session.delete(entry)
    db.session.flush()
    if old is not None:
        db.session.execute(sa.update(QueueEntry).where(
            QueueEntry.active_track_id == track_id, QueueEntry.position > old)
            .values(position=QueueEntry.position - 1).execution_options(synchronize_session=False))


def remove_entry(actor, entry_id: int, *, own: bool = True) -> int:
    """Take a racer out of the queue: they leave themselves (``own``; Forbidden for
    someone else's entry), or staff remove them (audited). Conflict while their race runs.
    Returns the track id."""
    entry = _locked_entry(entry_id, owner=actor if own else None)
    if entry.state == RACING:
        raise Conflict("this racer is on track; end the race first")
    track_id = entry.track_id
    if not own:
        record_audit(actor, "queue.remove", "queue_entry", entry.id, racer=entry.racer.username,
                     track_id=track_id)
    _close(entry, "deleted")
    return track_id


def set_skip_back(actor, track_id: int, places: int) -> int:
    """How many places a no-show moves back the first time on this track (0..:data:`MAX_SKIP_BACK`).
    Returns the new value. Audited."""
    if not 0 <= places <= MAX_SKIP_BACK:
        raise ServiceError(f"skip_back must be between 0 and {MAX_SKIP_BACK}", "skip_back")
    track = get_track(track_id)
    lock_queue(track.id)
    db.session.execute(sa.update(RaceQueue).where(RaceQueue.track_id == track.id).values(skip_back=places))
    record_audit(actor, "queue.skip_back", "track", track.id, skip_back=places)
    return places


def race_moved(state: dict) -> bool:
    """Follow a race of a queued racer (the timekeeper's race state, after its commit):
    set up (``ready``) -> the racer's entry is ``called`` and linked to the race; started
    (running, paused, ended) -> ``racing``; submitted -> ``done``; discarded -> ``done`` when
    the entry was racing, else back to ``checked_in`` (set up by mistake: the racer keeps
    the place). A race of a
    racer with no entry changes nothing. Returns True when an entry changed (then commit)."""
    track_id, racer_id, race_id, status = state["track_id"], state["racer"]["id"], state["race_id"], state["status"]
    linked = db.session.scalar(sa.select(QueueEntry.id).where(QueueEntry.race_id == race_id,
                                                              QueueEntry.active_track_id.is_not(None)))
    active = db.session.scalar(sa.select(QueueEntry.id).where(QueueEntry.active_track_id == track_id,
                                                              QueueEntry.racer_id == racer_id))
    entry_id = linked or active
    if entry_id is None:
        return False
    lock_queue(track_id)
    entry = db.session.get(QueueEntry, entry_id, populate_existing=True)
    if entry is None or entry.state not in ACTIVE:
        return True
    if status == READY and entry.state != RACING:
        entry.state, entry.race_id = CALLED, race_id
        entry.called_at = entry.called_at or utcnow()
    elif status in (RUNNING, PAUSED, ENDED):
        entry.state, entry.race_id = RACING, race_id
        entry.called_at = entry.called_at or utcnow()
    elif status == SUBMITTED or (status == DISCARDED and entry.state == RACING):
        entry.race_id = race_id
        _close(entry, DONE)
    elif status == DISCARDED:
        entry.state, entry.race_id, entry.called_at = CHECKED_IN, None, None
    db.session.flush()
    return True
