"""The background job runner: model scans, expiring car commands, model retention.

One loop, run in a daemon thread of the web process (``BACKGROUND_JOBS=threads``) or
in the foreground of ``drem worker`` processes. Every task is safe to run in several
processes at once (claims and conditional updates in the database).
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from drem.effects import commit
from drem.extensions import db

log = logging.getLogger(__name__)
RETENTION_EVERY_S = 3600


def _expire_commands() -> None:
    from drem.fleet.commands import expire_queued

    if expire_queued():
        commit()


class JobRunner:
    """Runs the due model scans whenever woken (or every ``poll_s`` seconds), expires
    queued car commands, and runs model retention hourly, inside an app context."""

    def __init__(self, app: Flask, poll_s: float = 2.0):
        self.app, self.poll_s = app, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_retention = 0.0

    def start(self) -> None:
        """Run :meth:`loop` in a daemon thread."""
        self._thread = threading.Thread(target=self.loop, name="drem-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end and wait up to 30 s for it."""
        from drem.models_mgr.jobs import wake

        self._stop.set()
        wake()
        if self._thread:
            self._thread.join(timeout=30)

    def run_tasks(self) -> None:
        """One pass over every task (each in its own transaction)."""
        from drem.models_mgr import jobs as model_jobs

        model_jobs.run_once()
        _expire_commands()
        if time.monotonic() - self._last_retention > RETENTION_EVERY_S:
            self._last_retention = time.monotonic()
            model_jobs.run_retention()

    def loop(self) -> None:
        """Run passes until :meth:`stop`; a failing pass is logged and retried next time."""
        from drem.models_mgr.jobs import wait_for_work

        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    self.run_tasks()
                    db.session.remove()
            except Exception:
                log.exception("background job failed")
            wait_for_work(self.poll_s)
