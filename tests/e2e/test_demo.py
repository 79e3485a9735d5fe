"""The whole demo event, end to end, as a user runs it: ``drem demo --headless``.

Each test runs the real command as a subprocess (clamd, gunicorn, car clients with
simulated cars, racers uploading models over HTTP) and checks the demo's own summary
(``demo_summary.json`` in its instance folder): no lap lost or doubled, the final
leaderboard equal to the one computed from the cars' lap logs, one race per racer,
every racer on a leaderboard.

* SQLite, one gunicorn process - and a headless Chromium that watches the public
  leaderboard page while the demo runs and sees it change without a reload;
* PostgreSQL + Redis with ``--workers 2``: two one-worker gunicorn processes behind
  HAProxy with sticky sessions (as in production), cars spread over both.

The demo picks its own databases (SQLite in its folder, a fresh PostgreSQL database),
so these tests run once, in the SQLite pass of ``make test``, not again in the
PostgreSQL pass. Trained demo models come from ``~/.cache/drem/demo-models`` (``drem.platform.config.demo_models_dir``) (``make models``),
or ``$DREM_DEMO_MODELS``, else they are built there once (a few minutes).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from drem.demo.live_server import (
    ensure_demo_models,
    environment_without_drem_settings,
    fresh_postgres_database,
)
from drem.demo.processes import ManagedProcess, alive, free_port, process_tree, wait_until
from drem.demo.scaleout import find_haproxy, render_haproxy
from drem.platform.config import REPO_ROOT

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="the demo picks its own databases (SQLite and a fresh PostgreSQL); it runs in the SQLite pass")

RACERS, CARS, SPEEDUP, LAPS = 3, 2, 10, 3
POSTGRES_BASE = os.environ.get("DREM_DEMO_POSTGRES", "postgresql://127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DREM_DEMO_REDIS", "redis://127.0.0.1:6379/9")
DEMO_TIMEOUT_S = 300


# ---------------------------------------------------------------- helpers

@pytest.fixture(scope="session")
def demo_models_dir() -> Path:
    """Folder with the trained demo models (``drem.platform.config.demo_models_dir``), built once
    when missing (the default model only, to keep a fresh machine's first run short)."""
    return ensure_demo_models()


def demo_env(**settings: str) -> dict[str, str]:
    """The caller's environment without drem's settings (a developer's DATABASE_URL must
    not leak in), plus ``settings``; unbuffered, so the output can be followed live."""
    return environment_without_drem_settings(**settings, PYTHONUNBUFFERED="1")


def demo_command(instance: Path, models: Path, *extra: str, racers: int = RACERS, cars: int = CARS) -> list[str]:
    return [sys.executable, "-m", "drem", "demo", "--headless", "--racers", str(racers), "--cars", str(cars),
            "--speedup", str(SPEEDUP), "--laps", str(LAPS), "--instance", str(instance), "--models-dir", str(models),
            *extra]


class DemoRun:
    """``drem demo`` running in the background (a :class:`ManagedProcess`); its output goes
    to ``output.log``."""

    def __init__(self, cmd: list[str], env: dict[str, str], folder: Path):
        self.instance = cmd[cmd.index("--instance") + 1]
        self.out_path = folder / "output.log"
        self.proc = ManagedProcess("drem demo", cmd, self.out_path, env).start()

    def output(self) -> str:
        return self.proc.log_text()

    def wait_for_output(self, pattern: str, timeout_s: float) -> re.Match:
        """The first match of ``pattern`` in the output; AssertionError with the output when
        the demo ends or ``timeout_s`` passes without one."""
        def found() -> re.Match | None:
            match = re.search(pattern, self.output())
            if match is None and not self.proc.alive:
                raise AssertionError(f"drem demo ended without {pattern!r}:\n{self.output()[-4000:]}")
            return match

        return wait_until(found, timeout_s, f"{pattern!r} in the demo's output", 0.2,
                          on_timeout=lambda: self.output()[-4000:])

    def finish(self, timeout_s: float = DEMO_TIMEOUT_S) -> dict:
        """Wait for the demo to end; its exit status must be 0; returns the summary."""
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"drem demo did not finish in {timeout_s} s:\n{self.output()[-4000:]}") from None
        assert code == 0, f"drem demo exited {code}:\n{self.output()[-4000:]}"
        return json.loads((Path(self.instance) / "demo_summary.json").read_text())

    def kill(self) -> None:
        """SIGTERM (the demo stops its cars and servers), SIGKILL of what is left after 30 s."""
        self.proc.stop(30)


def check_summary(summary: dict, output: str) -> None:
    """What every demo run must show (see the module docstring)."""
    context = f"\n{output[-3000:]}"
    assert summary["lost_laps"] == 0, context
    assert summary["doubled_laps"] == 0, context
    assert summary["leaderboard_matches_car_logs"] is True, summary["mismatches"]
    assert summary["races"] == RACERS, context
    assert summary["laps"] >= RACERS * LAPS, context
    assert summary["car_laps"] >= summary["laps"], context
    on_boards = {e["username"] for entries in summary["leaderboards"].values() for e in entries}
    assert len(on_boards) == RACERS, f"racers on the leaderboards: {sorted(on_boards)}{context}"
    for entries in summary["leaderboards"].values():
        for e in entries:
            assert e["summary"]["best_lap_ms"] > 0, e


