"""Insert a row unless one with the same unique key exists, in one statement that two
concurrent requests cannot both win: ``INSERT … ON CONFLICT (key) DO NOTHING RETURNING``
(PostgreSQL and SQLite >= 3.35 share the syntax; SQLAlchemy builds it per dialect).

A plain "select, then insert if missing" lets two requests both see nothing; the second
insert then fails on the unique index and its whole transaction is lost. Here the second
waits for the first (PostgreSQL: the index entry's lock; SQLite: the write lock) and
inserts nothing."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from drem.platform.extensions import db


def insert_unless_present(model: type, values: dict, key: list[str]):
    """Insert one ``model`` row with ``values`` unless a row with the same ``key`` columns
    (a unique index) exists. Returns the new ORM object (in the session, defaults and id
    filled), or None when a row with that key was there, also one that a concurrent
    transaction committed meanwhile. Raises what the database raises for any other
    constraint."""
    insert = pg_insert if db.session.connection().dialect.name == "postgresql" else sqlite_insert
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=key).returning(model)
    return db.session.scalars(statement).first()
