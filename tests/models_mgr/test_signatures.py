"""Issue 18, "scanning that means something": what clamd scans with is shown to admins (status
page, ``drem doctor``) and every staff page warns when only drem's test signature is loaded or
the databases are stale. Real clamd processes started by scripts/clamd.sh throughout."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from drem.models_mgr.scanner import (
    SIGNATURES_MAX_AGE,
    _parse_version,
    clear_signature_cache,
    read_database,
    signature_status,
)

from .conftest import CLAMD_SH


@pytest.fixture
def clamd_with_official(tmp_path):
    """Start a clamd whose official database folder holds one real extra signature file
    (an ``.hdb`` MD5 signature) with a chosen age; yields a starter returning its URL."""
    started = []

    def start(age_days: float) -> str:
        official = tmp_path / f"official-{len(started)}"
        official.mkdir()
        body = b"drem signature age test"
        hdb = official / "extra.hdb"
        hdb.write_text(f"{hashlib.md5(body).hexdigest()}:{len(body)}:Drem.Test.Extra\n")
        when = time.time() - age_days * 86400
        os.utime(hdb, (when, when))
        rundir = tmp_path / f"run-{len(started)}"
        env = dict(os.environ, CLAMD_OFFICIAL_DB=str(official), CLAMD_FRESHCLAM="0")
        subprocess.run([str(CLAMD_SH), "start", str(rundir)], env=env, check=True, capture_output=True, timeout=120)
        started.append(rundir)
        return f"unix://{rundir / 'clamd.sock'}"

    yield start
    for rundir in started:
        subprocess.run([str(CLAMD_SH), "stop", str(rundir)], capture_output=True, check=False)


def test_only_the_test_signature_is_a_warning(clamd_url):
    status = signature_status(clamd_url)
    assert status.version and status.version.startswith("ClamAV ") and status.error is None
    assert [(d.name, d.signatures) for d in status.databases] == [("drem.ndb", 1)]
    assert status.official_version is None
    assert "only drem's test signature" in status.warning and "NOT" in status.warning


def test_fresh_extra_signatures_are_fine_and_old_ones_warn(clamd_with_official):
    fresh = signature_status(clamd_with_official(age_days=1))
    assert {d.name: d.signatures for d in fresh.databases} == {"drem.ndb": 1, "extra.hdb": 1}
    assert fresh.warning is None and fresh.total_signatures == 2
    stale = signature_status(clamd_with_official(age_days=10))
    assert stale.warning and "10 days old" in stale.warning


def test_clamd_down_is_a_warning(tmp_path):
    status = signature_status(f"unix://{tmp_path / 'nowhere.sock'}")
    assert status.version is None and status.error and "does not answer" in status.warning


def test_cvd_header_gives_count_and_build_time(tmp_path):
    built = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    header = f"ClamAV-VDB:20 Nov 2026 06-00 +0000:27450:2076452:90:{'0' * 32}:sig:builder:{int(built.timestamp())}"
    path = tmp_path / "daily.cvd"
    path.write_bytes(header.encode().ljust(512, b" ") + b"\x1f\x8b compressed body")
    database = read_database(path)
    assert (database.name, database.signatures, database.built_at) == ("daily.cvd", 2076452, built)


def test_version_answer_with_an_official_database():
    version, built = _parse_version("ClamAV 1.4.6/27450/Fri Nov 20 06:00:00 2026")
    assert version == 27450 and built == datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert _parse_version("ClamAV 1.4.6") == (None, None)


def test_old_official_database_from_version_warns(clamd_url, monkeypatch):
    from drem.models_mgr import scanner

    monkeypatch.setattr(scanner.ClamdScanner, "version", lambda self: "ClamAV 1.4.6/27000/Sat Oct 31 06:00:00 2026")
    now = datetime(2026, 11, 29, tzinfo=UTC)
    status = signature_status(clamd_url, now=now)
    assert status.official_version == 27000 and "28 days old" in status.warning
    fine = signature_status(clamd_url, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert fine.warning is None and SIGNATURES_MAX_AGE == timedelta(days=7)


def test_staff_pages_warn_and_admins_see_the_status_page(app, client, factory, clamd_url, monkeypatch):
    monkeypatch.setitem(app.config, "CLAMD_URL", clamd_url)
    clear_signature_cache()
    admin, operator, racer = factory.user("admin"), factory.user("operator"), factory.user("racer")
    for user, warned in ((admin, True), (operator, True), (racer, False)):
        c = app.test_client()
        factory.login(c, user)
        page = c.get("/").get_data(as_text=True)
        assert ("real viruses are NOT detected" in page) is warned, user["role"]
    c = app.test_client()
    factory.login(c, admin)
    page = c.get("/admin/scanner")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "drem.ndb" in text and "scanner-status-warning" in text and "freshclam" in text
    c = app.test_client()
    factory.login(c, operator)
    assert c.get("/admin/scanner").status_code == 403
    clear_signature_cache()


def test_drem_doctor_reports_the_signatures(app, clamd_url, clamd_with_official, monkeypatch):
    from drem.cli import main

    monkeypatch.setitem(app.config, "CLAMD_URL", clamd_url)
    runner = CliRunner()
    with app.app_context():
        result = runner.invoke(main.get_command(None, "doctor"), [])
    assert result.exit_code == 1
    assert "drem.ndb: 1 signatures" in result.output and "only drem's test signature" in result.output
    monkeypatch.setitem(app.config, "CLAMD_URL", clamd_with_official(age_days=0))
    with app.app_context():
        result = runner.invoke(main.get_command(None, "doctor"), [])
    assert result.exit_code == 0, result.output
    assert "extra.hdb: 1 signatures" in result.output and "all checks passed" in result.output
