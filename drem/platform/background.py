"""The background job runner: one loop over the tasks the app gives it.

The tasks (model scans, expiring car commands, model retention) are named in
``drem.app.background_tasks`` and handed to :class:`JobRunner` as data; the runner
knows nothing of any feature. It runs in a daemon thread of the web process
(``BACKGROUND_JOBS=threads``, started by :func:`ensure_background_jobs` on the first
request or socket connection) or in the foreground of ``drem worker`` processes. Every
task is safe to run in several processes at once (claims and conditional updates in
the database). :func:`wake` cuts the wait short when work arrives in this process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Flask

from drem.platform.extensions import db

log = logging.getLogger(__name__)
_wake = threading.Event()
EXTENSION = "drem_jobs"


@dataclass(frozen=True)
class Task:
    """One background task: ``run()`` inside an app context (it commits its own work),
    at most once every ``every_s`` seconds (0: on every pass)."""

    name: str
    run: Callable[[], object]
    every_s: float = 0.0


def wake() -> None:
    """Tell this process's runner that work arrived (no-op for external workers)."""
    _wake.set()


def wait_for_work(timeout_s: float) -> None:
    """Block until :func:`wake` is called or ``timeout_s`` seconds pass."""
    _wake.wait(timeout_s)
    _wake.clear()


class JobRunner:
    """Runs ``tasks`` whenever woken (or every ``poll_s`` seconds) inside an app context."""

    def __init__(self, app: Flask, tasks: Sequence[Task], poll_s: float = 2.0):
        self.app, self.tasks, self.poll_s = app, tuple(tasks), poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_run: dict[str, float] = {}

    def start(self) -> None:
        """Run :meth:`loop` in a daemon thread."""
        self._thread = threading.Thread(target=self.loop, name="drem-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end and wait up to 30 s for it."""
        self._stop.set()
        wake()
        if self._thread:
            self._thread.join(timeout=30)

    def run_tasks(self) -> None:
        """One pass over the tasks that are due; a failing task is logged and the others run."""
        for task in self.tasks:
            now = time.monotonic()
            if task.every_s and now - self._last_run.get(task.name, -task.every_s) < task.every_s:
                continue
            self._last_run[task.name] = now
            try:
                task.run()
            except Exception:
                log.exception("background task %s failed", task.name)
                db.session.rollback()

    def loop(self) -> None:
        """Run passes until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    self.run_tasks()
                    db.session.remove()
            except Exception:
                log.exception("background job pass failed")
            wait_for_work(self.poll_s)


def ensure_background_jobs(app: Flask) -> None:
    """Start the in-process runner once per server process (``BACKGROUND_JOBS=threads``).

    The tasks are ``app.extensions["drem_job_tasks"]`` (set by ``create_app``). Called
    on the first request or socket connection, not at import, so CLI commands start no
    threads; ``JOBS_AUTOSTART=False`` (tests) starts none.
    """
    if app.config["BACKGROUND_JOBS"] != "threads" or not app.config.get("JOBS_AUTOSTART", True):
        return
    if EXTENSION in app.extensions:
        return
    runner = app.extensions[EXTENSION] = JobRunner(app, app.extensions["drem_job_tasks"])
    runner.start()
