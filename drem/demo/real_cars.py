"""Real-car backends in the demo (issue 14): a "DeepRacer" driven through its device console
and a Donkey Car whose camera and PCA9685 are the simulator.

No DeepRacer exists here, so the car is the device-console stand-in of the tests
(``tests/standins/deepracer_console.py``, run from the checkout as its own process
with ``--sim-track``: while the console says start it drives the simulator with the
model loaded on it) and, in front of it, a real ``car-client run --vehicle deepracer``
bridge: everything from the bridge up (car client, server, pages) is the real code.
A real car reports no laps of its own: the "DeepRacer" races on the demo's first track,
which the demo's lap timer times (:class:`drem.demo.timer_process.DemoTrackTimer`,
pulsed at each start-line crossing of the simulated DeepRacer, which the stand-in appends
to its lap log, :attr:`DeepRacerDemoCar.lap_log`). The Donkey Car's laps cannot be timed
(the second track has no timer, and a real Donkey reports none), so it drives its model
without a race (:func:`drive_without_race`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from drem.demo.launchers import activate_car
from drem.demo.processes import ManagedProcess, free_port, wait_until

#: the stand-ins' modules, run by name from the checkout (stand-ins live in tests/)
STANDIN_MODULE = "tests.standins.deepracer_console"
DONKEY_STANDIN_MODULE = "tests.standins.donkey_car"


def _env() -> dict[str, str]:
    """The stand-ins' environment (they run as ``python -m tests.standins...`` from the
    repository root, the processes' working folder, so ``tests`` is importable)."""
    return {k: v for k, v in os.environ.items() if k not in ("DREM_INSTANCE_PATH", "DREM_CAR_CONFIG")}


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class DeepRacerDemoCar:
    """One demo "DeepRacer": the console stand-in process and the bridge process.

    ``folder``: where both keep their files (password file 0600, console artifacts,
    car config, data, logs); ``track``: the simulator track the console drives on;
    ``speedup``: simulated seconds per wall second.
    """

    def __init__(self, folder: Path, hostname: str, track: str, speedup: float = 1.0,
                 password: str = "demo-deepracer") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hostname = hostname
        self.port = free_port()
        self.password_file = self.folder / "console.password"
        self.password_file.write_text(password + "\n", encoding="utf-8")
        self.password_file.chmod(0o600)
        self.config = self.folder / "config.json"
        #: the simulated laps the console stand-in drove, one JSON line each (``lap_time_ms``,
        #: ``resets``): what the car drove, for the demo's lap timer and final check
        self.lap_log = self.folder / "sim" / "laps.jsonl"
        env = _env()
        self.console = ManagedProcess(
            f"{hostname}-console",
            [sys.executable, "-m", STANDIN_MODULE, "--folder", str(self.folder / "console"), "--port",
             str(self.port), "--password-file", str(self.password_file), "--sim-track", track,
             "--speedup", str(speedup), "--lap-log", str(self.lap_log)],
            self.folder / "console.log", env)
        self.bridge = ManagedProcess(
            hostname,
            [sys.executable, "-m", "car_client", "run", "--config", str(self.config), "--vehicle", "deepracer",
             "--console-url", f"https://127.0.0.1:{self.port}", "--console-password-file", str(self.password_file),
             "--data-dir", str(self.folder / "data")],
            self.folder / "car.log", env)
        self.car_id: int | None = None

    def start(self, server_url: str, code: str) -> int:
        """Start the console, activate the bridge with ``code`` and start it; returns the car id.
        RuntimeError when the console does not come up within 30 s."""
        self.console.start()
        wait_until(lambda: _listening(self.port), 30, f"{self.hostname}'s console", 0.2)
        activate_car(server_url, code, self.config, self.hostname)
        self.car_id = int(json.loads(self.config.read_text(encoding="utf-8"))["car_id"])
        self.bridge.start()
        return self.car_id

    def stop(self) -> None:
        """Stop the bridge (SIGTERM, it stops the car), then the console."""
        self.bridge.stop(15)
        self.console.stop(10)