@pytest.fixture(scope="module")
def sqlite_demo(demo_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """The SQLite demo, started once for the module (the browser test watches it live)."""
    folder = tmp_path_factory.mktemp("demo-sqlite")
    run = DemoRun(demo_command(folder / "instance", demo_models_dir), demo_env(), folder)
    try:
        yield run
    finally:
        run.kill()


# ------------------------------------------------------------------ tests

def test_leaderboard_page_updates_live_during_the_demo(sqlite_demo: DemoRun, browser) -> None:
    """A phone opens the public leaderboard while the demo runs: racer rows appear and
    change through Socket.IO, the page is never reloaded."""
    url = sqlite_demo.wait_for_output(r"Leaderboard: (http://\S+/events/\d+/leaderboard)", 120).group(1)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                and not m.location.get("url", "").endswith("/favicon.ico") else None)
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
        page.goto(url)
        page.evaluate("window.__sameDocument = true")

        def rows() -> list[str]:
            return page.locator("#lb-rows tr").all_inner_texts()

        page.wait_for_function("document.querySelectorAll('#lb-rows tr').length >= 1", timeout=120_000)
        first = rows()
        page.wait_for_function(
            """(before) => { const now = Array.from(document.querySelectorAll('#lb-rows tr'), r => r.innerText);
                             return now.length !== before.length || now.some((t, i) => t !== before[i]); }""",
            arg=first, timeout=120_000)
        later = rows()
        assert later != first
        assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        assert len(navigations) == 1, navigations
        assert not errors, errors
    finally:
        context.close()


def test_demo_event_on_sqlite(sqlite_demo: DemoRun) -> None:
    """The embedded default: SQLite, in-process Socket.IO, one gunicorn + gevent worker."""
    summary = sqlite_demo.finish()
    check_summary(summary, sqlite_demo.output())
    assert "SQLite" in sqlite_demo.output()


def test_demo_event_on_postgres_and_redis_with_two_web_processes(demo_models_dir: Path, tmp_path: Path) -> None:
    """PostgreSQL, Redis message queue, ``--workers 2``: two gunicorn processes behind
    HAProxy; clients are spread over both, cars talk Socket.IO through the proxy."""
    try:
        psycopg.connect(POSTGRES_BASE, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_BASE} ({exc}); run scripts/services.sh")
    with fresh_postgres_database(POSTGRES_BASE) as database_url:
        run = DemoRun(demo_command(tmp_path / "instance", demo_models_dir, "--workers", "2"),
                      demo_env(DATABASE_URL=database_url, REDIS_URL=REDIS_URL), tmp_path)
        try:
            summary = run.finish()
        finally:
            run.kill()
    check_summary(summary, run.output())
    assert "2 web processes" in run.output()
    proxy_log = (tmp_path / "instance" / "logs" / "haproxy.log").read_text()
    for web in ("web1", "web2"):
        assert f"drem_web/{web} " in proxy_log, f"HAProxy sent nothing to {web}:\n{proxy_log[-3000:]}"
    assert re.search(r" 101 .*GET /socket\.io/\?transport=websocket", proxy_log), "no websocket through HAProxy"


def test_ctrl_c_stops_every_process_the_demo_started(demo_models_dir: Path, tmp_path: Path) -> None:
    """Ctrl-C while the cars drive: the demo stops its gunicorn server and workers, its car
    clients and the clamd it started (clamd detaches from the demo, so it is found by its
    pid file), then exits; none of them is left running."""
    instance = tmp_path / "instance"
    run = DemoRun(demo_command(instance, demo_models_dir, racers=1, cars=1), demo_env(), tmp_path)
    try:
        run.wait_for_output(r"1 cars online", 240)
        started = process_tree(run.proc.pid)[1:]
        clamd = psutil.Process(int((instance / "clamd" / "clamd.pid").read_text()))
        commands = [" ".join(p.cmdline()) for p in [*started, clamd]]
        assert any("gunicorn" in c for c in commands), commands
        assert sum("gunicorn" in c for c in commands) >= 2, commands  # the master and its worker
        assert any("car_client run" in c for c in commands), commands
        assert any("clamd" in c for c in commands[-1:]), commands

        os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        code = run.proc.wait(60)
        left = alive([*started, clamd])
        assert left == [], [(p.pid, " ".join(p.cmdline())) for p in left]
        assert code == 1, run.output()[-3000:]  # stopped before the summary: not a successful demo
        assert "stopping the demo's processes" in run.output()
    finally:
        run.kill()


# ------------------------------------------- pieces of the scale-out layout

def test_haproxy_config_of_the_compose_stack_renders_for_local_processes(tmp_path: Path) -> None:
    """``deploy/haproxy.cfg`` with local addresses is what ``--workers N`` runs: sticky
    cookie, health checks, one server line per web process; haproxy accepts it."""
    cfg = render_haproxy("127.0.0.1:18080", [("web1", "127.0.0.1:18081"), ("web2", "127.0.0.1:18082"),
                                             ("web3", "127.0.0.1:18083")])
    assert "    bind 127.0.0.1:18080" in cfg
    assert [line.strip() for line in cfg.splitlines() if line.strip().startswith("server ")] == [
        f"server web{i} 127.0.0.1:1808{i} cookie web{i}" for i in (1, 2, 3)]
    assert "cookie DREMSRV insert indirect nocache" in cfg and "option redispatch" in cfg
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg)
    check = subprocess.run([find_haproxy(), "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_clamd_script_listens_on_tcp_when_asked(tmp_path: Path) -> None:
    """``CLAMD_TCP_PORT`` (a clamd shared over the network, as in the scale-out demo)."""
    port = free_port()
    rundir = tmp_path / "clamd"
    script = str(REPO_ROOT / "scripts" / "clamd.sh")
    out = subprocess.run([script, "start", str(rundir)], env=dict(os.environ, CLAMD_TCP_PORT=str(port)),
                         capture_output=True, text=True, timeout=180, check=False)
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"nPING\n")
            assert sock.recv(16).strip() == b"PONG"
    finally:
        subprocess.run([script, "stop", str(rundir)], capture_output=True, check=False)
