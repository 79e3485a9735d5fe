"""Side effects that wait for the commit: socket pushes, job wake-ups, car commands,
file deletions.

Services call :func:`after_commit` instead of acting at once. Views and socket
handlers end with :func:`commit`, which commits and then runs the callbacks, in
order, outside the transaction (so a callback may read the database again). On
rollback the callbacks are dropped. This is how "side effects after commit" is
kept everywhere (DESIGN.md, "Layout").
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from drem.platform.extensions import db

log = logging.getLogger(__name__)
_PENDING = "drem_after_commit"
_READY = "drem_ready"
_BEFORE = "drem_before_commit"


def before_commit(callback: Callable[[], None]) -> None:
    """Run ``callback()`` just before the current transaction commits, after its changes
    are flushed (dropped on rollback). For reading what is about to be committed while it
    is still loaded (the commit expires every row), e.g. the state an after-commit push
    sends; the callback may read, and must not change rows."""
    db.session().info.setdefault(_BEFORE, []).append(callback)


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback()`` after the current transaction commits (dropped on rollback)."""
    db.session().info.setdefault(_PENDING, []).append(callback)


def commit() -> None:
    """Commit the request's transaction, then run its side effects."""
    session = db.session()
    session.commit()
    run_ready(session)


def run_ready(session: Session | None = None) -> None:
    """Run the callbacks of transactions that committed already (each failure is logged
    and does not stop the others: the data is committed)."""
    session = session or db.session()
    while session.info.get(_READY):
        callback = session.info[_READY].pop(0)
        try:
            callback()
        except Exception:
            log.exception("after-commit side effect failed")


@event.listens_for(Session, "before_commit")
def _committing(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint's release: the transaction goes on
        return
    callbacks = session.info.pop(_BEFORE, [])
    if callbacks:
        session.flush()
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if pending:
        session.info.setdefault(_READY, []).extend(pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, _previous_transaction) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_BEFORE, None)
