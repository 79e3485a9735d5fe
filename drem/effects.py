"""Side effects that wait for the commit: socket pushes, job wake-ups, file deletions.

Services call :func:`after_commit` instead of acting at once; the callbacks run
only when the surrounding transaction commits, and are dropped on rollback. This
is how "side effects after commit" is kept everywhere (DESIGN.md, "Layout").
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from drem.extensions import db

log = logging.getLogger(__name__)
_KEY = "drem_after_commit"


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback()`` after the current session's next successful commit."""
    db.session().info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop(_KEY, [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a failed push must not undo a committed change
            log.exception("after-commit side effect failed")


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, _previous_transaction) -> None:
    session.info.pop(_KEY, None)
