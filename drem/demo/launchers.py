"""The processes of a demo event: clamd, the drem server (gunicorn) and car clients.

Each runs as a real subprocess (:class:`~drem.demo.processes.ManagedProcess`) with its
log in the demo folder, exactly as at a venue: the server under gunicorn with gevent,
each car as ``python -m car_client run`` with a simulated vehicle on a real track,
clamd through ``scripts/clamd.sh`` (:class:`Clamd`).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
import requests

from drem.demo.processes import ManagedProcess, alive, free_port, terminate, wait_until
from drem.platform.config import REPO_ROOT

CLAMD_SCRIPT = REPO_ROOT / "scripts" / "clamd.sh"


def run_script(name: str, action: str, folder: Path, env: dict | None = None) -> str:
    """``scripts/NAME ACTION FOLDER``; its stdout. RuntimeError with its output on failure."""
    out = subprocess.run([str(REPO_ROOT / "scripts" / name), action, str(folder)], capture_output=True, text=True,
                         env=env, check=False, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"scripts/{name} {action} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


class Clamd:
    """A clamd in ``rundir`` run through ``scripts/clamd.sh``: a unix socket, and with
    ``tcp`` also 127.0.0.1:<free port> (a clamd shared over the network).

    :meth:`start` uses a clamd that already answers in ``rundir`` and leaves it running
    at :meth:`stop`; one it started itself (or took over with :meth:`take_over`) it
    stops: SIGTERM, then SIGKILL of its process tree.
    """

    def __init__(self, rundir: Path, tcp: bool = False):
        self.rundir, self.tcp = Path(rundir), tcp
        self.tcp_port: int | None = None
        self.process: psutil.Process | None = None

    @property
    def url(self) -> str:
        """``CLAMD_URL`` for drem: ``tcp://127.0.0.1:PORT`` with ``tcp``, else ``unix://…/clamd.sock``."""
        if self.tcp:
            return f"tcp://127.0.0.1:{self.tcp_port}"
        return f"unix://{self.rundir / 'clamd.sock'}"

    @property
    def started_here(self) -> bool:
        """True while a clamd this object started (or took over) runs."""
        return self.process is not None and bool(alive([self.process]))

    def running(self) -> bool:
        """True when the clamd of ``rundir`` answers PING."""
        return subprocess.run([str(CLAMD_SCRIPT), "status", str(self.rundir)], capture_output=True,
                              check=False, timeout=30).returncode == 0

    def _configured_port(self) -> int | None:
        conf = self.rundir / "clamd.conf"
        found = re.search(r"^TCPSocket (\d+)", conf.read_text(), re.M) if conf.exists() else None
        return int(found.group(1)) if found else None

    def start(self) -> str:
        """Start clamd unless one (with a TCP socket, when ``tcp``) answers in ``rundir``
        already; returns :attr:`url`. RuntimeError when it does not start."""
        if self.running():
            port = self._configured_port()
            if not self.tcp or port is not None:
                self.tcp_port = port if self.tcp else None
                return self.url
            run_script("clamd.sh", "stop", self.rundir)  # it has no TCP socket: start one that has
        if self.tcp and self.tcp_port is None:
            self.tcp_port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "CLAMD_TCP_PORT"}
        if self.tcp:
            env["CLAMD_TCP_PORT"] = str(self.tcp_port)
        run_script("clamd.sh", "start", self.rundir, env)
        self.take_over()
        return self.url

    def take_over(self) -> None:
        """Own the clamd running in ``rundir`` (from its pid file): :meth:`stop` stops it."""
        self.process = psutil.Process(int((self.rundir / "clamd.pid").read_text().strip()))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the clamd this object owns (SIGTERM, SIGKILL of its process tree after
        ``timeout_s`` seconds); a clamd that was running before is left alone."""
        if not self.started_here:
            return
        tree = [self.process]
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += self.process.children(recursive=True)
        terminate(alive(tree), timeout_s)
        self.process = None
        for leftover in ("clamd.pid", "clamd.sock"):
            (self.rundir / leftover).unlink(missing_ok=True)


def server_env(instance: Path, extra: dict | None = None) -> dict:
    """Environment of a demo server process: production mode, its own instance folder."""
    env = dict(os.environ)
    env.update({"DREM_ENV": "production", "DREM_INSTANCE_PATH": str(instance),
                "SECRET_KEY": env.get("SECRET_KEY") or _demo_secret(instance)})
    env.update(extra or {})
    return env


def _demo_secret(instance: Path) -> str:
    path = instance / "demo_secret_key"
    instance.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(os.urandom(32).hex())
        path.chmod(0o600)
    return path.read_text().strip()


def drem_cli(args: list[str], env: dict) -> str:
    """Run ``drem ARGS`` (as ``python -m drem``) and return its output; RuntimeError on failure."""
    out = subprocess.run([sys.executable, "-m", "drem", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, check=False, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"drem {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def server_proc(port: int, env: dict, log: Path, workers: int = 1, host: str = "127.0.0.1",
                name: str = "server") -> ManagedProcess:
    """A gunicorn (gevent) drem server process with the settings of
    :mod:`drem.platform.serving`, not yet started."""
    args = [sys.executable, "-m", "gunicorn", "-c", "python:drem.platform.serving", "-w", str(workers),
            "--bind", f"{host}:{port}", "wsgi:app"]
    return ManagedProcess(name, args, log, env)


def healthy(url: str) -> bool:
    """True when ``url``/healthz answers 200 within a second."""
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


def wait_healthy(url: str, proc: ManagedProcess | None = None, timeout_s: float = 60) -> None:
    """Wait until ``url``/healthz answers; RuntimeError with the log if the process died."""
    def check():
        if proc is not None and not proc.alive:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        return healthy(url)

    wait_until(check, timeout_s, f"{url}/healthz", 0.2)


def car_proc(name: str, config: Path, data_dir: Path, track: str, speedup: float, log: Path,
             seed: int, randomize: bool = True) -> ManagedProcess:
    """A car-client daemon with a simulated car on ``track``, not yet started."""
    args = [sys.executable, "-m", "car_client", "run", "--config", str(config), "--vehicle", "sim",
            "--track", track, "--speedup", str(speedup), "--data-dir", str(data_dir), "--seed", str(seed)]
    if randomize:
        args.append("--randomize")
    env = dict(os.environ)
    env.pop("DREM_INSTANCE_PATH", None)
    return ManagedProcess(name, args, log, env)


def activate_car(server_url: str, code: str, config: Path, hostname: str) -> None:
    """Run ``car-client activate`` for one car (writes its 0600 config file)."""
    out = subprocess.run([sys.executable, "-m", "car_client", "activate", "--server", server_url, "--code", code,
                          "--config", str(config), "--hostname", hostname], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=False, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"car-client activate failed for {hostname}:\n{out.stdout}\n{out.stderr}")
