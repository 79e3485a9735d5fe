"""What the race queue does when the timekeeper reports a race (drem.platform.signals):
the queued racer's entry follows the race (called, racing, done).

Imported once by ``drem.app``. The signals are sent after the timekeeper's commit; the
entry changes in a transaction of its own, committed here, and a failure is logged
without stopping the sender's other announcements.
"""

from __future__ import annotations

import logging

from drem.platform.effects import commit
from drem.platform.extensions import db
from drem.platform.signals import race_changed, race_state_changed
from drem.race_queue import service

log = logging.getLogger(__name__)


def _follow(state: dict | None) -> None:
    if state is None:  # a deleted race: its entry keeps its state (race_id set to NULL)
        return
    try:
        if service.race_moved(state):  # no rollback otherwise: the sender's session still
            commit()                     # holds its announcements' bookkeeping
    except Exception:  # noqa: BLE001 - the race is committed; the queue must not break its announcements
        db.session.rollback()
        log.exception("race queue: could not follow race %s", state.get("race_id"))


@race_state_changed.connect
def follow_race_state(_sender, *, state: dict, bump: dict | None) -> None:
    """A race set up, started, paused or ended: its racer's entry is called or racing
    (:func:`drem.race_queue.service.race_moved`)."""
    _follow(state)


@race_changed.connect
def follow_race_change(_sender, *, race_id: int, event_id: int, track_id: int, state: dict | None) -> None:
    """A race submitted or discarded: its racer's entry is done (or back to checked in when
    a race that never started was discarded)."""
    _follow(state)
