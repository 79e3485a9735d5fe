"""Shared fixtures: an app on SQLite (default) or PostgreSQL (``DATABASE_URL``), clients,
and logged-in helpers. Each test starts from empty tables."""

from __future__ import annotations

import os

import pytest

from tests.factories import Factory

DATABASE_URL = os.environ.get("DATABASE_URL", "")


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """One app per test session with the schema built by the migrations."""
    from drem import create_app
    from drem.cli import upgrade_database
    from drem.extensions import db

    instance = tmp_path_factory.mktemp("instance")
    env = {
        "DREM_ENV": "testing", "SECRET_KEY": "test-secret", "DREM_INSTANCE_PATH": str(instance),
        "DATABASE_URL": DATABASE_URL, "LOGIN_RATE_LIMIT": "10000 per minute",
        "REDIS_URL": "", "STORAGE_URL": "", "SOCKETIO_ASYNC_MODE": "threading",
        "CLAMD_URL": os.environ.get("CLAMD_URL", ""),
    }
    app = create_app(overrides={"TESTING": True}, env=env)
    with app.app_context():
        if DATABASE_URL:
            db.session.execute(db.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade_database()
    yield app


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Empty every table after each test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    from drem.extensions import db

    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()


@pytest.fixture
def ctx(app):
    """An application context for service-level tests."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def factory(app):
    """Builders for users, events and tokens (no hard-coded ids)."""
    return Factory(app)
