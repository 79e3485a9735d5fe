"""A real lap-timer process for the demo, the end-to-end tests and ``bench/timer.py``.

:class:`TimerProcess` is one ``python -m car_client timer run --mock-pins`` with its own
config file and data dir: :meth:`TimerProcess.activate` runs ``car_client timer activate``
with a one-time code from the server's API, :meth:`TimerProcess.start` runs the program
on gpiozero's mock pins (there is no GPIO here), and :meth:`TimerProcess.pulse` makes a
sensor see a crossing by writing its number to the program's named pipe
(``mock-pins.fifo`` in the data dir). Everything it prints goes to ``timer.log`` in its
folder. The process is a :class:`drem.demo.processes.ManagedProcess`.

No pytest imports here: ``tests/e2e``, ``bench/`` and the demo use this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from drem.demo.processes import ManagedProcess, wait_until
from drem.platform.config import REPO_ROOT

FIFO = "mock-pins.fifo"  # car_client.timer.cli.MOCK_FIFO (drem does not import car_client.timer)


class TimerProcess:
    """One real lap-timer program on mock pins (see the module docstring).

    ``folder`` holds ``config.json`` (from activation), the data dir (outbox, crossing
    log, the mock-pins pipe) and ``timer.log``; ``env`` adds to this process's environment.
    """

    def __init__(self, folder: str | os.PathLike[str], hostname: str = "timer-1", env: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hostname = hostname
        self.config_path = self.folder / "config.json"
        self.data_dir = self.folder / "data"
        self.log_path = self.folder / "timer.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.env.pop("DREM_TIMER_CONFIG", None)
        self.process = ManagedProcess(hostname, self.command(), self.log_path, self.env)
        self.timer_id: int | None = None
        self._pipe: int | None = None

    def activate(self, server_url: str, code: str, pins: tuple[int, ...] = (17, 27)) -> int:
        """Run ``car_client timer activate``; returns the timer id written to the config file.
        RuntimeError with its output when activation fails."""
        cmd = [sys.executable, "-m", "car_client", "timer", "activate", "--server", server_url, "--code", code,
               "--config", str(self.config_path), "--hostname", self.hostname]
        for pin in pins:
            cmd += ["--pin", str(pin)]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=60,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"car_client timer activate failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        self.timer_id = int(json.loads(self.config_path.read_text())["timer_id"])
        return self.timer_id

    def command(self) -> list[str]:
        """The ``car_client timer run`` command line."""
        return [sys.executable, "-m", "car_client", "timer", "run", "--config", str(self.config_path),
                "--data-dir", str(self.data_dir), "--mock-pins", "--ack-timeout", "5"]

    def start(self, timeout: float = 20.0) -> TimerProcess:
        """Start the program and wait until its mock-pins pipe exists (a running one is left alone)."""
        self.process.start()
        wait_until(lambda: (self.data_dir / FIFO).exists() or not self.process.alive, timeout,
                   f"{self.hostname}'s mock-pins pipe")
        if not self.process.alive:
            raise RuntimeError(f"the timer exited ({self.process.returncode}):\n{self.log_tail()}")
        return self

    def pulse(self, sensor: int = 1, at_ns: int | None = None) -> int:
        """Make ``sensor`` see one crossing, now or at ``time.monotonic_ns() == at_ns`` (the
        program drives its mock pin then; pulses play in the order they were sent). Returns
        the time of the pulse (ns, this machine's monotonic clock)."""
        if self._pipe is None:
            self._pipe = os.open(self.data_dir / FIFO, os.O_WRONLY)  # blocks until the program reads it
        if at_ns is None:
            at_ns = time.monotonic_ns()
            os.write(self._pipe, f"{sensor}\n".encode())
        else:
            os.write(self._pipe, f"{sensor} {at_ns}\n".encode())
        return at_ns

    def pulse_schedule(self, offsets_s: list[float], sensor: int = 1, lead_s: float = 0.5) -> list[int]:
        """Send a whole pulse schedule at once: one crossing of ``sensor`` at each offset
        (seconds from ``lead_s`` from now). Returns the scheduled times (ns, monotonic)."""
        start = time.monotonic_ns() + int(lead_s * 1e9)
        return [self.pulse(sensor, start + int(offset * 1e9)) for offset in offsets_s]

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self._pipe)
            self._pipe = None

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.process.alive

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (the program flushes its outbox), SIGKILL after ``timeout`` seconds; returns
        the exit status (None when never started)."""
        self._close_pipe()
        return self.process.stop(timeout)

    def kill9(self) -> None:
        """SIGKILL: the timer loses power."""
        self._close_pipe()
        self.process.kill9()

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to end on its own (e.g. exit 3 when revoked); returns its status."""
        self._close_pipe()
        return self.process.wait(timeout)

    def crossings(self) -> list[dict]:
        """Every crossing the timer saw (its ``crossings.jsonl``)."""
        path = self.data_dir / "crossings.jsonl"
        out = []
        if path.exists():
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def log_text(self) -> str:
        """Everything the program printed so far."""
        return self.process.log_text()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the program's log, under a header naming the timer."""
        return f"---- {self.hostname} timer.log\n" + self.process.log_tail(lines)
