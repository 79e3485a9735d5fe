"""A drem app inside the calling process, on a fresh schema: what the test suite and the
in-process benchmarks (``bench/lap_path.py``) run requests against with Flask's test client."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from drem.app import create_app
from drem.platform.extensions import db, upgrade_database


def in_process_app(instance: Path, database_url: str = "", clamd_url: str = "") -> Flask:
    """An app in testing mode with its instance folder at ``instance``: SQLite there unless
    ``database_url`` (PostgreSQL: the ``public`` schema is dropped and made again), no
    Redis, local storage, threading Socket.IO, no background job runner (callers run jobs
    themselves: a runner thread would race them), login rate limit out of the way, and the
    schema built by the migrations."""
    env = {
        "DREM_ENV": "testing", "SECRET_KEY": "in-process-secret", "DREM_INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url, "LOGIN_RATE_LIMIT": "10000 per minute",
        "REDIS_URL": "", "STORAGE_URL": "", "SOCKETIO_ASYNC_MODE": "threading", "CLAMD_URL": clamd_url,
    }
    app = create_app(overrides={"TESTING": True, "JOBS_AUTOSTART": False}, env=env)
    with app.app_context():
        if database_url:
            db.session.execute(db.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade_database()
    return app
