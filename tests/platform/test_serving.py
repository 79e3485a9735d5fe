"""How drem is served (drem.platform.serving): the gunicorn settings ``drem run`` and the
scale-out documentation use (2,000+ connections per worker), the open-files limit raised
for them, and the heap frozen after start-up."""

from __future__ import annotations

import gc
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def _gunicorn_config(argv: list[str]):
    """gunicorn's own parse of a command line (config module included), as its master does."""
    from gunicorn.app.wsgiapp import WSGIApplication

    saved = sys.argv
    sys.argv = ["gunicorn", *argv]
    try:
        return WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg
    finally:
        sys.argv = saved


def test_drem_run_serves_at_least_2000_connections_with_one_gevent_worker(monkeypatch):
    from drem import cli

    calls = []
    monkeypatch.setattr(cli.os, "execv", lambda exe, args: calls.append(args))
    monkeypatch.setattr(cli.os, "chdir", lambda _path: None)
    monkeypatch.setattr(cli, "raise_open_files", lambda: (8192, None))
    result = CliRunner().invoke(cli.serve_command, ["--host", "0.0.0.0", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    args = calls[0]
    assert args[:3] == [sys.executable, "-m", "gunicorn"] and args[-1] == "wsgi:app"
    cfg = _gunicorn_config(args[3:])
    assert cfg.worker_connections >= 2000
    assert cfg.worker_class_str == "gevent" and cfg.workers == 1
    assert cfg.bind == ["0.0.0.0:8123"] and cfg.control_socket_disable is True
    assert cfg.timeout == 120 and cfg.graceful_timeout == 5


def test_drem_run_says_when_the_hard_limit_keeps_it_below_its_connections(monkeypatch):
    from drem import cli

    monkeypatch.setattr(cli.os, "execv", lambda exe, args: None)
    monkeypatch.setattr(cli.os, "chdir", lambda _path: None)
    monkeypatch.setattr(cli, "raise_open_files", lambda: (1024, "open-files limit is 1024 (hard limit 1024)"))
    result = CliRunner().invoke(cli.serve_command, [])
    assert result.exit_code == 0
    assert "warning: open-files limit is 1024 (hard limit 1024)" in result.output


@pytest.mark.parametrize("documented", ["Dockerfile", "deploy/compose.yaml", "docs/deployment.md"])
def test_the_documented_commands_use_the_same_settings(documented):
    text = (ROOT / documented).read_text()
    assert "gunicorn -c python:drem.platform.serving" in text or \
        '"gunicorn", "-c", "python:drem.platform.serving"' in text
    assert "-k gevent" not in text.replace("drem.platform.serving", "")  # no second, diverging recipe


def _limits_after(soft: int, hard: int, wanted: int) -> str:
    """Run raise_open_files(wanted) in a child whose limits start at (soft, hard)."""
    code = ("import resource; from drem.platform.serving import raise_open_files; "
            f"now, msg = raise_open_files({wanted}); "
            "print(now, resource.getrlimit(resource.RLIMIT_NOFILE)[0], msg)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))).stdout


def test_open_files_limit_is_raised_up_to_the_hard_limit():
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"hard open-files limit {hard} is below the test's 2,048")
    assert _limits_after(256, hard, 2048).split() == ["2048", "2048", "None"]
    capped = _limits_after(256, 1024, 4256)
    assert capped.startswith("1024 1024 open-files limit is 1024 (hard limit 1024)")
    assert "768 connections" in capped and "ulimit -Hn 4256" in capped


def test_freeze_heap_takes_the_loaded_app_out_of_full_collections():
    from drem.platform.serving import GC_THRESHOLDS, freeze_heap

    before = gc.get_threshold()
    try:
        frozen = freeze_heap()
        assert frozen == gc.get_freeze_count() and frozen > 10_000  # the loaded modules at least
        assert gc.get_threshold() == GC_THRESHOLDS
        assert len(gc.get_objects(generation=2)) < frozen  # a full collection no longer scans them
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
