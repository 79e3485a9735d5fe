"""The operator's side of the fleet end-to-end tests: activation codes, the fleet API
(:class:`FleetApi`) and model uploads, on a :class:`drem.demo.live_server.LiveServer`
with real car client daemons (:class:`drem.demo.car_process.CarProcess`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import requests

from drem.demo.car_process import CarProcess
from drem.demo.live_server import LiveServer
from drem.demo.processes import wait_until


def activation_code(server: LiveServer, hostname: str, token: str | None = None,
                    fleet_id: int | None = None) -> str:
    """A one-time activation code for ``hostname`` from ``POST /api/fleet/activation-codes``."""
    resp = server.api("POST", "/api/fleet/activation-codes", token=token or server.admin_token,
                      json={"hostname": hostname, "fleet_id": fleet_id})
    if resp.status_code != 201:
        raise AssertionError(f"no activation code: {resp.status_code} {resp.text[:300]}")
    return resp.json()["code"]


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
