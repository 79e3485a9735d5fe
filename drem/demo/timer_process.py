"""A real lap-timer process for the demo, the end-to-end tests and ``bench/timer.py``, and
the demo's track timer (:class:`DemoTrackTimer`).

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
import threading
import time
from pathlib import Path

from drem.demo.processes import ManagedProcess, wait_until
from drem.platform.config import REPO_ROOT

FIFO = "mock-pins.fifo"  # car_client.timer.cli.MOCK_FIFO (drem does not import car_client.timer)
#: how far ahead (s) the demo's lap timer schedules a race's first pulse (see DemoTrackTimer.start_race)
START_LEAD_S = 0.3


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

    def played(self) -> list[tuple[int, int | None, int]]:
        """The pulses the program played: ``(sensor, scheduled ns or None, played ns)`` in order
        (``mock-pins.played``); the played time is this machine's monotonic clock just before
        the program drove its mock pin."""
        path = self.data_dir / "mock-pins.played"
        out = []
        if path.exists():
            for line in path.read_text().splitlines():
                sensor, scheduled, played = line.split()
                out.append((int(sensor), None if scheduled == "-" else int(scheduled), int(played)))
        return out

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


class DemoTrackTimer:
    """The demo's lap timer on one track: a :class:`TimerProcess` activated for the track
    (whose first crossing starts the race) and pulsed at the simulated car's start-line
    crossings, as a pressure strip would be at a real event.

    The simulated car drives ``speedup`` times faster than the wall clock, so its crossings
    are replayed in race time: the race's first pulse (the car on the line) starts the race,
    then each lap the car logs (``laps.jsonl``) schedules the next pulse one car lap time
    later. The timer's lap times therefore equal the car's own (within the pulse jitter),
    and the track's races are timed by the timer alone (drem keeps the car's laps in its
    lap log only). At most ``laps`` pulses follow the start of each race.
    """

    def __init__(self, api, server_url: str, track_id: int, folder: Path, laps: int):
        self.api, self.track_id, self.laps = api, track_id, laps
        self.timer = TimerProcess(folder, hostname=f"demo-timer-{track_id}")
        api.call("PUT", f"/api/tracks/{track_id}/timing", json={"first_crossing_starts_race": True})
        code = api.post(f"/api/tracks/{track_id}/timer-codes", {"name": "start line"})["code"]
        self.timer.activate(server_url, code)
        self.timed: dict[int, list[dict]] = {}  # race id -> the car laps replayed as pulses
        self.scheduled: dict[int, list[int]] = {}  # race id -> its pulses' scheduled times (ns, monotonic)
        self._watch: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> DemoTrackTimer:
        """Start the timer program and wait until the server lists it online."""
        self.timer.start()
        wait_until(lambda: any(t["online"] for t in self.api.get(f"/api/tracks/{self.track_id}/timers")["timers"]),
                   30, f"the lap timer of track {self.track_id} online", 0.2)
        return self

    def start_race(self, race_id: int, car_laps: Path, lead_s: float = START_LEAD_S) -> None:
        """The car is on the line: pulse in ``lead_s`` seconds (the race starts), then replay
        the car's next laps from ``car_laps`` (its ``laps.jsonl``: the simulated car's, or
        the DeepRacer console stand-in's simulator lap log) as pulses one car lap time apart.

        Every pulse, the first one included, is scheduled, so the program plays each at its
        time and the timer's laps equal the car's to the mock pin's jitter; a first pulse
        played "now" would be late by however long the program took to read it (several ms
        on a busy machine), shortening the first lap by that much."""
        self.end_race()
        seen = len(_read_lines(car_laps))
        self.timed[race_id] = []
        self._stop.clear()
        at = self.timer.pulse(1, time.monotonic_ns() + int(lead_s * 1e9))
        self.scheduled[race_id] = [at]
        self._watch = threading.Thread(target=self._replay, args=(race_id, car_laps, seen, at),
                                       name=f"demo-timer-{race_id}", daemon=True)
        self._watch.start()

    def _replay(self, race_id: int, car_laps: Path, seen: int, at: int) -> None:
        timed = self.timed[race_id]
        while not self._stop.wait(0.05) and len(timed) < self.laps:
            for lap in _read_lines(car_laps)[seen:]:
                seen += 1
                if len(timed) >= self.laps:
                    break
                at += int(lap["lap_time_ms"]) * 1_000_000
                self.timer.pulse(1, at)
                self.scheduled[race_id].append(at)
                timed.append(lap)

    def late_ms(self) -> dict[int, list[float]]:
        """Race id -> how late (ms, >= 0) the program played each of the race's pulses after
        its scheduled time (``mock-pins.played``; a busy machine delays the mock pin's edge):
        the timer's lap ``i`` may differ from the car's by the lateness of pulses ``i`` and
        ``i + 1``. A pulse not played (yet) counts 0."""
        played = {scheduled: at for _, scheduled, at in self.timer.played() if scheduled is not None}
        return {race_id: [max(0.0, (played.get(at, at) - at) / 1e6) for at in pulses]
                for race_id, pulses in self.scheduled.items()}

    def end_race(self) -> None:
        """Stop replaying the car's laps (the pulses already scheduled still play)."""
        self._stop.set()
        if self._watch is not None:
            self._watch.join(5)
            self._watch = None

    def stop(self) -> None:
        """Stop replaying and stop the timer program."""
        self.end_race()
        self.timer.stop()


def _read_lines(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out
