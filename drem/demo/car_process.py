"""Real car client processes for the fleet end-to-end tests and the fleet benchmark.

:class:`CarProcess` is one ``python -m car_client`` daemon with its own config file
and data dir: :meth:`CarProcess.activate` runs ``car_client activate`` with a code
from the server's API, :meth:`CarProcess.start` runs ``car_client run --vehicle
standin``; it can be stopped (SIGTERM), killed (SIGKILL) and started again with the
same data (outbox, lap log, models). Everything it prints goes to ``car.log`` in its
folder. The process is a :class:`drem.demo.processes.ManagedProcess`.

No pytest imports here: ``tests/e2e`` and ``bench/`` use this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from drem.demo.processes import ManagedProcess
from drem.platform.config import REPO_ROOT


class CarProcess:
    """One real car client daemon (``python -m car_client run --vehicle standin``).

    ``folder`` holds ``config.json`` (from activation), the data dir (outbox, lap log,
    models) and ``car.log``. ``lap_interval_s`` makes the stand-in vehicle report a
    synthetic lap that often while driving; ``extra_args`` go after ``car_client run``'s
    own; ``env`` adds to this process's environment.
    """

    def __init__(self, folder: str | os.PathLike[str], hostname: str, lap_interval_s: float | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hostname = hostname
        self.config_path = self.folder / "config.json"
        self.data_dir = self.folder / "data"
        self.log_path = self.folder / "car.log"
        self.lap_interval_s = lap_interval_s
        self.extra_args = extra_args or []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env.pop("DREM_CAR_CONFIG", None)
        self.process = ManagedProcess(hostname, [], self.log_path, self.env)  # command() at each start
        self.car_id: int | None = None

    # ---------------------------------------------------------------- activation

    def activate(self, server_url: str, code: str) -> int:
        """Run ``car_client activate``; returns the car id written to the config file.
        AssertionError with its output when activation fails."""
        proc = subprocess.run(
            [sys.executable, "-m", "car_client", "activate", "--server", server_url, "--code", code,
             "--config", str(self.config_path), "--hostname", self.hostname],
            cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"car_client activate failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        self.car_id = int(json.loads(self.config_path.read_text())["car_id"])
        return self.car_id

    # ---------------------------------------------------------------- life cycle

    def command(self) -> list[str]:
        """The ``car_client run`` command line."""
        cmd = [sys.executable, "-m", "car_client", "run", "--config", str(self.config_path), "--vehicle", "standin",
               "--data-dir", str(self.data_dir)]
        if self.lap_interval_s:
            cmd += ["--standin-lap-interval", str(self.lap_interval_s)]
        return cmd + self.extra_args

    def start(self) -> CarProcess:
        """Start the daemon (returns at once); a running daemon is left alone."""
        if not self.process.alive:
            self.process.args = self.command()
        self.process.start()
        return self

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.process.alive

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (the daemon stops driving and flushes its outbox), SIGKILL after
        ``timeout`` seconds; returns the exit status (None when never started)."""
        return self.process.stop(timeout)

    def kill9(self) -> None:
        """SIGKILL: the car loses power."""
        self.process.kill9()

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to end on its own; returns its exit status."""
        return self.process.wait(timeout)

    # ---------------------------------------------------------------- what it wrote

    def log_text(self) -> str:
        """Everything the daemon printed so far."""
        return self.process.log_text()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the daemon's log, under a header naming the car."""
        return f"---- {self.hostname} car.log\n" + self.process.log_tail(lines)

    def laps(self) -> list[dict]:
        """Every lap the car drove (its ``laps.jsonl``)."""
        path = self.data_dir / "laps.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def models_index(self) -> dict:
        """The car's model store index (``models/index.json``)."""
        path = self.data_dir / "models" / "index.json"
        return json.loads(path.read_text()) if path.exists() else {}
