"""Real car client processes for fleet end-to-end tests and the fleet benchmark.

:class:`CarProcess` is one ``python -m car_client`` daemon with its own config file
and data dir: :meth:`CarProcess.activate` runs ``car_client activate`` with a code
from the server's API, :meth:`CarProcess.start` runs ``car_client run --vehicle
standin``; it can be stopped (SIGTERM), killed (SIGKILL) and started again with the
same data (outbox, lap log, models). Everything it prints goes to ``car.log`` in its
folder.

No pytest imports here: ``bench/`` uses this module too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.e2e.server import REPO, LiveServer


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05,
               what: str = "", on_timeout: Callable[[], str] | None = None) -> Any:
    """Poll ``predicate()`` until it returns something truthy and return that; AssertionError
    (with ``on_timeout()``'s text, e.g. a log tail) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}\n{extra}")
        time.sleep(interval)


def activation_code(server: LiveServer, hostname: str, token: str | None = None,
                    fleet_id: int | None = None) -> str:
    """A one-time activation code for ``hostname`` from ``POST /api/fleet/activation-codes``."""
    resp = server.api("POST", "/api/fleet/activation-codes", token=token or server.admin_token,
                      json={"hostname": hostname, "fleet_id": fleet_id})
    if resp.status_code != 201:
        raise AssertionError(f"no activation code: {resp.status_code} {resp.text[:300]}")
    return resp.json()["code"]


class CarProcess:
    """One real car client daemon (``python -m car_client run --vehicle standin``).

    ``folder`` holds ``config.json`` (from activation), the data dir (outbox, lap log,
    models) and ``car.log``. ``lap_interval_s`` makes the stand-in vehicle report a
    synthetic lap that often while driving.
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
        self.proc: subprocess.Popen[bytes] | None = None
        self.car_id: int | None = None

    # ---------------------------------------------------------------- activation

    def activate(self, server_url: str, code: str) -> int:
        """Run ``car_client activate``; returns the car id written to the config file."""
        proc = subprocess.run(
            [sys.executable, "-m", "car_client", "activate", "--server", server_url, "--code", code,
             "--config", str(self.config_path), "--hostname", self.hostname],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=60, check=False)
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
        """Start the daemon (returns at once)."""
        if self.running:
            return self
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== starting {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (the daemon stops driving and flushes its outbox), SIGKILL after
        ``timeout``; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL: the car loses power."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(10)

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to end on its own; returns its exit status."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    # ---------------------------------------------------------------- what it wrote

    def log_text(self) -> str:
        """Everything the daemon printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the daemon's log."""
        return f"---- {self.hostname} car.log\n" + "\n".join(self.log_text().splitlines()[-lines:])

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


class FleetApi:
    """The operator side of the fleet API on a live server, with one bearer token."""

    def __init__(self, server: LiveServer, token: str | None = None):
        self.server, self.token = server, token or server.admin_token

    def car(self, car_id: int) -> dict:
        """``GET /api/fleet/cars/ID``."""
        resp = self.server.api("GET", f"/api/fleet/cars/{car_id}", token=self.token, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def send(self, car_ids: list[int], command_type: str, params: dict | None = None) -> list[dict]:
        """``POST /api/fleet/commands``; returns the created commands (AssertionError unless 201)."""
        resp = self.server.api("POST", "/api/fleet/commands", token=self.token,
                               json={"car_ids": car_ids, "type": command_type, "params": params or {}})
        if resp.status_code != 201:
            raise AssertionError(f"{command_type} refused: {resp.status_code} {resp.text[:300]}")
        return resp.json()["commands"]

    def command(self, command_id: int) -> dict:
        """``GET /api/fleet/commands/ID``."""
        resp = self.server.api("GET", f"/api/fleet/commands/{command_id}", token=self.token, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def wait_command(self, command_id: int, statuses: tuple[str, ...] = ("done", "failed"),
                     timeout: float = 30.0, cars: list[CarProcess] = ()) -> dict:
        """Poll a command until its status is one of ``statuses``; returns it."""
        return wait_until(lambda: (c := self.command(command_id))["status"] in statuses and c, timeout,
                          what=f"command {command_id} to reach {statuses}",
                          on_timeout=lambda: f"{self.command(command_id)}\n" + "\n".join(
                              car.log_tail() for car in cars) + "\n" + self.server.log_tail(30))

    def wait_car(self, car_id: int, check: Callable[[dict], bool], timeout: float = 20.0, what: str = "",
                 cars: list[CarProcess] = ()) -> dict:
        """Poll a car until ``check(car)`` holds; returns the car."""
        def ready() -> dict | None:
            car = self.car(car_id)
            return car if check(car) else None

        return wait_until(ready, timeout,
                          what=what or f"car {car_id}",
                          on_timeout=lambda: f"{self.car(car_id)}\n" + "\n".join(c.log_tail() for c in cars))

    def laps(self, car_id: int) -> list[dict]:
        """The car's lap log on the server (``GET /api/fleet/cars/ID/laps``), paged to the end."""
        out: list[dict] = []
        while True:
            resp = self.server.api("GET", f"/api/fleet/cars/{car_id}/laps", token=self.token,
                                   params={"after_id": out[-1]["id"] if out else 0, "limit": 1000}, timeout=10)
            resp.raise_for_status()
            page = resp.json()["laps"]
            out += page
            if len(page) < 1000:
                return out


def upload_model(server: LiveServer, racer: dict, path: Path, timeout: float = 60) -> dict:
    """Upload a model file as ``racer`` (a dict with ``token``) through ``/api/models`` and
    wait up to ``timeout`` s until it is scanned and available; returns the model."""
    with open(path, "rb") as fh:
        resp = requests.post(server.url + "/api/models", params={"filename": path.name}, data=fh,
                             headers={"Authorization": f"Bearer {racer['token']}",
                                      "Content-Type": "application/octet-stream"}, timeout=120)
    assert resp.status_code == 201, resp.text[:300]
    model = server.wait_for_model(resp.json()["id"], timeout=timeout)
    assert model["status"] == "available", model
    return model
