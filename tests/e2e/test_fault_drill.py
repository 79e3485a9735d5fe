"""The fault drill (bench/drill.py) as a user runs it: ``python bench/drill.py`` (``make demo-drill``).

During a running demo event: a car's network is cut (a TCP relay between the car and
the server stops passing anything), a gunicorn worker is killed with SIGKILL (its
master starts a new one), a car client is killed and restarted, clamd is stopped
while a racer uploads a model and started again. At the end no lap may be lost or
doubled and the leaderboard must equal the one computed from the cars' own lap logs.

The short form cuts the network for 8 s; ``DREM_FULL_DRILL=1`` cuts it for 30 s and
also runs the drill on the scale-out stack (PostgreSQL, Redis, SeaweedFS, clamd over
TCP, two web processes behind HAProxy, a ``drem worker``). Like the demo tests, this
runs in the SQLite pass of ``make test`` only.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from drem.demo.live_server import fresh_postgres_database
from drem.platform.config import REPO_ROOT
from tests.e2e.test_demo import POSTGRES_BASE, REDIS_URL, DemoRun, demo_env, demo_models_dir  # noqa: F401

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="the drill picks its own databases; it runs in the SQLite pass")

FULL = os.environ.get("DREM_FULL_DRILL") == "1"
OUTAGE_S = 30 if FULL else 8
FAULTS = {"network cut", "gunicorn worker SIGKILL", "car client SIGKILL + restart", "clamd restart"}


def drill_command(instance: Path, models: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "bench" / "drill.py"), "--outage", str(OUTAGE_S),
            "--racers", "2", "--cars", "2", "--speedup", "10", "--instance", str(instance),
            "--models-dir", str(models), *extra]


def check_drill(instance: Path, output: str) -> dict:
    drill = json.loads((instance / "drill.json").read_text())
    context = f"\n{output[-4000:]}"
    assert drill["errors"] == [], context
    assert drill["lost_laps"] == 0, context
    assert drill["doubled_laps"] == 0, context
    assert drill["leaderboard_matches_car_logs"] is True, context
    assert drill["laps_stored"] == drill["laps_driven"] > 0, context
    faults = {f["fault"]: f for f in drill["faults"]}
    assert set(faults) == FAULTS, context
    cut = faults["network cut"]
    assert cut["outage_s"] >= OUTAGE_S - 0.5, cut
    assert cut["outbox_delivered_after_s"] < 60, cut
    if FULL:
        assert cut["laps_driven_during_cut"] >= 1, cut  # a 30 s cut spans at least one lap at speedup 10
    assert faults["gunicorn worker SIGKILL"]["server_answering_after_s"] < 60
    assert faults["car client SIGKILL + restart"]["heartbeat_after_restart_s"] < 60
    assert faults["clamd restart"]["model_status_while_down"] == "scanning"
    assert "Fault drill" in output
    return drill


def test_fault_drill_embedded(demo_models_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """SQLite, one gunicorn (its worker killed and restarted by the arbiter), local clamd."""
    run = DemoRun(drill_command(tmp_path / "instance", demo_models_dir), demo_env(), tmp_path)
    try:
        run.finish()
    finally:
        run.kill()
    check_drill(tmp_path / "instance", run.output())


@pytest.mark.skipif(not FULL, reason="DREM_FULL_DRILL=1 runs the drill on the scale-out stack too")
def test_fault_drill_scaleout(demo_models_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """The scale-out stack: one of two web processes loses its worker behind HAProxy."""
    with fresh_postgres_database(POSTGRES_BASE) as database_url:
        run = DemoRun(drill_command(tmp_path / "instance", demo_models_dir, "--scaleout"),
                      demo_env(DATABASE_URL=database_url, REDIS_URL=REDIS_URL), tmp_path)
        try:
            run.finish()
        finally:
            run.kill()
    check_drill(tmp_path / "instance", run.output())
