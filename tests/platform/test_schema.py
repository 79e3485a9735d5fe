"""The migrations are the only way the schema changes: they must match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


def test_models_and_migrations_agree(app):
    from drem.platform.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, db.metadata)
    assert diff == [], f"models differ from migrations; run 'drem db migrate': {diff}"


def test_sqlite_runs_in_wal_mode(ctx):
    import pytest

    from drem.platform.extensions import db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    if True:
        assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(db.text("PRAGMA foreign_keys")).scalar() == 1
