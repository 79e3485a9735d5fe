"""The processes of a demo event: clamd, the drem server (gunicorn) and car clients.

Each runs as a real subprocess with its log in the demo folder, exactly as at a
venue: the server under gunicorn with gevent, each car as ``python -m car_client run``
with a simulated vehicle on a real track.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from drem.platform.config import REPO_ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, timeout_s: float, what: str, interval_s: float = 0.2):
    """Call ``check()`` until it returns something truthy; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Proc:
    """One subprocess with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict, cwd: Path = REPO_ROOT):
        self.name, self.args, self.log_path, self.env, self.cwd = name, args, log, env, cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        """Start the process (its output appends to the log)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.popen = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = 15) -> int | None:
        """SIGTERM the process group, wait, then SIGKILL; returns the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=timeout_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        return self.popen.wait()

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash)."""
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(text[-lines:])


def start_clamd(rundir: Path) -> str:
    """Start (or find running) a clamd in ``rundir`` via scripts/clamd.sh; returns its URL."""
    out = subprocess.run([str(REPO_ROOT / "scripts" / "clamd.sh"), "start", str(rundir)], capture_output=True,
                         text=True, check=False, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"clamd did not start:\n{out.stdout}\n{out.stderr}")
    return f"unix://{rundir / 'clamd.sock'}"


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
    """Run ``drem ARGS`` (as ``python -m drem.cli``) and return its output; RuntimeError on failure."""
    out = subprocess.run([sys.executable, "-m", "drem", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, check=False, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"drem {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def server_proc(port: int, env: dict, log: Path, workers: int = 1, host: str = "127.0.0.1") -> Proc:
    """A gunicorn (gevent) drem server process, not yet started."""
    args = [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", str(workers), "--bind", f"{host}:{port}",
            "--no-control-socket", "--graceful-timeout", "5", "--timeout", "120", "wsgi:app"]
    return Proc("server", args, log, env)


def wait_healthy(url: str, proc: Proc | None = None, timeout_s: float = 60) -> None:
    """Wait until ``url``/healthz answers; RuntimeError with the log if the process died."""
    def check():
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            return requests.get(f"{url}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    wait_for(check, timeout_s, f"{url}/healthz")


def car_proc(name: str, config: Path, data_dir: Path, track: str, speedup: float, log: Path,
             seed: int, randomize: bool = True) -> Proc:
    """A car-client daemon with a simulated car on ``track``, not yet started."""
    args = [sys.executable, "-m", "car_client", "run", "--config", str(config), "--vehicle", "sim",
            "--track", track, "--speedup", str(speedup), "--data-dir", str(data_dir), "--seed", str(seed)]
    if randomize:
        args.append("--randomize")
    env = dict(os.environ)
    env.pop("DREM_INSTANCE_PATH", None)
    return Proc(name, args, log, env)


def activate_car(server_url: str, code: str, config: Path, hostname: str) -> None:
    """Run ``car-client activate`` for one car (writes its 0600 config file)."""
    out = subprocess.run([sys.executable, "-m", "car_client", "activate", "--server", server_url, "--code", code,
                          "--config", str(config), "--hostname", hostname], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=False, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"car-client activate failed for {hostname}:\n{out.stdout}\n{out.stderr}")