class DonkeyDemoCar:
    """One demo Donkey Car: the real daemon and Donkey backend, with the PCA9685 and the
    camera replaced by the simulator (``tests/standins/donkey_car.py``), in one process.
    Runs in real time: the drive loop's frame rate is the car's."""

    def __init__(self, folder: Path, hostname: str, track: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hostname = hostname
        self.config = self.folder / "config.json"
        self.process = ManagedProcess(
            hostname, [sys.executable, "-m", DONKEY_STANDIN_MODULE, "--config", str(self.config), "--data-dir",
                       str(self.folder / "data"), "--track", track], self.folder / "car.log", _env())
        self.car_id: int | None = None

    def start(self, server_url: str, code: str) -> int:
        """Activate with ``code`` and start; returns the car id."""
        activate_car(server_url, code, self.config, self.hostname)
        self.car_id = int(json.loads(self.config.read_text(encoding="utf-8"))["car_id"])
        self.process.start()
        return self.car_id

    def stop(self) -> None:
        """SIGTERM: the daemon stops the car (throttle at the stopped pulse) and exits."""
        self.process.stop(15)


def start_deepracer(operator, server_url: str, folder: Path, event: dict, speedup: float, log) -> DeepRacerDemoCar:
    """Add one demo "DeepRacer" to the event's first track's fleet-less car list, online.

    ``operator``: the demo's :class:`drem.demo.client.Api` as the operator; ``log``: print-like."""
    track = event["tracks"][0]
    hostname = f"demo-deepracer-{event['id']}"
    car = DeepRacerDemoCar(folder / hostname, hostname, track["layout"], speedup)
    code = operator.post("/api/fleet/activation-codes", {"hostname": hostname})["code"]
    car.start(server_url, code)
    wait_until(lambda: operator.get(f"/api/fleet/cars/{car.car_id}")["online"], 60, f"{hostname} online", 0.3)
    log(f"{hostname} online: a DeepRacer bridged to its console stand-in on {track['layout']}")
    return car


def drive_without_race(operator, car_id: int, model_id: int, hostname: str, log, timeout_s: float = 120) -> None:
    """Load ``model_id`` onto car ``car_id`` and start it driving, outside any race (its
    laps cannot be timed). ``operator``: :class:`drem.demo.client.Api`. RuntimeError when
    a command fails, with the car's reason, or does not finish within ``timeout_s``."""
    for command_type, params in (("load_model", {"model_id": model_id}), ("start_driving", {"model_id": model_id})):
        [command] = operator.post("/api/fleet/commands", {"car_ids": [car_id], "type": command_type,
                                                          "params": params})["commands"]
        done = wait_until(lambda c=command: _finished(operator, c["id"]), timeout_s,
                          f"{command_type} on {hostname}", 0.3)
        if done["status"] != "done":
            raise RuntimeError(f"{command_type} on {hostname} failed: {done.get('reason')}")
    log(f"{hostname} drives model {model_id} without a race (a Donkey Car's laps are not timed here)")


def _finished(operator, command_id: int) -> dict | None:
    command = operator.get(f"/api/fleet/commands/{command_id}")
    return command if command["status"] in ("done", "failed") else None


def start_donkey(operator, server_url: str, folder: Path, event: dict, log) -> DonkeyDemoCar:
    """Add one demo Donkey Car (camera and PCA9685 replaced by the simulator), online."""
    track = event["tracks"][-1]
    hostname = f"demo-donkey-{event['id']}"
    car = DonkeyDemoCar(folder / hostname, hostname, track["layout"])
    code = operator.post("/api/fleet/activation-codes", {"hostname": hostname})["code"]
    car.start(server_url, code)
    wait_until(lambda: operator.get(f"/api/fleet/cars/{car.car_id}")["online"], 60, f"{hostname} online", 0.3)
    log(f"{hostname} online: a Donkey Car whose camera and PCA9685 are the simulator on {track['layout']}")
    return car
