"""Shared fixtures: an app on SQLite (default) or PostgreSQL (``DATABASE_URL``), clients,
and logged-in helpers. Each test starts from empty tables.

Also the session's real services, usable from every test folder: a clamd
(``clamd_rundir``, ``clamd_url``) and a SeaweedFS S3 server (``seaweedfs``), both
started through the project's own scripts (scripts/clamd.sh, scripts/seaweedfs.sh)
in temporary folders, so the tests also prove the scripts work and never touch a
developer's instance/ folder. SeaweedFS gets free ports so it cannot collide with
an instance someone else is running.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drem.demo.scaleout import free_port_pairs
from tests.factories import Factory

DATABASE_URL = os.environ.get("DATABASE_URL", "")


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """One app per test session with the schema built by the migrations."""
    from drem.demo.in_process import in_process_app

    yield in_process_app(tmp_path_factory.mktemp("instance"), DATABASE_URL, os.environ.get("CLAMD_URL", ""))


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Empty every table after each test that used the app, and drop the leaderboards held
    in memory (ids repeat between tests once the tables are emptied)."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    from drem.leaderboard.service import clear_cache
    from drem.platform.extensions import db

    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()
    clear_cache()


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


# ------------------------------------------------ real services (clamd, SeaweedFS)

REPO = Path(__file__).resolve().parents[1]
CLAMD_SH = REPO / "scripts" / "clamd.sh"
SEAWEEDFS_SH = REPO / "scripts" / "seaweedfs.sh"


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


@pytest.fixture(scope="session")
def clamd_rundir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run folder of a clamd started by scripts/clamd.sh for this test session."""
    rundir = tmp_path_factory.mktemp("clamd")
    _run([str(CLAMD_SH), "start", str(rundir)])
    try:
        yield rundir
    finally:
        subprocess.run([str(CLAMD_SH), "stop", str(rundir)], capture_output=True, check=False)


@pytest.fixture(scope="session")
def clamd_url(clamd_rundir: Path) -> str:
    """``unix://…/clamd.sock`` of the session's clamd."""
    return f"unix://{clamd_rundir / 'clamd.sock'}"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real SeaweedFS started by scripts/seaweedfs.sh; yields its s3.env values
    plus ``DIR`` and the ``SEAWEEDFS_*`` port variables used."""
    state = tmp_path_factory.mktemp("seaweedfs")
    s3, master, volume, filer, admin = free_port_pairs(5)
    ports = {
        "SEAWEEDFS_S3_PORT": str(s3),
        "SEAWEEDFS_MASTER_PORT": str(master),
        "SEAWEEDFS_VOLUME_PORT": str(volume),
        "SEAWEEDFS_FILER_PORT": str(filer),
        "SEAWEEDFS_ADMIN_PORT": str(admin),
        "SEAWEEDFS_BUCKETS": "drem-test",
    }
    env = {**os.environ, **ports}
    out = _run([str(SEAWEEDFS_SH), "start", str(state)], env=env)
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    values.update(ports)
    values["DIR"] = str(state)
    try:
        yield values
    finally:
        subprocess.run(
            [str(SEAWEEDFS_SH), "stop", str(state)], env=env, capture_output=True, check=False
        )


# ------------------------------------------------------------------ query counting


class QueryCounter:
    """The SQL statements the app's engine ran while counting (``statements``: their text)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.active = False

    def __call__(self, _conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if self.active:
            self.statements.append(statement)

    def __enter__(self) -> QueryCounter:
        self.statements.clear()
        self.active = True
        return self

    def __exit__(self, *_exc) -> None:
        self.active = False

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app) -> Iterator[QueryCounter]:
    """Count SQL statements: ``with count_queries as q: client.get(...)``, then ``q.count``
    (a ``before_cursor_execute`` listener on the app's engine, removed after the test)."""
    from sqlalchemy import event

    from drem.platform.extensions import db

    counter = QueryCounter()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)
